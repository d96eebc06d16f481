"""Structure from motion on rendered orbits, and its evaluation against the true mesh.

An orbit folder (see :func:`hzlib.corpus.build.render_orbit`) holds ``images/NNN.png``, ``cameras.json``
(per view: ``K``, ``world_to_cam`` (OpenCV convention), ``width``, ``height``) and ``mesh.ply`` (the true
watertight mesh, world metres, z up).

* :func:`reconstruct` runs pycolmap (SIFT on the CPU, PINHOLE with the known intrinsics, one shared camera,
  exhaustive matching, incremental mapping). It never raises on a failed reconstruction: it returns an
  :class:`SfmResult` with ``ok=False`` and a ``reason``.
* :func:`align_to_truth` fits a similarity transform (Umeyama) of the reconstructed camera centres onto
  the true ones and reports per-image centre and rotation errors, plus the aligned points.
* :func:`evaluate_points` measures a point cloud against a mesh: accuracy, completeness, precision /
  recall / F-score at thresholds, Chamfer distance, all relative to the mesh's bounding-box diagonal.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .config import atomic_write_json, map_files

DEFAULT_THRESHOLDS = (0.01, 0.02)  # fractions of the bounding-box diagonal


# --------------------------------------------------------------------------------------------- meshes

def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) float64 and triangles (M, 3) int64 of a mesh file (open3d reader)."""
    import open3d as o3d  # lazy: slow to import (native libraries); only mesh steps need it

    mesh = o3d.io.read_triangle_mesh(str(path))
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


def mesh_diagonal(vertices: np.ndarray) -> float:
    v = np.asarray(vertices, dtype=np.float64)
    return float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points uniformly distributed (by area) on a triangle mesh; deterministic for a seed."""
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(t), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w0, w1, w2 = 1.0 - s, s * (1.0 - r2), s * r2
    return w0[:, None] * a[idx] + w1[:, None] * b[idx] + w2[:, None] * c[idx]


def distance_to_mesh(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unsigned distance from each point to the mesh surface (open3d RaycastingScene)."""
    import open3d as o3d  # lazy: slow to import (native libraries); only mesh steps need it

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.asarray(triangles, dtype=np.uint32)))
    return scene.compute_distance(o3d.core.Tensor(pts)).numpy().astype(np.float64)


def nearest_distance(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from each query to its nearest neighbour in ``points`` (inf where ``points`` is empty)."""
    q = np.asarray(queries, dtype=np.float64).reshape(-1, 3)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(p) == 0:
        return np.full(len(q), np.inf)
    return cKDTree(p).query(q, k=1)[0]


# -------------------------------------------------------------------------------------------- metrics

@dataclass
class PointMetrics:
    """A point cloud against a true mesh; every distance is a fraction of the mesh's bbox diagonal."""

    n_points: int
    diagonal: float  # metres
    accuracy_mean: float  # reconstructed point -> true surface
    accuracy_median: float
    completeness_mean: float  # true surface sample -> nearest reconstructed point
    completeness_median: float
    chamfer: float  # (accuracy_mean + completeness_mean) / 2
    thresholds: tuple[float, ...]
    precision: tuple[float, ...]  # share of points within each threshold of the surface
    recall: tuple[float, ...]  # share of surface samples within each threshold of a point
    fscore: tuple[float, ...]

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("thresholds", "precision", "recall", "fscore"):
            d[k] = list(d[k])
        return d


def evaluate_points(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, *,
                    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS, n_samples: int = 20_000,
                    seed: int = 0, crop: float | None = None) -> PointMetrics:
    """Accuracy, completeness, precision/recall/F-score and Chamfer distance of ``points`` against the
    mesh, relative to its bounding-box diagonal. ``crop`` (a fraction of the diagonal) keeps only points
    inside the mesh's bounding box grown by that margin (background points are discarded)."""
    v = np.asarray(vertices, dtype=np.float64)
    diag = mesh_diagonal(v)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if crop is not None and len(pts):
        lo, hi = v.min(axis=0) - crop * diag, v.max(axis=0) + crop * diag
        pts = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
    samples = sample_surface(v, triangles, n_samples, seed=seed)
    comp = nearest_distance(samples, pts) / diag
    if len(pts) == 0:
        nan = float("nan")
        zeros = tuple(0.0 for _ in thresholds)
        return PointMetrics(0, diag, nan, nan, float("inf"), float("inf"), float("inf"), tuple(thresholds),
                            zeros, zeros, zeros)
    acc = distance_to_mesh(pts, v, triangles) / diag
    prec = tuple(float(np.mean(acc <= t)) for t in thresholds)
    rec = tuple(float(np.mean(comp <= t)) for t in thresholds)
    f = tuple(0.0 if p + r == 0 else 2 * p * r / (p + r) for p, r in zip(prec, rec))
    return PointMetrics(len(pts), diag, float(acc.mean()), float(np.median(acc)), float(comp.mean()),
                        float(np.median(comp)), float((acc.mean() + comp.mean()) / 2), tuple(thresholds),
                        prec, rec, f)


# ----------------------------------------------------------------------------------------- alignment

def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising sum |s R src_i + t - dst_i|^2 (Umeyama 1991); needs >= 3 points
    not on one line."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    var_s = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(D) @ S) / var_s)
    t = mu_d - s * R @ mu_s
    return s, R, t


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra.T @ Rb) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


@dataclass
class Alignment:
    scale: float
    R: np.ndarray  # (3, 3) reconstruction -> world
    t: np.ndarray  # (3,)
    diagonal: float  # true mesh bbox diagonal, metres
    names: list[str]  # registered images, in order
    centre_error: np.ndarray  # per image, fraction of the diagonal
    rotation_error_deg: np.ndarray  # per image
    points: np.ndarray  # (N, 3) aligned points, world metres

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(x, dtype=np.float64) @ self.R.T + self.t


# ------------------------------------------------------------------------------------- reconstruction

@dataclass
class SfmResult:
    ok: bool
    reason: str  # "" when ok
    n_images: int
    n_registered: int
    points: np.ndarray = field(repr=False)  # (N, 3) reconstruction frame
    colors: np.ndarray = field(repr=False)  # (N, 3) uint8
    mean_reprojection_error: float = float("nan")  # pixels
    poses: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # image name -> (4,4) world_to_cam
    times: dict[str, float] = field(default_factory=dict)  # seconds per step
    model_dir: Path | None = None

    @property
    def registered_fraction(self) -> float:
        return self.n_registered / self.n_images if self.n_images else 0.0


def load_orbit_cameras(cameras_json: str | Path) -> dict[str, dict]:
    """Image file name (``NNN.png``) -> {K, world_to_cam, width, height} as numpy arrays."""
    data = json.loads(Path(cameras_json).read_text())
    out = {}
    for c in data["cameras"]:
        out[Path(c["image"]).name] = {"K": np.array(c["K"], dtype=np.float64),
                                      "world_to_cam": np.array(c["world_to_cam"], dtype=np.float64),
                                      "width": int(c["width"]), "height": int(c["height"])}
    return out


def _failed(reason: str, n_images: int, times: dict, n_registered: int = 0) -> SfmResult:
    return SfmResult(False, reason, n_images, n_registered, np.zeros((0, 3)), np.zeros((0, 3), np.uint8),
                     times=times)


AFFINE_BELOW_PX = 400  # smaller image side under which SIFT needs affine shapes to register every view


def reconstruct(orbit_dir: str | Path, work_dir: str | Path, *, max_features: int = 4096, threads: int = 1,
                seed: int = 0,
                affine: bool | None = None, min_registered: float = 0.5, refine_intrinsics: bool = False,
                images: list[str] | None = None) -> SfmResult:
    """Sparse SfM of one orbit with pycolmap. ``work_dir`` is emptied and receives a copy of the images,
    ``database.db`` and ``sparse/<k>/`` models.

    Everything runs on one thread unless ``threads`` > 1 (feature extraction only), because with
    several threads the result depends on scheduling: extraction writes images to the database in the
    order they finish (so image ids, pair order and every later random draw change), and matching's and
    mapping's RANSAC draws interleave. One thread gives the same model on every run. ``affine`` turns on
    SIFT affine-shape estimation and domain-size pooling; ``None`` turns it on for images whose smaller
    side is under :data:`AFFINE_BELOW_PX`: on 320x240 orbits it is the difference between 19/24 and
    24/24 registered views, while 640x480 orbits register 36/36 without it and extraction is about 5x
    faster.
    ``images`` restricts to those file names.
    The result is ``ok`` when the largest model registers at least ``min_registered`` of the images and
    has points; otherwise ``ok=False`` with a ``reason`` (it never raises for a failed reconstruction)."""
    import pycolmap  # here, not at the top: COLMAP's native library, needed by this function only

    pycolmap.logging.minloglevel = 2  # warnings and errors only: INFO is thousands of lines per orbit
    pycolmap.set_random_seed(seed)  # RANSAC and the mapper draw random samples

    orbit_dir, work_dir = Path(orbit_dir), Path(work_dir)
    times: dict[str, float] = {}
    views = _orbit_views(orbit_dir, images)
    if isinstance(views, SfmResult):
        return views
    names, cams = views
    n = len(names)
    K = cams[names[0]]["K"]
    img_dir, out_dir = _prepare_work_dir(orbit_dir, work_dir, names)
    if affine is None:
        affine = min(cams[names[0]]["width"], cams[names[0]]["height"]) < AFFINE_BELOW_PX
    try:
        recs = _colmap(pycolmap, work_dir / "database.db", img_dir, out_dir, K, times, threads=threads,
                       max_features=max_features, affine=affine, refine_intrinsics=refine_intrinsics)
    except (RuntimeError, ValueError) as e:  # pycolmap's errors on degenerate input
        return _failed(f"pycolmap failed: {type(e).__name__}: {e}", n, times)
    if not recs:
        return _failed("no initial image pair found: no model was reconstructed", n, times)
    return _largest_model(recs, n, times, out_dir, min_registered)


def _orbit_views(orbit_dir: Path, images: list[str] | None) -> tuple[list[str], dict] | SfmResult:
    """The views to reconstruct and their true cameras, or the failed result that says why not."""
    try:
        cams = load_orbit_cameras(orbit_dir / "cameras.json")
    except (OSError, KeyError, ValueError) as e:
        return _failed(f"cannot read cameras.json: {e}", 0, {})
    names = sorted(cams) if images is None else sorted(images)
    n = len(names)
    missing = [nm for nm in names if nm not in cams or not (orbit_dir / "images" / nm).is_file()]
    if missing:
        return _failed(f"images without a file or a true camera: {missing[:5]}", n, {})
    if n < 2:
        return _failed(f"{n} image(s): SfM needs at least 2", n, {})
    K = cams[names[0]]["K"]
    if any(not np.allclose(cams[nm]["K"], K) for nm in names):
        return _failed("views have different intrinsics; a single shared camera is assumed", n, {})
    return names, cams


def _prepare_work_dir(orbit_dir: Path, work_dir: Path, names: list[str]) -> tuple[Path, Path]:
    if work_dir.exists():
        shutil.rmtree(work_dir)
    img_dir, out_dir = work_dir / "images", work_dir / "sparse"
    img_dir.mkdir(parents=True)
    out_dir.mkdir()
    for nm in names:
        shutil.copy2(orbit_dir / "images" / nm, img_dir / nm)
    return img_dir, out_dir


def _colmap(pycolmap, db: Path, img_dir: Path, out_dir: Path, K: np.ndarray, times: dict, *, threads: int,
            max_features: int, affine: bool, refine_intrinsics: bool) -> dict:
    """Features, exhaustive matching and incremental mapping; each stage's seconds go into ``times``."""
    t0 = time.perf_counter()
    ro = pycolmap.ImageReaderOptions()
    ro.camera_model = "PINHOLE"
    ro.camera_params = ",".join(repr(float(x)) for x in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    eo = pycolmap.FeatureExtractionOptions()
    eo.num_threads = threads
    eo.sift.max_num_features = max_features
    eo.sift.estimate_affine_shape = affine
    eo.sift.domain_size_pooling = affine
    pycolmap.extract_features(db, img_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=ro,
                              extraction_options=eo, device=pycolmap.Device.cpu)
    times["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mo = pycolmap.FeatureMatchingOptions()
    mo.num_threads = 1  # with several threads RANSAC's draws depend on scheduling: not reproducible
    pycolmap.match_exhaustive(db, matching_options=mo, device=pycolmap.Device.cpu)
    times["matching"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    po = pycolmap.IncrementalPipelineOptions()
    po.num_threads = 1  # likewise (bundle adjustment and registration order)
    po.ba_refine_focal_length = refine_intrinsics
    po.ba_refine_principal_point = False
    po.ba_refine_extra_params = False
    recs = pycolmap.incremental_mapping(db, img_dir, out_dir, options=po)
    times["mapping"] = time.perf_counter() - t0
    return recs


def _largest_model(recs: dict, n: int, times: dict, out_dir: Path, min_registered: float) -> SfmResult:
    """The model that registers the most views, as an :class:`SfmResult` (not ``ok`` when it registers
    fewer than ``min_registered`` of the ``n`` views or has no points)."""
    key, rec = max(recs.items(), key=lambda kv: kv[1].num_reg_images())
    n_reg = rec.num_reg_images()
    poses = {}
    for im in rec.images.values():
        if im.has_pose:
            T = np.eye(4)
            T[:3, :] = im.cam_from_world().matrix()
            poses[im.name] = T
    pts = np.array([p.xyz for p in rec.points3D.values()], dtype=np.float64).reshape(-1, 3)
    cols = np.array([p.color for p in rec.points3D.values()], dtype=np.uint8).reshape(-1, 3)
    model_dir = out_dir / str(key)
    res = SfmResult(True, "", n, n_reg, pts, cols, float(rec.compute_mean_reprojection_error()), poses, times,
                    model_dir if model_dir.exists() else None)
    if n_reg < max(2, min_registered * n) or len(pts) == 0:
        res.ok = False
        res.reason = f"only {n_reg}/{n} images registered ({len(pts)} points)"
    return res


def align_to_truth(result: SfmResult, cameras_json: str | Path, mesh_path: str | Path | None = None) -> Alignment:
    """Similarity transform taking the reconstruction's camera centres onto the true ones (Umeyama), with
    per-image centre error (fraction of the true mesh's bbox diagonal; ``mesh_path`` defaults to
    ``mesh.ply`` beside ``cameras_json``) and rotation error (degrees). Raises ValueError with < 3 poses."""
    cams = load_orbit_cameras(cameras_json)
    names = sorted(nm for nm in result.poses if nm in cams)
    if len(names) < 3:
        raise ValueError(f"alignment needs >= 3 registered images with true cameras, got {len(names)}")
    mesh_path = Path(mesh_path) if mesh_path else Path(cameras_json).parent / "mesh.ply"
    diag = mesh_diagonal(load_mesh(mesh_path)[0])

    def centre(T):
        return -T[:3, :3].T @ T[:3, 3]

    src = np.array([centre(result.poses[nm]) for nm in names])
    dst = np.array([centre(cams[nm]["world_to_cam"]) for nm in names])
    s, R, t = umeyama(src, dst)
    aligned_c = s * src @ R.T + t
    cerr = np.linalg.norm(aligned_c - dst, axis=1) / diag
    # a world point x maps to reconstruction coordinates y = R^T (x - t) / s, so the aligned
    # world_to_cam rotation is R_rec @ R^T
    rerr = np.array([rotation_angle_deg(result.poses[nm][:3, :3] @ R.T, cams[nm]["world_to_cam"][:3, :3])
                     for nm in names])
    pts = s * result.points @ R.T + t if len(result.points) else np.zeros((0, 3))
    return Alignment(s, R, t, diag, names, cerr, rerr, pts)


# ------------------------------------------------------------------------------------- densification
#
# CPU multi-view stereo from the *registered* views: every selected pair of neighbouring views is
# stereo-rectified with the SfM poses and the known K (cv2.stereoRectify), matched with semi-global
# block matching (cv2.StereoSGBM, built-in left-right check, uniqueness and speckle filtering) in both
# directions, so each pair yields a depth map for both of its views; depths outside the range of the
# sparse points seen by that view are dropped. The depth maps are fused in an open3d UniformTSDFVolume
# (ScalableTSDFVolume and the tensor VoxelBlockGrid integrate nothing with open3d 0.20 here) with the
# SfM extrinsics, over a cube around the sparse points near the orbit centre; marching cubes gives the
# surface. Everything is computed in SfM coordinates (the voxel size is relative to the orbit radius, in
# pixel footprints); an Alignment, if given, maps the results to the true world frame afterwards.

@dataclass
class DenseResult:
    ok: bool
    reason: str  # "" when ok
    frame: str  # "sfm" (reconstruction coordinates) or "world" (mapped by an Alignment)
    points: np.ndarray = field(repr=False)  # (N, 3) TSDF point cloud
    colors: np.ndarray = field(repr=False)  # (N, 3) uint8
    mesh_vertices: np.ndarray = field(repr=False)  # (V, 3) marching-cubes surface
    mesh_triangles: np.ndarray = field(repr=False)  # (F, 3)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    n_depth_maps: int = 0
    valid_fraction: float = 0.0  # mean share of pixels with a kept depth
    voxel: float = float("nan")  # voxel edge, in the units of ``frame``
    times: dict[str, float] = field(default_factory=dict)


def _dense_failed(reason: str, times: dict | None = None, pairs=None) -> DenseResult:
    z = np.zeros((0, 3))
    return DenseResult(False, reason, "sfm", z, np.zeros((0, 3), np.uint8), z, np.zeros((0, 3), np.int64),
                       list(pairs or []), times=dict(times or {}))


def _centre(T: np.ndarray) -> np.ndarray:
    return -T[:3, :3].T @ T[:3, 3]


def orbit_centre(poses: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Least-squares point closest to every optical axis, and the median camera distance to it."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    cs = []
    for T in poses.values():
        c, d = _centre(T), T[2, :3]  # optical axis: c + s d
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
        cs.append(c)
    p = np.linalg.lstsq(A, b, rcond=None)[0]
    return p, float(np.median(np.linalg.norm(np.array(cs) - p, axis=1)))


def select_pairs(poses: dict[str, np.ndarray], neighbours: int = 2, min_angle: float = 5.0,
                 max_angle: float = 45.0) -> list[tuple[str, str]]:
    """Unordered stereo pairs: each view with its ``neighbours`` nearest views by optical-axis angle
    (within [min_angle, max_angle] degrees) whose baseline is mostly horizontal in the view (so that
    rectification is horizontal)."""
    names = sorted(poses)
    pairs = set()
    for a in names:
        Ta = poses[a]
        cand = []
        for b in names:
            if b == a:
                continue
            Tb = poses[b]
            ang = rotation_angle_deg(Ta[:3, :3], Tb[:3, :3])
            base = Ta[:3, :3] @ (_centre(Tb) - _centre(Ta))  # b's centre in a's camera frame
            if min_angle <= ang <= max_angle and abs(base[0]) > abs(base[1]):
                cand.append((ang, b))
        for _, b in sorted(cand)[:neighbours]:
            pairs.add(tuple(sorted((a, b))))
    return sorted(pairs)


def _view_depth_range(points: np.ndarray, T: np.ndarray, K: np.ndarray, w: int, h: int,
                      pct: float = 1.0, margin: float = 0.1) -> tuple[float, float] | None:
    """Depth range of the sparse points inside a view (percentiles, grown by ``margin``)."""
    if len(points) == 0:
        return None
    x = points @ T[:3, :3].T + T[:3, 3]
    z = x[:, 2]
    front = z > 1e-9
    uv = (x[front] @ K.T)
    uv = uv[:, :2] / uv[:, 2:]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    zz = z[front][inside]
    if len(zz) < 10:
        return None
    lo, hi = np.percentile(zz, [pct, 100 - pct])
    return float(lo * (1 - margin)), float(hi * (1 + margin))


def _pair_depths(img_a, img_b, Ta, Tb, Kcv, size, zr_a, zr_b, sgbm_opts: dict):
    """Depth maps (original pixel grids) of both views of one pair, NaN where unknown; None when the
    pair rectifies vertically or its disparity range is unusable."""
    w, h = size
    R = Tb[:3, :3] @ Ta[:3, :3].T
    t = Tb[:3, 3] - R @ Ta[:3, 3]
    R1, R2, P1, P2 = cv2.stereoRectify(Kcv, None, Kcv, None, (w, h), R, t.reshape(3, 1),
                                                flags=cv2.CALIB_ZERO_DISPARITY, alpha=-1)[:4]
    if abs(P2[1, 3]) > abs(P2[0, 3]):
        return None  # vertical rectification
    f, cx, cy = P1[0, 0], P1[0, 2], P1[1, 2]
    B = -P2[0, 3] / P2[0, 0]  # > 0: b is right of a in the rectified frame
    swap = B < 0
    if swap:  # make "left" the view on the left
        return tuple(reversed(_pair_depths(img_b, img_a, Tb, Ta, Kcv, size, zr_b, zr_a, sgbm_opts) or ()))\
            or None
    zmin = min(zr_a[0], zr_b[0])
    zmax = max(zr_a[1], zr_b[1])
    dmin, dmax = f * B / zmax, f * B / max(zmin, 1e-9)
    min_disp = int(np.floor(dmin)) - 2
    num = int(np.ceil((dmax - min_disp + 2) / 16.0)) * 16
    if num > 2 * w or num <= 0:
        return None
    maps = [cv2.initUndistortRectifyMap(Kcv, None, Rr, Pr, (w, h), cv2.CV_32FC1) for Rr, Pr in ((R1, P1), (R2, P2))]
    ra = cv2.remap(img_a, *maps[0], cv2.INTER_LINEAR)
    rb = cv2.remap(img_b, *maps[1], cv2.INTER_LINEAR)
    bs = sgbm_opts.get("block_size", 5)
    ch = 1 if ra.ndim == 2 else ra.shape[2]
    sgbm = cv2.StereoSGBM_create(minDisparity=min_disp, numDisparities=num, blockSize=bs,
                                 P1=8 * ch * bs * bs, P2=32 * ch * bs * bs,
                                 disp12MaxDiff=sgbm_opts.get("disp12_max_diff", 1),
                                 uniquenessRatio=sgbm_opts.get("uniqueness", 10),
                                 speckleWindowSize=sgbm_opts.get("speckle_window", 100),
                                 speckleRange=sgbm_opts.get("speckle_range", 2),
                                 mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    pad = max(0, min_disp + num)  # SGBM leaves the first minDisparity+numDisparities columns empty

    def match(left, right):
        if pad:
            left = cv2.copyMakeBorder(left, 0, 0, pad, 0, cv2.BORDER_REPLICATE)
            right = cv2.copyMakeBorder(right, 0, 0, pad, 0, cv2.BORDER_REPLICATE)
        return sgbm.compute(left, right)[:, pad:].astype(np.float32) / 16.0

    da = match(ra, rb)
    db = cv2.flip(match(cv2.flip(rb, 1), cv2.flip(ra, 1)), 1)
    out = []
    uu, vv = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    pix = np.stack([uu.ravel(), vv.ravel()], axis=1).reshape(-1, 1, 2)
    for disp, Rr, Pr, zr in ((da, R1, P1, zr_a), (db, R2, P2, zr_b)):
        disp[disp < min_disp] = np.nan
        rect = cv2.undistortPoints(pix, Kcv, None, R=Rr, P=Pr).reshape(h, w, 2)
        d = cv2.remap(disp, rect[..., 0], rect[..., 1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                      borderValue=np.nan)
        zr_rect = f * B / d
        ray = np.stack([(rect[..., 0] - cx) / f, (rect[..., 1] - cy) / f, np.ones_like(d)], axis=-1)
        depth = (ray @ Rr[:, 2]) * zr_rect  # z of R^T X_rect
        depth[~np.isfinite(depth) | (depth < zr[0]) | (depth > zr[1]) | (d <= 0)] = np.nan
        out.append(depth.astype(np.float32))
    return out[0], out[1]


class _DenseFailure(Exception):
    """Input densification cannot use (no pair, no image, too few points): :func:`densify` returns it
    as ``ok=False`` with this reason and the pairs tried so far."""

    def __init__(self, reason: str, pairs=None):
        super().__init__(reason)
        self.reason, self.pairs = reason, list(pairs or [])


def _library_errors() -> tuple[type[Exception], ...]:
    """What the libraries :func:`densify` calls raise on input they cannot process: OpenCV's
    ``cv2.error``, open3d's ``RuntimeError`` (its C++ errors, through pybind11) and numpy's
    ``LinAlgError`` (degenerate poses). Programming errors (TypeError, KeyError, ...) are not among them."""
    return cv2.error, RuntimeError, np.linalg.LinAlgError


@dataclass
class _Views:
    """The registered views densification uses: SfM poses and the shared camera."""
    poses: dict[str, np.ndarray]  # image name -> (4, 4) world_to_cam, SfM frame
    K: np.ndarray  # cameras.json (COLMAP: pixel centres at +0.5)
    Kcv: np.ndarray  # the same camera for OpenCV / open3d (pixel centres at 0)
    width: int
    height: int


def _registered_views(result: SfmResult, orbit_dir: Path) -> _Views:
    if not result.ok:
        raise _DenseFailure(f"SfM result is not ok: {result.reason or 'unknown'}")
    try:
        cams = load_orbit_cameras(orbit_dir / "cameras.json")
    except (OSError, KeyError, ValueError) as e:
        raise _DenseFailure(f"cannot read cameras.json: {e}") from e
    poses = {nm: T for nm, T in result.poses.items() if nm in cams}
    if len(poses) < 2:
        raise _DenseFailure(f"{len(poses)} registered view(s) with a camera: densification needs 2")
    c0 = cams[next(iter(poses))]
    Kcv = c0["K"].copy()
    Kcv[0, 2] -= 0.5  # cameras.json follows COLMAP (pixel centres at +0.5); OpenCV/open3d use 0
    Kcv[1, 2] -= 0.5
    return _Views(poses, c0["K"], Kcv, c0["width"], c0["height"])


def _read_images(orbit_dir: Path, pairs: list[tuple[str, str]], views: _Views) -> dict[str, np.ndarray]:
    """BGR images of every view in ``pairs``, each checked to have the camera's size."""
    imgs = {}
    for nm in sorted({n for p in pairs for n in p}):
        im = cv2.imread(str(orbit_dir / "images" / nm), cv2.IMREAD_COLOR)
        if im is None or im.shape[:2] != (views.height, views.width):
            raise _DenseFailure(f"cannot read image {nm} at {views.width}x{views.height}", pairs)
        imgs[nm] = im
    return imgs


def _stereo_depths(imgs: dict[str, np.ndarray], views: _Views, pairs: list[tuple[str, str]], zr: dict,
                   sgbm_opts: dict) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, str]]]:
    """Depth maps (view name, depth) of every pair that gives them, and the pairs used."""
    depths: list[tuple[str, np.ndarray]] = []
    used = []
    for a, b in pairs:
        if zr[a] is None or zr[b] is None:
            continue
        gray = [cv2.cvtColor(imgs[n], cv2.COLOR_BGR2GRAY) for n in (a, b)]
        dd = _pair_depths(gray[0], gray[1], views.poses[a], views.poses[b], views.Kcv,
                          (views.width, views.height), zr[a], zr[b], sgbm_opts)
        if dd is not None:
            depths += [(a, dd[0]), (b, dd[1])]
            used.append((a, b))
    if not depths:
        raise _DenseFailure("no pair gave a depth map (vertical baselines or no sparse depth range)", pairs)
    return depths, used


def _volume_box(points: np.ndarray, centre: np.ndarray, radius: float, voxel: float, *, volume_radius: float,
                volume_margin: float, max_resolution: int, pairs=None) -> tuple[np.ndarray, float, int]:
    """Origin, side and resolution of the cube bounding the sparse points near the orbit centre (a
    failure names ``pairs``, the pairs that gave depth maps).

    open3d 0.20's ScalableTSDFVolume (and the tensor VoxelBlockGrid) integrate nothing on this build (0
    points even for a flat synthetic depth map), so a UniformTSDFVolume is bounded by these points instead."""
    near = points[np.linalg.norm(points - centre, axis=1) < volume_radius * radius]
    if len(near) < 10:
        raise _DenseFailure(f"only {len(near)} sparse points near the orbit centre", pairs)
    lo, hi = np.percentile(near, [1, 99], axis=0)
    mid, side = (lo + hi) / 2, float((hi - lo).max() * (1 + 2 * volume_margin))
    res = int(min(max_resolution, max(16, np.ceil(side / voxel))))
    return mid - side / 2, side, res


def _fuse(depths: list[tuple[str, np.ndarray]], imgs: dict[str, np.ndarray], views: _Views, zr: dict,
          origin: np.ndarray, side: float, resolution: int, sdf_trunc: float):
    """The depth maps integrated in an open3d UniformTSDFVolume (colours from the images)."""
    import open3d as o3d  # lazy: slow to import (native libraries); only mesh steps need it

    integration = o3d.pipelines.integration
    vol = integration.UniformTSDFVolume(length=side, resolution=resolution, sdf_trunc=sdf_trunc,
                                        color_type=integration.TSDFVolumeColorType.RGB8, origin=origin)
    Kcv = views.Kcv
    intr = o3d.camera.PinholeCameraIntrinsic(views.width, views.height, Kcv[0, 0], Kcv[1, 1], Kcv[0, 2], Kcv[1, 2])
    for nm, d in depths:
        dz = np.nan_to_num(d, nan=0.0).astype(np.float32)
        rgb = np.ascontiguousarray(imgs[nm][..., ::-1])
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(rgb), o3d.geometry.Image(dz), depth_scale=1.0,
            depth_trunc=float(zr[nm][1]) + 1.0, convert_rgb_to_intensity=False)
        vol.integrate(rgbd, intr, views.poses[nm])
    return vol


def _extract(vol) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points, colours (uint8), mesh vertices and triangles of a TSDF volume."""
    pcd = vol.extract_point_cloud()
    mesh = vol.extract_triangle_mesh()
    pts = np.asarray(pcd.points, dtype=np.float64).reshape(-1, 3)
    cols = (np.asarray(pcd.colors).reshape(-1, 3) * 255).round().astype(np.uint8)
    mv = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
    mt = np.asarray(mesh.triangles, dtype=np.int64).reshape(-1, 3)
    return pts, cols, mv, mt


def densify(result: SfmResult, orbit_dir: str | Path, alignment: Alignment | None = None, *,
            neighbours: int = 2, pairs: list[tuple[str, str]] | None = None, voxel_px: float = 1.0,
            sdf_trunc_voxels: float = 4.0, block_size: int = 5, uniqueness: int = 30,
            speckle_window: int = 100, speckle_range: int = 2, depth_margin: float = 0.1,
            volume_radius: float = 0.5, volume_margin: float = 0.1, max_resolution: int = 320) -> DenseResult:
    """Dense cloud and surface of an orbit from the registered SfM views (not from the true cameras).

    Pairs: each view with its ``neighbours`` nearest views by viewing direction (or the given ``pairs``
    of image names). Voxel edge = ``voxel_px`` times the footprint of one pixel at the orbit radius (the
    median camera distance to the point nearest all optical axes), in SfM units, but at most
    ``max_resolution`` voxels along the cube that bounds (1st-99th percentile, grown by
    ``volume_margin`` each side) the sparse points within ``volume_radius`` orbit radii of the centre;
    TSDF truncation ``sdf_trunc_voxels`` voxels. SGBM: ``block_size``, ``uniqueness`` (percent),
    ``speckle_window`` (pixels), ``speckle_range`` (disparity). Depths outside the percentile range of the
    sparse points seen by each view (grown by ``depth_margin``) are dropped. With an ``alignment`` the
    cloud and mesh are mapped to the world frame (``frame="world"``, ``voxel`` in metres); otherwise they
    stay in SfM coordinates. Never raises on poor input: ``ok=False`` with a ``reason``, also when OpenCV
    or open3d fail on it (:func:`_library_errors`); a programming error propagates."""
    times: dict[str, float] = {}
    library_errors = _library_errors()
    orbit_dir = Path(orbit_dir)
    try:
        views = _registered_views(result, orbit_dir)
        t0 = time.perf_counter()
        pairs = select_pairs(views.poses, neighbours) if pairs is None else \
            [p for p in pairs if p[0] in views.poses and p[1] in views.poses]
        if not pairs:
            raise _DenseFailure("no usable stereo pair among the registered views")
        centre, radius = orbit_centre(views.poses)
        zr = {nm: _view_depth_range(result.points, T, views.K, views.width, views.height, margin=depth_margin)
              for nm, T in views.poses.items()}
        imgs = _read_images(orbit_dir, pairs, views)
        depths, used = _stereo_depths(imgs, views, pairs, zr, dict(
            block_size=block_size, uniqueness=uniqueness, speckle_window=speckle_window,
            speckle_range=speckle_range))
        times["stereo"] = time.perf_counter() - t0
        valid = float(np.mean([np.isfinite(d).mean() for _, d in depths]))

        t0 = time.perf_counter()
        origin, side, res_ = _volume_box(result.points, centre, radius, float(voxel_px * radius / views.K[0, 0]),
                                         volume_radius=volume_radius, volume_margin=volume_margin,
                                         max_resolution=max_resolution, pairs=used)
        voxel = side / res_
        vol = _fuse(depths, imgs, views, zr, origin, side, res_, sdf_trunc_voxels * voxel)
        times["fusion"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        pts, cols, mv, mt = _extract(vol)
        times["extract"] = time.perf_counter() - t0
    except _DenseFailure as f:
        return _dense_failed(f.reason, times, f.pairs)
    except library_errors as e:
        if isinstance(e, (NotImplementedError, RecursionError)):  # RuntimeErrors of Python itself
            raise
        return _dense_failed(f"densification failed: {type(e).__name__}: {e}", times)
    frame = "sfm"
    if alignment is not None:
        pts = alignment.apply(pts) if len(pts) else pts
        mv = alignment.apply(mv) if len(mv) else mv
        voxel *= alignment.scale
        frame = "world"
    res = DenseResult(True, "", frame, pts, cols, mv, mt, used, len(depths), valid, voxel, times)
    if len(pts) == 0:
        res.ok, res.reason = False, "TSDF fusion produced no points"
    return res


def crop_mesh(vertices: np.ndarray, triangles: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Triangles whose three vertices lie inside the box [lo, hi] (vertices not re-indexed)."""
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if len(t) == 0:
        return v, t
    inside = np.all((v >= lo) & (v <= hi), axis=1)
    return v, t[inside[t].all(axis=1)]


def evaluate_dense(dense: DenseResult, alignment: Alignment, mesh_path: str | Path, *, crop: float = 0.02,
                   n_surface: int = 100_000, **kw) -> dict[str, PointMetrics]:
    """Sparse (aligned SfM points), dense (TSDF cloud) and surface (``n_surface`` uniform samples of the
    TSDF mesh, restricted to the true mesh's bbox grown by ``crop``) against the true mesh; all clouds
    cropped to that box. ``dense`` must be in the world frame (densify with the alignment)."""
    v, t = load_mesh(mesh_path)
    out = {"sparse": evaluate_points(alignment.points, v, t, crop=crop, **kw)}
    if dense.frame != "world":
        raise ValueError("evaluate_dense needs a DenseResult in the world frame (pass the alignment to densify)")
    out["dense"] = evaluate_points(dense.points, v, t, crop=crop, **kw)
    diag = mesh_diagonal(v)
    lo, hi = v.min(axis=0) - crop * diag, v.max(axis=0) + crop * diag
    mv, mt = crop_mesh(dense.mesh_vertices, dense.mesh_triangles, lo, hi)
    if len(mt):
        area = 0.5 * np.linalg.norm(np.cross(mv[mt[:, 1]] - mv[mt[:, 0]], mv[mt[:, 2]] - mv[mt[:, 0]]), axis=1)
        mt = mt[area > 0]
    surf = sample_surface(mv, mt, n_surface, seed=1) if len(mt) else np.zeros((0, 3))
    out["surface"] = evaluate_points(surf, v, t, crop=crop, **kw)
    return out


# ------------------------------------------------------------------------------------------ per orbit

ORBIT_STAGE_VERSION = 2  # bump when the pipeline changes, so cached orbit results are recomputed
POSE_TOLERANCE = 0.05  # median camera-centre error (fraction of the diagonal) above which a model is wrong


def evaluate_orbit(orbit_dir: str | Path, work_dir: str | Path, *, force: bool = False, threads: int = 1) -> dict:
    """Everything the chapter reports for one orbit: reconstruct, align, densify, and evaluate the
    sparse cloud, the dense cloud and the surface against the true mesh.

    Cached in ``work_dir/metrics.json`` (aligned clouds in ``clouds.npz`` and the surface in
    ``surface.ply`` beside it) and loaded when current. A failed step is a result, not an exception:
    ``ok`` is False and ``reason`` says why; the sparse metrics are kept when only densification failed."""
    orbit_dir, work_dir = Path(orbit_dir), Path(work_dir)
    info = json.loads((orbit_dir / "cameras.json").read_text())["info"]
    params = {"orbit": info, "version": ORBIT_STAGE_VERSION}
    cache = work_dir / "metrics.json"
    if cache.exists() and not force:
        rec = json.loads(cache.read_text())
        if rec.get("params") == params:
            return rec
    if work_dir.exists():
        shutil.rmtree(work_dir)
    res = reconstruct(orbit_dir, work_dir / "sparse", threads=threads)
    rec = {"params": params, "orbit": info["name"], "form": info["form"], "material": info["material"],
           "views": res.n_images, "registered": res.n_registered, "ok": res.ok, "reason": res.reason,
           "reprojection_px": res.mean_reprojection_error, "times": dict(res.times), "metrics": {}}
    if res.ok:
        try:
            al = align_to_truth(res, orbit_dir / "cameras.json")
        except ValueError as e:
            rec |= {"ok": False, "reason": str(e)}
        else:
            rec |= {"centre_error_median": float(np.median(al.centre_error)),
                    "rotation_error_median_deg": float(np.median(al.rotation_error_deg)),
                    "model_dir": str(res.model_dir) if res.model_dir else None}
            if rec["centre_error_median"] > POSE_TOLERANCE:  # registered is not the same as right
                rec |= {"ok": False, "reason": f"poses disagree with the true cameras (median centre error "
                                              f"{100 * rec['centre_error_median']:.1f}% of the diagonal)"}
            dense = densify(res, orbit_dir, al)
            rec["times"] |= {f"dense_{k}": v for k, v in dense.times.items()}
            if dense.ok:
                metrics = evaluate_dense(dense, al, orbit_dir / "mesh.ply")
                _save_surface(work_dir / "surface.ply", dense.mesh_vertices, dense.mesh_triangles)
            else:
                metrics = {"sparse": evaluate_points(al.points, *load_mesh(orbit_dir / "mesh.ply"), crop=0.02)}
                rec |= {"ok": False, "reason": f"densification failed: {dense.reason}"}
            rec["metrics"] = {k: m.as_dict() for k, m in metrics.items()}
            np.savez_compressed(work_dir / "clouds.npz", sparse=al.points.astype(np.float32),
                                dense=(dense.points if dense.ok else np.zeros((0, 3))).astype(np.float32))
    atomic_write_json(cache, rec)
    return rec


def evaluate_orbits(orbit_dirs, work_dir: str | Path, *, force: bool = False, workers: int = 1,
                    progress: bool = True) -> list[dict]:
    """:func:`evaluate_orbit` of each orbit (in ``work_dir / <orbit folder name>``), in order, ``workers``
    orbits at a time in their own processes. Each reconstruction runs on one thread whatever the
    number of workers (see :func:`reconstruct`), so the records are the same for every ``workers``
    except their stage times; two workers on two cores take ~0.6x the time of one."""
    jobs = [(str(o), str(Path(work_dir) / Path(o).name), force) for o in orbit_dirs]
    # spawned: pycolmap, OpenCV and open3d keep native thread pools; one orbit at a time per process
    return map_files(_evaluate_job, jobs, workers=workers, desc="orbits", progress=progress, unit="orbit",
                     chunksize=1, start="spawn")


def _evaluate_job(job: tuple[str, str, bool]) -> dict:
    orbit_dir, work_dir, force = job
    return evaluate_orbit(orbit_dir, work_dir, force=force)


def _save_surface(path: Path, vertices: np.ndarray, triangles: np.ndarray) -> None:
    import open3d as o3d  # lazy: slow to import (native libraries); only mesh steps need it

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(vertices, np.float64)),
                                     o3d.utility.Vector3iVector(np.asarray(triangles, np.int32)))
    tmp = path.with_name(f".{path.name}.tmp.ply")
    o3d.io.write_triangle_mesh(str(tmp), mesh)
    tmp.replace(path)


def missing_orbits(orbits: list) -> str | None:
    """None when the corpus has multi-view sequences (``orbits/<name>/`` with ``cameras.json``) to
    reconstruct, else why this chapter has nothing to reconstruct."""
    if orbits:
        return None
    return ("this corpus lists no image sequences (orbits/<name>/ with true cameras and mesh): Structure from "
            "Motion and its comparison with the truth need several views of one sculpture, and an imported "
            "corpus carries single photographs only (its `orbit` column is kept as a value, the sequences "
            "are not imported)")


def metrics_table(records: list[dict]):
    """One row per orbit: registration, pose errors, and accuracy / completeness / F-score per cloud."""
    rows = []
    for r in records:
        row = {"orbit": r["orbit"], "form": r["form"], "material": r["material"],
               "registered": f"{r['registered']}/{r['views']}", "reprojection (px)": r["reprojection_px"],
               "centre error (% diag)": 100 * r.get("centre_error_median", float("nan")),
               "rotation error (°)": r.get("rotation_error_median_deg", float("nan"))}
        for cloud, m in r["metrics"].items():
            row[f"{cloud}: points"] = m["n_points"]
            row[f"{cloud}: accuracy median (% diag)"] = 100 * m["accuracy_median"]
            row[f"{cloud}: completeness median (% diag)"] = 100 * m["completeness_median"]
            for th, p, rc, f in zip(m["thresholds"], m["precision"], m["recall"], m["fscore"]):
                row[f"{cloud}: P/R/F @{100 * th:g}%"] = f"{p:.2f} / {rc:.2f} / {f:.2f}"
            row[f"{cloud}: Chamfer (% diag)"] = 100 * m["chamfer"]
        row["status"] = "ok" if r["ok"] else r["reason"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("orbit")


def summary_table(records: list[dict]):
    """Per cloud (sparse, dense, surface): medians over the orbits whose poses agree with the truth."""
    good = [r for r in records if r["ok"]]
    rows = {}
    for cloud in ("sparse", "dense", "surface"):
        ms = [r["metrics"][cloud] for r in good if cloud in r["metrics"]]
        if not ms:
            continue
        k = list(ms[0]["thresholds"]).index(0.02) if 0.02 in ms[0]["thresholds"] else -1
        rows[cloud] = {"orbits": len(ms),
                       "points (median)": float(np.median([m["n_points"] for m in ms])),
                       "accuracy median, % diag (median over orbits)":
                           100 * float(np.median([m["accuracy_median"] for m in ms])),
                       "completeness median, % diag (median over orbits)":
                           100 * float(np.median([m["completeness_median"] for m in ms])),
                       "precision @2% (median over orbits)": float(np.median([m["precision"][k] for m in ms])),
                       "recall @2% (median over orbits)": float(np.median([m["recall"][k] for m in ms])),
                       "F-score @2% (median over orbits)": float(np.median([m["fscore"][k] for m in ms]))}
    return pd.DataFrame.from_dict(rows, orient="index")


def best_orbit(records: list[dict]) -> dict | None:
    """The orbit to draw Figure 2 from: the best dense F-score among correct models, else any model."""
    good = [r for r in records if r["ok"] and "dense" in r["metrics"]]
    if good:
        return max(good, key=lambda r: r["metrics"]["dense"]["fscore"][-1])
    return next((r for r in records if r.get("model_dir")), None)

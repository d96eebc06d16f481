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

import numpy as np

DEFAULT_THRESHOLDS = (0.01, 0.02)  # fractions of the bounding-box diagonal


# --------------------------------------------------------------------------------------------- meshes

def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) float64 and triangles (M, 3) int64 of a mesh file (open3d reader)."""
    import open3d as o3d

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
    import open3d as o3d

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.asarray(triangles, dtype=np.uint32)))
    return scene.compute_distance(o3d.core.Tensor(pts)).numpy().astype(np.float64)


def nearest_distance(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from each query to its nearest neighbour in ``points`` (inf where ``points`` is empty)."""
    from scipy.spatial import cKDTree

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


def reconstruct(orbit_dir: str | Path, work_dir: str | Path, *, max_features: int = 8192, threads: int = 2,
                affine: bool = True, min_registered: float = 0.5, refine_intrinsics: bool = False,
                images: list[str] | None = None) -> SfmResult:
    """Sparse SfM of one orbit with pycolmap. ``work_dir`` is emptied and receives a copy of the images,
    ``database.db`` and ``sparse/<k>/`` models. ``affine`` turns on SIFT affine-shape estimation and
    domain-size pooling (slower extraction, but on 320x240 granite orbits it is the difference between
    10/12 and 12/12 or 19/24 and 24/24 registered views). ``images`` restricts to those file names.
    The result is ``ok`` when the largest model registers at least ``min_registered`` of the images and
    has points; otherwise ``ok=False`` with a ``reason`` (it never raises for a failed reconstruction)."""
    import pycolmap

    orbit_dir, work_dir = Path(orbit_dir), Path(work_dir)
    times: dict[str, float] = {}
    try:
        cams = load_orbit_cameras(orbit_dir / "cameras.json")
    except (OSError, KeyError, ValueError) as e:
        return _failed(f"cannot read cameras.json: {e}", 0, times)
    names = sorted(cams) if images is None else sorted(images)
    n = len(names)
    missing = [nm for nm in names if nm not in cams or not (orbit_dir / "images" / nm).is_file()]
    if missing:
        return _failed(f"images without a file or a true camera: {missing[:5]}", n, times)
    if n < 2:
        return _failed(f"{n} image(s): SfM needs at least 2", n, times)
    K = cams[names[0]]["K"]
    if any(not np.allclose(cams[nm]["K"], K) for nm in names):
        return _failed("views have different intrinsics; a single shared camera is assumed", n, times)

    if work_dir.exists():
        shutil.rmtree(work_dir)
    img_dir, out_dir = work_dir / "images", work_dir / "sparse"
    img_dir.mkdir(parents=True)
    out_dir.mkdir()
    for nm in names:
        shutil.copy2(orbit_dir / "images" / nm, img_dir / nm)
    db = work_dir / "database.db"

    try:
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
        mo.num_threads = threads
        pycolmap.match_exhaustive(db, matching_options=mo, device=pycolmap.Device.cpu)
        times["matching"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        po = pycolmap.IncrementalPipelineOptions()
        po.num_threads = threads
        po.ba_refine_focal_length = refine_intrinsics
        po.ba_refine_principal_point = False
        po.ba_refine_extra_params = False
        recs = pycolmap.incremental_mapping(db, img_dir, out_dir, options=po)
        times["mapping"] = time.perf_counter() - t0
    except Exception as e:  # pycolmap raises RuntimeError / ValueError on degenerate input
        return _failed(f"pycolmap failed: {type(e).__name__}: {e}", n, times)

    if not recs:
        return _failed("no initial image pair found: no model was reconstructed", n, times)
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

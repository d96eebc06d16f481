"""Tests of hzlib.corpus.render on hand-built steles (no dependency on the mesh module)."""
from __future__ import annotations

import json

import numpy as np
import pytest

o3d = pytest.importorskip("open3d")
m3 = pytest.importorskip("manifold3d")

from hzlib.corpus import render as R  # noqa: E402
from hzlib.corpus.types import Glyph, Sculpture  # noqa: E402

# stele: x in [-0.4, 0.4], y in [0, 0.2] (front face at y = 0, facing -y), z in [0.12, 1.32] on a
# plinth x in [-0.5, 0.5], y in [-0.1, 0.3], z in [0, 0.12]; a raised, deliberately asymmetric
# cross of depth 0.04 on the front: glyph box u, v in [0, 1] over x in [X0, X1], z in [Z0, Z1];
# stroke 1 (horizontal) u in [0, 0.8], v in [0.5, 0.75]; stroke 2 (vertical) u in [0.375, 0.625].
X0, X1, Z0, Z1, RELIEF = -0.25, 0.25, 0.45, 0.95, 0.04
BAR = 0.125  # bar width
HX1 = X0 + 0.8 * (X1 - X0)  # right end of the horizontal bar
HZ0, HZ1 = Z0 + 0.5 * (Z1 - Z0), Z0 + 0.75 * (Z1 - Z0)


def _box(x0, x1, y0, y1, z0, z1):
    return m3.Manifold.cube([x1 - x0, y1 - y0, z1 - z0]).translate([x0, y0, z0])


def make_stele(R_=64, cross=True) -> Sculpture:
    solid = _box(-0.4, 0.4, 0.0, 0.2, 0.12, 1.32) + _box(-0.5, 0.5, -0.1, 0.3, 0.0, 0.12)
    hbar = _box(X0, HX1, -RELIEF, 0.0, HZ0, HZ1)
    vbar = _box(-BAR / 2, BAR / 2, -RELIEF, 0.0, Z0, Z1)
    solid = solid + hbar + vbar
    mesh = solid.to_mesh()
    V = np.asarray(mesh.vert_properties)[:, :3].astype(np.float32)
    F = np.asarray(mesh.tri_verts).astype(np.int32)
    ras = np.zeros((R_, R_), np.int16)
    a, b = int(R_ * 0.375), int(R_ * 0.625)
    ras[:, a:b] = 2  # vertical bar: u in [0.375, 0.625]
    ras[int(R_ * 0.25):int(R_ * 0.5), :int(R_ * 0.8)] = 1  # row 0 is v = 1: v in [0.5, 0.75]
    g = Glyph(char="十", style="test", contours=[])
    return Sculpture(V, F, "relief", g, (X0, X1, -RELIEF, 0.0, Z0, Z1), ras)


@pytest.fixture(scope="module")
def stele():
    return make_stele()


@pytest.fixture(scope="module")
def renderer(stele):
    return R.Renderer(stele, threads=1)


def _frontal(W=128, H=128, dist=2.6):
    zc = (Z0 + Z1) / 2
    return R.look_at_camera((0.0, -dist, zc), (0.0, 0.0, zc), fov_deg=30, width=W, height=H)


def _project(cam, P):
    P = np.atleast_2d(P)
    Xc = (cam.world_to_cam[:3, :3] @ P.T).T + cam.world_to_cam[:3, 3]
    uv = (cam.K @ Xc.T).T
    return uv[:, :2] / uv[:, 2:3], Xc[:, 2]


def _dilate(m, k=1):
    out = m.copy()
    for _ in range(k):
        o = out.copy()
        o[1:] |= out[:-1]
        o[:-1] |= out[1:]
        o[:, 1:] |= out[:, :-1]
        o[:, :-1] |= out[:, 1:]
        o[1:, 1:] |= out[:-1, :-1]
        o[:-1, :-1] |= out[1:, 1:]
        o[1:, :-1] |= out[:-1, 1:]
        o[:-1, 1:] |= out[1:, :-1]
        out = o
    return out


# ---------------------------------------------------------------------------------------------
def test_look_roundtrip_and_validation():
    look = R.Look(material="bronze", setting="temple", glyph_paint="gold", tint=(1.0, 0.9, 0.8), seed=7)
    d = look.to_dict()
    assert R.Look.from_dict(d) == look
    assert R.Look.from_dict(json.loads(json.dumps(d))) == look
    with pytest.raises(ValueError):
        R.Look(material="plastic")
    with pytest.raises(ValueError):
        R.Look(setting="moon")
    with pytest.raises(ValueError):
        R.Look(glyph_paint="purple")
    for m in ("granite", "marble", "sandstone", "bronze", "wood", "steel", "ceramic", "jade"):
        assert m in R.MATERIALS
    for s in ("museum", "courtyard", "garden", "plaza", "mountain", "temple"):
        assert s in R.SETTINGS


def test_deterministic_and_seeded(stele, renderer):
    cam = R.look_at_camera((0.8, -2.4, 1.0), (0, 0, 0.65), fov_deg=40, width=96, height=96)
    look = R.Look(material="granite", setting="courtyard", seed=5, noise_sigma=0.02)
    a = renderer.render(cam, look)
    b = R.Renderer(stele, threads=0).render(cam, look)  # a fresh scene, other thread count
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.depth, b.depth)
    assert np.array_equal(a.stroke_mask, b.stroke_mask)
    c = renderer.render(cam, R.Look(material="granite", setting="courtyard", seed=6, noise_sigma=0.02))
    assert not np.array_equal(a.image, c.image)
    # the texture itself depends on the seed (not only the sensor noise)
    a0 = renderer.render(cam, R.Look(material="granite", seed=5, noise_sigma=0.0))
    c0 = renderer.render(cam, R.Look(material="granite", seed=6, noise_sigma=0.0))
    obj = a0.object_mask
    assert np.abs(a0.image[obj].astype(int) - c0.image[obj].astype(int)).mean() > 1.0


def test_glyph_mask_matches_raised_block(renderer):
    cam = _frontal(256, 256)  # ~5 mm per pixel: the 2-texel dilation (16 mm) would show
    out = renderer.render(cam, R.Look(setting="plaza", noise_sigma=0.0))
    o, d = R.camera_rays(cam)
    # depth of the stele's front face plane y = 0 along each ray
    plane = ((0.0 - o[1]) / d[:, 1].astype(np.float64)).reshape(cam.height, cam.width)
    hit_z = o[2] + d[:, 2].reshape(cam.height, cam.width) * np.where(out.object_mask, out.depth, 0)
    raised = out.object_mask & (out.depth < plane - 1e-3) & (hit_z > 0.2)  # in front of the face, not plinth
    assert raised.sum() > 500
    gm = out.glyph_mask
    border = _dilate(raised, 1) & _dilate(~raised, 1)  # within one pixel of the edge
    diff = gm ^ raised
    assert not np.any(diff & ~border), f"{int((diff & ~border).sum())} pixels disagree away from edges"
    assert diff.sum() < 0.15 * raised.sum()
    # masks are consistent
    assert not np.any(gm & ~out.object_mask)
    assert np.array_equal(out.stroke_mask != 0, gm)
    assert out.stroke_mask.dtype == np.int16 and out.depth.dtype == np.float32
    # stroke ids where expected: arms of the horizontal bar = 1, the vertical bar = 2
    hz = (HZ0 + HZ1) / 2
    pts = np.array([[X0 + 0.05, -RELIEF, hz], [HX1 - 0.03, -RELIEF, hz], [0.0, -RELIEF, Z1 - 0.05],
                    [0.0, -RELIEF, Z0 + 0.05], [0.0, -RELIEF, hz]])
    uv, _ = _project(cam, pts)
    ids = [int(out.stroke_mask[int(v), int(u)]) for u, v in uv]
    assert ids == [1, 1, 2, 2, 1]
    # on the flat stele face next to the glyph (mirror images of the arms): object, not glyph
    for P in ([X1 - 0.03, 0.0, hz], [X0 + 0.05, 0.0, Z0 + Z1 - hz]):
        uv, _ = _project(cam, [P])
        u, v = (int(x) for x in uv[0])
        assert out.object_mask[v, u] and not gm[v, u] and out.stroke_mask[v, u] == 0
    # background: the top rows see the sky (plaza has no wall), depth inf; hits are finite
    assert np.all(np.isinf(out.depth[0])) and not np.any(out.object_mask[0])
    assert np.all(np.isfinite(out.depth[out.object_mask]))


def test_glyph_side_walls_count(renderer):
    # an oblique view sees the side walls of the raised cross: they belong to the glyph
    cam = R.look_at_camera((1.6, -1.6, 0.7), (0.0, 0.0, 0.7), fov_deg=30, width=160, height=160)
    out = renderer.render(cam, R.Look(setting="plaza", noise_sigma=0.0))
    # a point on the +x end wall of the horizontal bar (x = HX1, facing +x), mid-depth
    uv, _ = _project(cam, [[HX1, -RELIEF / 2, (HZ0 + HZ1) / 2]])
    u, v = (int(x) for x in uv[0])
    assert out.glyph_mask[v, u] and out.stroke_mask[v, u] == 1


def test_camera_pixel_centre_convention(renderer):
    cam = R.look_at_camera((0.9, -2.8, 1.6), (0.05, 0.0, 0.66), fov_deg=40, width=120, height=90)
    out = renderer.render(cam, R.Look(noise_sigma=0.0))
    o, d = R.camera_rays(cam)
    H, W = cam.height, cam.width
    # our rays equal open3d's create_rays_pinhole (which casts through pixel centres)
    rays = o3d.t.geometry.RaycastingScene.create_rays_pinhole(
        o3d.core.Tensor(cam.K), o3d.core.Tensor(cam.world_to_cam), W, H).numpy().reshape(-1, 6)
    dn = rays[:, 3:] / np.linalg.norm(rays[:, 3:], axis=1, keepdims=True)
    assert np.allclose(rays[:, :3], o, atol=1e-5)
    assert np.allclose(dn, d, atol=1e-5)
    # a hit point re-projects to the centre of its pixel
    ys, xs = np.nonzero(out.object_mask)
    for k in range(0, len(ys), max(1, len(ys) // 25)):
        i, j = ys[k], xs[k]
        P = o + d[i * W + j].astype(np.float64) * out.depth[i, j]
        uv, z = _project(cam, P)
        assert z[0] > 0
        assert np.allclose(uv[0], (j + 0.5, i + 0.5), atol=2e-3)
    # the stele's top front-left corner projects onto the object's silhouette
    uv, _ = _project(cam, [[-0.4, 0.0, 1.32]])
    u, v = uv[0]
    iu, iv = int(np.floor(u)), int(np.floor(v))
    win = out.object_mask[iv - 1:iv + 2, iu - 1:iu + 2]
    assert win.any() and not win.all()


def test_orbit_cameras_look_at_target(stele):
    cams = R.orbit_cameras(stele, 12, elevations=(10, 30, 50), width=100, height=80)
    assert len(cams) == 12
    lo, hi = stele.bounds
    tgt = (lo + hi) / 2
    dists = []
    for c in cams:
        uv, z = _project(c, tgt)
        assert z[0] > 0
        assert np.allclose(uv[0], (50, 40), atol=1e-6)
        R_ = c.world_to_cam[:3, :3]
        assert np.allclose(R_ @ R_.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R_), 1.0)
        # image "up" (-y_cam) points upwards in the world
        assert (-R_[1]) @ np.array([0, 0, 1.0]) > 0
        dists.append(np.linalg.norm(c.centre - tgt))
    assert np.allclose(dists, dists[0])
    # the whole bounding sphere is in view at the default distance
    radius = np.linalg.norm(hi - lo) / 2
    assert dists[0] * np.sin(np.arctan(40 / cams[0].K[0, 0])) > radius
    elev = sorted({round(float(np.degrees(np.arcsin((c.centre - tgt)[2] / dists[0]))), 6) for c in cams})
    assert np.allclose(elev, [10, 30, 50])
    # frontal camera at azimuth 0 sits in front (negative y)
    assert cams[0].centre[1] < tgt[1]


def test_texture_consistent_across_views(renderer):
    # the same surface points seen from two directions get (nearly) the same colour under a
    # view-independent (matte, no sensor noise, no vignette or blur) rendering
    look = R.Look(material="sandstone", setting="plaza", weathering=0.5, noise_sigma=0.0, vignette=0.0,
                  blur=0.0, seed=11)
    zc = 0.75
    cam_a = R.look_at_camera((-0.6, -2.5, zc), (0.0, 0.0, zc), fov_deg=30, width=160, height=160)
    cam_b = R.look_at_camera((0.9, -2.4, zc + 0.3), (0.0, 0.0, zc), fov_deg=30, width=160, height=160)
    a = renderer.render(cam_a, look)
    b = renderer.render(cam_b, look)
    rng = np.random.default_rng(0)
    # points on the stele's front face (y = 0), away from the cross
    P = np.stack([rng.uniform(-0.38, -0.27, 60), np.zeros(60), rng.uniform(0.2, 1.3, 60)], 1)
    P = np.concatenate([P, P * [-1, 1, 1]])

    def colours(out, cam):
        uv, _ = _project(cam, P)
        ij = np.floor(uv).astype(int)
        assert out.object_mask[ij[:, 1], ij[:, 0]].all()
        return out.image[ij[:, 1], ij[:, 0]].astype(float)

    ca, cb = colours(a, cam_a), colours(b, cam_b)
    same = np.abs(ca - cb).mean()
    shuffled = np.abs(ca - cb[rng.permutation(len(cb))]).mean()
    assert same < 6.0, same
    assert shuffled > 1.5 * same
    # and the albedo function is a function of the world point only
    n = np.tile([0.0, -1.0, 0.0], (len(P), 1))
    k1 = renderer.albedo(P, n, look)
    k2 = renderer.albedo(P, n, look)
    assert np.array_equal(k1, k2) and k1.shape == (len(P), 3)
    assert np.all((k1 >= 0) & (k1 <= 1))


def test_all_materials_and_settings(renderer):
    cam = R.look_at_camera((0.8, -2.4, 1.0), (0, 0, 0.65), fov_deg=40, width=64, height=64)
    means = {}
    for setting in R.SETTINGS:
        for mat in R.MATERIALS:
            out = renderer.render(cam, R.Look(material=mat, setting=setting, weathering=0.4, seed=2))
            assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
            assert out.object_mask.sum() > 300
            assert np.isfinite(out.depth[out.object_mask]).all()
            if setting == "courtyard":
                means[mat] = out.image[out.object_mask].astype(float).mean(0)
            assert out.image.std() > 5  # not a flat image
    # distinct materials give visibly distinct mean colours
    names = list(means)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            dist = np.linalg.norm(means[names[i]] - means[names[j]])
            assert dist > 6.0, (names[i], names[j], dist)


def test_no_nan_extreme_looks(renderer):
    cam = R.look_at_camera((0.5, -2.0, 0.3), (0, 0, 0.65), fov_deg=60, width=48, height=48)
    for look in (
        R.Look(material="steel", elevation=89.0, sun_intensity=3.0, exposure=3.0, fog=1.0, warmth=1.0),
        R.Look(material="jade", elevation=-10.0, ambient=0.0, exposure=0.2, warmth=-1.0, weathering=1.0),
        R.Look(material="bronze", glyph_paint="gold", weathering=1.0, setting="museum", noise_sigma=0.1),
    ):
        hdr_out = renderer.render(cam, look)
        assert hdr_out.image.min() >= 0 and hdr_out.image.max() <= 255
        assert not np.any(np.isnan(hdr_out.depth[hdr_out.object_mask]))


def test_glyph_paint_and_shadows(renderer):
    cam = _frontal(96, 96)
    base = R.Look(material="granite", setting="plaza", noise_sigma=0.0, weathering=0.0, azimuth=20, elevation=35)
    plain = renderer.render(cam, base)
    red = renderer.render(cam, R.Look(**{**base.to_dict(), "glyph_paint": "red"}))
    g = plain.glyph_mask
    rp, rr = plain.image[g].astype(float).mean(0), red.image[g].astype(float).mean(0)
    assert rr[0] - rr[1] > 40 and abs(rp[0] - rp[1]) < 15  # the glyph turns red
    off = plain.object_mask & ~_dilate(g, 2)
    assert np.abs(plain.image[off].astype(int) - red.image[off].astype(int)).max() <= 1
    # hard shadows: the stele shades the ground behind it when lit from behind
    back = R.Look(**{**base.to_dict(), "azimuth": 180.0, "elevation": 30.0})
    cam2 = R.look_at_camera((1.5, -2.5, 1.2), (0, 0.5, 0.3), fov_deg=50, width=96, height=96)
    with_s = renderer.render(cam2, back, shadows=True)
    without = renderer.render(cam2, back, shadows=False)
    grd = ~with_s.object_mask & np.isfinite(with_s.depth)
    darker = (without.image.astype(int).sum(2) - with_s.image.astype(int).sum(2))[grd]
    assert (darker > 30).sum() > 50  # a shadow region appears on the ground


def test_corner_normals_keep_creases_and_smooth_curves():
    box = o3d.geometry.TriangleMesh.create_box()
    V = np.asarray(box.vertices, np.float32)
    F = np.asarray(box.triangles, np.int32)
    cn = R._corner_normals(V, F)
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)
    assert np.allclose(cn, fn[:, None, :], atol=1e-6)
    cyl = o3d.geometry.TriangleMesh.create_cylinder(radius=1.0, height=1.0, resolution=48, split=1)
    V = np.asarray(cyl.vertices, np.float32)
    F = np.asarray(cyl.triangles, np.int32)
    cn = R._corner_normals(V, F)
    P = V[F]  # (M, 3, 3)
    side = np.abs(np.cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0])[:, 2]) < 1e-6
    radial = P[side].copy()
    radial[..., 2] = 0
    radial /= np.linalg.norm(radial, axis=-1, keepdims=True)
    assert np.allclose(cn[side], radial, atol=1e-3)  # smooth: vertex normals are radial


def test_render_convenience_and_speed_smoke(stele):
    cam = _frontal(32, 24)
    out = R.render(stele, cam, R.Look())
    assert out.image.shape == (24, 32, 3)
    assert out.glyph_mask.shape == out.object_mask.shape == out.depth.shape == out.stroke_mask.shape == (24, 32)


# ---------------------------------------------------------------------------------------------
# fast paths: equal (or close) to the straightforward computations they replace
def test_noise_channel_subsets_are_exact():
    q = np.random.default_rng(3).uniform(-5, 5, (500, 3)).astype(np.float32)
    full = R.noise(q)
    assert full.shape == (500, 4) and full.dtype == np.float32
    assert np.array_equal(R.noise(q, ch=2), full[:, 2])
    assert np.array_equal(R.noise(q, ch=(0, 3)), full[:, [0, 3]])
    assert np.array_equal(R.noise(q, ch=(1, 2, 3)), full[:, 1:])
    # periodic: 8 noise units
    assert np.allclose(R.noise(q + 8.0), full, atol=1e-4)


def test_fbm_footprint_fade_matches_direct_sum():
    rng = np.random.default_rng(4)
    p = rng.uniform(-1, 1, (3000, 3)).astype(np.float32)
    foot = np.exp(rng.uniform(np.log(1e-3), np.log(0.3), 3000)).astype(np.float32)
    scale, octaves, gain, lac, rot = 0.4, 4, 0.55, 2.03, 5
    # the definition: every octave everywhere, weighted by its fade, normalised over all octaves
    acc = np.zeros((3000, 4))
    amp, norm, s = 1.0, 0.0, scale
    for o in range(octaves):
        w = np.clip(s / (1.5 * foot.astype(np.float64)) - 1.0, 0, 1)[:, None]
        acc += amp * w * R.noise(p @ (R._OCT_ROT[(o + rot) % 12] / np.float32(s)))
        norm += amp * amp
        amp *= gain
        s /= lac
    ref = acc / np.sqrt(norm)
    out = R.fbm(p, scale, octaves, foot, gain=gain, lacunarity=lac, rot=rot)
    assert out.shape == (3000, 4)
    assert np.allclose(out, ref, atol=2e-5)
    assert np.array_equal(R.fbm(p, scale, octaves, foot, gain=gain, lacunarity=lac, rot=rot, ch=1), out[:, 1])
    # without a footprint all octaves count
    assert np.allclose(R.fbm(p, 0.5, 2), R.fbm(p, 0.5, 2, np.full(3000, 1e-6, np.float32)), atol=1e-6)


def test_dilated_lookup_matches_full_dilation():
    rng = np.random.default_rng(5)
    for shape, steps in (((40, 50), 2), ((7, 9), 1), ((30, 30), 3)):
        r = np.zeros(shape, np.int16)
        m = rng.random(shape) < 0.05
        r[m] = rng.integers(1, 9, m.sum())
        r[rng.integers(0, shape[0], 20), rng.integers(0, shape[1], 20)] = rng.integers(1, 9, 20)
        full = R._dilate_ids(r, steps)
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
        got = R._dilated_at(r, yy.ravel(), xx.ravel(), steps).reshape(shape)
        assert np.array_equal(got, full)


def test_wrapped_noise_window():
    tile = np.random.default_rng(6).random((3, 16, 16)).astype(np.float32)
    for oy, ox, H, W in ((0, 0, 16, 16), (5, 11, 9, 7), (15, 15, 16, 16), (3, 9, 20, 40)):
        ref = tile.take(np.arange(oy, oy + H), axis=1, mode="wrap").take(np.arange(ox, ox + W), axis=2, mode="wrap")
        assert np.array_equal(R._wrapped_window(tile, oy, ox, H, W), ref)


def _corner_normals_reference(V, F, crease_deg=35.0):
    V = V.astype(np.float64)
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    fu = fn / np.linalg.norm(fn, axis=1, keepdims=True)
    out = np.zeros((len(F), 3, 3))
    faces_at = {}
    for f, tri in enumerate(F):
        for k, v in enumerate(tri):
            a, b = V[tri[(k + 1) % 3]] - V[v], V[tri[(k + 2) % 3]] - V[v]
            ang = np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
            faces_at.setdefault(int(v), []).append((f, ang))
    cosc = np.cos(np.radians(crease_deg))
    for f, tri in enumerate(F):
        for k, v in enumerate(tri):
            n = sum(fu[g] * w for g, w in faces_at[int(v)] if fu[g] @ fu[f] >= cosc)
            out[f, k] = n / np.linalg.norm(n)
    return out


def test_corner_normals_match_reference():
    for mesh in (o3d.geometry.TriangleMesh.create_box(),
                 o3d.geometry.TriangleMesh.create_cylinder(radius=1.0, height=1.0, resolution=80, split=2),
                 o3d.geometry.TriangleMesh.create_cone(radius=1.0, height=0.4, resolution=90)):  # fans > 64
        V = np.asarray(mesh.vertices, np.float32)
        F = np.asarray(mesh.triangles, np.int32)
        assert np.allclose(R._corner_normals(V, F), _corner_normals_reference(V, F), atol=1e-5)


def test_ao_checkerboard_close_to_full(stele):
    cam = R.look_at_camera((0.9, -2.2, 1.1), (0, 0, 0.6), fov_deg=40, width=128, height=128)
    look = R.Look(material="granite", setting="courtyard", seed=3, noise_sigma=0.0)
    half = R.Renderer(stele, threads=1)
    full = R.Renderer(stele, threads=1, ao_checkerboard=False)
    a, b = half.render(cam, look), full.render(cam, look)
    assert np.array_equal(a.depth, b.depth) and np.array_equal(a.stroke_mask, b.stroke_mask)
    d = np.abs(a.image.astype(int) - b.image.astype(int))
    assert d.mean() < 0.5 and np.percentile(d, 99.5) <= 12
    assert np.array_equal(half.render(cam, look).image, a.image)  # deterministic
    off = R.Renderer(stele, threads=1, ao_samples=0).render(cam, look)  # and occlusion does something
    assert np.abs(off.image.astype(int) - a.image.astype(int))[a.object_mask].mean() > 0.3

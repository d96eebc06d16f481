"""Mesh and image-plane geometry, pure numpy (no ray casting).

`_corner_normals`: per-corner shading normals with sharp creases; `_dilate_ids` / `_dilated_at`:
glyph-raster dilation (so a glyph's side walls count as glyph); `_ao_dirs`, `_frame`, `_NB4`: the
direction set, tangent frames and pixel neighbours of ambient occlusion.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .maths import F32, _normalize


def _corner_normals(V: np.ndarray, F: np.ndarray, crease_deg: float = 35.0) -> np.ndarray:
    """Per (triangle, corner) normals: angle-weighted average over the faces at that vertex whose
    normal is within `crease_deg` of this face's (sharp edges stay sharp). (M, 3, 3) float32."""
    V = np.asarray(V, dtype=np.float64)
    F = np.asarray(F, dtype=np.int64)
    M = len(F)
    if M == 0:
        return np.zeros((0, 3, 3), np.float32)
    fu, wcorner = _face_normals_and_angles(V, F)
    vid = F.ravel()
    order = np.argsort(vid, kind="stable")  # corners grouped by vertex
    sv = vid.take(order)
    first = np.empty(len(sv), bool)
    first[0] = True
    np.not_equal(sv[1:], sv[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    sizes = np.diff(starts, append=len(sv))
    gstart = np.repeat(starts, sizes)  # per sorted corner: its group's first sorted corner
    gsize = np.repeat(sizes, sizes)
    # (3, 3M) face normal per sorted corner (float32: half the memory traffic)
    fus = np.ascontiguousarray(fu.take(order // 3, axis=0).T, dtype=np.float32)
    ws = wcorner.take(order)
    wfu = fus * ws.astype(np.float32)  # weighted normals
    cosc = math.cos(math.radians(crease_deg))
    # smooth vertices (every face normal within crease/2 of the mean, so every pair within the
    # crease angle): all their corners get the weighted sum of the whole group
    gsum = np.add.reduceat(wfu, starts, axis=1)  # (3, G)
    gdir = np.add.reduceat(fus, starts, axis=1)
    gdir /= np.maximum(np.sqrt(np.einsum("ij,ij->j", gdir, gdir)), 1e-30)
    gid = np.repeat(np.arange(len(starts)), sizes)
    cos_mean = np.einsum("ij,ij->j", fus, gdir.take(gid, axis=1))
    smooth = np.minimum.reduceat(cos_mean, starts) >= math.cos(math.radians(crease_deg / 2))
    out_s = gsum.take(gid, axis=1)
    # the other corners, of groups of up to 64, by decreasing group size: for partner slot j, the
    # corners whose group has more than j corners are a prefix
    sel = np.flatnonzero((gsize <= 64) & ~smooth.take(gid))
    sel = sel.take(np.argsort(-gsize.take(sel), kind="stable"))
    if len(sel):
        out_s[:, sel] = _crease_sums(sel, gstart, gsize, fus, wfu, cosc)
    for g in np.flatnonzero((sizes > 64) & ~smooth):  # big fans: one matrix each
        s, z = starts[g], sizes[g]
        f = fus[:, s:s + z]
        ok = (f.T @ f) >= cosc
        out_s[:, s:s + z] = (ok.astype(np.float64) @ wfu[:, s:s + z].T).T
    out = np.empty((3 * M, 3))
    out[order] = out_s.T
    nrm = np.sqrt(np.einsum("ij,ij->i", out, out))
    out /= np.maximum(nrm, 1e-30)[:, None]
    bad = ~(nrm >= 1e-30)  # (NaN too)
    if np.any(bad):
        out[bad] = np.repeat(fu, 3, axis=0)[bad]
    return out.reshape(M, 3, 3).astype(np.float32)


def _face_normals_and_angles(V: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals (M, 3) and the interior angle of each corner (3M,), in corner order (the
    weight of its face in the vertex normal), of triangles F (M, 3) on vertices V, float64."""
    M = len(F)
    P = V.take(F, axis=0)  # (M, 3 corners, 3)
    e1 = P.take([1, 2, 0], axis=1) - P  # corner k: edges to the next two corners
    e2 = P.take([2, 0, 1], axis=1) - P
    a, b = e1[:, 0], e2[:, 0]
    fn = np.empty((M, 3))
    fn[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    fn[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    fn[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    area = np.sqrt(np.einsum("ij,ij->i", fn, fn))
    fu = fn / np.maximum(area, 1e-30)[:, None]
    l1 = np.sqrt(np.einsum("mki,mki->mk", e1, e1))
    l2 = np.sqrt(np.einsum("mki,mki->mk", e2, e2))
    cosang = np.einsum("mki,mki->mk", e1, e2) / np.maximum(l1 * l2, 1e-30)
    wcorner = np.arccos(np.clip(cosang, -1.0, 1.0)).ravel()  # (3M,) in corner order
    return fu, wcorner


def _crease_sums(sel, gstart, gsize, fus, wfu, cosc) -> np.ndarray:
    """Weighted normal sums (3, len(sel)) of the sorted corners `sel` (ordered by decreasing group
    size, groups of up to 64): over the corners of the same vertex (group first corner `gstart`,
    size `gsize`) whose face normal `fus` is within the crease (cosine `cosc`) of the corner's own;
    weighted normals `wfu`. For partner slot j, the corners whose group has more than j corners are
    a prefix of `sel`."""
    gs, gz = gstart.take(sel), gsize.take(sel)
    f_self = fus.take(sel, axis=1)
    acc = np.zeros((3, len(sel)), np.float32)
    counts = np.bincount(gz)  # corners per group size
    n_j = len(sel) - np.cumsum(counts)  # corners with group size > j
    # reused buffers: fresh temporaries cost page faults
    buf1, buf2 = np.empty(3 * len(sel), np.float32), np.empty(3 * len(sel), np.float32)
    for j in range(int(gz[0])):
        n = int(n_j[j]) if j < len(n_j) else 0
        if n == 0:
            break
        part = gs[:n] + j
        fp = fus.take(part, axis=1, out=buf1[:3 * n].reshape(3, n), mode="clip")
        ok = (np.einsum("ij,ij->j", f_self[:, :n], fp) >= cosc).astype(np.float32)
        wp = wfu.take(part, axis=1, out=buf2[:3 * n].reshape(3, n), mode="clip")
        wp *= ok
        acc[:, :n] += wp
    return acc


def _dilate_ids(r: np.ndarray, steps: int) -> np.ndarray:
    """Grow nonzero ids of a raster into zero texels, `steps` 8-neighbour steps."""
    r = r.copy()
    offs = [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)]
    for _ in range(steps):
        new = r.copy()
        for dy, dx in offs:
            sh = np.zeros_like(r)
            H, W = r.shape
            ys = slice(max(dy, 0), H + min(dy, 0))
            yd = slice(max(-dy, 0), H + min(-dy, 0))
            xs = slice(max(dx, 0), W + min(dx, 0))
            xd = slice(max(-dx, 0), W + min(-dx, 0))
            sh[yd, xd] = r[ys, xs]
            fill = (new == 0) & (sh != 0)
            new[fill] = sh[fill]
        r = new
    return r


_DILATE_OFFSETS = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


def _dilated_at(r: np.ndarray, rows: np.ndarray, cols: np.ndarray, steps: int) -> np.ndarray:
    """`_dilate_ids(r, steps)[rows, cols]`, computed only at those texels (all inside r), from
    their (2 steps + 1)^2 neighbourhoods."""
    v = r[rows, cols]
    todo = np.flatnonzero(v == 0)  # nonzero texels keep their id
    if steps <= 0 or len(todo) == 0:
        return v
    s = int(steps)
    H, W = r.shape
    rp = np.pad(r, s).ravel()  # outside the raster: 0
    base = (rows[todo] + s) * (W + 2 * s) + (cols[todo] + s)
    cur = {(a, b): rp.take(base + a * (W + 2 * s) + b) for a in range(-s, s + 1) for b in range(-s, s + 1)}
    for level in range(1, s + 1):
        rad = s - level
        new = {}
        for a in range(-rad, rad + 1):
            for b in range(-rad, rad + 1):
                x = cur[(a, b)]
                for dy, dx in _DILATE_OFFSETS:
                    x = np.where(x == 0, cur[(a + dy, b + dx)], x)
                new[(a, b)] = x
        cur = new
    v[todo] = cur[(0, 0)]
    return v


@lru_cache(maxsize=16)
def _ao_dirs(k: int) -> np.ndarray:
    """k cosine-weighted directions in the local hemisphere (z = normal), a Fibonacci spiral."""
    i = np.arange(k) + 0.5
    r = np.sqrt(i / k)
    phi = i * math.pi * (3 - math.sqrt(5))
    out = np.stack([r * np.cos(phi), r * np.sin(phi), np.sqrt(1 - r * r)], 1).astype(F32)
    out.flags.writeable = False
    return out


_NB4 = np.array([[1, -1, 0, 0], [0, 0, 1, -1]])[:, :, None]  # 4-neighbour offsets (dx, dy)


def _frame(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit tangents (3, N) orthogonal to the unit normals n (3, N)."""
    nx, ny, nz = n
    up = np.abs(nz) < F32(0.9)  # cross((0, 0, 1), n) = (-ny, nx, 0); else cross((1, 0, 0), n) = (0, -nz, ny)
    t1 = np.empty_like(n)
    t1[0] = np.where(up, -ny, F32(0))
    t1[1] = np.where(up, nx, -nz)
    t1[2] = np.where(up, F32(0), ny)
    t1 = _normalize(t1)
    t2 = np.empty_like(n)  # n x t1
    t2[0] = ny * t1[2] - nz * t1[1]
    t2[1] = nz * t1[0] - nx * t1[2]
    t2[2] = nx * t1[1] - ny * t1[0]
    return t1, t2

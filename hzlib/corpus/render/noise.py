"""Solid noise: band-limited gradient-like noise and its fractal sums (fBm), in 3D.

A periodic 64^3 x 4-channel volume is made once by filtering white noise in the Fourier domain and
sampled trilinearly on rotated coordinates; `fbm` sums rotated octaves and fades the octaves finer
than the pixel footprint (a cheap LOD against aliasing), evaluating each octave only on the points
where it does not vanish, and only the channels asked for. `noise` and `fbm` take (N, 3) points;
`_noise_at`, `_noise_vox` and `_fbm` are their component-major (3, N) forms used by the renderer.
`_coverage` is the mean coverage of thresholded noise (what a speckle fades to when unresolved).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .maths import F32, _mat3, _smoothstep

# Inside the renderer, points, normals and colours are component-major float32 arrays (3, N):
# numpy's elementwise loops are then long and contiguous (an (N, 3) layout with (N, 1) broadcasts
# runs inner loops of length 3, many times slower).
_NRES = 64  # noise volume resolution (periodic)
_NCH = 4  # independent channels per lookup
_NVOX = 8.0  # voxels per noise unit (the dominant period)


@lru_cache(maxsize=1)
def _noise_volume() -> np.ndarray:
    """Periodic band-limited noise, unit variance per channel, fixed seed: (65^3, 4) float32, the
    64^3 period padded by one wrapped layer on each axis (so x+1 needs no wrap-around)."""
    rng = np.random.default_rng(0x5EED_6A1)
    w = rng.standard_normal((_NRES, _NRES, _NRES, _NCH))
    F = np.fft.rfftn(w, axes=(0, 1, 2))
    f = np.fft.fftfreq(_NRES)
    fz = np.fft.rfftfreq(_NRES)
    r = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + fz[None, None, :] ** 2)
    f0 = 1.0 / _NVOX
    H = np.exp(-(np.log(np.maximum(r, 1e-9) / f0) ** 2) / (2 * 0.45**2))
    H[0, 0, 0] = 0.0
    vol = np.fft.irfftn(F * H[..., None], s=(_NRES,) * 3, axes=(0, 1, 2))
    vol -= vol.mean(axis=(0, 1, 2))
    vol /= vol.std(axis=(0, 1, 2))
    vol = np.pad(vol, ((0, 1), (0, 1), (0, 1), (0, 0)), mode="wrap")
    out = np.ascontiguousarray(vol.reshape(-1, _NCH).astype(F32))
    out.flags.writeable = False
    return out


def _rotations(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        out.append(q.astype(F32))
    return np.stack(out)


_OCT_ROT = _rotations(12, 7)
_ALL = tuple(range(_NCH))


def _channels(ch) -> tuple[tuple, bool]:
    """(channel tuple, squeeze) for a `ch` argument: None = all, int = one (squeezed), tuple."""
    if ch is None:
        return _ALL, False
    if np.ndim(ch) == 0:
        return (int(ch),), True
    return tuple(int(c) for c in ch), False


def _noise_vox(q: np.ndarray, ch: tuple) -> np.ndarray:
    """Noise at points q (3, N) in voxel units (noise units times _NVOX): (len(ch), N) float32.

    One channel is gathered alone (a strided lookup in the 4-channel volume); several channels are
    gathered and interpolated as whole 4-channel rows (one volume in the cache, not one per subset).
    """
    vol = _noise_volume()
    k = len(ch)
    P = _NRES + 1
    fl = np.floor(q)
    t = q - fl
    i = fl.astype(np.int32)
    i &= np.int32(_NRES - 1)
    base = i[0] * np.int32(P)
    base += i[1]
    base *= np.int32(P)
    base += i[2]
    if k == 1:
        vol = vol.reshape(-1)
        base *= np.int32(_NCH)
        if ch[0]:
            base += np.int32(ch[0])
        S = _NCH
        tx, ty, tz = t
    else:  # (N, 4) rows; contiguous (N, 4) weights (broadcasting (N, 1) over (N, 4) is slow)
        S = 1
        tx, ty, tz = (np.stack((t[j],) * _NCH, axis=1) for j in range(3))

    def lerp_z(o):
        a = vol.take(base + np.int32(o * S), axis=0)
        b = vol.take(base + np.int32((o + 1) * S), axis=0)
        b -= a
        b *= tz
        a += b
        return a

    v00 = lerp_z(0)
    v01 = lerp_z(P)
    v10 = lerp_z(P * P)
    v11 = lerp_z(P * P + P)
    v01 -= v00
    v01 *= ty
    v00 += v01
    v11 -= v10
    v11 *= ty
    v10 += v11
    v10 -= v00
    v10 *= tx
    v00 += v10
    if k == 1:
        return v00[None]
    v = v00.T
    return np.ascontiguousarray(v if ch == _ALL else v[list(ch)])


def _noise_at(p: np.ndarray, scale, ch=None) -> np.ndarray:
    """Noise at points p (3, N) times `scale` (a number or per-axis (3,)), noise units; channels as
    in `noise`: (k, N), or (N,) for an int `ch`."""
    chs, sq = _channels(ch)
    s = np.asarray(scale, F32).reshape(-1, 1) if np.ndim(scale) else F32(scale)
    q = p * s
    q *= F32(_NVOX)
    v = _noise_vox(q, chs)
    return v[0] if sq else v


def noise(q: np.ndarray, ch=None) -> np.ndarray:
    """Band-limited noise at points q (N, 3) in noise units (period ~1): (N, 4) float32, std ~0.9.

    `ch`: an int (returns (N,), that channel) or a tuple of channels (returns (N, len(ch))).
    """
    q = np.ascontiguousarray(np.asarray(q, dtype=F32).T)
    v = _noise_at(q, 1.0, ch)
    return v if v.ndim == 1 else np.ascontiguousarray(v.T)


def _fade(scale: float, foot: np.ndarray) -> np.ndarray:
    """LOD weight (N,) of features of period `scale` metres at pixel footprint `foot` (N,) metres."""
    w = F32(scale) / (F32(1.5) * foot)
    w -= F32(1.0)
    return np.clip(w, F32(0.0), F32(1.0), out=w)


def _fbm(p: np.ndarray, scale: float, octaves: int, foot=None, *, gain: float = 0.5,
         lacunarity: float = 2.03, rot: int = 0, ch=None) -> np.ndarray:
    """`fbm` on points p (3, N): (k, N), or (N,) for an int `ch`."""
    chs, sq = _channels(ch)
    N = p.shape[1]
    acc = np.zeros((len(chs), N), F32)
    # finer octaves fade out where the footprint is larger: they are evaluated on nested subsets
    # of the points, each with its own accumulator, added into its parent's at the end
    stack = []
    cur, cur_p, cur_foot = acc, p, foot
    amp, norm, s = 1.0, 0.0, float(scale)
    o = 0
    for o in range(octaves):
        norm += amp * amp
        M = np.ascontiguousarray((_OCT_ROT[(o + rot) % len(_OCT_ROT)] / F32(s)).T) * F32(_NVOX)
        w = None
        if cur_foot is not None:
            w = _fade(s, cur_foot)
            sel = np.flatnonzero(w)
            n = len(cur_foot)
            if len(sel) == 0:
                break
            if len(sel) < 0.9 * n:
                stack.append((cur, sel))
                cur_p, cur_foot, w = cur_p.take(sel, axis=1), cur_foot.take(sel), w.take(sel)
                cur = np.zeros((len(chs), len(sel)), F32)
            if w.min() == 1.0:
                w = None
        v = _noise_vox(_mat3(M, cur_p), chs)
        v *= F32(amp) if w is None else F32(amp) * w
        cur += v
        amp *= gain
        s /= lacunarity
    for _ in range(o + 1, octaves):  # normalise as if all octaves were there
        norm += amp * amp
        amp *= gain
    while stack:
        parent, sel = stack.pop()
        parent[:, sel] += cur
        cur = parent
    acc *= F32(1.0 / math.sqrt(norm))
    return acc[0] if sq else acc


def fbm(p: np.ndarray, scale: float, octaves: int, foot=None, *, gain: float = 0.5,
        lacunarity: float = 2.03, rot: int = 0, ch=None) -> np.ndarray:
    """Fractal sum of rotated noise octaves; p (N, 3) metres, coarsest period `scale` metres.

    Returns (N, 4) with std ~0.9 when all octaves are resolved; octaves finer than the pixel
    footprint `foot` (N,) fade to zero (and are only evaluated where they do not vanish). `ch`
    selects channels as in `noise`.
    """
    pt = np.ascontiguousarray(np.asarray(p, F32).T)
    v = _fbm(pt, scale, octaves, None if foot is None else np.asarray(foot, F32), gain=gain,
             lacunarity=lacunarity, rot=rot, ch=ch)
    return v if v.ndim == 1 else np.ascontiguousarray(v.T)


_COVERAGE: dict = {}


@lru_cache(maxsize=1)
def _coverage_sample() -> np.ndarray:
    """Noise at 200k random points (4, 200000), for `_coverage`."""
    q = np.random.default_rng(1).uniform(0, 8, (200000, 3)).astype(F32)
    return _noise_vox(np.ascontiguousarray(q.T) * F32(_NVOX), _ALL)


def _coverage(lo: float, hi: float) -> float:
    """Mean of smoothstep(lo, hi, noise) over all channels."""
    if (lo, hi) not in _COVERAGE:
        _COVERAGE[(lo, hi)] = float(np.mean(_smoothstep(lo, hi, _coverage_sample())))
    return _COVERAGE[(lo, hi)]

"""Small float32 helpers shared by every file of the renderer.

Inside the renderer, points, normals and colours are component-major float32 arrays (3, N): numpy's
elementwise loops are then long and contiguous (an (N, 3) layout with (N, 1) broadcasts runs inner
loops of length 3, many times slower). Here: `_mat3` (a 3x3 matrix on (3, N) points, without
BLAS), `_dot`, `_normalize`, `_mix`, `_smoothstep`, colours written in sRGB (`_lin`, `_col`) and an
integer hash (`_hash2`).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

F32 = np.float32


def _mat3(M: np.ndarray, p: np.ndarray) -> np.ndarray:
    """M (3, 3) @ p (3, N), elementwise (small products through BLAS would wake its thread pool,
    which competes with the other workers of a process pool)."""
    out = np.empty((3, p.shape[1]), np.result_type(M, p))
    for i in range(3):
        np.multiply(p[0], M[i, 0], out=out[i])
        out[i] += p[1] * M[i, 1]
        out[i] += p[2] * M[i, 2]
    return out


def _smoothstep(e0, e1, x):
    if np.ndim(x) == 0:
        t = F32(min(max((float(x) - e0) / (e1 - e0), 0.0), 1.0))
        return t * t * (F32(3.0) - F32(2.0) * t)
    t = (x - F32(e0)) * F32(1.0 / (e1 - e0))
    np.clip(t, F32(0.0), F32(1.0), out=t)
    return t * t * (F32(3.0) - F32(2.0) * t)


def _mix(a, b, t):
    """a + (b - a) * t; a, b colours (3, 1) or (3, N), t a number or (N,)."""
    return a + (b - a) * t


def _dot(a, b):
    """Dot products over the first axis (3, ...) of a and b, broadcasting the rest; b may be one
    vector (3,) or (3, 1) (taken as float32)."""
    if np.size(b) == 3:
        b = np.asarray(b, F32).ravel()
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _normalize(v):
    """Unit vectors of v (3, N)."""
    n2 = _dot(v, v)
    np.maximum(n2, F32(1e-24), out=n2)
    return v * (F32(1.0) / np.sqrt(n2))


def _srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@lru_cache(maxsize=None)
def _lin_cached(rgb: tuple) -> np.ndarray:
    c = _srgb_to_linear(rgb).astype(F32).reshape(3, 1)
    c.flags.writeable = False
    return c


def _lin(*rgb) -> np.ndarray:
    """An sRGB colour written in 0..1 → linear float32, shape (3, 1) (a column: colours are stored
    component-major, (3, N), inside the renderer)."""
    return _lin_cached(tuple(float(x) for x in rgb))


def _col(c) -> np.ndarray:
    """A colour (3,) → float32 column (3, 1)."""
    return np.asarray(c, F32).reshape(3, 1)


def _hash2(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Integer hash of two int arrays → float32 in [0, 1)."""
    h = ix.astype(np.uint32) * np.uint32(0x8DA6B343) ^ iy.astype(np.uint32) * np.uint32(0xD8163841)
    h ^= np.uint32((salt * 0xCB1AB31F) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(F32) * F32(1.0 / (1 << 24))

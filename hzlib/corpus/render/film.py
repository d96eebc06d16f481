"""From linear radiance to an 8-bit image: what the lens and the sensor do.

`finish`: exposure, an ACES-like tone curve, sRGB gamma (a lookup table), a mild vignette, a slight
lens blur (hides the stair-stepping of one ray per pixel) and Gaussian sensor noise (a window of a
fixed noise tile at a position drawn from the look's seed and the camera). `_bloom`: the halo of a
glowing (neon) glyph.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from ..types import Camera
from .cameras import _camera_key
from .look import Look
from .maths import F32


def _bloom(pixels: np.ndarray, light: np.ndarray, H: int, W: int) -> np.ndarray:
    """The light of glowing pixels (flat indices) and its halo on the lens, (3, H * W)."""
    e = np.zeros((H * W,), F32)
    e[pixels] = 1.0
    halo = gaussian_filter(e.reshape(H, W), sigma=max(1.0, W / 40.0)).reshape(-1)
    return light[:, None] * (e + F32(0.6) * halo)[None, :]


@lru_cache(maxsize=8)
def _vignette(H: int, W: int, amount: float) -> np.ndarray:
    yy = (np.arange(H, dtype=F32) + F32(0.5) - F32(H / 2)) / F32(max(H, W) / 2)
    xx = (np.arange(W, dtype=F32) + F32(0.5) - F32(W / 2)) / F32(max(H, W) / 2)
    r2 = yy[:, None] ** 2 + xx[None, :] ** 2
    out = (F32(1.0) - F32(amount) * F32(0.5) * r2).astype(F32)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """(512, 512, 3) float32 sensor noise: correlated luminance plus weaker chroma."""
    rng = np.random.default_rng(0x5E50)
    lum = rng.standard_normal((512, 512, 1), dtype=F32)
    chroma = rng.standard_normal((512, 512, 3), dtype=F32)
    return np.ascontiguousarray(F32(0.8) * lum + F32(0.45) * chroma)


def _wrapped_window(tile: np.ndarray, oy: int, ox: int, H: int, W: int) -> np.ndarray:
    """tile[:, oy:oy + H, ox:ox + W] of the periodic extension of tile (C, T, T)."""
    T = tile.shape[1]
    if H > T or W > T:
        return tile.take(np.arange(oy, oy + H), axis=1, mode="wrap").take(np.arange(ox, ox + W), axis=2, mode="wrap")
    out = np.empty((tile.shape[0], H, W), tile.dtype)
    h1, w1 = min(H, T - oy), min(W, T - ox)
    out[:, :h1, :w1] = tile[:, oy:oy + h1, ox:ox + w1]
    if w1 < W:
        out[:, :h1, w1:] = tile[:, oy:oy + h1, :W - w1]
    if h1 < H:
        out[:, h1:, :w1] = tile[:, :H - h1, ox:ox + w1]
        if w1 < W:
            out[:, h1:, w1:] = tile[:, :H - h1, :W - w1]
    return out


@lru_cache(maxsize=1)
def _noise_tile_t() -> np.ndarray:
    """`_noise_tile` as (3, 512, 512)."""
    out = np.ascontiguousarray(_noise_tile().transpose(2, 0, 1))
    out.flags.writeable = False
    return out


_LUT_N = 16384
_lut_x = np.linspace(0.0, 1.0, _LUT_N)
_SRGB_LUT = np.where(_lut_x <= 0.0031308, _lut_x * 12.92, 1.055 * _lut_x ** (1 / 2.4) - 0.055).astype(F32)


def finish(hdr: np.ndarray, look: Look, camera: Camera) -> np.ndarray:
    """Tone mapping, gamma, vignette, blur, sensor noise: (3, H, W) linear → (H, W, 3) uint8."""
    H, W = hdr.shape[1:]
    x = hdr * F32(look.exposure)
    # ACES filmic fit (Narkowicz)
    num = F32(2.51) * x
    num += F32(0.03)
    num *= x
    den = F32(2.43) * x
    den += F32(0.59)
    den *= x
    den += F32(0.14)
    num /= den
    x = np.clip(num, F32(0.0), F32(1.0), out=num)
    x *= F32(_LUT_N - 1)
    x += F32(0.5)
    x = _SRGB_LUT.take(x.astype(np.int32))
    if look.vignette > 0:
        x *= _vignette(H, W, float(look.vignette))
    if look.blur > 0:
        b = F32(min(look.blur, 1.0))
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
        bx = xp[:, :, :-2] + xp[:, :, 2:]
        bx *= F32(0.25)
        bx += xp[:, :, 1:-1] * F32(0.5)
        by = bx[:, :-2] + bx[:, 2:]
        by *= F32(0.25)
        by += bx[:, 1:-1] * F32(0.5)
        by -= x
        by *= b
        x += by
    if look.noise_sigma > 0:
        # a window of a fixed noise tile at a position drawn from (seed, camera): cheap and
        # different in every view
        tile = _noise_tile_t()
        T = tile.shape[1]
        rng = np.random.default_rng([int(look.seed) & 0xFFFFFFFF, _camera_key(camera)])
        oy, ox = (int(v) for v in rng.integers(0, T, 2))
        nz = _wrapped_window(tile, oy, ox, H, W)
        sig = np.clip(x, F32(0), F32(1))
        np.sqrt(sig, out=sig)
        sig *= F32(0.7) * F32(look.noise_sigma)
        sig += F32(look.noise_sigma) * F32(0.5)
        sig *= nz
        x += sig
    x *= F32(255.0)
    x += F32(0.5)
    np.clip(x, F32(0), F32(255), out=x)
    return np.ascontiguousarray(x.astype(np.uint8).transpose(1, 2, 0))

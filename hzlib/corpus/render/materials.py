"""Solid materials and glyph paints: (points, normals, footprint, cavity, look) → surface parameters.

Materials are SOLID textures: functions of the 3D hit point in object (= world) coordinates, placed
by the look's seed, so every view of a sculpture sees the same texture (needed for
Structure-from-Motion). Each `_mat_*` function gets a `_Ctx` (points, normals, pixel footprint,
ambient-occlusion openness, look) and returns a `Surface` (diffuse albedo, specular reflectance,
gloss, wrap, bump, translucency); weathering (dirt, streaks, lichen, patina) is part of the
material. `surface_at` is the entry point; `paint_glyph` paints the glyph's strokes (worn by
weathering; neon glows, ochre adds a dot painting).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .look import Look
from .maths import F32, _col, _dot, _hash2, _lin, _mat3, _mix, _smoothstep
from .noise import _NVOX, _OCT_ROT, _coverage, _fade, _fbm, _noise_at, _noise_vox


@dataclass
class Surface:
    kd: np.ndarray  # (3, N) diffuse albedo, linear
    f0: np.ndarray  # (3, N) specular reflectance at normal incidence
    gloss: np.ndarray  # (N,) 0 (matte) .. 1 (mirror)
    wrap: np.ndarray  # (N,) diffuse wrap (subsurface softness)
    bump: float  # normal perturbation amplitude
    bump_scale: float  # period of the bump noise, metres
    translucency: float = 0.0


def _full(n, v):
    return np.full(n, v, F32)


def _full3(n, v):
    return np.full((3, n), v, F32)


class _Ctx:
    """What a material function gets: hit points (3, N) in texture space and everything per point."""

    def __init__(self, p, n, foot, cav, look: Look, secondary=False):
        self.p, self.n, self.foot, self.cav, self.look = p, n, foot, cav, look
        self.N = p.shape[1]
        self.secondary = secondary


@lru_cache(maxsize=256)
def _seed_offset(seed: int, salt: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed texture placement: a rotation about z (keeps layering horizontal) and an offset."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, salt])
    a = rng.uniform(0, 2 * np.pi)
    c, s = math.cos(a), math.sin(a)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], F32)
    off = rng.uniform(0, 50.0, 3).astype(F32)
    R.flags.writeable = False
    off.flags.writeable = False
    return R, off


_STREAK_W = np.array([1 / 0.02, 1 / 0.02, 1 / 0.6], F32)


def _weather(ctx: _Ctx, kd: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Dirt in crevices, vertical streaks, rising damp; `low` (N,) a coarse noise channel."""
    w = F32(ctx.look.weathering)
    if w <= 0:
        return kd
    p = ctx.p
    streak = _noise_at(p, _STREAK_W, ch=0)
    dirt = F32(0.35) * low
    dirt += F32(0.45) * np.maximum(streak, F32(0))
    dirt += F32(1.6) * (F32(1.0) - ctx.cav)
    dirt += F32(0.5) * np.exp(np.maximum(p[2], F32(0)) * F32(-1.0 / 0.12))
    dirt *= w
    np.clip(dirt, F32(0.0), F32(0.85), out=dirt)
    dirt_col = _lin(0.30, 0.27, 0.22)
    k = dirt_col / np.maximum(kd, F32(0.05))
    np.subtract(F32(1.0), k, out=k)
    np.clip(k, F32(0), F32(1), out=k)
    k *= dirt
    np.subtract(F32(1.0), k, out=k)
    return kd * k


def _lichen(ctx: _Ctx, kd: np.ndarray, amount: float) -> np.ndarray:
    if amount <= 0.1 or ctx.look.setting not in ("garden", "mountain", "temple"):
        return kd
    n = _fbm(ctx.p, 0.06, 2, ctx.foot, rot=5, ch=(0, 1))
    up = np.clip(ctx.n[2] * F32(0.5) + F32(0.5), F32(0), F32(1))
    m = _smoothstep(1.0, 1.4, n[0] + F32(amount) * F32(0.8) * up - F32(0.3)) * F32(min(1.0, amount * 1.5))
    col = _mix(_lin(0.66, 0.66, 0.58), _lin(0.52, 0.55, 0.40), _smoothstep(-0.5, 0.5, n[1]))
    return _mix(kd, col, m * F32(0.6))


def _speckle(c: _Ctx, scale: float, rot: int, lo: float, hi: float, ch: int) -> np.ndarray:
    """Coverage (N,) of thresholded noise of period `scale`; fades to its mean coverage where the
    pixel footprint cannot resolve it (so the average colour does not change with distance)."""
    mean = F32(_coverage(lo, hi))
    M = np.ascontiguousarray((_OCT_ROT[rot] / F32(scale)).T) * F32(_NVOX)
    if c.foot is None:
        return _smoothstep(lo, hi, _noise_vox(_mat3(M, c.p), (ch,))[0])
    w = _fade(scale, c.foot)
    sel = np.flatnonzero(w)
    out = mean * (F32(1.0) - w)
    if len(sel) == 0:
        return out
    if len(sel) < c.N:
        ws = w[sel]
        out[sel] += _smoothstep(lo, hi, _noise_vox(_mat3(M, c.p.take(sel, axis=1)), (ch,))[0]) * ws
        return out
    out += _smoothstep(lo, hi, _noise_vox(_mat3(M, c.p), (ch,))[0]) * w
    return out


def _mat_granite(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    base = _fbm(p, 0.5, 2, c.foot, rot=1, ch=(0, 1))
    kd = _mix(_lin(0.50, 0.49, 0.48), _lin(0.55, 0.54, 0.52), _smoothstep(-1, 1, base[0]))
    light = _speckle(c, 0.016, 4, 0.3, 0.7, 1)
    pink = _speckle(c, 0.022, 5, 0.7, 1.0, 2)
    dark = _speckle(c, 0.012, 2, 0.55, 0.85, 0)
    kd = _mix(kd, _lin(0.80, 0.79, 0.76), light)
    kd = _mix(kd, _lin(0.66, 0.52, 0.48), pink * F32(0.5))
    kd = _mix(kd, _lin(0.12, 0.12, 0.13), dark)
    kd = _weather(c, kd, base[1])
    kd = _lichen(c, kd, c.look.weathering)
    gloss = _full(N, 0.45 - 0.2 * F32(c.look.weathering))
    return Surface(kd, _full3(N, 0.04), gloss, _full(N, 0.0), 0.05, 0.004)


def _mat_marble(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    big = _fbm(p, 0.6, 5, c.foot, rot=3, gain=0.55)
    small = _fbm(p, 0.18, 3, c.foot, rot=8, gain=0.5, ch=1)
    kd = _mix(_lin(0.84, 0.84, 0.82), _lin(0.92, 0.91, 0.89), _smoothstep(-1, 1, big[2]))
    # veins along the zero crossings of smooth fields: thin, meandering, with a grey halo
    a0 = np.abs(big[0])
    main = _smoothstep(0.10, 0.0, a0)
    halo = _smoothstep(0.45, 0.0, a0)
    minor = _smoothstep(0.07, 0.0, np.abs(small)) * _smoothstep(-0.3, 0.6, big[1])
    kd = _mix(kd, _lin(0.70, 0.70, 0.71), halo * F32(0.5))
    kd = _mix(kd, _lin(0.42, 0.43, 0.45), main * F32(0.85))
    kd = _mix(kd, _lin(0.58, 0.58, 0.60), minor * F32(0.6))
    kd = _weather(c, kd, big[3])
    kd = _lichen(c, kd, c.look.weathering * 0.7)
    gloss = _full(N, 0.62 - 0.35 * F32(c.look.weathering))
    return Surface(kd, _full3(N, 0.04), gloss, _full(N, 0.35), 0.015, 0.01, translucency=0.08)


def _mat_sandstone(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = _fbm(p, 0.3, 4, c.foot, rot=6)
    z = p[2] + F32(0.012) * w[0]
    layers = np.sin(z * F32(2 * np.pi / 0.045)) + F32(0.5) * np.sin(z * F32(2 * np.pi / 0.017) + w[1])
    kd = _mix(_lin(0.72, 0.58, 0.43), _lin(0.80, 0.68, 0.53), _smoothstep(-1.5, 1.5, layers))
    kd = _mix(kd, _lin(0.68, 0.50, 0.36), _smoothstep(-0.5, 1.5, w[2]) * F32(0.35))  # iron staining
    grain = _speckle(c, 0.006, 8, 0.4, 0.9, 0) - F32(_coverage(0.4, 0.9))
    kd = kd * (F32(1.0) - F32(0.12) * grain)
    kd = _weather(c, kd, w[3])
    kd = _lichen(c, kd, c.look.weathering)
    return Surface(kd, _full3(N, 0.03), _full(N, 0.08), _full(N, 0.1), 0.22, 0.003)


_BRONZE_STREAK = np.array([1 / 0.05, 1 / 0.05, 1 / 0.4], F32)


def _mat_bronze(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = _fbm(p, 0.15, 3, c.foot, rot=9, ch=(0, 1, 2))
    wthr = F32(c.look.weathering)
    # cast bronze under a dark brown patina, rubbed golden on exposed parts, verdigris in crevices
    rub = _smoothstep(0.75, 1.0, c.cav) * (F32(0.35) + F32(0.12) * w[0])
    metal = _mix(_lin(0.30, 0.21, 0.13), _lin(0.58, 0.42, 0.24), rub)
    streak = _noise_at(p, _BRONZE_STREAK, ch=0)
    g = (wthr * F32(0.8) + (F32(1.0) - c.cav) * F32(2.0) + F32(0.25) * w[1]
         + wthr * F32(0.4) * np.maximum(streak, F32(0)))
    green_amt = _smoothstep(0.75, 1.25, g) * np.clip(wthr * F32(2.5), 0, 1)
    green = _mix(_lin(0.30, 0.52, 0.44), _lin(0.45, 0.64, 0.55), _smoothstep(-1, 1, w[2]))
    kd = _mix(_lin(0.10, 0.065, 0.04), green, green_amt)
    f0 = _mix(metal, F32(0.04), green_amt)
    gloss = F32(0.6) + F32(0.1) * rub - F32(0.4) * green_amt - F32(0.15) * wthr
    return Surface(kd, f0, gloss, _full(N, 0.0), 0.05, 0.02)


_WOOD_STRETCH = np.array([1.0, 1.0, 0.2], F32).reshape(3, 1)
_WOOD_FIBRE = np.array([1 / 0.0025, 1 / 0.0025, 1 / 0.15], F32)


def _mat_wood(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    R, off = _seed_offset(c.look.seed, 11)
    centre = np.array([0.6, 0.5, 0.0], F32) + (off[:2].sum() % 0.5)
    w = _fbm(p * _WOOD_STRETCH, 0.15, 2, c.foot, rot=10)
    dx = p[0] - centre[0] + F32(0.006) * w[0]
    dy = p[1] - centre[1] + F32(0.006) * w[1]
    r = np.sqrt(dx * dx + dy * dy) + F32(0.002) * w[2]
    ring = r / F32(0.022)
    ring -= np.floor(ring)  # (float % is slow in numpy)
    late = _smoothstep(0.55, 0.85, ring) * _smoothstep(1.0, 0.9, ring)
    kd = _mix(_lin(0.66, 0.46, 0.28), _lin(0.44, 0.27, 0.14), late * F32(0.85))
    ff = None if c.foot is None else _fade(0.0025, c.foot)
    if ff is None or np.any(ff):  # fibres, where resolved
        fib = _noise_at(p, _WOOD_FIBRE, ch=0)
        kd = kd * (F32(1.0) + F32(0.10) * (fib if ff is None else fib * ff))
    kd = kd * (F32(1.0) + F32(0.12) * w[3])
    wthr = F32(c.look.weathering)
    kd = _mix(kd, _lin(0.52, 0.50, 0.47) * (F32(0.85) + F32(0.3) * late),
              np.clip(wthr * F32(0.9) * (F32(0.6) + F32(0.4) * c.cav), 0, 1))
    kd = _weather(c, kd, w[3])
    gloss = _full(N, 0.4 - 0.3 * wthr)
    return Surface(kd, _full3(N, 0.04), gloss, _full(N, 0.05), 0.03, 0.004)


_STEEL_BRUSH = np.array([1 / 0.12, 1 / 0.12, 1 / 0.0012], F32)


def _mat_steel(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = _fbm(p, 0.2, 3, c.foot, rot=2, ch=(0, 1, 2))
    mod = F32(1.0) + F32(0.04) * w[0]
    bf = None if c.foot is None else _fade(0.0012, c.foot)
    if bf is None or np.any(bf):  # horizontal brushing, where resolved
        brush = _noise_at(p, _STEEL_BRUSH, ch=0)
        mod += F32(0.06) * (brush if bf is None else brush * bf)
    f0 = _lin(0.72, 0.72, 0.74) * mod
    wthr = F32(c.look.weathering)
    spots = _smoothstep(1.0, 1.6, w[1]) * (wthr * F32(0.25))
    kd = _lin(0.10, 0.10, 0.105) + F32(0.15) * spots
    kd = _weather(c, kd, w[2])
    gloss = F32(0.66) - F32(0.25) * wthr - F32(0.1) * spots
    return Surface(kd, f0, gloss.astype(F32), _full(N, 0.0), 0.0, 0.01)


def _glaze(c: _Ctx, col_a, col_b) -> Surface:
    p, N = c.p, c.N
    w = _fbm(p, 0.4, 2, c.foot, rot=4, gain=0.4, ch=(0, 2))
    kd = _mix(col_a, col_b, _smoothstep(-1.2, 1.2, w[0]))
    kd = kd * (F32(1.0) - F32(0.28) * ((F32(1.0) - c.cav) * F32(0.8)))  # glaze pools darker in recesses
    cr = _fbm(p, 0.03, 2, c.foot, rot=7, ch=1)
    crack = _smoothstep(0.06, 0.0, np.abs(cr)) * F32(0.35)
    if c.foot is not None:
        crack *= _fade(0.01, c.foot)
    kd = kd * (F32(1.0) - crack)
    kd = _weather(c, kd, w[1] * F32(0.5))
    return Surface(kd, _full3(N, 0.05), _full(N, 0.95 - 0.2 * F32(c.look.weathering)), _full(N, 0.1), 0.004, 0.05)


def _mat_ceramic(c: _Ctx) -> Surface:  # celadon glaze
    return _glaze(c, _lin(0.56, 0.70, 0.60), _lin(0.64, 0.76, 0.66))


def _mat_porcelain(c: _Ctx) -> Surface:  # white glaze
    return _glaze(c, _lin(0.90, 0.90, 0.88), _lin(0.94, 0.94, 0.93))


def _mat_jade(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = _fbm(p, 0.5, 3, c.foot, rot=1, gain=0.4, ch=(0, 1, 2))
    kd = _mix(_lin(0.36, 0.60, 0.44), _lin(0.44, 0.68, 0.50), _smoothstep(-1.2, 1.2, w[0]))
    kd = _mix(kd, _lin(0.70, 0.82, 0.70), _smoothstep(0.5, 2.0, w[1]) * F32(0.3))  # cloudy inclusions
    kd = _mix(kd, _lin(0.24, 0.46, 0.30), _smoothstep(0.7, 2.0, w[2]) * F32(0.25))
    return Surface(kd, _full3(N, 0.05), _full(N, 0.8), _full(N, 0.7), 0.003, 0.03, translucency=0.6)


_MATERIAL_FN = {
    "granite": _mat_granite, "marble": _mat_marble, "sandstone": _mat_sandstone, "bronze": _mat_bronze,
    "wood": _mat_wood, "steel": _mat_steel, "ceramic": _mat_ceramic, "porcelain": _mat_porcelain,
    "jade": _mat_jade,
}


_PAINT = {
    "red": (_lin(0.62, 0.08, 0.05), 0.04, 0.35, False),
    "gold": (_lin(0.95, 0.72, 0.33), 0.0, 0.6, True),
    "black": (_lin(0.05, 0.05, 0.05), 0.04, 0.4, False),
    "white": (_lin(0.88, 0.88, 0.85), 0.04, 0.3, False),
    "green": (_lin(0.10, 0.42, 0.30), 0.04, 0.35, False),
    "neon": (_lin(0.12, 0.12, 0.13), 0.04, 0.8, False),  # a glass tube; its light is in _NEON
    "ochre": (_lin(0.66, 0.30, 0.11), 0.03, 0.1, False),  # red ochre; the dots are in _ochre_dots
}


# Neon tube colours (linear, HDR): one per image, drawn from the look's seed.
_NEON = ((4.0, 0.35, 1.6), (0.3, 2.8, 3.6), (3.8, 1.6, 0.2))


def _neon_light(look: Look) -> np.ndarray:
    return np.asarray(_NEON[int(look.seed) % len(_NEON)], F32)


def _ochre_dots(pt: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Dot painting on a surface at texture points pt (3, N): coverage (N,) in [0, 1] and whether
    each dot is white rather than yellow ochre (N,). The dots are spheres on a 3-D grid, so their
    size varies where the surface cuts them, as hand-set dots do."""
    q = pt * F32(1.0 / spacing)
    c = np.floor(q)
    f = q - c
    f -= F32(0.5)
    r = np.sqrt(_dot(f, f))
    h = _hash2(c[0] + F32(131.0) * c[2], c[1], 13)
    return _smoothstep(0.36, 0.28, r) * (h > F32(0.15)), h > F32(0.6)


def surface_at(look: Look, p, n, foot, cav, secondary=False):
    """Material at world points p (3, N): (Surface, texture-space points (3, N))."""
    R, off = _seed_offset(look.seed)
    pt = _mat3(R, p)
    pt += off[:, None]
    ctx = _Ctx(pt, n, foot, cav, look, secondary)
    s = _MATERIAL_FN[look.material](ctx)
    tint = _col(look.tint)
    s.kd = np.clip(s.kd * tint, F32(0), F32(1))
    if look.material in ("bronze", "steel"):
        s.f0 = np.clip(s.f0 * tint, F32(0), F32(1))
    return s, pt


def paint_glyph(s: Surface, look: Look, pt: np.ndarray, foot: np.ndarray, gi: np.ndarray, size: float) -> bool:
    """Paint the glyph with the look's `glyph_paint`, in place on the sculpture's surface `s`: the
    glyph is points `gi` of the texture-space points pt (3, N) (pixel footprints `foot` (N,)); the
    paint wears off where weathered. Ochre adds a dot painting over the whole sculpture (dots
    `size` / 45 apart, `size` the sculpture's). Returns whether the paint gives off light (neon)."""
    col, f0, gloss, metal = _PAINT[look.glyph_paint]
    wear = _smoothstep(0.3, 1.2, _fbm(pt.take(gi, axis=1), 0.02, 2, foot.take(gi), rot=9, ch=0)
                       + F32(look.weathering) * 1.2 - 0.6)
    wear = wear * F32(min(1.0, look.weathering * 2))
    kdp = col * (F32(1) - F32(0.8) * F32(metal))
    s.kd[:, gi] = _mix(kdp, s.kd[:, gi], wear)
    s.f0[:, gi] = _mix(col if metal else F32(f0), s.f0[:, gi], wear)
    s.gloss[gi] = F32(gloss) * (1 - wear) + s.gloss[gi] * wear
    s.wrap[gi] = 0.0
    if look.glyph_paint == "ochre":
        dots, white = _ochre_dots(pt, size / 45.0)
        dot_col = np.where(white, _lin(0.86, 0.82, 0.72), _lin(0.85, 0.62, 0.22))
        s.kd = _mix(s.kd, dot_col, dots)
    return look.glyph_paint == "neon"

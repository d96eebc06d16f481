"""The setting around the sculpture: sky, ground, walls and their light.

A `Setting` (one per name in `SETTINGS`) gives the ground texture, an optional wall, the sky's
colours, the ambient light, haze, floor gloss and what lies beyond the wall or the horizon.

* Ground: the plane z = 0 (a large quad in the renderer's Embree scene), textured by `_ground`.
* Walls: settings with a wall (courtyard, temple, garden hedge, museum) add an analytic vertical
  cylinder around the sculpture (radius `Setting.wall_radius`, or more for a large sculpture),
  which the camera must be inside of; from outside it the wall is left out (`wall_hits`).
* Background (`_background`): a function of the ray direction for rays that hit nothing: sky
  gradient and sun glow, clouds, distant ridges, a tree line, a night city, dark museum space.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .look import Look
from .maths import F32, _col, _dot, _hash2, _lin, _mix, _smoothstep
from .noise import _fbm, _noise_at


@dataclass(frozen=True)
class Setting:
    ground: str
    wall: str | None  # wall texture kind, or None
    wall_radius: float  # metres (at least; grows with the sculpture)
    wall_height: float
    horizon: tuple  # linear RGB of the sky at the horizon
    zenith: tuple
    sky_light: tuple  # colour of the ambient light from above (times Look.ambient)
    ground_light: tuple  # colour of light bounced from below
    haze: float  # extinction per metre (distance haze)
    floor_gloss: float  # 0..1, mirror-like floor reflections
    sun_glow: float  # strength of the sun glow in the sky
    above: str = "sky"  # what is above the wall / horizon: sky, dark, ridges, trees, city
    sun_scale: float = 1.0  # the key light's strength: 1 for daylight, less for a street lamp at night


_SETTINGS: dict[str, Setting] = {
    "museum": Setting("polished", "panel", 5.0, 6.0, (0.018, 0.018, 0.02), (0.006, 0.006, 0.007),
                      (0.55, 0.52, 0.48), (0.10, 0.09, 0.08), 0.002, 0.85, 0.0, above="dark"),
    "courtyard": Setting("paving", "plaster", 9.0, 2.8, (0.95, 0.97, 1.0), (0.35, 0.55, 0.95),
                         (0.62, 0.72, 0.95), (0.45, 0.42, 0.38), 0.004, 0.0, 0.25),
    "garden": Setting("grass", "hedge", 7.0, 1.6, (0.80, 0.88, 0.95), (0.30, 0.50, 0.90),
                      (0.55, 0.68, 0.90), (0.20, 0.30, 0.12), 0.006, 0.0, 0.25, above="trees"),
    "plaza": Setting("concrete", None, 0.0, 0.0, (0.85, 0.92, 1.0), (0.18, 0.38, 0.85),
                     (0.58, 0.70, 1.0), (0.42, 0.41, 0.40), 0.003, 0.0, 0.35),
    "mountain": Setting("rock", None, 0.0, 0.0, (0.78, 0.80, 0.84), (0.42, 0.55, 0.75),
                        (0.68, 0.72, 0.80), (0.30, 0.28, 0.25), 0.012, 0.0, 0.3, above="ridges"),
    "temple": Setting("flagstone", "temple", 7.5, 3.2, (0.92, 0.94, 0.96), (0.40, 0.58, 0.90),
                      (0.62, 0.70, 0.90), (0.40, 0.33, 0.30), 0.004, 0.15, 0.25),
    # a city street at night: wet asphalt, lit windows, one warm street lamp as the key light
    "street": Setting("asphalt", None, 0.0, 0.0, (0.030, 0.028, 0.040), (0.004, 0.004, 0.009),
                      (0.10, 0.10, 0.16), (0.05, 0.045, 0.04), 0.01, 0.35, 0.0, above="city", sun_scale=0.35),
    # red earth under a pale hot sky, flat to the horizon
    "outback": Setting("earth", None, 0.0, 0.0, (0.95, 0.86, 0.74), (0.22, 0.42, 0.85),
                       (0.62, 0.66, 0.85), (0.55, 0.30, 0.16), 0.003, 0.0, 0.35),
}


def _sun_colour(warmth: float) -> np.ndarray:
    w = float(np.clip(warmth, -1.0, 1.0))
    warm = np.array([1.18, 0.94, 0.68])
    cool = np.array([0.86, 0.94, 1.12])
    neutral = np.array([1.0, 0.97, 0.92])
    c = neutral + (warm - neutral) * max(w, 0) + (cool - neutral) * max(-w, 0)
    return c.astype(F32)


def _slabs(x, y, size_x, size_y, joint, salt, bond=True):
    """Paving slabs at plane coordinates x, y (N,): per-slab random value (N,), distance to the
    nearest joint (N,)."""
    y = y * F32(1.0 / size_y)
    iy = np.floor(y)
    x = x * F32(1.0 / size_x)
    if bond:
        x += iy * F32(0.5) - np.floor(iy * F32(0.5))  # 0.5 on odd rows
    ix = np.floor(x)
    fx = (x - ix) * F32(size_x)
    fy = (y - iy) * F32(size_y)
    d = np.minimum(fx, F32(size_x) - fx)
    np.minimum(d, fy, out=d)
    np.minimum(d, F32(size_y) - fy, out=d)
    r = _hash2(ix.astype(np.int64), iy.astype(np.int64), salt)
    return r, d


_GROUND_W_CH = {"polished": 0, "paving": None, "flagstone": None, "grass": (0, 1), "concrete": (0, 1),
                "asphalt": (0, 1), "earth": (0, 1, 2)}


def _ground(kind: str, p, foot, look: Look):
    """Ground surface at points p (3, N) (z = 0): (kd (3, N), f0, gloss, bump, bump_scale)."""
    if kind in _GROUND_W_CH:
        w = _fbm(p, 1.5, 3, foot, rot=3, ch=_GROUND_W_CH[kind])
    if kind == "polished":
        kd = _mix(_lin(0.10, 0.10, 0.11), _lin(0.15, 0.15, 0.16), _smoothstep(-1, 1, w))
        r, d = _slabs(p[0], p[1], 1.2, 1.2, 0.002, 3, bond=False)
        kd = kd * ((F32(0.9) + F32(0.2) * r) * np.where(d < F32(0.0015), F32(0.5), F32(1.0)))
        return kd, 0.05, 0.9, 0.002, 0.2
    if kind in ("paving", "flagstone"):
        size = (0.6, 0.6) if kind == "paving" else (0.9, 0.6)
        r, d = _slabs(p[0], p[1], size[0], size[1], 0.005, 1 if kind == "paving" else 2)
        base = _lin(0.66, 0.64, 0.60) if kind == "paving" else _lin(0.52, 0.51, 0.50)
        m = (F32(0.82) + F32(0.3) * r) * (F32(1.0) + F32(0.12) * w[0] + F32(0.06) * w[1])
        jw = F32(0.006) + F32(0.002) * w[2]
        joint = _smoothstep(1.0, 0.6, d / jw)
        m *= F32(1.0) - F32(0.65) * joint
        kd = base * m
        kd = _mix(kd, _lin(0.35, 0.36, 0.28), _smoothstep(0.8, 1.4, w[3]) * (F32(0.5) * F32(look.weathering + 0.3)))
        return kd, 0.04, 0.2 if kind == "paving" else 0.35, 0.25, 0.01
    if kind == "grass":
        kd = _mix(_lin(0.20, 0.34, 0.10), _lin(0.34, 0.45, 0.16), _smoothstep(-1, 1, w[0]))
        kd = _mix(kd, _lin(0.52, 0.50, 0.28), _smoothstep(0.6, 1.4, w[1]) * F32(0.6))
        blades = _fbm(p, 0.02, 2, foot, rot=6, ch=0)
        kd = kd * (F32(1.0) + F32(0.35) * blades)
        return np.clip(kd, F32(0), F32(1), out=kd), 0.02, 0.05, 0.9, 0.01
    if kind == "concrete":
        kd = _mix(_lin(0.60, 0.59, 0.57), _lin(0.68, 0.67, 0.65), _smoothstep(-1, 1, w[0]))
        fine = _fbm(p, 0.01, 2, foot, rot=8, ch=0)
        kd = kd * (F32(1.0) + F32(0.08) * fine)
        kd = _mix(kd, _lin(0.40, 0.40, 0.39), _smoothstep(0.8, 1.6, w[1]) * F32(0.5))
        r, d = _slabs(p[0], p[1], 3.0, 3.0, 0.004, 4, bond=False)
        kd = kd * np.where(d < F32(0.004), F32(0.45), F32(1.0))
        return kd, 0.04, 0.15, 0.1, 0.005
    if kind == "asphalt":
        kd = _mix(_lin(0.07, 0.07, 0.075), _lin(0.12, 0.12, 0.12), _smoothstep(-1, 1, w[0]))
        kd = kd * (F32(1.0) + F32(0.25) * _fbm(p, 0.008, 2, foot, rot=8, ch=0))
        wet = _smoothstep(-0.2, 0.6, w[1])  # puddles: darker and glossy (the street's sheen)
        return kd * (F32(1.0) - F32(0.4) * wet), 0.04, 0.3, 0.1, 0.005
    if kind == "earth":
        kd = _mix(_lin(0.58, 0.27, 0.12), _lin(0.74, 0.42, 0.22), _smoothstep(-1, 1, w[0]))
        kd = kd * (F32(1.0) + F32(0.15) * _fbm(p, 0.015, 2, foot, rot=5, ch=0))
        tufts = _smoothstep(0.9, 1.3, w[1] + F32(0.6) * _fbm(p, 0.1, 2, foot, rot=7, ch=1))  # spinifex
        kd = _mix(kd, _lin(0.42, 0.42, 0.20), tufts * F32(0.8))
        kd = _mix(kd, _lin(0.50, 0.46, 0.40), _smoothstep(1.1, 1.4, w[2]) * F32(0.7))  # pale stones
        return np.clip(kd, F32(0), F32(1), out=kd), 0.02, 0.05, 0.5, 0.02
    if kind == "rock":
        r = _fbm(p, 0.8, 4, foot, rot=2, gain=0.55, ch=(0, 1, 2))
        kd = _mix(_lin(0.40, 0.37, 0.33), _lin(0.56, 0.53, 0.49), _smoothstep(-1.2, 1.2, r[0]))
        crack = _smoothstep(0.08, 0.0, np.abs(r[1]))
        kd = kd * (F32(1.0) - F32(0.5) * crack)
        kd = _mix(kd, _lin(0.40, 0.45, 0.25), _smoothstep(0.7, 1.3, r[2]) * F32(0.5))
        return kd, 0.03, 0.1, 0.6, 0.03
    raise ValueError(kind)


_WALL_STREAK = np.array([1 / 0.15, 1 / 0.15, 1 / 1.5], F32)


def _wall_albedo(kind: str, s, z, p, foot, height):
    """Wall texture at arc length s, height z (both (N,)) and 3D point p (3, N): kd (3, N)."""
    if kind in ("plaster", "temple"):
        w = _fbm(p, 0.8, 2, foot, rot=4, ch=(0, 1, 2) if kind == "temple" else (0,))
        streak = _noise_at(p, _WALL_STREAK, ch=0)
    if kind == "plaster":
        kd = _mix(_lin(0.80, 0.78, 0.72), _lin(0.86, 0.84, 0.78), _smoothstep(-1, 1, w[0]))
        kd = kd * (F32(1.0) - F32(0.12) * np.maximum(streak, F32(0)))
        brick = z < F32(0.6)
        if np.any(brick):
            r, d = _slabs(s, z, 0.24, 0.06, 0.005, 7)
            bk = _lin(0.42, 0.42, 0.43) * (F32(0.85) + F32(0.3) * r)
            bk = _mix(bk, _lin(0.62, 0.61, 0.58), _smoothstep(0.008, 0.004, d))
            kd = np.where(brick, bk, kd)
        kd = np.where(z > F32(height - 0.22), _lin(0.25, 0.25, 0.27), kd)
        return kd
    if kind == "temple":
        kd = _mix(_lin(0.62, 0.16, 0.11), _lin(0.70, 0.24, 0.16), _smoothstep(-1, 1, w[0]))
        kd = kd * (F32(1.0) - F32(0.15) * np.maximum(streak, F32(0)))
        kd = np.where(z < F32(0.5), _lin(0.50, 0.49, 0.47) * (F32(1) + F32(0.1) * w[1]), kd)
        kd = np.where(z > F32(height - 0.35), _lin(0.80, 0.62, 0.18) * (F32(1) + F32(0.2) * w[2]), kd)
        return kd
    if kind == "hedge":
        leaves = _fbm(p, 0.08, 3, foot, rot=1, ch=(0, 1))
        kd = _mix(_lin(0.10, 0.22, 0.07), _lin(0.22, 0.40, 0.12), _smoothstep(-0.8, 0.8, leaves[0]))
        kd = kd * (F32(0.4) + F32(0.6) * _smoothstep(-1.2, 0.2, leaves[1]))
        return kd
    if kind == "panel":
        w = _fbm(p, 0.8, 2, foot, rot=4, ch=0)
        kd = _mix(_lin(0.13, 0.13, 0.14), _lin(0.16, 0.16, 0.17), _smoothstep(-1, 1, w))
        u = s / F32(1.2)
        u -= np.floor(u)
        joint = np.abs(u - F32(0.5)) > F32(0.498)
        return kd * np.where(joint, F32(0.6), F32(1.0))
    raise ValueError(kind)


@lru_cache(maxsize=8)
def _skyline_table(scale: float, rot: int) -> np.ndarray:
    a = np.linspace(-np.pi, np.pi, 4097)
    ring = np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], 0).astype(F32)
    return _fbm(ring, scale, 5, None, rot=rot, ch=0)


def _skyline(az: np.ndarray, scale: float, rot: int) -> np.ndarray:
    """A periodic 1D fBm of the azimuth (radians), from a cached table."""
    tab = _skyline_table(scale, rot)
    x = (az + F32(np.pi)) * F32(4096 / (2 * np.pi))
    i = np.clip(x.astype(np.int32), 0, 4095)
    f = x - i
    a = tab.take(i)
    return a + (tab.take(i + 1) - a) * f


def _background(st: Setting, d: np.ndarray, sun: np.ndarray, sun_col: np.ndarray, look: Look) -> np.ndarray:
    """Radiance (3, N) for rays d (3, N) that hit nothing."""
    el = np.clip(d[2], -1.0, 1.0)
    hor = _col(st.horizon)
    zen = _col(st.zenith)
    t = np.clip(el, 0, 1) ** F32(0.55)
    col = _mix(hor, zen, t)
    ds = np.clip(_dot(d, sun), F32(0), F32(1))
    if st.above == "dark":
        spot = ds ** F32(4) * F32(0.02)
        return col + spot * sun_col
    if st.above == "city":
        return _city(col, d, el)
    d12 = ds * ds
    d12 *= ds  # ^3
    d12 *= d12  # ^6
    d12 *= d12  # ^12
    glow = F32(st.sun_glow) * (d12 * F32(0.6) + ds ** F32(400) * F32(6.0))
    col = col + (glow * F32(look.sun_intensity)) * sun_col
    # clouds: soft noise on the sky dome
    dd = d / np.maximum(d[2], F32(0.05))
    cl = _fbm(dd, 1.2, 3, None, rot=6, ch=0)
    cloud = _smoothstep(0.0, 1.2, cl) * F32(0.55) * (el > 0)
    col = _mix(col, hor * F32(1.05), cloud)
    az = np.arctan2(d[0], -d[1])
    if st.above == "ridges":
        h1 = F32(0.06) + F32(0.05) * _skyline(az, 1.5, 1)
        h2 = F32(0.025) + F32(0.03) * _skyline(az, 1.0, 2)
        far = _mix(hor, _lin(0.45, 0.52, 0.60), F32(0.6))
        near = _mix(hor, _lin(0.28, 0.32, 0.30), F32(0.7))
        col = np.where(el < h1, far, col)
        col = np.where(el < h2, near, col)
    elif st.above == "trees":
        h = F32(0.34) + F32(0.10) * _skyline(az, 0.25, 3)
        f = _fbm(d * F32(6.0), 1.0, 3, None, rot=4, ch=(0, 1, 2))
        tree = _mix(_lin(0.09, 0.17, 0.06), _lin(0.22, 0.36, 0.12), _smoothstep(-1, 1, f[0]))
        tree = tree * ((F32(0.5) + F32(0.5) * _smoothstep(-1, 0.5, f[1])) * F32(1.2))
        col = np.where(el < h + F32(0.03) * f[2], tree, col)
    return col


def _city(col: np.ndarray, d: np.ndarray, el: np.ndarray) -> np.ndarray:
    """Night skyline: blocks of buildings of random height, about a quarter of their windows lit."""
    az = (np.arctan2(d[0], -d[1]) + F32(np.pi)) * F32(18.0)  # 18 blocks per radian
    block = np.floor(az)
    top = F32(0.08) + F32(0.35) * _hash2(block, np.zeros_like(block), 17)
    wx, wy = az * F32(6.0), el * F32(70.0)  # window grid: 6 per block across, 70 per radian up
    cx, cy = np.floor(wx), np.floor(wy)
    frame = (wx - cx > F32(0.3)) & (wy - cy > F32(0.35))  # the window inside its cell
    lit = frame & (_hash2(cx, cy, 23) > F32(0.72))
    warm = _mix(_lin(0.55, 0.36, 0.14), _lin(0.45, 0.48, 0.55), _hash2(cx, cy, 29))
    building = np.where(lit, warm * F32(0.35), _lin(0.010, 0.010, 0.014))
    return np.where(el < top, building, col)


def wall_hits(st: Setting, centre: np.ndarray, radius: float, o: np.ndarray, d: np.ndarray,
              tmax: np.ndarray):
    """The analytic cylinder wall of setting `st` around `centre` (the sculpture's; a sculpture of
    bounding radius `radius` widens it) for rays from o ((3,) or (3, N)) along d (3, N): (hit (N,)
    bool, t (N,), the wall's radius), hits only where the origin is inside it."""
    N = d.shape[1]
    if st.wall is None:
        return np.zeros(N, bool), None, 0.0
    Rw = max(st.wall_radius, 3.0 * radius)
    c = centre[:2].astype(F32)
    ox = (o[0] - c[0]).astype(F32)
    oy = (o[1] - c[1]).astype(F32)
    r2 = ox * ox + oy * oy
    inside = r2 < F32(Rw * Rw * 0.98)
    a = d[0] * d[0] + d[1] * d[1]
    b = ox * d[0] + oy * d[1]
    cc = r2 - F32(Rw * Rw)
    disc = b * b - a * cc
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b + np.sqrt(np.maximum(disc, F32(0)))) / np.maximum(a, F32(1e-12))
    z = o[2].astype(F32) + t * d[2]
    hit = inside & (a > 1e-9) & (t > 0) & (t < tmax) & (z >= 0) & (z <= F32(st.wall_height))
    return hit, t, Rw


def wall_coords(p: np.ndarray, centre: np.ndarray, radius_w: float):
    """Points p (3, N) on the wall of radius `radius_w` around `centre`: the inward normal's x and
    y (N,) and the arc length (N,) (the wall texture's horizontal coordinate)."""
    c = centre[:2].astype(F32)
    nx = (c[0] - p[0]) / F32(radius_w)
    ny = (c[1] - p[1]) / F32(radius_w)
    s = np.arctan2(p[1] - c[1], p[0] - c[0]) * F32(radius_w)
    return nx, ny, s

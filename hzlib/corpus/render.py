"""CPU rendering of character sculptures: open3d/Embree ray casting, procedural solid materials.

A photograph-like image of one `Sculpture` seen by one `Camera` under one `Look`:

* Geometry: the sculpture's triangles and a large ground quad (z = 0) live in an open3d
  `RaycastingScene` (Embree), built once per sculpture by `Renderer`. Settings with a wall
  (courtyard, temple, garden hedge, museum) add an analytic vertical cylinder around the sculpture
  (radius `Setting.wall_radius`, or more for a large sculpture), which the camera must be inside
  of; from outside it the wall is left out. Beyond ground and wall, the background is a function of
  the ray direction (sky gradient and sun glow, distant ridges, tree line, dark museum space).
* Materials are SOLID textures: functions of the 3D hit point in object (= world) coordinates, so
  every view of a sculpture sees the same texture (needed for Structure-from-Motion). The noise is
  band-limited gradient-like noise: a periodic 64^3 x 4-channel volume made once by filtering white
  noise in the Fourier domain, sampled trilinearly on rotated coordinates; fBm sums rotated octaves
  and fades the octaves finer than the pixel footprint (a cheap LOD against aliasing).
* Shading (linear RGB): Lambert (wrapped for jade and marble) + normalised Blinn-Phong with Schlick
  Fresnel, a sun with ray-cast hard shadows, a sky/ground hemisphere ambient with ray-cast ambient
  occlusion (a fixed, position-seeded set of directions: the same at a point in every view), a fill
  light, ray-traced mirror reflections for glossy surfaces (metals, glazes, jade, the museum's
  polished floor), distance haze and fog, an ACES-like tone curve, sRGB gamma, a mild vignette, a
  slight lens blur (hides the stair-stepping of one ray per pixel) and Gaussian sensor noise from a
  numpy Generator seeded by `Look.seed` and the camera.
* Masks (`Rendered`): the glyph mask is exact per ray: the hit point lies in `sculpture.glyph_box`
  and the glyph raster is nonzero at its (u, v) (dilated by 2 texels on faces that do not face
  +-y, so the glyph's side walls count).

Conventions are those of `hzlib.corpus.types` (z up, sculpture faces -y, OpenCV/COLMAP cameras with
pixel centres at (u + 0.5, v + 0.5)). Azimuths here (sun and orbit cameras) are degrees about +z
with 0 = in front of the sculpture (towards -y) and 90 = towards +x; elevations are degrees above
the horizon.

Everything is float32 numpy, vectorised; same inputs and seed give bitwise identical pixels.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np

from .types import Camera, Sculpture

__all__ = [
    "MATERIALS",
    "SETTINGS",
    "PAINTS",
    "Look",
    "Rendered",
    "Renderer",
    "render",
    "look_at_camera",
    "orbit_cameras",
    "direction_from_angles",
    "camera_rays",
]

MATERIALS = ("granite", "marble", "sandstone", "bronze", "wood", "steel", "ceramic", "porcelain", "jade")
SETTINGS = ("museum", "courtyard", "garden", "plaza", "mountain", "temple")
PAINTS = ("red", "gold", "black", "white", "green")

F32 = np.float32
_INVALID = 4294967295  # open3d RaycastingScene.INVALID_ID


# ----------------------------------------------------------------------------------------------
# cameras
# ----------------------------------------------------------------------------------------------
def direction_from_angles(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector towards (azimuth, elevation): azimuth 0 = -y (the sculpture's front), 90 = +x."""
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.sin(a) * math.cos(e), -math.cos(a) * math.cos(e), math.sin(e)])


def look_at_camera(
    eye,
    target,
    up=(0.0, 0.0, 1.0),
    *,
    fov_deg: float | None = None,
    focal: float | None = None,
    width: int = 224,
    height: int = 224,
) -> Camera:
    """A pinhole camera at `eye` looking at `target` (OpenCV axes: x right, y down, z forward).

    Give either `fov_deg` (the horizontal field of view) or `focal` (pixels, fx = fy); default
    40 degrees. The principal point is the image centre (W/2, H/2), in the pixel-centre convention
    of COLMAP's PINHOLE model.
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    if focal is None:
        fov = 40.0 if fov_deg is None else float(fov_deg)
        if not 0.0 < fov < 180.0:
            raise ValueError(f"fov_deg must be in (0, 180), got {fov}")
        focal = 0.5 * width / math.tan(math.radians(fov) / 2.0)
    elif fov_deg is not None:
        raise ValueError("give fov_deg or focal, not both")
    fwd = target - eye
    nf = np.linalg.norm(fwd)
    if nf == 0:
        raise ValueError("eye and target coincide")
    fwd /= nf
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-9:  # looking along `up`: pick any perpendicular
        alt = np.array([0.0, 1.0, 0.0]) if abs(fwd[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        right = np.cross(fwd, alt)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ eye
    K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    return Camera(K=K, world_to_cam=T, width=int(width), height=int(height))


def _sculpture_frame(sculpture: Sculpture) -> tuple[np.ndarray, float]:
    lo, hi = (np.asarray(b, dtype=np.float64) for b in sculpture.bounds)
    return (lo + hi) / 2.0, float(np.linalg.norm(hi - lo) / 2.0)


def orbit_cameras(
    sculpture: Sculpture,
    n: int,
    elevations=(15.0, 35.0),
    distance: float | None = None,
    width: int = 224,
    height: int = 224,
    *,
    fov_deg: float = 40.0,
    target=None,
    azimuth0: float = 0.0,
    margin: float = 1.15,
) -> list[Camera]:
    """`n` cameras in rings around the sculpture, all looking at `target` (default: bbox centre).

    The cameras are split over the rings (one per elevation, degrees) as evenly as possible; ring k
    starts at `azimuth0` plus half a step for odd k, so the rings interleave. `distance` (metres from
    the target) defaults to the distance at which the bounding sphere fills the smaller field of
    view, times `margin`.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    centre, radius = _sculpture_frame(sculpture)
    tgt = centre if target is None else np.asarray(target, dtype=np.float64)
    elevations = [float(e) for e in np.atleast_1d(elevations)]
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    if distance is None:
        half = math.atan(0.5 * min(width, height) / f)
        distance = margin * radius / math.sin(half)
    counts = [n // len(elevations) + (1 if k < n % len(elevations) else 0) for k in range(len(elevations))]
    cams = []
    for k, (el, m) in enumerate(zip(elevations, counts)):
        for j in range(m):
            az = azimuth0 + 360.0 * (j + 0.5 * (k % 2)) / m
            eye = tgt + distance * direction_from_angles(az, el)
            cams.append(look_at_camera(eye, tgt, focal=f, width=width, height=height))
    return cams


def camera_rays(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,), unit directions (H*W, 3) float32), row-major, through pixel centres."""
    W, H = camera.width, camera.height
    Kinv = np.linalg.inv(camera.K)
    R = camera.world_to_cam[:3, :3]
    u = np.arange(W, dtype=np.float64) + 0.5
    v = np.arange(H, dtype=np.float64) + 0.5
    uu, vv = np.meshgrid(u, v)
    pix = np.stack([uu.ravel(), vv.ravel(), np.ones(W * H)], axis=1)
    d = pix @ (R.T @ Kinv).T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return camera.centre.astype(np.float64), d.astype(F32)


# ----------------------------------------------------------------------------------------------
# the look
# ----------------------------------------------------------------------------------------------
@dataclass
class Look:
    """Everything about appearance, as plain values (serialisable with `to_dict` / `from_dict`)."""

    material: str = "granite"
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB multiplier on the material's colour
    weathering: float = 0.2  # 0..1: dirt in crevices, streaks, lichen; patina on bronze
    glyph_paint: str | None = None  # None or one of PAINTS
    setting: str = "courtyard"
    azimuth: float = 35.0  # sun, degrees (0 = from the sculpture's front)
    elevation: float = 40.0  # sun, degrees above the horizon
    sun_intensity: float = 1.0
    warmth: float = 0.0  # -1 (cool, overcast/blue) .. +1 (warm, evening)
    ambient: float = 0.35  # sky/hemisphere light
    fog: float = 0.0  # 0..1, extinction 0.1 * fog per metre
    exposure: float = 1.0
    noise_sigma: float = 0.01  # sensor noise, fraction of full scale
    seed: int = 0  # texture placement (same in every view) and sensor noise
    vignette: float = 0.25  # darkening at the image corners
    blur: float = 0.5  # lens softness, 0..1 (weight of a 3x3 binomial blur)

    def __post_init__(self):
        if self.material not in MATERIALS:
            raise ValueError(f"unknown material {self.material!r}; one of {MATERIALS}")
        if self.setting not in SETTINGS:
            raise ValueError(f"unknown setting {self.setting!r}; one of {SETTINGS}")
        if self.glyph_paint is not None and self.glyph_paint not in PAINTS:
            raise ValueError(f"unknown glyph_paint {self.glyph_paint!r}; None or one of {PAINTS}")
        self.tint = tuple(float(c) for c in self.tint)
        if len(self.tint) != 3:
            raise ValueError("tint must have 3 components")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tint"] = list(self.tint)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Look":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown Look fields: {sorted(unknown)}")
        return cls(**d)


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8, sRGB
    glyph_mask: np.ndarray  # (H, W) bool: the ray hits the glyph solid
    stroke_mask: np.ndarray  # (H, W) int16: stroke id (>= 1), -1 glyph with unknown stroke, 0 none
    object_mask: np.ndarray  # (H, W) bool: the ray hits the sculpture
    depth: np.ndarray  # (H, W) float32, metres along the ray; inf where nothing (ground incl.) is hit


# ----------------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------------
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
    above: str = "sky"  # what is above the wall / horizon: sky, dark, ridges, trees


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
}


def _srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lin(*rgb) -> np.ndarray:
    """An sRGB colour written in 0..1 → linear float32."""
    return _srgb_to_linear(rgb).astype(F32)


def _sun_colour(warmth: float) -> np.ndarray:
    w = float(np.clip(warmth, -1.0, 1.0))
    warm = np.array([1.18, 0.94, 0.68])
    cool = np.array([0.86, 0.94, 1.12])
    neutral = np.array([1.0, 0.97, 0.92])
    c = neutral + (warm - neutral) * max(w, 0) + (cool - neutral) * max(-w, 0)
    return c.astype(F32)


# ----------------------------------------------------------------------------------------------
# noise
# ----------------------------------------------------------------------------------------------
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
    return np.ascontiguousarray(vol.reshape(-1, _NCH).astype(F32))


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


def noise(q: np.ndarray) -> np.ndarray:
    """Band-limited noise at points q (N, 3) in noise units (period ~1): (N, 4) float32, std ~0.9."""
    vol = _noise_volume()
    P = _NRES + 1
    q = q.astype(F32, copy=False) * F32(_NVOX)
    fl = np.floor(q)
    t = q - fl
    i = fl.astype(np.int32) & np.int32(_NRES - 1)
    base = (i[:, 0] * P + i[:, 1]) * P + i[:, 2]
    tx, ty, tz = t[:, 0:1], t[:, 1:2], t[:, 2:3]

    def g(o):
        return vol.take(base + np.int32(o), axis=0)

    v00 = g(0)
    v00 += (g(1) - v00) * tz
    v01 = g(P)
    v01 += (g(P + 1) - v01) * tz
    v10 = g(P * P)
    v10 += (g(P * P + 1) - v10) * tz
    v11 = g(P * P + P)
    v11 += (g(P * P + P + 1) - v11) * tz
    v00 += (v01 - v00) * ty
    v10 += (v11 - v10) * ty
    v00 += (v10 - v00) * tx
    return v00


def _fade(scale: float, foot: np.ndarray | None) -> np.ndarray | float:
    """LOD weight of features of period `scale` metres at pixel footprint `foot` metres."""
    if foot is None:
        return 1.0
    return np.clip(F32(scale) / (F32(1.5) * foot) - F32(1.0), 0.0, 1.0)[:, None]


def fbm(p: np.ndarray, scale: float, octaves: int, foot=None, *, gain: float = 0.5,
        lacunarity: float = 2.03, rot: int = 0) -> np.ndarray:
    """Fractal sum of rotated noise octaves; p (N, 3) metres, coarsest period `scale` metres.

    Returns (N, 4) with std ~0.9 when all octaves are resolved; octaves finer than the pixel
    footprint `foot` (N,) fade to zero (and are skipped when they vanish everywhere).
    """
    acc = np.zeros((len(p), _NCH), F32)
    amp, norm, s = 1.0, 0.0, float(scale)
    for o in range(octaves):
        norm += amp * amp
        w = _fade(s, foot)
        if foot is not None and not np.any(w):
            break
        q = p @ (_OCT_ROT[(o + rot) % len(_OCT_ROT)] / F32(s))
        n = noise(q)
        if foot is None:
            acc += F32(amp) * n
        else:
            acc += (F32(amp) * n) * w
        amp *= gain
        s /= lacunarity
    for o2 in range(o + 1, octaves):  # normalise as if all octaves were there
        norm += amp * amp
        amp *= gain
    return acc / F32(math.sqrt(norm))


def _smoothstep(e0, e1, x):
    t = np.clip((x - F32(e0)) / F32(e1 - e0), 0.0, 1.0)
    return t * t * (F32(3.0) - F32(2.0) * t)


def _mix(a, b, t):
    """a + (b - a) * t with broadcasting; a, b colours (3,) or (N, 3), t (N,) or (N, 1)."""
    if np.ndim(t) == 1:
        t = t[:, None]
    return a + (b - a) * t


def _normalize(v):
    n2 = np.einsum("...i,...i->...", v, v)[..., None]
    return v / np.sqrt(np.maximum(n2, F32(1e-24)))


# ----------------------------------------------------------------------------------------------
# materials: (points, normals, footprint, cavity, look) → surface parameters
# ----------------------------------------------------------------------------------------------
@dataclass
class Surface:
    kd: np.ndarray  # (N, 3) diffuse albedo, linear
    f0: np.ndarray  # (N, 3) specular reflectance at normal incidence
    gloss: np.ndarray  # (N,) 0 (matte) .. 1 (mirror)
    wrap: np.ndarray  # (N,) diffuse wrap (subsurface softness)
    bump: float  # normal perturbation amplitude
    bump_scale: float  # period of the bump noise, metres
    translucency: float = 0.0


def _full(n, v):
    return np.full(n, v, F32)


class _Ctx:
    """What a material function gets: hit points in texture space and everything per point."""

    def __init__(self, p, n, foot, cav, look: Look, secondary=False):
        self.p, self.n, self.foot, self.cav, self.look = p, n, foot, cav, look
        self.N = len(p)
        self.secondary = secondary


def _seed_offset(seed: int, salt: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed texture placement: a rotation about z (keeps layering horizontal) and an offset."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, salt])
    a = rng.uniform(0, 2 * np.pi)
    c, s = math.cos(a), math.sin(a)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], F32)
    off = rng.uniform(0, 50.0, 3).astype(F32)
    return R, off


def _weather(ctx: _Ctx, kd: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Dirt in crevices, vertical streaks, rising damp; `low` (N,) a coarse noise channel."""
    w = F32(ctx.look.weathering)
    if w <= 0:
        return kd
    p = ctx.p
    streak = noise(p * np.array([1 / 0.02, 1 / 0.02, 1 / 0.6], F32))[:, 0]
    dirt = F32(0.35) * low + F32(0.45) * np.maximum(streak, 0)
    dirt += F32(1.6) * (F32(1.0) - ctx.cav)
    dirt += F32(0.5) * np.exp(-np.maximum(p[:, 2], 0) / F32(0.12))
    dirt = np.clip(dirt * w, 0.0, 0.85)
    dirt_col = _lin(0.30, 0.27, 0.22)
    return kd * (F32(1.0) - dirt[:, None] * (F32(1.0) - dirt_col / np.maximum(kd, F32(0.05))).clip(0, 1))


def _lichen(ctx: _Ctx, kd: np.ndarray, amount: float) -> np.ndarray:
    if amount <= 0.1 or ctx.look.setting not in ("garden", "mountain", "temple"):
        return kd
    n = fbm(ctx.p, 0.06, 2, ctx.foot, rot=5)
    up = np.clip(ctx.n[:, 2] * 0.5 + 0.5, 0, 1)
    m = _smoothstep(1.0, 1.4, n[:, 0] + F32(amount) * F32(0.8) * up - F32(0.3)) * F32(min(1.0, amount * 1.5))
    col = _mix(_lin(0.66, 0.66, 0.58), _lin(0.52, 0.55, 0.40), _smoothstep(-0.5, 0.5, n[:, 1]))
    return _mix(kd, col, m * F32(0.6))


def _speckle(c: _Ctx, scale: float, rot: int, lo: float, hi: float, ch: int) -> np.ndarray:
    """Coverage (N,) of thresholded noise of period `scale`; fades to its mean coverage where the
    pixel footprint cannot resolve it (so the average colour does not change with distance)."""
    w = _fade(scale, c.foot)
    w = np.ones(c.N, F32) if np.ndim(w) == 0 else w[:, 0]
    mean = F32(_coverage(lo, hi))
    if not np.any(w):
        return np.full(c.N, mean, F32)
    n = noise(c.p @ (_OCT_ROT[rot] / F32(scale)))[:, ch]
    return _smoothstep(lo, hi, n) * w + mean * (F32(1.0) - w)


_COVERAGE: dict = {}


def _coverage(lo: float, hi: float) -> float:
    if (lo, hi) not in _COVERAGE:
        q = np.random.default_rng(1).uniform(0, 8, (200000, 3)).astype(F32)
        n = noise(q)
        _COVERAGE[(lo, hi)] = float(np.mean(_smoothstep(lo, hi, n)))
    return _COVERAGE[(lo, hi)]


def _mat_granite(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    base = fbm(p, 0.5, 2, c.foot, rot=1)
    kd = _mix(_lin(0.50, 0.49, 0.48), _lin(0.55, 0.54, 0.52), _smoothstep(-1, 1, base[:, 0]))
    light = _speckle(c, 0.016, 4, 0.3, 0.7, 1)
    pink = _speckle(c, 0.022, 5, 0.7, 1.0, 2)
    dark = _speckle(c, 0.012, 2, 0.55, 0.85, 0)
    kd = _mix(kd, _lin(0.80, 0.79, 0.76), light)
    kd = _mix(kd, _lin(0.66, 0.52, 0.48), pink * F32(0.5))
    kd = _mix(kd, _lin(0.12, 0.12, 0.13), dark)
    kd = _weather(c, kd, base[:, 1])
    kd = _lichen(c, kd, c.look.weathering)
    gloss = _full(N, 0.45) - F32(0.2) * F32(c.look.weathering)
    return Surface(kd, np.full((N, 3), 0.04, F32), gloss, _full(N, 0.0), 0.05, 0.004)


def _mat_marble(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    big = fbm(p, 0.6, 5, c.foot, rot=3, gain=0.55)
    small = fbm(p, 0.18, 3, c.foot, rot=8, gain=0.5)
    kd = _mix(_lin(0.84, 0.84, 0.82), _lin(0.92, 0.91, 0.89), _smoothstep(-1, 1, big[:, 2]))
    # veins along the zero crossings of smooth fields: thin, meandering, with a grey halo
    main = _smoothstep(0.10, 0.0, np.abs(big[:, 0]))
    halo = _smoothstep(0.45, 0.0, np.abs(big[:, 0]))
    minor = _smoothstep(0.07, 0.0, np.abs(small[:, 1])) * _smoothstep(-0.3, 0.6, big[:, 1])
    kd = _mix(kd, _lin(0.70, 0.70, 0.71), halo * F32(0.5))
    kd = _mix(kd, _lin(0.42, 0.43, 0.45), main * F32(0.85))
    kd = _mix(kd, _lin(0.58, 0.58, 0.60), minor * F32(0.6))
    kd = _weather(c, kd, big[:, 3])
    kd = _lichen(c, kd, c.look.weathering * 0.7)
    gloss = _full(N, 0.62) - F32(0.35) * F32(c.look.weathering)
    return Surface(kd, np.full((N, 3), 0.04, F32), gloss, _full(N, 0.35), 0.015, 0.01, translucency=0.08)


def _mat_sandstone(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = fbm(p, 0.3, 4, c.foot, rot=6)
    z = p[:, 2] + F32(0.012) * w[:, 0]
    layers = np.sin(z * F32(2 * np.pi / 0.045)) + F32(0.5) * np.sin(z * F32(2 * np.pi / 0.017) + w[:, 1])
    kd = _mix(_lin(0.72, 0.58, 0.43), _lin(0.80, 0.68, 0.53), _smoothstep(-1.5, 1.5, layers))
    kd = _mix(kd, _lin(0.68, 0.50, 0.36), _smoothstep(-0.5, 1.5, w[:, 2]) * F32(0.35))  # iron staining
    grain = _speckle(c, 0.006, 8, 0.4, 0.9, 0) - F32(_coverage(0.4, 0.9))
    kd = kd * (F32(1.0) - F32(0.12) * grain)[:, None]
    kd = _weather(c, kd, w[:, 3])
    kd = _lichen(c, kd, c.look.weathering)
    return Surface(kd, np.full((N, 3), 0.03, F32), _full(N, 0.08), _full(N, 0.1), 0.22, 0.003)


def _mat_bronze(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = fbm(p, 0.15, 3, c.foot, rot=9)
    wthr = F32(c.look.weathering)
    # cast bronze under a dark brown patina, rubbed golden on exposed parts, verdigris in crevices
    rub = _smoothstep(0.75, 1.0, c.cav) * (F32(0.35) + F32(0.12) * w[:, 0])
    metal = _mix(_lin(0.30, 0.21, 0.13), _lin(0.58, 0.42, 0.24), rub)
    streak = noise(p * np.array([1 / 0.05, 1 / 0.05, 1 / 0.4], F32))[:, 0]
    g = wthr * F32(0.8) + (F32(1.0) - c.cav) * F32(2.0) + F32(0.25) * w[:, 1] + wthr * F32(0.4) * np.maximum(streak, 0)
    green_amt = _smoothstep(0.75, 1.25, g) * np.clip(wthr * F32(2.5), 0, 1)
    green = _mix(_lin(0.30, 0.52, 0.44), _lin(0.45, 0.64, 0.55), _smoothstep(-1, 1, w[:, 2]))
    kd = _mix(_lin(0.10, 0.065, 0.04), green, green_amt)
    f0 = _mix(metal, np.full((N, 3), 0.04, F32), green_amt)
    gloss = F32(0.6) + F32(0.1) * rub - F32(0.4) * green_amt - F32(0.15) * wthr
    return Surface(kd, f0, gloss, _full(N, 0.0), 0.05, 0.02)


def _mat_wood(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    R, off = _seed_offset(c.look.seed, 11)
    centre = np.array([0.6, 0.5, 0.0], F32) + (off[:2].sum() % 0.5)
    w = fbm(p * np.array([1.0, 1.0, 0.2], F32), 0.15, 2, c.foot, rot=10)
    dx = p[:, 0] - centre[0] + F32(0.006) * w[:, 0]
    dy = p[:, 1] - centre[1] + F32(0.006) * w[:, 1]
    r = np.sqrt(dx * dx + dy * dy) + F32(0.002) * w[:, 2]
    ring = (r / F32(0.022)) % F32(1.0)
    late = _smoothstep(0.55, 0.85, ring) * _smoothstep(1.0, 0.9, ring)
    fib = noise(p * np.array([1 / 0.0025, 1 / 0.0025, 1 / 0.15], F32))[:, 0]
    ff = _fade(0.0025, c.foot)
    ff = 1.0 if np.ndim(ff) == 0 else ff[:, 0]
    kd = _mix(_lin(0.66, 0.46, 0.28), _lin(0.44, 0.27, 0.14), late * F32(0.85))
    kd = kd * (F32(1.0) + F32(0.10) * fib * ff)[:, None]
    kd = kd * (F32(1.0) + F32(0.12) * w[:, 3])[:, None]
    wthr = F32(c.look.weathering)
    kd = _mix(kd, _lin(0.52, 0.50, 0.47) * (F32(0.85) + F32(0.3) * late[:, None]),
              np.clip(wthr * F32(0.9) * (F32(0.6) + F32(0.4) * c.cav), 0, 1))
    kd = _weather(c, kd, w[:, 3])
    gloss = _full(N, 0.4) - F32(0.3) * wthr
    return Surface(kd, np.full((N, 3), 0.04, F32), gloss, _full(N, 0.05), 0.03, 0.004)


def _mat_steel(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    brush = noise(p * np.array([1 / 0.12, 1 / 0.12, 1 / 0.0012], F32))[:, 0]  # horizontal brushing
    bf = _fade(0.0012, c.foot)
    bf = 1.0 if np.ndim(bf) == 0 else bf[:, 0]
    w = fbm(p, 0.2, 3, c.foot, rot=2)
    f0 = np.broadcast_to(_lin(0.72, 0.72, 0.74), (N, 3)) * (F32(1.0) + F32(0.06) * brush * bf + F32(0.04) * w[:, 0])[:, None]
    kd = np.broadcast_to(_lin(0.10, 0.10, 0.105), (N, 3)).copy()
    wthr = F32(c.look.weathering)
    spots = _smoothstep(1.0, 1.6, w[:, 1]) * wthr * F32(0.25)
    kd = _weather(c, kd + F32(0.15) * spots[:, None], w[:, 2])
    gloss = F32(0.66) - F32(0.25) * wthr - F32(0.1) * spots
    return Surface(kd, f0.astype(F32), gloss.astype(F32), _full(N, 0.0), 0.0, 0.01)


def _glaze(c: _Ctx, col_a, col_b) -> Surface:
    p, N = c.p, c.N
    w = fbm(p, 0.4, 2, c.foot, rot=4, gain=0.4)
    kd = _mix(col_a, col_b, _smoothstep(-1.2, 1.2, w[:, 0]))
    kd = _mix(kd, kd * F32(0.72), (F32(1.0) - c.cav) * F32(0.8))  # glaze pools darker in recesses
    cr = fbm(p, 0.03, 2, c.foot, rot=7)
    crack = _smoothstep(0.06, 0.0, np.abs(cr[:, 1])) * F32(0.35)
    cf = _fade(0.01, c.foot)
    crack = crack * (1.0 if np.ndim(cf) == 0 else cf[:, 0])
    kd = kd * (F32(1.0) - crack)[:, None]
    kd = _weather(c, kd, w[:, 2] * F32(0.5))
    return Surface(kd, np.full((N, 3), 0.05, F32), _full(N, 0.95) - F32(0.2) * F32(c.look.weathering),
                   _full(N, 0.1), 0.004, 0.05)


def _mat_ceramic(c: _Ctx) -> Surface:  # celadon glaze
    return _glaze(c, _lin(0.56, 0.70, 0.60), _lin(0.64, 0.76, 0.66))


def _mat_porcelain(c: _Ctx) -> Surface:  # white glaze
    return _glaze(c, _lin(0.90, 0.90, 0.88), _lin(0.94, 0.94, 0.93))


def _mat_jade(c: _Ctx) -> Surface:
    p, N = c.p, c.N
    w = fbm(p, 0.5, 3, c.foot, rot=1, gain=0.4)
    kd = _mix(_lin(0.36, 0.60, 0.44), _lin(0.44, 0.68, 0.50), _smoothstep(-1.2, 1.2, w[:, 0]))
    kd = _mix(kd, _lin(0.70, 0.82, 0.70), _smoothstep(0.5, 2.0, w[:, 1]) * F32(0.3))  # cloudy inclusions
    kd = _mix(kd, _lin(0.24, 0.46, 0.30), _smoothstep(0.7, 2.0, w[:, 2]) * F32(0.25))
    return Surface(kd, np.full((N, 3), 0.05, F32), _full(N, 0.8), _full(N, 0.7), 0.003, 0.03,
                   translucency=0.6)


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
}


# ----------------------------------------------------------------------------------------------
# ground, walls, background
# ----------------------------------------------------------------------------------------------
def _hash2(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Integer hash of two int arrays → float32 in [0, 1)."""
    h = ix.astype(np.uint32) * np.uint32(0x8DA6B343) ^ iy.astype(np.uint32) * np.uint32(0xD8163841)
    h ^= np.uint32((salt * 0xCB1AB31F) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(F32) / F32(1 << 24)


def _slabs(p, size_x, size_y, joint, salt, bond=True):
    """Paving slabs: per-slab random value (N,), joint mask (N,) 1 in the joint."""
    y = p[:, 1] / F32(size_y)
    iy = np.floor(y)
    x = p[:, 0] / F32(size_x) + (F32(0.5) * (iy % 2) if bond else 0)
    ix = np.floor(x)
    fx, fy = (x - ix) * F32(size_x), (y - iy) * F32(size_y)
    dx = np.minimum(fx, F32(size_x) - fx)
    dy = np.minimum(fy, F32(size_y) - fy)
    d = np.minimum(dx, dy)
    r = _hash2(ix.astype(np.int64), iy.astype(np.int64), salt)
    return r, d


def _ground(kind: str, p, foot, look: Look):
    """Ground surface at points p (N, 3) (z = 0): (kd, f0, gloss, bump, bump_scale)."""
    N = len(p)
    w = fbm(p, 1.5, 3, foot, rot=3)
    if kind == "polished":
        kd = _mix(_lin(0.10, 0.10, 0.11), _lin(0.15, 0.15, 0.16), _smoothstep(-1, 1, w[:, 0]))
        r, d = _slabs(p, 1.2, 1.2, 0.002, 3, bond=False)
        kd = kd * (F32(0.9) + F32(0.2) * r)[:, None]
        kd = kd * np.where(d < F32(0.0015), F32(0.5), F32(1.0))[:, None]
        return kd, 0.05, 0.9, 0.002, 0.2
    if kind in ("paving", "flagstone"):
        size = (0.6, 0.6) if kind == "paving" else (0.9, 0.6)
        r, d = _slabs(p, size[0], size[1], 0.005, 1 if kind == "paving" else 2)
        base = _lin(0.66, 0.64, 0.60) if kind == "paving" else _lin(0.52, 0.51, 0.50)
        kd = base * (F32(0.82) + F32(0.3) * r)[:, None]
        kd = kd * (F32(1.0) + F32(0.12) * w[:, 0] + F32(0.06) * w[:, 1])[:, None]
        jw = F32(0.006) + F32(0.002) * w[:, 2]
        joint = _smoothstep(1.0, 0.6, d / jw)
        kd = _mix(kd, kd * F32(0.35), joint)
        kd = _mix(kd, _lin(0.35, 0.36, 0.28), _smoothstep(0.8, 1.4, w[:, 3]) * F32(0.5) * F32(look.weathering + 0.3))
        return kd, 0.04, 0.2 if kind == "paving" else 0.35, 0.25, 0.01
    if kind == "grass":
        blades = fbm(p, 0.02, 2, foot, rot=6)
        kd = _mix(_lin(0.20, 0.34, 0.10), _lin(0.34, 0.45, 0.16), _smoothstep(-1, 1, w[:, 0]))
        kd = _mix(kd, _lin(0.52, 0.50, 0.28), _smoothstep(0.6, 1.4, w[:, 1]) * F32(0.6))
        kd = kd * (F32(1.0) + F32(0.35) * blades[:, 0])[:, None]
        return kd.clip(0, 1), 0.02, 0.05, 0.9, 0.01
    if kind == "concrete":
        fine = fbm(p, 0.01, 2, foot, rot=8)
        kd = _mix(_lin(0.60, 0.59, 0.57), _lin(0.68, 0.67, 0.65), _smoothstep(-1, 1, w[:, 0]))
        kd = kd * (F32(1.0) + F32(0.08) * fine[:, 0])[:, None]
        kd = _mix(kd, _lin(0.40, 0.40, 0.39), _smoothstep(0.8, 1.6, w[:, 1]) * F32(0.5))
        r, d = _slabs(p, 3.0, 3.0, 0.004, 4, bond=False)
        kd = kd * np.where(d < F32(0.004), F32(0.45), F32(1.0))[:, None]
        return kd, 0.04, 0.15, 0.1, 0.005
    if kind == "rock":
        r = fbm(p, 0.8, 4, foot, rot=2, gain=0.55)
        kd = _mix(_lin(0.40, 0.37, 0.33), _lin(0.56, 0.53, 0.49), _smoothstep(-1.2, 1.2, r[:, 0]))
        crack = _smoothstep(0.08, 0.0, np.abs(r[:, 1]))
        kd = kd * (F32(1.0) - F32(0.5) * crack)[:, None]
        kd = _mix(kd, _lin(0.40, 0.45, 0.25), _smoothstep(0.7, 1.3, r[:, 2]) * F32(0.5))
        return kd, 0.03, 0.1, 0.6, 0.03
    raise ValueError(kind)


def _wall_albedo(kind: str, s, z, p, foot, height):
    """Wall texture at arc length s, height z (both (N,)) and 3D point p: kd (N, 3)."""
    N = len(s)
    w = fbm(p, 0.8, 2, foot, rot=4)
    streak = noise(p * np.array([1 / 0.15, 1 / 0.15, 1 / 1.5], F32))[:, 0]
    if kind == "plaster":
        kd = _mix(_lin(0.80, 0.78, 0.72), _lin(0.86, 0.84, 0.78), _smoothstep(-1, 1, w[:, 0]))
        kd = kd * (F32(1.0) - F32(0.12) * np.maximum(streak, 0))[:, None]
        brick = z < F32(0.6)
        if np.any(brick):
            r, d = _slabs(np.stack([s, z, z], 1), 0.24, 0.06, 0.005, 7)
            bk = _lin(0.42, 0.42, 0.43) * (F32(0.85) + F32(0.3) * r)[:, None]
            bk = _mix(bk, _lin(0.62, 0.61, 0.58), _smoothstep(0.008, 0.004, d))
            kd = np.where(brick[:, None], bk, kd)
        kd = np.where((z > F32(height - 0.22))[:, None], _lin(0.25, 0.25, 0.27), kd)
        return kd
    if kind == "temple":
        kd = _mix(_lin(0.62, 0.16, 0.11), _lin(0.70, 0.24, 0.16), _smoothstep(-1, 1, w[:, 0]))
        kd = kd * (F32(1.0) - F32(0.15) * np.maximum(streak, 0))[:, None]
        kd = np.where((z < F32(0.5))[:, None], _lin(0.50, 0.49, 0.47) * (1 + 0.1 * w[:, 1:2]), kd)
        kd = np.where((z > F32(height - 0.35))[:, None], _lin(0.80, 0.62, 0.18) * (1 + 0.2 * w[:, 2:3]), kd)
        return kd
    if kind == "hedge":
        leaves = fbm(p, 0.08, 3, foot, rot=1)
        kd = _mix(_lin(0.10, 0.22, 0.07), _lin(0.22, 0.40, 0.12), _smoothstep(-0.8, 0.8, leaves[:, 0]))
        kd = kd * (F32(0.4) + F32(0.6) * _smoothstep(-1.2, 0.2, leaves[:, 1]))[:, None]
        return kd
    if kind == "panel":
        kd = _mix(_lin(0.13, 0.13, 0.14), _lin(0.16, 0.16, 0.17), _smoothstep(-1, 1, w[:, 0]))
        joint = np.abs(((s / F32(1.2)) % F32(1.0)) - F32(0.5)) > F32(0.498)
        return kd * np.where(joint, F32(0.6), F32(1.0))[:, None]
    raise ValueError(kind)


@lru_cache(maxsize=8)
def _skyline_table(scale: float, rot: int) -> np.ndarray:
    a = np.linspace(-np.pi, np.pi, 4097)
    ring = np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], 1).astype(F32)
    return fbm(ring, scale, 5, None, rot=rot)[:, 0]


def _skyline(az: np.ndarray, scale: float, rot: int) -> np.ndarray:
    """A periodic 1D fBm of the azimuth (radians), from a cached table."""
    tab = _skyline_table(scale, rot)
    x = (az + F32(np.pi)) * F32(4096 / (2 * np.pi))
    i = np.clip(x.astype(np.int32), 0, 4095)
    f = x - i
    return tab[i] + (tab[i + 1] - tab[i]) * f


def _background(st: Setting, d: np.ndarray, sun: np.ndarray, sun_col: np.ndarray, look: Look) -> np.ndarray:
    """Radiance (N, 3) for rays d (N, 3) that hit nothing."""
    N = len(d)
    el = np.clip(d[:, 2], -1.0, 1.0)
    hor = np.asarray(st.horizon, F32)
    zen = np.asarray(st.zenith, F32)
    t = np.clip(el, 0, 1) ** F32(0.55)
    col = _mix(hor, zen, t)
    if st.above == "dark":
        spot = np.clip(d @ sun, 0, 1) ** F32(4) * F32(0.02)
        return col + spot[:, None] * sun_col
    glow = st.sun_glow * (np.clip(d @ sun, 0, 1) ** F32(12) * F32(0.6) + np.clip(d @ sun, 0, 1) ** F32(400) * F32(6.0))
    col = col + (glow * F32(look.sun_intensity))[:, None] * sun_col
    # clouds: soft noise on the sky dome
    dd = d / np.maximum(d[:, 2:3], F32(0.05))
    cl = fbm(dd * F32(1.0), 1.2, 3, None, rot=6)[:, 0]
    cloud = _smoothstep(0.0, 1.2, cl) * F32(0.55) * (el > 0)
    col = _mix(col, hor * F32(1.05), cloud)
    az = np.arctan2(d[:, 0], -d[:, 1])
    if st.above == "ridges":
        h1 = F32(0.06) + F32(0.05) * _skyline(az, 1.5, 1)
        h2 = F32(0.025) + F32(0.03) * _skyline(az, 1.0, 2)
        far = _mix(hor, _lin(0.45, 0.52, 0.60), F32(0.6))
        near = _mix(hor, _lin(0.28, 0.32, 0.30), F32(0.7))
        col = np.where((el < h1)[:, None], far, col)
        col = np.where((el < h2)[:, None], near, col)
    elif st.above == "trees":
        h = F32(0.34) + F32(0.10) * _skyline(az, 0.25, 3)
        f = fbm(d * F32(6.0), 1.0, 3, None, rot=4)
        tree = _mix(_lin(0.09, 0.17, 0.06), _lin(0.22, 0.36, 0.12), _smoothstep(-1, 1, f[:, 0]))
        tree = tree * (F32(0.5) + F32(0.5) * _smoothstep(-1, 0.5, f[:, 1]))[:, None]
        col = np.where((el < h + F32(0.03) * f[:, 2])[:, None], tree * F32(1.2), col)
    return col


# ----------------------------------------------------------------------------------------------
# mesh preprocessing
# ----------------------------------------------------------------------------------------------
def _corner_normals(V: np.ndarray, F: np.ndarray, crease_deg: float = 35.0) -> np.ndarray:
    """Per (triangle, corner) normals: angle-weighted average over the faces at that vertex whose
    normal is within `crease_deg` of this face's (sharp edges stay sharp). (M, 3, 3) float32."""
    V = V.astype(np.float64)
    F = np.asarray(F, dtype=np.int64)
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    area = np.linalg.norm(fn, axis=1)
    fu = fn / np.maximum(area, 1e-30)[:, None]
    M = len(F)
    # interior angle of each corner: the weight of its face in the vertex normal
    P = V[F]
    e1 = P[:, [1, 2, 0]] - P
    e2 = P[:, [2, 0, 1]] - P
    cosang = np.einsum("mki,mki->mk", e1, e2) / np.maximum(
        np.linalg.norm(e1, axis=2) * np.linalg.norm(e2, axis=2), 1e-30)
    wcorner = np.arccos(np.clip(cosang, -1.0, 1.0)).ravel()  # (3M,) in corner order
    vid = F.ravel()
    fid = np.repeat(np.arange(M), 3)
    order = np.argsort(vid, kind="stable")
    sv = vid[order]
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
    sizes = np.diff(np.r_[starts, len(sv)])
    out = np.zeros((3 * M, 3))
    cosc = math.cos(math.radians(crease_deg))
    small = sizes <= 64
    # small groups: all pairs at once
    gi = np.flatnonzero(small)
    if len(gi):
        gs, gz = starts[gi], sizes[gi]
        cstart = np.repeat(gs, gz)  # per sorted corner in those groups
        csize = np.repeat(gz, gz)
        cidx = cstart + (np.arange(gz.sum()) - np.repeat(np.cumsum(gz) - gz, gz))
        ii = np.repeat(cidx, csize)
        jj = np.repeat(cstart, csize) + (np.arange(csize.sum()) - np.repeat(np.cumsum(csize) - csize, csize))
        fi, fj = fid[order[ii]], fid[order[jj]]
        ok = np.einsum("ij,ij->i", fu[fi], fu[fj]) >= cosc
        contrib = fu[fj] * (ok * wcorner[order[jj]])[:, None]
        acc = np.zeros((3 * M, 3))
        for k in range(3):
            acc[:, k] = np.bincount(ii, weights=contrib[:, k], minlength=3 * M)
        out[order[cidx]] = acc[cidx]
    for g in np.flatnonzero(~small):  # big fans: one matrix each
        idx = order[starts[g]:starts[g] + sizes[g]]
        f = fid[idx]
        ok = (fu[f] @ fu[f].T) >= cosc
        out[idx] = ok.astype(np.float64) @ (fu[f] * wcorner[idx][:, None])
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-30)
    bad = ~np.isfinite(out).all(1) | (np.linalg.norm(out, axis=1) < 0.5)
    out[bad] = np.repeat(fu, 3, axis=0)[bad]
    return out.reshape(M, 3, 3).astype(F32)


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


# ----------------------------------------------------------------------------------------------
# renderer
# ----------------------------------------------------------------------------------------------
def _ao_dirs(k: int) -> np.ndarray:
    """k cosine-weighted directions in the local hemisphere (z = normal), a Fibonacci spiral."""
    i = np.arange(k) + 0.5
    r = np.sqrt(i / k)
    phi = i * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(phi), r * np.sin(phi), np.sqrt(1 - r * r)], 1).astype(F32)


def _frame(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.where((np.abs(n[:, 2]) < 0.9)[:, None], np.array([0, 0, 1], F32), np.array([1, 0, 0], F32))
    t1 = _normalize(np.cross(a, n))
    t2 = np.cross(n, t1)
    return t1, t2


class Renderer:
    """Renders one sculpture from many cameras; builds the Embree scene once.

    `threads`: Embree threads for ray casting (0 = all cores; use 1 in a process pool).
    `ao_samples`: ambient-occlusion rays per visible point near the sculpture (0 = off); the
    directions are a function of the 3D point, so occlusion agrees between views.
    """

    def __init__(self, sculpture: Sculpture, *, threads: int = 0, ao_samples: int = 6):
        import open3d as o3d

        self._o3d = o3d
        self.sculpture = sculpture
        self.threads = int(threads)
        self.ao_samples = int(ao_samples)
        self.timings: dict | None = None  # set to {} to collect per-section times
        self._t_last = 0.0
        V = np.ascontiguousarray(sculpture.vertices, dtype=F32)
        Fc = np.ascontiguousarray(sculpture.triangles, dtype=np.uint32)
        self.centre, self.radius = _sculpture_frame(sculpture)
        lo, hi = sculpture.bounds
        self.lo, self.hi = np.asarray(lo, F32), np.asarray(hi, F32)
        self.size = float(np.max(hi - lo))
        scene = o3d.t.geometry.RaycastingScene(nthreads=self.threads) if _scene_takes_threads(o3d) \
            else o3d.t.geometry.RaycastingScene()
        self.obj_id = scene.add_triangles(o3d.core.Tensor(V), o3d.core.Tensor(Fc))
        L = float(max(200.0, 50.0 * self.radius))
        gv = np.array([[-L, -L, 0], [L, -L, 0], [L, L, 0], [-L, L, 0]], F32)
        gf = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
        self.ground_id = scene.add_triangles(o3d.core.Tensor(gv), o3d.core.Tensor(gf))
        self.scene = scene
        self.cnormals = _corner_normals(V, sculpture.triangles)
        # glyph lookup
        self.gbox = np.asarray(sculpture.glyph_box, dtype=np.float64)
        ras = np.asarray(sculpture.glyph_raster)
        if ras.ndim != 2 or ras.size == 0:
            ras = np.zeros((1, 1), np.int16)
        self.raster = ras.astype(np.int16)
        self.raster_dil = _dilate_ids(self.raster, 2)
        ext = self.gbox[1::2] - self.gbox[0::2]
        self.geps = float(1e-3 * np.linalg.norm(ext) + 1e-5)

    def _tick(self, name):
        """Section timer: with `self.timings` a dict, accumulates seconds per section name."""
        if self.timings is None:
            return
        now = time.perf_counter()
        if name is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self._t_last
        self._t_last = now

    # -- ray casting helpers -----------------------------------------------------------------
    def _cast(self, o: np.ndarray, d: np.ndarray):
        o3d = self._o3d
        rays = np.empty((len(d), 6), F32)
        rays[:, :3] = o
        rays[:, 3:] = d
        ans = self.scene.cast_rays(o3d.core.Tensor(rays), nthreads=self.threads)
        return ans

    def _occluded(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        o3d = self._o3d
        rays = np.empty((len(d), 6), F32)
        rays[:, :3] = o
        rays[:, 3:] = d
        occ = self.scene.test_occlusions(o3d.core.Tensor(rays), nthreads=self.threads)
        return occ.numpy().astype(bool)

    def _wall_hits(self, st: Setting, o: np.ndarray, d: np.ndarray, tmax: np.ndarray):
        """Analytic cylinder wall: (hit (N,) bool, t (N,)), only where the origin is inside it."""
        N = len(d)
        if st.wall is None:
            return np.zeros(N, bool), None, 0.0
        Rw = max(st.wall_radius, 3.0 * self.radius)
        c = self.centre[:2].astype(F32)
        ox = (o[..., 0] - c[0]).astype(F32) * np.ones(N, F32)
        oy = (o[..., 1] - c[1]).astype(F32) * np.ones(N, F32)
        if np.any(ox * ox + oy * oy >= F32(Rw * Rw * 0.98)):
            inside = ox * ox + oy * oy < F32(Rw * Rw * 0.98)
        else:
            inside = np.ones(N, bool)
        a = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]
        b = ox * d[:, 0] + oy * d[:, 1]
        cc = ox * ox + oy * oy - F32(Rw * Rw)
        disc = b * b - a * cc
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-b + np.sqrt(np.maximum(disc, 0))) / np.maximum(a, F32(1e-12))
        oz = (o[..., 2] * np.ones(N)).astype(F32)
        z = oz + t * d[:, 2]
        hit = inside & (a > 1e-9) & (t > 0) & (t < tmax) & (z >= 0) & (z <= F32(st.wall_height))
        return hit, t, Rw

    # -- shading -------------------------------------------------------------------------------
    def _surface(self, look, p, n, foot, cav, secondary=False):
        R, off = _seed_offset(look.seed)
        pt = (p @ R.T + off).astype(F32)
        ctx = _Ctx(pt, n, foot, cav, look, secondary)
        s = _MATERIAL_FN[look.material](ctx)
        s.kd = np.clip(s.kd * np.asarray(look.tint, F32), 0, 1).astype(F32)
        if look.material in ("bronze", "steel"):
            s.f0 = np.clip(s.f0 * np.asarray(look.tint, F32), 0, 1).astype(F32)
        return s, pt

    def albedo(self, points, normals, look: Look, *, footprint=None, cavity=None) -> np.ndarray:
        """Diffuse albedo (N, 3), linear RGB, of the sculpture's material at world points.

        A function of the 3D point (and normal, cavity) only: the same in every view. `footprint`
        (metres per pixel, (N,)) fades unresolvable detail as in `render`; `cavity` (N,) is the
        ambient-occlusion openness (1 = open, the default).
        """
        p = np.ascontiguousarray(points, dtype=F32).reshape(-1, 3)
        n = _normalize(np.ascontiguousarray(normals, dtype=F32).reshape(-1, 3))
        cav = np.ones(len(p), F32) if cavity is None else np.asarray(cavity, F32)
        foot = None if footprint is None else np.asarray(footprint, F32)
        return self._surface(look, p, n, foot, cav)[0].kd

    def _glyph_lookup(self, p: np.ndarray, ng: np.ndarray) -> np.ndarray:
        """Stroke value (N,) int16 of the glyph raster at hit points p (0 = not the glyph)."""
        x0, x1, y0, y1, z0, z1 = self.gbox
        e = self.geps
        inside = ((p[:, 0] >= x0 - e) & (p[:, 0] <= x1 + e) & (p[:, 1] >= y0 - e) & (p[:, 1] <= y1 + e)
                  & (p[:, 2] >= z0 - e) & (p[:, 2] <= z1 + e))
        out = np.zeros(len(p), np.int16)
        if not np.any(inside):
            return out
        Rr = self.raster.shape[0]
        Rc = self.raster.shape[1]
        q = p[inside].astype(np.float64)
        u = (q[:, 0] - x0) / max(x1 - x0, 1e-12)
        v = (q[:, 2] - z0) / max(z1 - z0, 1e-12)
        col = np.clip(np.floor(u * Rc), 0, Rc - 1).astype(np.int64)
        row = np.clip(np.floor((1.0 - v) * Rr), 0, Rr - 1).astype(np.int64)
        facing = np.abs(ng[inside, 1]) >= 0.5
        val = np.where(facing, self.raster[row, col], self.raster_dil[row, col])
        out[inside] = val
        return out

    def _ao(self, p, ng, ns):
        """Ambient occlusion (N,) in [0, 1] (1 = open) with a position-seeded direction set."""
        k = self.ao_samples
        N = len(p)
        if k <= 0 or N == 0:
            return np.ones(N, F32)
        r_ao = F32(np.clip(0.12 * self.size, 0.03, 0.5))
        t1, t2 = _frame(ng)
        ang = noise(p * F32(1.0 / 0.004))[:, 0] * F32(4.0)
        ca, sa = np.cos(ang), np.sin(ang)
        dirs = _ao_dirs(k)
        o = (p + ng * F32(1e-4 + 2e-5 * self.size)).astype(F32)
        D = np.empty((N, k, 3), F32)
        for j in range(k):
            a, b, c = dirs[j]
            x = a * ca - b * sa
            y = a * sa + b * ca
            D[:, j] = x[:, None] * t1 + y[:, None] * t2 + F32(c) * ng
        D = D.reshape(-1, 3)
        O = np.repeat(o, k, axis=0)
        ans = self._cast(O, D)
        t = ans["t_hit"].numpy().reshape(N, k)
        occ = np.clip(F32(1.0) - t / r_ao, 0.0, 1.0) ** 2
        return (F32(1.0) - occ.mean(axis=1)).astype(F32)

    def render(self, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
        st = _SETTINGS[look.setting]
        W, H = camera.width, camera.height
        N = W * H
        tm = self._tick
        tm(None)
        o, d = camera_rays(camera)
        o32 = o.astype(F32)
        ans = self._cast(o32[None, :], d)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        prim = ans["primitive_ids"].numpy()
        uvs = ans["primitive_uvs"].numpy()
        ngeo = ans["primitive_normals"].numpy()

        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o32[None, :], d, np.where(obj, F32(0), t))
        gnd &= ~wall
        bg = ~(obj | gnd | wall)
        tm("cast")

        # pixel footprint (metres per pixel at unit distance)
        fpx = F32(1.0 / float(camera.K[0, 0]))

        sun = direction_from_angles(look.azimuth, look.elevation).astype(F32)
        sun_col = _sun_colour(look.warmth) * F32(look.sun_intensity) * F32(1.05)
        fill_dir = direction_from_angles(look.azimuth + 180.0, 25.0).astype(F32)
        fill_col = (_sun_colour(-0.3) * F32(0.12) * F32(look.ambient / 0.35)).astype(F32)
        sky_l = np.asarray(st.sky_light, F32) * F32(look.ambient)
        gnd_l = np.asarray(st.ground_light, F32) * F32(look.ambient)

        hdr = np.zeros((N, 3), F32)
        depth = np.full(N, np.inf, F32)
        depth[obj | gnd] = t[obj | gnd]
        if np.any(wall):
            depth[wall] = tw[wall]

        # ---------- primary surfaces: gather points, normals, materials ----------------------
        idx_o = np.flatnonzero(obj)
        idx_g = np.flatnonzero(gnd)
        idx_w = np.flatnonzero(wall)
        glyph_val = np.zeros(N, np.int16)

        def footprint(idx, tt, nn):
            cosang = np.abs(np.einsum("ij,ij->i", d[idx], nn))
            return (tt * fpx / np.maximum(cosang, F32(0.25))).astype(F32)

        parts = []
        if len(idx_o):
            tt = t[idx_o]
            p = o32 + d[idx_o] * tt[:, None]
            ng = ngeo[idx_o].astype(F32)
            flip = np.einsum("ij,ij->i", ng, d[idx_o]) > 0
            ng[flip] = -ng[flip]
            cn = self.cnormals[prim[idx_o]]
            bu, bv = uvs[idx_o, 0:1], uvs[idx_o, 1:2]
            ns = cn[:, 0] * (F32(1.0) - bu - bv) + cn[:, 1] * bu + cn[:, 2] * bv
            ns = _normalize(ns)
            ns[flip] = -ns[flip]
            gv = self._glyph_lookup(p, ng)
            glyph_val[idx_o] = gv
            foot = footprint(idx_o, tt, ng)
            tm("object")
            cav = self._ao(p, ng, ns)
            tm("ao")
            s, pt = self._surface(look, p, ns, foot, cav)
            ns = self._bump(ns, pt, s.bump, s.bump_scale, foot)
            gl = gv != 0
            if look.glyph_paint is not None and np.any(gl):
                col, f0, gloss, metal = _PAINT[look.glyph_paint]
                wear = _smoothstep(0.3, 1.2, fbm(pt[gl], 0.02, 2, foot[gl], rot=9)[:, 0] + F32(look.weathering) * 1.2 - 0.6)
                wear = wear * F32(min(1.0, look.weathering * 2))
                kdp = col * (F32(1) - F32(0.8) * F32(metal))
                s.kd[gl] = _mix(np.broadcast_to(kdp, (gl.sum(), 3)), s.kd[gl], wear)
                s.f0[gl] = _mix(np.broadcast_to(col if metal else np.full(3, f0, F32), (gl.sum(), 3)), s.f0[gl], wear)
                s.gloss[gl] = F32(gloss) * (1 - wear) + s.gloss[gl] * wear
                s.wrap[gl] = 0.0
            parts.append((idx_o, p, ng, ns, s.kd, s.f0, s.gloss, s.wrap, s.translucency, cav))
            tm("material")
        if len(idx_g):
            tt = t[idx_g]
            p = o32 + d[idx_g] * tt[:, None]
            p[:, 2] = 0.0
            ng = np.broadcast_to(np.array([0, 0, 1], F32), (len(idx_g), 3)).copy()
            foot = footprint(idx_g, tt, ng)
            kd, f0, gloss, bump, bscale = _ground(st.ground, p, foot, look)
            # ambient occlusion only near the sculpture
            cav = np.ones(len(idx_g), F32)
            near = np.flatnonzero(
                (p[:, 0] > self.lo[0] - self.size * 0.15) & (p[:, 0] < self.hi[0] + self.size * 0.15)
                & (p[:, 1] > self.lo[1] - self.size * 0.15) & (p[:, 1] < self.hi[1] + self.size * 0.15))
            tm("ground")
            if len(near):
                cav[near] = self._ao(p[near], ng[near], ng[near])
            tm("ao")
            ns = self._bump(ng, p, bump, bscale, foot, octaves=1)
            n = len(idx_g)
            parts.append((idx_g, p, ng, ns, kd.astype(F32), np.full((n, 3), f0, F32), _full(n, gloss), _full(n, 0.0),
                          0.0, cav))
            tm("ground")
        if len(idx_w):
            tt = tw[idx_w]
            p = o32 + d[idx_w] * tt[:, None]
            c = self.centre[:2].astype(F32)
            ng = np.zeros((len(idx_w), 3), F32)
            ng[:, :2] = -(p[:, :2] - c) / F32(Rw)
            ang = np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]) * F32(Rw)
            foot = footprint(idx_w, tt, ng)
            kd = _wall_albedo(st.wall, ang, p[:, 2], p, foot, st.wall_height)
            ns = self._bump(ng, p, 0.15, 0.01, foot, octaves=1)
            n = len(idx_w)
            parts.append((idx_w, p, ng, ns, kd.astype(F32), np.full((n, 3), 0.03, F32), _full(n, 0.1), _full(n, 0.0),
                          0.0, np.ones(n, F32)))
            tm("wall")

        for (idx, p, ng, ns, kd, f0, gloss, wrap, tl, cav) in parts:
            v = -d[idx]
            ndl = ns @ sun
            # shadows: from the geometric normal side, only where the sun can be facing
            lit = np.ones(len(idx), F32)
            front = (ndl > -0.3) & ((ng @ sun) > -0.05)
            if shadows and np.any(front):
                fi = np.flatnonzero(front)
                if idx is idx_w:
                    pass
                else:
                    orig = p[fi] + ng[fi] * F32(2e-4 + 1e-5 * self.size) + sun * F32(1e-4)
                    tm("shade")
                    occ = self._occluded(orig, np.broadcast_to(sun, (len(fi), 3)))
                    lit[fi[occ]] = 0.0
                    tm("shadows")
            lit[(ng @ sun) <= -0.05] = 0.0
            wrapv = wrap
            diff = np.clip((ndl + wrapv) / (F32(1.0) + wrapv), 0, 1) * lit
            hemi = _mix(gnd_l, sky_l, F32(0.5) + F32(0.5) * ns[:, 2]) * cav[:, None]
            fill = np.clip(ns @ fill_dir, 0, 1)[:, None] * fill_col
            rad = kd * (diff[:, None] * sun_col + hemi + fill)
            if tl > 0:  # translucency: light leaking through, softened
                back = np.clip(-ndl, 0, 1) * F32(0.5) + F32(0.5)
                rim = F32(0.6) + F32(0.8) * (F32(1.0) - np.clip(np.einsum("ij,ij->i", ns, v), 0, 1))
                glow = (F32(tl) * back * rim * (F32(0.4) + F32(0.6) * lit))[:, None] * sun_col
                rad += kd * kd * (glow + F32(tl) * F32(0.5) * (sky_l + gnd_l))
            # specular (normalised Blinn-Phong, Schlick Fresnel)
            h = _normalize(sun + v)
            ndh = np.clip(np.einsum("ij,ij->i", ns, h), 0, 1)
            vdh = np.clip(np.einsum("ij,ij->i", v, h), 0, 1)
            shin = F32(2.0) ** (F32(2.0) + F32(10.0) * gloss)
            fres = f0 + (F32(1.0) - f0) * ((F32(1.0) - vdh) ** 5)[:, None]
            spec = ((shin + F32(8.0)) / F32(8.0)) * ndh ** shin * np.clip(ndl, 0, 1) * lit
            rad += fres * spec[:, None] * sun_col
            # reflections
            ndv = np.clip(np.einsum("ij,ij->i", ns, v), 0, 1)
            fr = f0 + (F32(1.0) - f0) * ((F32(1.0) - ndv) ** 5 * gloss * gloss)[:, None]
            sharp = _smoothstep(0.45, 0.9, gloss)
            if idx is idx_g:
                sharp = np.full(len(idx), F32(st.floor_gloss), F32)
            env_avg = (sky_l * F32(0.6) + gnd_l * F32(0.4))
            rad += fr * ((F32(1.0) - sharp) * cav)[:, None] * env_avg
            want = np.flatnonzero(sharp * fr.max(1) > 0.01)
            if len(want):
                rdir = _normalize(F32(2.0) * ndv[want, None] * ns[want] - v[want])
                rdir[:, 2] = np.where((idx is idx_g) & (rdir[:, 2] < 0.01), F32(0.01), rdir[:, 2])
                ro = p[want] + ng[want] * F32(3e-4 + 1e-5 * self.size)
                tm("shade")
                rc = self._secondary(ro, rdir, st, look, sun, sun_col, sky_l, gnd_l)
                tm("reflections")
                rad[want] += fr[want] * (sharp[want] * cav[want])[:, None] * rc
            hdr[idx] = rad
            tm("shade")

        if np.any(bg):
            hdr[bg] = _background(st, d[bg], sun, sun_col, look)
        tm("background")

        # haze and fog
        hit = ~bg
        if np.any(hit):
            sig = F32(st.haze) + F32(0.1 * look.fog)
            tt = depth[hit]
            att = np.exp(-sig * tt)[:, None]
            hazecol = np.asarray(st.horizon, F32)
            hdr[hit] = hdr[hit] * att + hazecol * (F32(1.0) - att)
        if look.fog > 0 and np.any(bg):
            hdr[bg] = _mix(hdr[bg], np.asarray(st.horizon, F32), F32(min(1.0, look.fog)) * F32(0.6))

        img = self._finish(hdr.reshape(H, W, 3), look, camera)
        tm("finish")
        obj2 = obj.reshape(H, W)
        gv2 = glyph_val.reshape(H, W)
        return Rendered(
            image=img,
            glyph_mask=gv2 != 0,
            stroke_mask=gv2.astype(np.int16),
            object_mask=obj2,
            depth=depth.reshape(H, W),
        )

    def _bump(self, n, p, amp, scale, foot, octaves=2):
        if amp <= 0:
            return n
        g = fbm(p, scale * 4, octaves, foot, rot=11, gain=0.55)[:, :3]
        g = g - np.einsum("ij,ij->i", g, n)[:, None] * n
        return _normalize(n + F32(amp) * g)

    def _secondary(self, o, dirs, st, look, sun, sun_col, sky_l, gnd_l):
        """Cheap radiance along reflected rays: flat-lit sculpture (material's coarse albedo),
        ground (coarse texture, lit by sun and sky), wall, or background."""
        ans = self._cast(o, dirs)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        ng = ans["primitive_normals"].numpy()
        out = np.zeros((len(dirs), 3), F32)
        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o, dirs, np.where(obj, F32(0), t))
        gnd &= ~wall
        bg = ~(obj | gnd | wall)
        big = lambda n: np.full(n, F32(0.05))  # noqa: E731 large footprint → coarse octaves only
        if np.any(obj):
            i = np.flatnonzero(obj)
            p = o[i] + dirs[i] * t[i, None]
            n = ng[i].astype(F32)
            n = np.where((np.einsum("ij,ij->i", n, dirs[i]) > 0)[:, None], -n, n)
            s, _ = self._surface(look, p, n, big(len(i)), np.ones(len(i), F32), secondary=True)
            light = np.clip(n @ sun, 0, 1)[:, None] * sun_col + _mix(gnd_l, sky_l, 0.5 + 0.5 * n[:, 2])
            out[i] = (s.kd + s.f0 * F32(0.5)) * light
        if np.any(gnd):
            i = np.flatnonzero(gnd)
            p = o[i] + dirs[i] * t[i, None]
            p[:, 2] = 0
            kd, *_ = _ground(st.ground, p, big(len(i)), look)
            out[i] = kd * (F32(max(sun[2], 0)) * sun_col + sky_l)
        if np.any(wall):
            i = np.flatnonzero(wall)
            p = o[i] + dirs[i] * tw[i, None]
            c = self.centre[:2].astype(F32)
            nn = np.zeros((len(i), 3), F32)
            nn[:, :2] = -(p[:, :2] - c) / F32(Rw)
            ang = np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]) * F32(Rw)
            kd = _wall_albedo(st.wall, ang, p[:, 2], p, big(len(i)), st.wall_height)
            out[i] = kd * (np.clip(nn @ sun, 0, 1)[:, None] * sun_col + sky_l)
        if np.any(bg):
            out[bg] = _background(st, dirs[bg], sun, sun_col, look)
        return out

    def _finish(self, hdr: np.ndarray, look: Look, camera: Camera) -> np.ndarray:
        H, W = hdr.shape[:2]
        x = hdr * F32(look.exposure)
        # ACES filmic fit (Narkowicz)
        x = (x * (F32(2.51) * x + F32(0.03))) / (x * (F32(2.43) * x + F32(0.59)) + F32(0.14))
        x = np.clip(x, 0.0, 1.0)
        x = _SRGB_LUT[(x * F32(_LUT_N - 1) + F32(0.5)).astype(np.int32)]
        if look.vignette > 0:
            yy = (np.arange(H, dtype=F32) + F32(0.5) - F32(H / 2)) / F32(max(H, W) / 2)
            xx = (np.arange(W, dtype=F32) + F32(0.5) - F32(W / 2)) / F32(max(H, W) / 2)
            r2 = yy[:, None] ** 2 + xx[None, :] ** 2
            x = x * (F32(1.0) - F32(look.vignette) * F32(0.5) * r2)[:, :, None]
        if look.blur > 0:
            b = F32(min(look.blur, 1.0))
            xp = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
            bx = xp[:, :-2] * F32(0.25) + xp[:, 1:-1] * F32(0.5) + xp[:, 2:] * F32(0.25)
            by = bx[:-2] * F32(0.25) + bx[1:-1] * F32(0.5) + bx[2:] * F32(0.25)
            x = x + (by - x) * b
        if look.noise_sigma > 0:
            # a window of a fixed noise tile at a position drawn from (seed, camera): cheap and
            # different in every view
            tile = _noise_tile()
            T = tile.shape[0]
            rng = np.random.default_rng([int(look.seed) & 0xFFFFFFFF, _camera_key(camera)])
            oy, ox = (int(v) for v in rng.integers(0, T, 2))
            if H > T or W > T:
                reps = (-(-(H + oy) // T), -(-(W + ox) // T), 1)
                tile = np.tile(tile, reps)
            else:
                tile = np.pad(tile, ((0, H), (0, W), (0, 0)), mode="wrap")
            nz = tile[oy:oy + H, ox:ox + W]
            sig = F32(look.noise_sigma) * (F32(0.5) + F32(0.7) * np.sqrt(np.clip(x, 0, 1)))
            x = x + sig * nz
        return np.clip(x * F32(255.0) + F32(0.5), 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """(512, 512, 3) float32 sensor noise: correlated luminance plus weaker chroma."""
    rng = np.random.default_rng(0x5E50)
    lum = rng.standard_normal((512, 512, 1), dtype=F32)
    chroma = rng.standard_normal((512, 512, 3), dtype=F32)
    return np.ascontiguousarray(F32(0.8) * lum + F32(0.45) * chroma)


_LUT_N = 16384
_lut_x = np.linspace(0.0, 1.0, _LUT_N)
_SRGB_LUT = np.where(_lut_x <= 0.0031308, _lut_x * 12.92, 1.055 * _lut_x ** (1 / 2.4) - 0.055).astype(F32)


def _camera_key(camera: Camera) -> int:
    b = np.ascontiguousarray(camera.K, np.float64).tobytes() + np.ascontiguousarray(
        camera.world_to_cam, np.float64).tobytes() + f"{camera.width}x{camera.height}".encode()
    return zlib.crc32(b)


def _scene_takes_threads(o3d) -> bool:
    try:
        doc = o3d.t.geometry.RaycastingScene.__init__.__doc__ or ""
    except Exception:  # pragma: no cover
        return False
    return "nthreads" in doc


def render(sculpture: Sculpture, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
    """Render one view (builds a `Renderer`; reuse one to render many views of a sculpture)."""
    return Renderer(sculpture).render(camera, look, shadows=shadows)

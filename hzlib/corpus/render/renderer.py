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
  occlusion (a fixed, position-seeded set of directions: the same at a point in every view; by
  default traced for one checkerboard colour of the pixels and for pixels at edges or where the
  occlusion changes quickly, the other pixels taking the mean of their neighbours), a fill
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
Internally points, normals and colours are component-major arrays (3, N) (numpy's loops are then
long and contiguous), textures are evaluated only on the pixels that need them (octaves finer than
the footprint are skipped per pixel, noise channels that a material does not use are not
interpolated), occlusion rays are first tested up to the occlusion radius and only the blocked
ones cast, and small matrix products avoid BLAS (whose thread pool would compete with the other
workers of a process pool).
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from ..types import Camera, Sculpture

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
SETTINGS = ("museum", "courtyard", "garden", "plaza", "mountain", "temple", "street", "outback")
PAINTS = ("red", "gold", "black", "white", "green", "neon", "ochre")

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


@lru_cache(maxsize=8)
def _pixel_grid(width: int, height: int) -> np.ndarray:
    """Homogeneous pixel centres (3, H*W) float64, row-major."""
    u = np.arange(width, dtype=np.float64) + 0.5
    v = np.arange(height, dtype=np.float64) + 0.5
    out = np.empty((3, height, width))
    out[0] = u[None, :]
    out[1] = v[:, None]
    out[2] = 1.0
    out = out.reshape(3, -1)
    out.flags.writeable = False
    return out


def _camera_rays_t(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,), unit directions (3, H*W) float32), row-major, through pixel centres."""
    M = camera.world_to_cam[:3, :3].T @ np.linalg.inv(camera.K)
    d = _mat3(M, _pixel_grid(camera.width, camera.height))
    d *= 1.0 / np.sqrt(np.einsum("ij,ij->j", d, d))
    return camera.centre.astype(np.float64), d.astype(F32)


def camera_rays(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,), unit directions (H*W, 3) float32), row-major, through pixel centres."""
    o, d = _camera_rays_t(camera)
    return o, np.ascontiguousarray(d.T)


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


def _mat3(M: np.ndarray, p: np.ndarray) -> np.ndarray:
    """M (3, 3) @ p (3, N), elementwise (small products through BLAS would wake its thread pool,
    which competes with the other workers of a process pool)."""
    out = np.empty((3, p.shape[1]), np.result_type(M, p))
    for i in range(3):
        np.multiply(p[0], M[i, 0], out=out[i])
        out[i] += p[1] * M[i, 1]
        out[i] += p[2] * M[i, 2]
    return out


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


# ----------------------------------------------------------------------------------------------
# materials: (points, normals, footprint, cavity, look) → surface parameters
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# ground, walls, background
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
    return (h >> np.uint32(8)).astype(F32) * F32(1.0 / (1 << 24))


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


def _bloom(pixels: np.ndarray, light: np.ndarray, H: int, W: int) -> np.ndarray:
    """The light of glowing pixels (flat indices) and its halo on the lens, (3, H * W)."""
    e = np.zeros((H * W,), F32)
    e[pixels] = 1.0
    halo = gaussian_filter(e.reshape(H, W), sigma=max(1.0, W / 40.0)).reshape(-1)
    return light[:, None] * (e + F32(0.6) * halo)[None, :]


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


# ----------------------------------------------------------------------------------------------
# mesh preprocessing
# ----------------------------------------------------------------------------------------------
def _corner_normals(V: np.ndarray, F: np.ndarray, crease_deg: float = 35.0) -> np.ndarray:
    """Per (triangle, corner) normals: angle-weighted average over the faces at that vertex whose
    normal is within `crease_deg` of this face's (sharp edges stay sharp). (M, 3, 3) float32."""
    V = np.asarray(V, dtype=np.float64)
    F = np.asarray(F, dtype=np.int64)
    M = len(F)
    if M == 0:
        return np.zeros((0, 3, 3), np.float32)
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
    # interior angle of each corner: the weight of its face in the vertex normal
    l1 = np.sqrt(np.einsum("mki,mki->mk", e1, e1))
    l2 = np.sqrt(np.einsum("mki,mki->mk", e2, e2))
    cosang = np.einsum("mki,mki->mk", e1, e2) / np.maximum(l1 * l2, 1e-30)
    wcorner = np.arccos(np.clip(cosang, -1.0, 1.0)).ravel()  # (3M,) in corner order
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
        out_s[:, sel] = acc
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


# ----------------------------------------------------------------------------------------------
# renderer
# ----------------------------------------------------------------------------------------------
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


@lru_cache(maxsize=8)
def _vignette(H: int, W: int, amount: float) -> np.ndarray:
    yy = (np.arange(H, dtype=F32) + F32(0.5) - F32(H / 2)) / F32(max(H, W) / 2)
    xx = (np.arange(W, dtype=F32) + F32(0.5) - F32(W / 2)) / F32(max(H, W) / 2)
    r2 = yy[:, None] ** 2 + xx[None, :] ** 2
    out = (F32(1.0) - F32(amount) * F32(0.5) * r2).astype(F32)
    out.flags.writeable = False
    return out


class Renderer:
    """Renders one sculpture from many cameras; builds the Embree scene once.

    `threads`: Embree threads for ray casting (0 = all cores; use 1 in a process pool).
    `ao_samples`: ambient-occlusion rays per visible point near the sculpture (0 = off); the
    directions are a function of the 3D point, so occlusion agrees between views.
    `ao_checkerboard`: trace the occlusion rays for half of the pixels only (a checkerboard) and
    fill in the others from their neighbours on the same surface (about half the cost).
    """

    AO_FILL_SPREAD = 0.1  # checkerboard AO: neighbours differing more than this → trace the pixel

    def __init__(self, sculpture: Sculpture, *, threads: int = 0, ao_samples: int = 6,
                 ao_checkerboard: bool = True):
        import open3d as o3d

        self._o3d = o3d
        self.sculpture = sculpture
        self.threads = int(threads)
        self.ao_samples = int(ao_samples)
        self.ao_checkerboard = bool(ao_checkerboard)
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
        # per-corner shading normals, component-major: (corner, xyz, triangle)
        self.cnormals_t = np.ascontiguousarray(_corner_normals(V, sculpture.triangles).transpose(1, 2, 0))
        # glyph lookup
        self.gbox = np.asarray(sculpture.glyph_box, dtype=np.float64)
        ras = np.asarray(sculpture.glyph_raster)
        if ras.ndim != 2 or ras.size == 0:
            ras = np.zeros((1, 1), np.int16)
        self.raster = ras.astype(np.int16)
        self._raster_dil = None  # the raster dilated by 2 texels (looked up per texel when rendering)
        ext = self.gbox[1::2] - self.gbox[0::2]
        self.geps = float(1e-3 * np.linalg.norm(ext) + 1e-5)

    @property
    def cnormals(self) -> np.ndarray:
        """Per (triangle, corner) shading normals (M, 3, 3)."""
        return self.cnormals_t.transpose(2, 0, 1)

    @property
    def raster_dil(self) -> np.ndarray:
        if self._raster_dil is None:
            self._raster_dil = _dilate_ids(self.raster, 2)
        return self._raster_dil

    def _tick(self, name):
        """Section timer: with `self.timings` a dict, accumulates seconds per section name."""
        if self.timings is None:
            return
        now = time.perf_counter()
        if name is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self._t_last
        self._t_last = now

    # -- ray casting helpers -----------------------------------------------------------------
    @staticmethod
    def _rays(o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(N, 6) float32 rays from origins o (3,) or (3, N) and directions d (3, N)."""
        rays = np.empty((d.shape[1], 6), F32)
        rays[:, :3] = o.T if np.ndim(o) == 2 else o
        rays[:, 3:] = d.T
        return rays

    def _cast_rays(self, rays: np.ndarray):
        return self.scene.cast_rays(self._o3d.core.Tensor.from_numpy(rays), nthreads=self.threads)

    def _cast(self, o: np.ndarray, d: np.ndarray):
        return self._cast_rays(self._rays(o, d))

    def _occluded(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        rays = self._rays(o, d)
        occ = self.scene.test_occlusions(self._o3d.core.Tensor.from_numpy(rays), nthreads=self.threads)
        return occ.numpy().astype(bool)

    def _wall_hits(self, st: Setting, o: np.ndarray, d: np.ndarray, tmax: np.ndarray):
        """Analytic cylinder wall for rays from o ((3,) or (3, N)) along d (3, N): (hit (N,) bool,
        t (N,), radius), only where the origin is inside it."""
        N = d.shape[1]
        if st.wall is None:
            return np.zeros(N, bool), None, 0.0
        Rw = max(st.wall_radius, 3.0 * self.radius)
        c = self.centre[:2].astype(F32)
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

    # -- shading -------------------------------------------------------------------------------
    def _surface(self, look, p, n, foot, cav, secondary=False):
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

    def albedo(self, points, normals, look: Look, *, footprint=None, cavity=None) -> np.ndarray:
        """Diffuse albedo (N, 3), linear RGB, of the sculpture's material at world points.

        A function of the 3D point (and normal, cavity) only: the same in every view. `footprint`
        (metres per pixel, (N,)) fades unresolvable detail as in `render`; `cavity` (N,) is the
        ambient-occlusion openness (1 = open, the default).
        """
        p = np.ascontiguousarray(np.asarray(points, dtype=F32).reshape(-1, 3).T)
        n = _normalize(np.ascontiguousarray(np.asarray(normals, dtype=F32).reshape(-1, 3).T))
        cav = np.ones(p.shape[1], F32) if cavity is None else np.asarray(cavity, F32)
        foot = None if footprint is None else np.asarray(footprint, F32)
        return np.ascontiguousarray(self._surface(look, p, n, foot, cav)[0].kd.T)

    def _glyph_lookup(self, p: np.ndarray, ng: np.ndarray) -> np.ndarray:
        """Stroke value (N,) int16 of the glyph raster at hit points p (3, N) (0 = not the glyph)."""
        x0, x1, y0, y1, z0, z1 = self.gbox
        e = self.geps
        px, py, pz = p
        inside = ((px >= x0 - e) & (px <= x1 + e) & (py >= y0 - e) & (py <= y1 + e)
                  & (pz >= z0 - e) & (pz <= z1 + e))
        out = np.zeros(p.shape[1], np.int16)
        ii = np.flatnonzero(inside)
        if len(ii) == 0:
            return out
        Rr = self.raster.shape[0]
        Rc = self.raster.shape[1]
        u = (px[ii].astype(np.float64) - x0) / max(x1 - x0, 1e-12)
        v = (pz[ii].astype(np.float64) - z0) / max(z1 - z0, 1e-12)
        col = np.clip(np.floor(u * Rc), 0, Rc - 1).astype(np.int64)
        row = np.clip(np.floor((1.0 - v) * Rr), 0, Rr - 1).astype(np.int64)
        val = self.raster[row, col]
        side = np.flatnonzero(np.abs(ng[1, ii]) < 0.5)  # faces not facing +-y: the dilated raster
        if len(side):
            val[side] = _dilated_at(self.raster, row[side], col[side], 2)
        out[ii] = val
        return out

    def _ao(self, p, ng, ns=None):
        """Ambient occlusion (N,) in [0, 1] (1 = open) at points p (3, N) with geometric normals ng
        (3, N), with a position-seeded direction set."""
        k = self.ao_samples
        N = p.shape[1]
        if k <= 0 or N == 0:
            return np.ones(N, F32)
        r_ao = F32(np.clip(0.12 * self.size, 0.03, 0.5))
        t1, t2 = _frame(ng)
        ang = _noise_at(p, 1.0 / 0.004, ch=0)
        ang *= F32(4.0)
        ca, sa = np.cos(ang), np.sin(ang)
        B = np.empty((3, 3, N), F32)  # the tangent frame rotated by the position's angle, and ng
        np.multiply(ca, t1, out=B[0])
        B[0] += sa * t2
        np.multiply(ca, t2, out=B[1])
        B[1] -= sa * t1
        B[2] = ng
        o = p + ng * F32(1e-4 + 2e-5 * self.size)
        r0 = np.empty((N, 6), F32)
        r0[:, :3] = o.T
        rays = np.tile(r0, (k, 1)).reshape(k, N, 6)  # origins repeated (a strided broadcast is slow)
        Dj = np.empty((3, N), F32)
        for j, (a, b, c) in enumerate(_ao_dirs(k)):
            np.multiply(B[0], a, out=Dj)
            Dj += B[1] * b
            Dj += B[2] * c
            rays[j, :, 3:] = Dj.T
        rays = rays.reshape(-1, 6)
        # most rays meet nothing within r_ao (no occlusion): find the others with a cheap
        # occlusion test limited to r_ao, and cast only those for their distance
        near = np.flatnonzero(self.scene.test_occlusions(
            self._o3d.core.Tensor.from_numpy(rays), tfar=float(r_ao), nthreads=self.threads).numpy())
        occ = np.zeros(k * N, F32)
        if len(near):
            t = self._cast_rays(np.ascontiguousarray(rays.take(near, axis=0)))["t_hit"].numpy()
            o = np.minimum(t, r_ao)
            o *= F32(-1.0 / r_ao)
            o += F32(1.0)
            o *= o
            occ[near] = o
        return F32(1.0) - occ.reshape(k, N).sum(axis=0) * F32(1.0 / k)

    def _ao_pixels(self, pix, p, ng, foot, W, H):
        """Ambient occlusion (N,) at the surface points p (3, N) seen through pixels `pix` (N,
        increasing flat indices into the W x H image): with `ao_checkerboard`, only the pixels of
        one checkerboard colour are ray-traced, and a pixel of the other colour takes the mean of
        its traced 4-neighbours on the same surface (the same facet orientation and plane; a
        pixel without such a neighbour is traced too). Halves the rays at the cost of a slight
        blur of the occlusion."""
        N = len(pix)
        if not self.ao_checkerboard or self.ao_samples <= 0 or N < 16:
            return self._ao(p, ng)
        y = pix // W
        x = pix - y * W
        b = np.flatnonzero((x + y) & 1)  # the other colour: filled from neighbours when possible
        slot = np.full(W * H, -1, np.int32)  # pixel → its index in pix
        slot[pix] = np.arange(N, dtype=np.int32)
        # the 4-neighbours (4, len(b)) of those pixels, and whether each is on the same surface
        xx = x.take(b) + _NB4[0]
        yy = y.take(b) + _NB4[1]
        inside = (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
        j = slot.take(np.where(inside, yy * W + xx, 0))
        ok = inside & (j >= 0)
        np.maximum(j, 0, out=j)
        jf = j.ravel()
        pb, nb = p.take(b, axis=1)[:, None], ng.take(b, axis=1)[:, None]
        dn = _dot(nb, ng.take(jf, axis=1).reshape(3, 4, -1))
        pj = p.take(jf, axis=1).reshape(3, 4, -1)
        pj -= pb
        dp = _dot(nb, pj)
        ok &= (dn > F32(0.9)) & (np.abs(dp) < F32(1e-4 * self.size))  # same facet orientation and plane
        cnt = ok.sum(axis=0)
        a = np.ones(N, bool)
        a[b] = False
        ai = np.flatnonzero(a)
        cav = np.empty(N, F32)
        cav[ai] = self._ao(p.take(ai, axis=1), ng.take(ai, axis=1))
        v = cav.take(j)
        acc = np.where(ok, v, F32(0)).sum(axis=0)
        lo = np.where(ok, v, F32(np.inf)).min(axis=0)
        hi = np.where(ok, v, F32(-np.inf)).max(axis=0)
        # traced as well: fewer than two neighbours on the same surface (an edge or corner), or
        # neighbours that disagree (the occlusion changes quickly there)
        redo = (cnt < 2) | (hi - lo > F32(self.AO_FILL_SPREAD))
        fill = np.flatnonzero(~redo)
        cav[b.take(fill)] = acc.take(fill) / cnt.take(fill).astype(F32)
        ri = b.take(np.flatnonzero(redo))
        if len(ri):
            cav[ri] = self._ao(p.take(ri, axis=1), ng.take(ri, axis=1))
        return cav

    def render(self, camera: Camera, look: Look, *, shadows: bool = True) -> Rendered:
        st = _SETTINGS[look.setting]
        W, H = camera.width, camera.height
        N = W * H
        tm = self._tick
        tm(None)
        o, d = _camera_rays_t(camera)  # d: (3, N)
        o32 = o.astype(F32)
        ans = self._cast(o32, d)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        prim = ans["primitive_ids"].numpy()
        uvs = ans["primitive_uvs"].numpy()
        ngeo = ans["primitive_normals"].numpy()

        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o32, d, np.where(obj, F32(0), t))
        gnd &= ~wall
        bg = ~(obj | gnd | wall)
        tm("cast")

        # pixel footprint (metres per pixel at unit distance)
        fpx = F32(1.0 / float(camera.K[0, 0]))

        sun = direction_from_angles(look.azimuth, look.elevation).astype(F32)
        sun_c = sun[:, None]
        sun_col = _col(_sun_colour(look.warmth) * F32(look.sun_intensity) * F32(1.05))
        if st.sun_scale != 1.0:
            sun_col = sun_col * F32(st.sun_scale)
        fill_dir = direction_from_angles(look.azimuth + 180.0, 25.0).astype(F32)
        fill_col = _col(_sun_colour(-0.3) * F32(0.12) * F32(look.ambient / 0.35))
        sky_l = _col(st.sky_light) * F32(look.ambient)
        gnd_l = _col(st.ground_light) * F32(look.ambient)
        hazecol = _col(st.horizon)
        sig = F32(st.haze) + F32(0.1 * look.fog)

        hdr = np.empty((3, N), F32)
        depth = np.full(N, np.inf, F32)
        hitm = obj | gnd
        depth[hitm] = t[hitm]
        if np.any(wall):
            depth[wall] = tw[wall]

        # ---------- primary surfaces: gather points, normals, materials ----------------------
        idx_o = np.flatnonzero(obj)
        idx_g = np.flatnonzero(gnd)
        idx_w = np.flatnonzero(wall)
        glyph_val = np.zeros(N, np.int16)

        parts = []  # (kind, idx, t, d, p, ng, ns, kd, f0, gloss, wrap, translucency, cavity)
        emit = None  # pixels of a glyph that gives off light (neon)
        if len(idx_o):
            tt = t.take(idx_o)
            dd = d.take(idx_o, axis=1)
            p = dd * tt
            p += o32[:, None]
            ng = np.ascontiguousarray(ngeo.take(idx_o, axis=0).T)
            sgn = np.where(_dot(ng, dd) > 0, F32(-1), F32(1))
            ng *= sgn
            cn = self.cnormals_t.take(prim.take(idx_o), axis=2)
            uv = uvs.take(idx_o, axis=0)
            bu, bv = uv[:, 0], uv[:, 1]
            ns = cn[0] * (F32(1.0) - bu - bv)
            ns += cn[1] * bu
            ns += cn[2] * bv
            ns = _normalize(ns)
            ns *= sgn
            gv = self._glyph_lookup(p, ng)
            glyph_val[idx_o] = gv
            foot = tt * fpx / np.maximum(np.abs(_dot(dd, ng)), F32(0.25))
            tm("object")
            cav = self._ao_pixels(idx_o, p, ng, foot, W, H)
            tm("ao")
            s, pt = self._surface(look, p, ns, foot, cav)
            ns = self._bump(ns, pt, s.bump, s.bump_scale, foot)
            gi = np.flatnonzero(gv)
            if look.glyph_paint is not None and len(gi):
                col, f0, gloss, metal = _PAINT[look.glyph_paint]
                wear = _smoothstep(0.3, 1.2, _fbm(pt.take(gi, axis=1), 0.02, 2, foot.take(gi), rot=9, ch=0)
                                   + F32(look.weathering) * 1.2 - 0.6)
                wear = wear * F32(min(1.0, look.weathering * 2))
                kdp = col * (F32(1) - F32(0.8) * F32(metal))
                s.kd[:, gi] = _mix(kdp, s.kd[:, gi], wear)
                s.f0[:, gi] = _mix(col if metal else F32(f0), s.f0[:, gi], wear)
                s.gloss[gi] = F32(gloss) * (1 - wear) + s.gloss[gi] * wear
                s.wrap[gi] = 0.0
                if look.glyph_paint == "neon":
                    emit = idx_o.take(gi)
                elif look.glyph_paint == "ochre":
                    dots, white = _ochre_dots(pt, self.size / 45.0)
                    dot_col = np.where(white, _lin(0.86, 0.82, 0.72), _lin(0.85, 0.62, 0.22))
                    s.kd = _mix(s.kd, dot_col, dots)
            parts.append(("object", idx_o, tt, dd, p, ng, ns, s.kd, s.f0, s.gloss, s.wrap, s.translucency, cav))
            tm("material")
        if len(idx_g):
            tt = t.take(idx_g)
            dd = d.take(idx_g, axis=1)
            p = dd * tt
            p += o32[:, None]
            p[2] = 0.0
            ng = np.zeros((3, len(idx_g)), F32)
            ng[2] = 1.0
            foot = tt * fpx / np.maximum(np.abs(dd[2]), F32(0.25))
            kd, f0, gloss, bump, bscale = _ground(st.ground, p, foot, look)
            # ambient occlusion only near the sculpture
            cav = np.ones(len(idx_g), F32)
            m = F32(self.size * 0.15)
            near = np.flatnonzero((p[0] > self.lo[0] - m) & (p[0] < self.hi[0] + m)
                                  & (p[1] > self.lo[1] - m) & (p[1] < self.hi[1] + m))
            tm("ground")
            if len(near):
                cav[near] = self._ao_pixels(idx_g.take(near), p.take(near, axis=1), ng[:, :len(near)],
                                            foot.take(near), W, H)
            tm("ao")
            ns = self._bump(ng, p, bump, bscale, foot, octaves=1)
            parts.append(("ground", idx_g, tt, dd, p, ng, ns, kd, f0, gloss, 0.0, 0.0, cav))
            tm("ground")
        if len(idx_w):
            tt = tw.take(idx_w)
            dd = d.take(idx_w, axis=1)
            p = dd * tt
            p += o32[:, None]
            c = self.centre[:2].astype(F32)
            ng = np.zeros((3, len(idx_w)), F32)
            ng[0] = (c[0] - p[0]) / F32(Rw)
            ng[1] = (c[1] - p[1]) / F32(Rw)
            ang = np.arctan2(p[1] - c[1], p[0] - c[0]) * F32(Rw)
            foot = tt * fpx / np.maximum(np.abs(_dot(dd, ng)), F32(0.25))
            kd = _wall_albedo(st.wall, ang, p[2], p, foot, st.wall_height)
            ns = self._bump(ng, p, 0.15, 0.01, foot, octaves=1)
            parts.append(("wall", idx_w, tt, dd, p, ng, ns, kd, 0.03, 0.1, 0.0, 0.0, None))
            tm("wall")

        env_avg = sky_l * F32(0.6) + gnd_l * F32(0.4)
        for (kind, idx, tt, dd, p, ng, ns, kd, f0, gloss, wrap, tl, cav) in parts:
            n = len(idx)
            v = -dd
            ndl = _dot(ns, sun)
            ngl = _dot(ng, sun)
            # shadows: from the geometric normal side, only where the sun can be facing
            lit = np.ones(n, F32)
            if shadows and kind != "wall":
                # where the sun's light can matter: diffuse (wrapped) and specular need ndl > -wrap,
                # translucency any ndl > -0.3
                lo = F32(-0.3) if tl > 0 else np.maximum(-np.asarray(wrap, F32), F32(-0.3))
                fi = np.flatnonzero((ndl > lo) & (ngl > -0.05))
                if len(fi):
                    orig = p.take(fi, axis=1)
                    orig += ng.take(fi, axis=1) * F32(2e-4 + 1e-5 * self.size)
                    orig += sun_c * F32(1e-4)
                    tm("shade")
                    occ = self._occluded(orig, np.broadcast_to(sun_c, orig.shape))
                    lit[fi[occ]] = 0.0
                    tm("shadows")
            lit[ngl <= -0.05] = 0.0
            ndl_c = np.clip(ndl, F32(0), F32(1))
            if np.ndim(wrap) == 0 and wrap == 0:
                diff = ndl_c * lit
            else:
                diff = np.clip((ndl + wrap) / (F32(1.0) + wrap), F32(0), F32(1)) * lit
            light = diff * sun_col
            hemi = _mix(gnd_l, sky_l, F32(0.5) + F32(0.5) * ns[2])
            if cav is not None:
                hemi *= cav
            light += hemi
            light += np.clip(_dot(ns, fill_dir), F32(0), F32(1)) * fill_col
            rad = kd * light
            if tl > 0:  # translucency: light leaking through, softened
                back = np.clip(-ndl, F32(0), F32(1)) * F32(0.5) + F32(0.5)
                rim = F32(0.6) + F32(0.8) * (F32(1.0) - np.clip(_dot(ns, v), F32(0), F32(1)))
                glow = (F32(tl) * back * rim * (F32(0.4) + F32(0.6) * lit)) * sun_col
                glow += F32(tl) * F32(0.5) * (sky_l + gnd_l)
                rad += kd * kd * glow
            # specular (normalised Blinn-Phong, Schlick Fresnel)
            h = _normalize(sun_c + v)
            ndh = np.clip(_dot(ns, h), F32(0), F32(1))
            vdh = np.clip(_dot(v, h), F32(0), F32(1))
            shin = np.exp((F32(2.0) + F32(10.0) * np.asarray(gloss, F32)) * F32(math.log(2.0)))
            x = F32(1.0) - vdh
            x5 = x * x
            x5 *= x5
            x5 *= x
            one_f0 = F32(1.0) - f0
            with np.errstate(divide="ignore"):  # ndh ** shin as exp(shin log ndh): numpy's float32
                lg = np.log(ndh)  # power with an array exponent is ~50x slower
            lg *= shin
            spec = ((shin + F32(8.0)) * F32(1.0 / 8.0)) * np.exp(lg, out=lg) * ndl_c * lit
            rad += ((f0 + one_f0 * x5) * spec) * sun_col
            # reflections
            ndv = np.clip(_dot(ns, v), F32(0), F32(1))
            y = F32(1.0) - ndv
            y5 = y * y
            y5 *= y5
            y5 *= y
            y5 *= np.asarray(gloss, F32) * np.asarray(gloss, F32)
            fr = f0 + one_f0 * y5
            if kind == "ground":
                sharp = F32(st.floor_gloss)
            else:
                sharp = _smoothstep(0.45, 0.9, gloss)
            amb = F32(1.0) - sharp
            if cav is not None:
                amb = amb * cav
            rad += (fr * amb) * env_avg
            frmax = fr.max(axis=0) if np.ndim(fr) == 2 else fr
            want = np.flatnonzero(sharp * frmax > 0.01)
            if len(want):
                nsw = ns.take(want, axis=1)
                rdir = F32(2.0) * ndv.take(want) * nsw
                rdir += dd.take(want, axis=1)
                rdir = _normalize(rdir)
                if kind == "ground":
                    np.maximum(rdir[2], F32(0.01), out=rdir[2])
                ro = p.take(want, axis=1)
                ro += ng.take(want, axis=1) * F32(3e-4 + 1e-5 * self.size)
                tm("shade")
                rc = self._secondary(ro, rdir, st, look, sun, sun_col, sky_l, gnd_l)
                tm("reflections")
                wgt = np.broadcast_to(sharp, (n,)).take(want)
                if cav is not None:
                    wgt = wgt * cav.take(want)
                frw = fr.take(want, axis=1) if np.ndim(fr) == 2 else fr.take(want)
                rad[:, want] += frw * wgt * rc
            # haze and fog
            att = np.exp(-sig * tt)
            rad *= att
            rad += hazecol * (F32(1.0) - att)
            hdr[:, idx] = rad
            tm("shade")

        if np.any(bg):
            ib = np.flatnonzero(bg)
            col = _background(st, d.take(ib, axis=1), sun, sun_col, look)
            if look.fog > 0:
                col = _mix(col, hazecol, F32(min(1.0, look.fog)) * F32(0.6))
            hdr[:, ib] = col
        tm("background")
        if emit is not None:
            hdr += _bloom(emit, _neon_light(look), H, W)

        img = self._finish(hdr.reshape(3, H, W), look, camera)
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
        """Normals n (3, N) perturbed by noise of period `scale` at points p (3, N), where the
        pixel footprint resolves it."""
        if amp <= 0:
            return n
        sel = np.flatnonzero(_fade(scale * 4, foot))
        if len(sel) == 0:
            return n
        if len(sel) < 0.9 * len(foot):
            out = n.copy()
            out[:, sel] = self._bump(n.take(sel, axis=1), p.take(sel, axis=1), amp, scale, foot.take(sel), octaves)
            return out
        g = _fbm(p, scale * 4, octaves, foot, rot=11, gain=0.55, ch=(0, 1, 2))
        g -= _dot(g, n) * n
        g *= F32(amp)
        g += n
        return _normalize(g)

    def _secondary(self, o, dirs, st, look, sun, sun_col, sky_l, gnd_l):
        """Cheap radiance (3, N) along reflected rays o + t dirs (3, N): flat-lit sculpture
        (material's coarse albedo), ground (coarse texture, lit by sun and sky), wall, or
        background."""
        ans = self._cast(o, dirs)
        t = ans["t_hit"].numpy()
        gid = ans["geometry_ids"].numpy()
        out = np.empty((3, dirs.shape[1]), F32)
        obj = gid == self.obj_id
        gnd = gid == self.ground_id
        wall, tw, Rw = self._wall_hits(st, o, dirs, np.where(obj, F32(0), t))
        gnd &= ~wall
        bg = ~(obj | gnd | wall)
        big = lambda n: np.full(n, F32(0.05))  # noqa: E731 large footprint → coarse octaves only
        if np.any(obj):
            i = np.flatnonzero(obj)
            di = dirs.take(i, axis=1)
            p = o.take(i, axis=1) + di * t.take(i)
            n = np.ascontiguousarray(ans["primitive_normals"].numpy().take(i, axis=0).T)
            n *= np.where(_dot(n, di) > 0, F32(-1), F32(1))
            s, _ = self._surface(look, p, n, big(len(i)), np.ones(len(i), F32), secondary=True)
            light = np.clip(_dot(n, sun), F32(0), F32(1)) * sun_col + _mix(gnd_l, sky_l, F32(0.5) + F32(0.5) * n[2])
            out[:, i] = (s.kd + s.f0 * F32(0.5)) * light
        if np.any(gnd):
            i = np.flatnonzero(gnd)
            p = o.take(i, axis=1) + dirs.take(i, axis=1) * t.take(i)
            p[2] = 0
            kd, *_ = _ground(st.ground, p, big(len(i)), look)
            out[:, i] = kd * (F32(max(sun[2], 0)) * sun_col + sky_l)
        if np.any(wall):
            i = np.flatnonzero(wall)
            p = o.take(i, axis=1) + dirs.take(i, axis=1) * tw.take(i)
            c = self.centre[:2].astype(F32)
            nx = (c[0] - p[0]) / F32(Rw)
            ny = (c[1] - p[1]) / F32(Rw)
            ang = np.arctan2(p[1] - c[1], p[0] - c[0]) * F32(Rw)
            kd = _wall_albedo(st.wall, ang, p[2], p, big(len(i)), st.wall_height)
            out[:, i] = kd * (np.clip(nx * sun[0] + ny * sun[1], F32(0), F32(1)) * sun_col + sky_l)
        if np.any(bg):
            i = np.flatnonzero(bg)
            out[:, i] = _background(st, dirs.take(i, axis=1), sun, sun_col, look)
        return out

    def _finish(self, hdr: np.ndarray, look: Look, camera: Camera) -> np.ndarray:
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

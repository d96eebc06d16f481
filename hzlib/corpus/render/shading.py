"""Shading, pure numpy: the typed hits of the camera's rays and the lights of one view, and the
local terms of the shading model, in linear RGB (shadow and reflection rays are cast by the
`Renderer`).

* `SurfaceHits`: the hits on one kind of surface (the sculpture, the ground, the wall) with their
  geometry and material, as the renderer gathers them.
* `Lights`: the sun, the fill light, the sky/ground hemisphere, the average environment and the
  haze of one look in one setting.
* Terms: `diffuse` (Lambert, wrapped for jade and marble; hemisphere ambient times the ambient
  occlusion; the fill light), `translucency` (light leaking through jade and marble), `specular`
  (normalised Blinn-Phong with Schlick Fresnel), `reflectance` and `ambient_reflection` (the
  Fresnel-weighted average environment where a surface is not a sharp mirror), `attenuate`
  (distance haze and fog).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cameras import direction_from_angles
from .look import Look
from .maths import F32, _col, _dot, _mix, _normalize, _smoothstep
from .scene import Setting, _sun_colour


@dataclass
class SurfaceHits:
    """The camera's rays that hit one kind of surface, with their geometry and material.

    Arrays are component-major (3, n) or per hit (n,); `f0`, `gloss` and `wrap` may be one number
    for every hit (the ground's and the wall's).
    """

    kind: str  # "object" (the sculpture), "ground" or "wall"
    idx: np.ndarray  # (n,) flat pixel indices, increasing
    t: np.ndarray  # (n,) distance along the ray, metres
    d: np.ndarray  # (3, n) unit ray directions
    p: np.ndarray  # (3, n) hit points
    ng: np.ndarray  # (3, n) geometric normals, facing the camera
    ns: np.ndarray  # (3, n) shading normals (interpolated, bumped)
    kd: np.ndarray  # (3, n) diffuse albedo
    f0: np.ndarray | float  # specular reflectance at normal incidence
    gloss: np.ndarray | float  # 0 (matte) .. 1 (mirror)
    wrap: np.ndarray | float  # diffuse wrap (subsurface softness)
    translucency: float
    cavity: np.ndarray | None  # (n,) ambient-occlusion openness (1 = open); None: no occlusion (the wall)
    glyph: np.ndarray | None = None  # (n,) int16 glyph raster at the hits (stroke id, 0 = not the glyph)
    emit: np.ndarray | None = None  # flat pixel indices of a glyph that gives off light (neon)


@dataclass(frozen=True)
class Lights:
    """The light of one look in one setting; colours are float32 columns (3, 1)."""

    sun: np.ndarray  # (3,) unit vector towards the sun
    sun_c: np.ndarray  # the same, a column (3, 1)
    sun_col: np.ndarray  # the sun's radiance
    fill_dir: np.ndarray  # (3,) towards the fill light (opposite the sun, low)
    fill_col: np.ndarray
    sky: np.ndarray  # ambient light from above
    ground: np.ndarray  # ambient light from below
    env: np.ndarray  # the average environment, reflected by rough surfaces
    haze_col: np.ndarray
    haze: np.float32  # extinction per metre: the setting's haze and the look's fog

    @classmethod
    def of(cls, look: Look, st: Setting) -> Lights:
        sun = direction_from_angles(look.azimuth, look.elevation).astype(F32)
        sun_col = _col(_sun_colour(look.warmth) * F32(look.sun_intensity) * F32(1.05))
        if st.sun_scale != 1.0:
            sun_col = sun_col * F32(st.sun_scale)
        fill_dir = direction_from_angles(look.azimuth + 180.0, 25.0).astype(F32)
        fill_col = _col(_sun_colour(-0.3) * F32(0.12) * F32(look.ambient / 0.35))
        sky_l = _col(st.sky_light) * F32(look.ambient)
        gnd_l = _col(st.ground_light) * F32(look.ambient)
        return cls(sun=sun, sun_c=sun[:, None], sun_col=sun_col, fill_dir=fill_dir, fill_col=fill_col, sky=sky_l,
                   ground=gnd_l, env=sky_l * F32(0.6) + gnd_l * F32(0.4), haze_col=_col(st.horizon),
                   haze=F32(st.haze) + F32(0.1 * look.fog))


def diffuse(h: SurfaceHits, ndl, ndl_c, lit, L: Lights) -> np.ndarray:
    """Diffuse radiance (3, n): the sun (n . l, clipped `ndl_c`, or wrapped; times the sun's
    visibility `lit`), the hemisphere (times the occlusion) and the fill light."""
    ns, wrap, cav = h.ns, h.wrap, h.cavity
    if np.ndim(wrap) == 0 and wrap == 0:
        diff = ndl_c * lit
    else:
        diff = np.clip((ndl + wrap) / (F32(1.0) + wrap), F32(0), F32(1)) * lit
    light = diff * L.sun_col
    hemi = _mix(L.ground, L.sky, F32(0.5) + F32(0.5) * ns[2])
    if cav is not None:
        hemi *= cav
    light += hemi
    light += np.clip(_dot(ns, L.fill_dir), F32(0), F32(1)) * L.fill_col
    return h.kd * light


def translucency(h: SurfaceHits, v, ndl, lit, L: Lights) -> np.ndarray:
    """Light leaking through (3, n), softened, strongest at grazing views (`v`: towards the eye)."""
    ns, kd, tl = h.ns, h.kd, h.translucency
    back = np.clip(-ndl, F32(0), F32(1)) * F32(0.5) + F32(0.5)
    rim = F32(0.6) + F32(0.8) * (F32(1.0) - np.clip(_dot(ns, v), F32(0), F32(1)))
    glow = (F32(tl) * back * rim * (F32(0.4) + F32(0.6) * lit)) * L.sun_col
    glow += F32(tl) * F32(0.5) * (L.sky + L.ground)
    return kd * kd * glow


def specular(h: SurfaceHits, v, ndl_c, lit, one_f0, L: Lights) -> np.ndarray:
    """The sun's highlight (3, n): normalised Blinn-Phong with Schlick Fresnel (`one_f0` = 1 - f0)."""
    ns, gloss, f0 = h.ns, h.gloss, h.f0
    hv = _normalize(L.sun_c + v)
    ndh = np.clip(_dot(ns, hv), F32(0), F32(1))
    vdh = np.clip(_dot(v, hv), F32(0), F32(1))
    shin = np.exp((F32(2.0) + F32(10.0) * np.asarray(gloss, F32)) * F32(math.log(2.0)))
    x = F32(1.0) - vdh
    x5 = x * x
    x5 *= x5
    x5 *= x
    with np.errstate(divide="ignore"):  # ndh ** shin as exp(shin log ndh): numpy's float32
        lg = np.log(ndh)  # power with an array exponent is ~50x slower
    lg *= shin
    spec = ((shin + F32(8.0)) * F32(1.0 / 8.0)) * np.exp(lg, out=lg) * ndl_c * lit
    return ((f0 + one_f0 * x5) * spec) * L.sun_col


def reflectance(h: SurfaceHits, v, one_f0, floor_gloss: float):
    """(n . v clipped (n,), Fresnel reflectance (3, n) or (n,), sharpness of the reflection: 0 =
    only the average environment, 1 = a mirror; the ground's is the setting's `floor_gloss`)."""
    ns, gloss, f0 = h.ns, h.gloss, h.f0
    ndv = np.clip(_dot(ns, v), F32(0), F32(1))
    y = F32(1.0) - ndv
    y5 = y * y
    y5 *= y5
    y5 *= y
    y5 *= np.asarray(gloss, F32) * np.asarray(gloss, F32)
    fr = f0 + one_f0 * y5
    if h.kind == "ground":
        sharp = F32(floor_gloss)
    else:
        sharp = _smoothstep(0.45, 0.9, gloss)
    return ndv, fr, sharp


def ambient_reflection(h: SurfaceHits, fr, sharp, L: Lights) -> np.ndarray:
    """The average environment (3, n) reflected where the reflection is not sharp, occluded."""
    amb = F32(1.0) - sharp
    if h.cavity is not None:
        amb = amb * h.cavity
    return (fr * amb) * L.env


def attenuate(rad: np.ndarray, t: np.ndarray, L: Lights) -> None:
    """Distance haze and fog, in place on radiance (3, n) seen from distances t (n,)."""
    att = np.exp(-L.haze * t)
    rad *= att
    rad += L.haze_col * (F32(1.0) - att)

"""Pinhole cameras and their rays.

Conventions are those of `hzlib.corpus.types` (z up, sculpture faces -y, OpenCV/COLMAP cameras with
pixel centres at (u + 0.5, v + 0.5)). Azimuths (of the sun and of orbit cameras) are degrees about
+z with 0 = in front of the sculpture (towards -y) and 90 = towards +x; elevations are degrees above
the horizon.
"""
from __future__ import annotations

import math
import zlib
from functools import lru_cache

import numpy as np

from ..types import Camera, Sculpture
from .maths import F32, _mat3


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


def _camera_key(camera: Camera) -> int:
    b = np.ascontiguousarray(camera.K, np.float64).tobytes() + np.ascontiguousarray(
        camera.world_to_cam, np.float64).tobytes() + f"{camera.width}x{camera.height}".encode()
    return zlib.crc32(b)

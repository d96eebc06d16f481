"""Types shared by the corpus modules. Conventions, fixed for the whole project:

* World frame: right-handed, metres, z up, the ground is the plane z = 0. A sculpture stands at the
  origin and faces -y (a frontal camera sits at negative y looking along +y).
* Glyph frame: (u, v) in the unit square, u to the right, v up (font convention, y-up).
* A sculpture's glyph solid occupies the world box ``glyph_box = (x0, x1, y0, y1, z0, z1)``; a world
  point p maps to glyph coordinates u = (p.x - x0) / (x1 - x0), v = (p.z - z0) / (z1 - z0).
* Rasters in glyph coordinates are square arrays with row 0 at v = 1 (top) and column 0 at u = 0.
* Cameras follow OpenCV/COLMAP: x right, y down, z forward; pixel centres at (u + 0.5, v + 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STROKE_TYPES = ("横", "竖", "撇", "点", "折")  # horizontal, vertical, left-falling, dot (incl. 捺), turning


@dataclass
class Glyph:
    """Outline of one character in unit-square glyph coordinates."""

    char: str
    style: str  # glyph-source key, e.g. "song", "kai", "strokes"
    contours: list[np.ndarray]  # closed polygons (K, 2) float64 in [0, 1]^2, NonZero fill rule
    strokes: list[list[np.ndarray]] | None = None  # per-stroke polygons, where known
    stroke_types: list[str] | None = None  # one of STROKE_TYPES per stroke, where known

    @property
    def has_strokes(self) -> bool:
        return self.strokes is not None


@dataclass
class Sculpture:
    """A watertight triangle mesh of one character sculpture, with its glyph ground truth."""

    vertices: np.ndarray  # (N, 3) float32, world metres
    triangles: np.ndarray  # (M, 3) int32
    form: str  # "freestanding", "relief", "carved", "slab", ...
    glyph: Glyph
    glyph_box: tuple[float, float, float, float, float, float]  # (x0, x1, y0, y1, z0, z1)
    # (R, R) int16 in glyph coordinates: 0 outside the glyph, -1 glyph with unknown stroke, k >= 1 stroke k
    glyph_raster: np.ndarray = field(repr=False)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices.min(axis=0), self.vertices.max(axis=0)


@dataclass
class Camera:
    """A pinhole camera (OpenCV convention)."""

    K: np.ndarray  # (3, 3) float64 intrinsics
    world_to_cam: np.ndarray  # (4, 4) float64 extrinsics
    width: int
    height: int

    @property
    def centre(self) -> np.ndarray:
        R, t = self.world_to_cam[:3, :3], self.world_to_cam[:3, 3]
        return -R.T @ t

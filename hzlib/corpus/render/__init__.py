"""CPU rendering of character sculptures: open3d/Embree ray casting, procedural solid materials.

A photograph-like image of one `Sculpture` seen by one `Camera` under one `Look`:
``Renderer(sculpture).render(camera, look)`` → `Rendered` (image, glyph/stroke/object masks, depth).
Everything is float32 numpy, vectorised; the same inputs and seed give bitwise identical pixels.

One job per file; each imports only from the files listed above it:

=============  ===========================================================================
maths.py       float32 helpers on component-major (3, N) arrays, sRGB colours, a hash
look.py        the material, setting and paint names; the `Look` dataclass
cameras.py     pinhole cameras (`look_at_camera`, `orbit_cameras`) and their rays
noise.py       band-limited solid noise and fBm with footprint LOD (`noise`, `fbm`)
geometry.py    per-corner shading normals, glyph-raster dilation, occlusion directions
materials.py   the solid materials (`Surface`, `surface_at`) and the glyph paints
scene.py       settings: sky and background, ground, walls (`Setting`, `wall_hits`)
shading.py     `SurfaceHits`, `Lights` and the local shading terms (diffuse, specular, haze)
film.py        tone curve, gamma, vignette, lens blur, sensor noise, bloom (`finish`)
renderer.py    `Renderer`: the Embree scene, ray casting, occlusion; `Rendered`, `render`
=============  ===========================================================================

`Renderer.render` is a chain of named steps: `_cast_primary` (a ray per pixel), `_gather` (the
hits on the sculpture, the ground and the wall, one `SurfaceHits` each), `_shade` (per
`SurfaceHits`: shadows, shading terms, reflections), `_composite` (background, bloom, film).
"""
from .cameras import camera_rays, direction_from_angles, look_at_camera, orbit_cameras
from .film import _wrapped_window
from .geometry import _corner_normals, _dilate_ids, _dilated_at
from .look import MATERIALS, PAINTS, SETTINGS, Look
from .noise import _OCT_ROT, fbm, noise
from .renderer import Rendered, Renderer, render
from .scene import Setting

__all__ = [
    "MATERIALS",
    "SETTINGS",
    "PAINTS",
    "Look",
    "Rendered",
    "Renderer",
    "Setting",
    "render",
    "look_at_camera",
    "orbit_cameras",
    "direction_from_angles",
    "camera_rays",
    "noise",
    "fbm",
    # private, for the tests
    "_OCT_ROT",
    "_corner_normals",
    "_dilate_ids",
    "_dilated_at",
    "_wrapped_window",
]

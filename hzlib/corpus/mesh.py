"""Watertight sculptures of a glyph, built with manifold3d's exact booleans.

Every form is assembled from boxes and extrusions of the glyph's CrossSection (NonZero fill), unions
and differences, and inward offsets for a stepped bevel, so the result is always a closed, oriented
2-manifold. Conventions (see types.py): metres, z up, standing on z = 0, centred on the origin in x
and y, facing -y (the glyph reads correctly from a camera at negative y).

Geometry is built in a local frame (a, b, c) = (x, z, -y): the glyph lies in the (a, b) plane, as in
glyph coordinates, and extrusions run along +c, towards the viewer; ``_to_world`` maps it at the end.

Parameters are drawn by :func:`sample_params` from a ``numpy.random.Generator`` (every parameter is
always drawn, in a fixed order, so overriding one leaves the others unchanged) and
:func:`build_sculpture` returns ``(sculpture, params)``; :func:`sculpt` builds from a params dict, so
a recorded dict reproduces a sculpture exactly.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import manifold3d as mf
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from hzlib.corpus.glyphs import fill_mask, glyph_raster
from hzlib.corpus.types import Glyph, Sculpture

FORMS = ("freestanding", "relief", "carved", "slab", "openwork", "boulder")

# Parameter ranges (uniform draws). Lengths marked "/S" are fractions of the glyph size S (the world
# size of the glyph's unit square, which is 1.16 em: the ink of a typical character is ~0.7-0.8 S).
COMMON_RANGES = {
    "glyph_size": (0.5, 1.2),  # S, metres: ink height ~0.4-1.0 m
    "bevel": (0.0015, 0.004),  # /S, horizontal inset (and height) of the stepped bevel
    "bevel_steps": (1, 3),  # integer, inclusive
}
FORM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "freestanding": {
        "thickness": (0.08, 0.22),  # /S, glyph extrusion
        "plinth_height": (0.05, 0.12),  # /S
        "plinth_margin": (0.04, 0.12),  # /S, plinth beyond the ink (x) and the glyph (y)
        "rod_width": (0.008, 0.014),  # /S, square rods holding floating parts
    },
    "relief": {
        "relief_depth": (0.012, 0.04),  # /S, glyph raised from the stele face
        "stele_thickness": (0.12, 0.3),  # /S
        "margin_side": (0.08, 0.2),  # /S, stele beyond the ink
        "margin_top": (0.08, 0.2),
        "margin_bottom": (0.1, 0.3),
        "base_height": (0.06, 0.15),  # /S
        "base_overhang": (0.03, 0.1),  # /S
    },
    "carved": {
        "carve_depth": (0.012, 0.04),  # /S
        "stele_thickness": (0.12, 0.3),
        "margin_side": (0.08, 0.2),
        "margin_top": (0.08, 0.2),
        "margin_bottom": (0.1, 0.3),
        "base_height": (0.06, 0.15),
        "base_overhang": (0.03, 0.1),
    },
    "slab": {
        "relief_depth": (0.006, 0.016),  # /S, raised a little
        "plate_thickness": (0.03, 0.07),  # /S
        "aspect": (1.5, 2.2),  # plaque width / height
        "margin": (0.06, 0.14),  # /S, plaque beyond the ink, vertically
        "feet_height": (0.04, 0.12),  # /S
        "feet_depth": (2.0, 4.0),  # multiple of the plate thickness
    },
    "openwork": {
        "plate_thickness": (0.03, 0.08),  # /S
        "margin": (0.06, 0.15),  # /S, plate frame beyond the ink
        "base_height": (0.05, 0.12),  # /S
        "base_overhang": (0.03, 0.08),  # /S
        "bridge_width": (0.01, 0.018),  # /S, bars at the back holding the glyph's enclosed islands
        "bridge_depth": (0.35, 0.6),  # fraction of the plate thickness, from the back face
    },
    "boulder": {
        "carve_depth": (0.015, 0.04),  # /S
        "rock_margin": (0.5, 0.9),  # ellipsoid semi-axes beyond the ink box, relative
        "rock_depth": (0.5, 0.9),  # front-back semi-axis / larger side semi-axis
        "roughness": (0.05, 0.12),  # radial noise amplitude, relative
        "sink": (0.15, 0.3),  # fraction of the vertical semi-axis cut off below the ground
    },
}
SIMPLIFY = 4e-4  # /S, CrossSection.simplify tolerance: drops flattening points that change nothing
PINCH = 0.002  # /S, size of the diamonds that join outline parts touching at a point
WELD = 0.002  # /S, half-width of the welds joining parts that touch only along an edge
MAX_SECTION_VERTS = 900  # simplify harder beyond this (worn, rubbing-like outlines): triangle budget
ROCK_SEGMENTS = 64  # geodesic sphere resolution of a boulder
RASTER = 512  # resolution of the raster used to place rods and bridges


def sample_params(form: str, rng: np.random.Generator, **overrides) -> dict:
    """Draw the geometric parameters of ``form``; ``overrides`` replace drawn values by name.

    All parameters are drawn (in a fixed order) even when overridden, so that a given rng state gives
    the same other parameters whatever is overridden. Unknown names raise TypeError.
    """
    ranges = {**COMMON_RANGES, **_form_ranges(form)}
    params: dict = {"form": form}
    for name, (lo, hi) in ranges.items():
        if isinstance(lo, int) and isinstance(hi, int):
            params[name] = int(rng.integers(lo, hi + 1))
        else:
            params[name] = float(rng.uniform(lo, hi))
    if form == "boulder":
        params["noise_seed"] = int(rng.integers(0, 2**31 - 1))
    unknown = set(overrides) - set(params) | ({"form"} & set(overrides))
    if unknown:
        raise TypeError(f"unknown parameter(s) {sorted(unknown)} for form {form!r}; known: {sorted(params)}")
    params.update(overrides)
    return params


def build_sculpture(glyph: Glyph, form: str, rng: np.random.Generator, **overrides) -> tuple[Sculpture, dict]:
    """Build a sculpture of ``glyph`` in ``form``, parameters drawn from ``rng`` (see sample_params).

    Returns ``(sculpture, params)``: Sculpture has no field for the parameters, and the corpus
    manifest should record them.
    """
    params = sample_params(form, rng, **overrides)
    return sculpt(glyph, params), params


def sculpt(glyph: Glyph, params: dict) -> Sculpture:
    """Build the sculpture described by ``params`` (as returned by sample_params)."""
    form = params["form"]
    _form_ranges(form)
    S = float(params["glyph_size"])
    cs = _glyph_section(glyph, S)
    if cs.is_empty():
        raise ValueError(f"glyph {glyph.char!r} ({glyph.style}) has an empty outline")
    builder = {
        "freestanding": _freestanding,
        "relief": _relief,
        "carved": _carved,
        "slab": _slab,
        "openwork": _openwork,
        "boulder": _boulder,
    }[form]
    solid, box = builder(glyph, cs, S, params)
    return _finish(solid, box, form, glyph)


def save_mesh(sculpture: Sculpture, path: str | os.PathLike) -> Path:
    """Write the mesh as binary little-endian PLY, atomically (temp file, then os.replace)."""
    path = Path(path)
    v = np.ascontiguousarray(sculpture.vertices, "<f4")
    t = np.ascontiguousarray(sculpture.triangles, "<i4")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"comment hzlib sculpture {sculpture.form} {sculpture.glyph.char} {sculpture.glyph.style}\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(t)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode("utf-8")
    faces = np.empty(len(t), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    faces["n"], faces["idx"] = 3, t
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(v.tobytes())
            f.write(faces.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------------------- helpers


def _form_ranges(form: str) -> dict:
    if form not in FORM_RANGES:
        raise ValueError(f"unknown form {form!r}; known forms: {', '.join(FORMS)}")
    return FORM_RANGES[form]


def _glyph_section(glyph: Glyph, S: float) -> mf.CrossSection:
    """The glyph's filled region (NonZero) in metres: unit square -> [0, S]^2, lightly simplified."""
    cs = mf.CrossSection([np.asarray(c, float) for c in glyph.contours], mf.FillRule.NonZero).scale((S, S))
    eps = SIMPLIFY * S
    out = cs.simplify(eps)
    while out.num_vert() > MAX_SECTION_VERTS and eps < 0.004 * S:  # keeps meshes under ~30k triangles
        eps *= 1.5
        out = cs.simplify(eps)
    return _unpinch(_valid(out), PINCH * S)


def _valid(cs: mf.CrossSection) -> mf.CrossSection:
    """Re-union the contours: simplify() can make neighbouring contours overlap, which extrude()
    would turn into overlapping faces."""
    return mf.CrossSection(cs.to_polygons(), mf.FillRule.Positive)


def _unpinch(cs: mf.CrossSection, size: float) -> mf.CrossSection:
    """Fill a small diamond around every point where the outline touches itself.

    Brush and worn fonts have contours that touch at a vertex (a loop closing on its stroke, a hole
    meeting the outside). Extruded, such a point becomes an edge where the solid touches itself: the
    mesh stays manifold (manifold3d duplicates the vertices) but is self-intersecting for open3d, and
    2D decompose() misjudges what is connected. Joining the parts by a diamond ``size`` across
    (~1 mm) removes the contact; the glyph raster is unchanged at any useful resolution.
    """
    polys = cs.to_polygons()
    if not polys:
        return cs
    pts = np.concatenate(polys)
    owner = np.repeat(np.arange(len(polys)), [len(p) for p in polys])
    index = np.concatenate([np.arange(len(p)) for p in polys])
    sizes = np.array([len(p) for p in polys])[owner]
    pairs = cKDTree(pts).query_pairs(size * 0.05, output_type="ndarray")
    if len(pairs) == 0:
        return cs
    i, j = pairs[:, 0], pairs[:, 1]
    gap = np.abs(index[i] - index[j])
    # neighbours along one contour are a short edge, not a contact
    contact = (owner[i] != owner[j]) | ((gap > 1) & (gap < sizes[i] - 1))
    if not contact.any():
        return cs
    h = size / 2
    diamond = np.array([[h, 0.0], [0.0, h], [-h, 0.0], [0.0, -h]])
    spots = np.unique(np.round(pts[i[contact]] / (size * 0.05)), axis=0) * (size * 0.05)
    patches = mf.CrossSection([diamond + p for p in spots], mf.FillRule.NonZero)
    return cs + patches


def _box(a0, a1, b0, b1, c0, c1) -> mf.Manifold:
    """An axis-aligned box in the local frame."""
    return mf.Manifold.cube((a1 - a0, b1 - b0, c1 - c0)).translate((a0, b0, c0))


def _ink(cs: mf.CrossSection) -> tuple[float, float, float, float]:
    """Ink bounds (a0, b0, a1, b1) of a section placed with its unit square at the origin."""
    return tuple(cs.bounds())


def _bevelled(cs: mf.CrossSection, depth: float, bevel: float, steps: int, both: bool = False) -> mf.Manifold:
    """The section extruded over c in [0, depth], its top edge stepped inwards (a chamfer in
    ``steps`` steps of inset and height bevel/steps); with ``both``, centred on c = 0 and bevelled
    front and back. Layers overlap in volume (each spans the whole lower part) rather than touching
    face to face, so the union has no coplanar seams to resolve."""
    ends = 2 if both else 1
    bevel = min(bevel, 0.5 * depth / ends)
    if steps < 1 or bevel <= 0:
        layers = [(cs, depth)]
    else:
        layers = [(cs, depth - ends * bevel)]
        for i in range(1, steps + 1):
            inset = cs.offset(-bevel * i / steps, mf.JoinType.Miter).simplify(bevel / steps * 0.1)
            inset = _unpinch(_valid(inset), 0.5 * bevel / steps)
            if inset.is_empty():
                break
            layers.append((inset, depth - ends * bevel * (steps - i) / steps))
    solids = [mf.Manifold.extrude(c, h).translate((0, 0, -h / 2 if both else 0.0)) for c, h in layers]
    return mf.Manifold.batch_boolean(solids, mf.OpType.Add)


def _flare(cs: mf.CrossSection, depth: float, bevel: float, steps: int) -> mf.Manifold:
    """A cutter for intaglio: the section at c = 0 (the face), narrowing by a stepped bevel towards
    c = -depth; it also reaches a little above the face so the difference cuts cleanly."""
    lip = 0.2 * depth
    solid = _bevelled(cs, depth + lip, bevel, steps)  # top (narrow) at c = depth + lip
    return solid.mirror((0, 0, 1)).translate((0, 0, lip))  # narrow end now at c = -depth


def _to_world(m: mf.Manifold) -> mf.Manifold:
    """Local (a, b, c) -> world (x, y, z) = (a, -c, b): a proper rotation (det +1)."""
    return m.transform(np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0]]))


def _finish(solid: mf.Manifold, box_local, form: str, glyph: Glyph) -> Sculpture:
    """Rotate to the world frame, centre on the origin in x and y, stand on z = 0, and export."""
    if solid.status() != mf.Error.NoError or solid.is_empty():
        raise RuntimeError(f"manifold3d failed on {glyph.char!r} ({glyph.style}, {form}): {solid.status()}")
    solid = _weld(solid, WELD * (box_local[1] - box_local[0]), f"{glyph.char!r} ({glyph.style}, {form})")
    a0, a1, b0, b1, c0, c1 = box_local
    x0, y0, z0, x1, y1, z1 = solid.bounding_box()  # local bounds: (a, b, c)
    shift = np.array([-(x0 + x1) / 2, -y0, 0.0])  # a centred, b from 0 (ground)
    cmid = (z0 + z1) / 2
    solid = _to_world(solid.translate((shift[0], shift[1], -cmid)))
    verts, tris = _float32_mesh(solid, f"{glyph.char!r} ({glyph.style}, {form})")
    # glyph box: x = a + shift, z = b + shift, y = -(c - cmid)
    gbox = (a0 + shift[0], a1 + shift[0], -(c1 - cmid), -(c0 - cmid), b0 + shift[1], b1 + shift[1])
    return Sculpture(
        vertices=verts,
        triangles=tris,
        form=form,
        glyph=glyph,
        glyph_box=tuple(float(x) for x in gbox),
        glyph_raster=glyph_raster(glyph),
    )


def _float32_mesh(solid: mf.Manifold, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The mesh with float32 vertices, re-validated by manifold3d at that precision.

    Rounding to float32 can fold the thin slivers that booleans leave (a rod through a slanted wall)
    into real self-intersections. Rebuilding a Manifold from the rounded mesh lets manifold3d collapse
    those degenerate triangles (onto existing vertices, so nothing is rounded again): on 1,734 builds
    of 25 characters x 12 styles x 6 forms this took exact-arithmetic self-intersections from 11 to 0.
    """
    mesh = solid.to_mesh()
    verts = np.asarray(mesh.vert_properties, np.float32)[:, :3].copy()
    again = mf.Manifold(mf.Mesh(verts, np.asarray(mesh.tri_verts, np.uint32)))
    if again.status() != mf.Error.NoError or again.is_empty():
        raise RuntimeError(f"sculpture of {what} is not manifold in float32: {again.status()}")
    mesh = again.to_mesh()
    return np.asarray(mesh.vert_properties, np.float32)[:, :3].copy(), np.asarray(mesh.tri_verts, np.int32).copy()


def _weld(solid: mf.Manifold, width: float, what: str) -> mf.Manifold:
    """Make the solid one piece: join each part that merely touches the largest one with a small box.

    Where an outline touches itself at a point (common in cursive hands), extrusion turns the point
    into an edge, which manifold3d keeps as two separate parts (and 2D decompose() sees as one piece,
    so rods and bridges miss it). The weld spans the touching vertices, widened by ``width`` in a and
    b but not along c (unless the contact is a single point), so nothing pokes out of the faces.
    """
    parts = solid.decompose()
    if len(parts) == 1:
        return solid
    # coplanar faces touching (two rods side by side) can leave zero-volume slivers: drop them
    parts = sorted((m for m in parts if m.volume() > 1e-6 * width**3), key=lambda m: -m.volume())
    solid = mf.Manifold.batch_boolean(parts, mf.OpType.Add)
    if len(parts) == 1:
        return solid
    main_v = np.asarray(parts[0].to_mesh().vert_properties)[:, :3]
    tree = cKDTree(main_v)
    welds = []
    for part in parts[1:]:
        v = np.asarray(part.to_mesh().vert_properties)[:, :3]
        dist, _ = tree.query(v)
        touch = v[dist <= 0.25 * width]
        if not len(touch):
            raise RuntimeError(f"sculpture of {what} has a floating part {dist.min():.4f} m from the rest")
        lo, hi = touch.min(axis=0), touch.max(axis=0)
        pad = np.array([width, width, width if hi[2] - lo[2] < width else 0.0])
        welds.append(_box(lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1],
                          lo[2] - pad[2], hi[2] + pad[2]))
    out = mf.Manifold.batch_boolean([solid, *welds], mf.OpType.Add)
    if len(out.decompose()) != 1:
        raise RuntimeError(f"sculpture of {what} stays in {len(out.decompose())} pieces after welding")
    return out


def _stele(ink, S, p, depth_key: str | None = None):
    """An upright stele around the ink box (front face at c = 0) on a wider base; ``depth_key`` names
    a parameter the stele must stay at least three times as thick as (what is cut into it)."""
    ia0, ib0, ia1, ib1 = ink
    sa0, sa1 = ia0 - p["margin_side"] * S, ia1 + p["margin_side"] * S
    sb0, sb1 = ib0 - p["margin_bottom"] * S, ib1 + p["margin_top"] * S
    T = p["stele_thickness"] * S
    if depth_key:  # the stele must stay thicker than what is cut into it
        T = max(T, 3 * p[depth_key] * S)
    bh, bo = p["base_height"] * S, p["base_overhang"] * S
    stele = _box(sa0, sa1, sb0, sb1, -T, 0.0)
    base = _box(sa0 - bo, sa1 + bo, sb0 - bh, sb0 + 1e-3 * S, -T - bo, bo)
    return stele + base


# ------------------------------------------------------------------------------------- forms


def _freestanding(glyph: Glyph, cs: mf.CrossSection, S: float, p: dict):
    """A thick glyph standing on a low plinth; pieces that do not reach the plinth hang on rods."""
    T = p["thickness"] * S
    bevel, steps = p["bevel"] * S, p["bevel_steps"]
    ia0, ib0, ia1, ib1 = _ink(cs)
    sink = 0.004 * S  # the glyph's lowest points sit this far inside the plinth
    top = ib0 + sink
    glyph_solid = _bevelled(cs, T, bevel, steps, both=True)
    m, ph = p["plinth_margin"] * S, p["plinth_height"] * S
    plinth = _box(ia0 - m, ia1 + m, top - ph, top, -T / 2 - m, T / 2 + m)
    rods = _rods(glyph, cs, S, p["rod_width"] * S, floor=top, grounded_below=top - 0.25 * sink)
    solid = mf.Manifold.batch_boolean([plinth, glyph_solid, *rods], mf.OpType.Add)
    return solid, (0.0, S, 0.0, S, -T / 2, T / 2)


def _rods(glyph: Glyph, cs: mf.CrossSection, S: float, width: float, floor: float, grounded_below: float):
    """Square rods from the plinth (top at b = floor) up into every glyph piece that does not reach
    it, so the sculpture is one solid. A rod enters its piece where the piece is thickest vertically
    over the rod's width and stops halfway up that stroke; a speck too small for that gets a pin, as
    wide as fits, up to its most interior point."""
    rods = []
    px = S / RASTER
    for piece in cs.decompose():
        if piece.bounds()[1] <= grounded_below:
            continue
        mask = fill_mask([q / S for q in piece.to_polygons()], RASTER)[::-1]  # row 0 at b = 0
        w = max(2, int(round(width / px)))
        j = _rod_site(mask, w)
        if j is not None:
            h, ca, top = w * px / 2, (j + w / 2) * px, _site_top(mask, j, w) * px
        else:
            (ca, top), inner = _interior_point(piece, mask, px)
            h = float(np.clip(0.7 * inner, 0.0005 * S, width / 2))
        rods.append(_box(ca - h, ca + h, floor - 2 * h, top, -h, h))
    return rods


def _interior_point(piece: mf.CrossSection, mask: np.ndarray, px: float) -> tuple[tuple[float, float], float]:
    """The most interior point (a, b) of a piece, by distance transform of its mask (rows = b up),
    and its distance to the boundary; the vertex mean for a piece too small to have a pixel."""
    if not mask.any():
        pts = np.concatenate(piece.to_polygons())
        return tuple(pts.mean(axis=0)), 0.0
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, c0 = max(rows[0] - 1, 0), max(cols[0] - 1, 0)  # crop (with a border of outside pixels)
    dist = distance_transform_edt(mask[r0:rows[-1] + 2, c0:cols[-1] + 2])
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return ((c0 + c + 0.5) * px, (r0 + r + 0.5) * px), float(dist[r, c] - 0.5) * px


def _column_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a (rows = b up, cols = a) mask: the lowest inside row, and the end (exclusive)
    of the inside run starting there; columns with no pixel get (big, -big)."""
    rows = mask.shape[0]
    has = mask.any(axis=0)
    lo = np.where(has, mask.argmax(axis=0), rows * 4)
    idx = np.arange(rows)[:, None]
    # first outside pixel above lo
    above = (~mask) & (idx > lo[None, :])
    hi = np.where(above.any(axis=0), above.argmax(axis=0), rows)
    hi = np.where(has, hi, -rows * 4)
    return lo, hi


def _rod_site(mask: np.ndarray, w: int) -> int | None:
    """First column of the window of w columns where a rod can enter the piece deepest (maximising
    min(run end) - max(lowest row) over the window), or None if no window gets 2 rows in."""
    lo, hi = _column_runs(mask)
    if mask.shape[1] < w:
        return None
    slack = sliding_window_view(hi, w).min(axis=1) - sliding_window_view(lo, w).max(axis=1)
    j = int(np.argmax(slack))
    return j if slack[j] >= 2 else None


def _site_top(mask: np.ndarray, j: int, w: int) -> float:
    """Height (in rows) halfway through the stroke the rod enters in window j..j+w."""
    lo, hi = _column_runs(mask[:, j:j + w])
    return (lo.max() + hi.min()) / 2


def _relief(glyph: Glyph, cs: mf.CrossSection, S: float, p: dict):
    """A raised glyph on the front face of an upright stele standing on a base."""
    d = p["relief_depth"] * S
    stele = _stele(_ink(cs), S, p)
    eps = 0.25 * d  # the glyph is embedded this far into the stele
    raised = _bevelled(cs, d + eps, p["bevel"] * S, p["bevel_steps"]).translate((0, 0, -eps))
    return stele + raised, (0.0, S, 0.0, S, 0.0, d)


def _carved(glyph: Glyph, cs: mf.CrossSection, S: float, p: dict):
    """Intaglio: the glyph cut into the front face of an upright stele standing on a base."""
    d = p["carve_depth"] * S
    stele = _stele(_ink(cs), S, p, depth_key="carve_depth")
    cut = _flare(cs, d, p["bevel"] * S, p["bevel_steps"])
    return stele - cut, (0.0, S, 0.0, S, -d, 0.0)


def _slab(glyph: Glyph, cs: mf.CrossSection, S: float, p: dict):
    """A low, wide, thin plaque with the glyph raised a little, standing on two short feet."""
    ia0, ib0, ia1, ib1 = _ink(cs)
    m = p["margin"] * S
    h = (ib1 - ib0) + 2 * m
    w = max(p["aspect"] * h, (ia1 - ia0) + 2 * m)
    ca = (ia0 + ia1) / 2
    t, d = p["plate_thickness"] * S, p["relief_depth"] * S
    plate = _box(ca - w / 2, ca + w / 2, ib0 - m, ib1 + m, -t, 0.0)
    fh, fd = p["feet_height"] * S, p["feet_depth"] * t
    fw = 0.12 * w
    feet = [
        _box(ca + s * 0.3 * w - fw / 2, ca + s * 0.3 * w + fw / 2, ib0 - m - fh, ib0 - m + 0.02 * h,
             -t / 2 - fd / 2, -t / 2 + fd / 2)
        for s in (-1, 1)
    ]
    eps = 0.25 * d
    raised = _bevelled(cs, d + eps, p["bevel"] * S, p["bevel_steps"]).translate((0, 0, -eps))
    solid = mf.Manifold.batch_boolean([plate, *feet, raised], mf.OpType.Add)
    return solid, (0.0, S, 0.0, S, 0.0, d)


def _openwork(glyph: Glyph, cs: mf.CrossSection, S: float, p: dict):
    """镂空: the glyph cut through an upright plate on a base. Islands of the plate enclosed by the
    glyph (the inside of 口) hang on thin bars set back from the front face, as in stencil work."""
    ia0, ib0, ia1, ib1 = _ink(cs)
    m, t = p["margin"] * S, p["plate_thickness"] * S
    pa0, pa1, pb0, pb1 = ia0 - m, ia1 + m, ib0 - m, ib1 + m
    plate2d = mf.CrossSection.square((pa1 - pa0, pb1 - pb0)).translate((pa0, pb0))
    plate = mf.Manifold.extrude(plate2d, t).translate((0, 0, -t))
    # cutter: straight through, flaring towards the front by the bevel
    bevel, steps = p["bevel"] * S, p["bevel_steps"]
    through = mf.Manifold.extrude(cs, t * 1.5).translate((0, 0, -t * 1.25))
    flare = [
        mf.Manifold.extrude(
            cs.offset(bevel * (steps - i) / steps, mf.JoinType.Miter), bevel * 2
        ).translate((0, 0, -bevel * (i + 1) / steps))
        for i in range(steps)
    ] if bevel > 0 and steps > 0 else []
    cutter = mf.Manifold.batch_boolean([through, *flare], mf.OpType.Add)
    bh, bo = p["base_height"] * S, p["base_overhang"] * S
    base = _box(pa0 - bo, pa1 + bo, pb0 - bh, pb0 + 1e-3 * S, -t - bo, bo)
    bars = _bridges(plate2d - cs, S, p["bridge_width"] * S, back=-t, depth=p["bridge_depth"] * t)
    solid = mf.Manifold.batch_boolean([plate - cutter, base, *bars], mf.OpType.Add)
    return solid, (0.0, S, 0.0, S, -t, 0.0)


def _bridges(region: mf.CrossSection, S: float, width: float, back: float, depth: float):
    """Bars joining each island of ``region`` (pieces other than the outer frame) to the frame, along
    the axis direction that crosses the least glyph; each bar runs from the island's most interior
    point, at the back of the plate (c from ``back`` to ``back + depth``)."""
    pieces = region.decompose()
    if len(pieces) < 2:
        return []
    outer = region.bounds()
    frame_i = max(range(len(pieces)), key=lambda i: (pieces[i].bounds() == outer, pieces[i].area()))
    px = S / RASTER

    def to_mask(q):
        return fill_mask([c / S for c in q.to_polygons()], RASTER)[::-1]  # row 0 at b = 0

    region_mask, frame_mask = to_mask(region), to_mask(pieces[frame_i])
    bars = []
    for i, island in enumerate(pieces):
        if i == frame_i:
            continue
        (pa, pb), _ = _interior_point(island, to_mask(island), px)
        r = int(np.clip(pb / px, 0, RASTER - 1))
        c = int(np.clip(pa / px, 0, RASTER - 1))
        best = None  # (glyph pixels crossed, end point in the frame)
        for line_f, line_r, sign, axis in (
            (frame_mask[r, c:], region_mask[r, c:], 1, "a"),
            (frame_mask[r, c::-1], region_mask[r, c::-1], -1, "a"),
            (frame_mask[r:, c], region_mask[r:, c], 1, "b"),
            (frame_mask[r::-1, c], region_mask[r::-1, c], -1, "b"),
        ):
            hit = np.flatnonzero(line_f)
            if not len(hit):
                continue
            k = int(hit[0])
            gap = int((~line_r[:k]).sum())
            if best is None or gap < best[0]:
                best = (gap, sign * (k + 3) * px, axis)  # reach a few pixels into the frame
        if best is None:
            raise RuntimeError("openwork: an island of the plate cannot be bridged to its frame")
        _, reach, axis = best
        h = width / 2
        if axis == "a":
            a0, a1 = sorted((pa, pa + reach))
            bars.append(_box(a0 - h, a1 + h, pb - h, pb + h, back, back + depth))
        else:
            b0, b1 = sorted((pb, pb + reach))
            bars.append(_box(pa - h, pa + h, b0 - h, b1 + h, back, back + depth))
    return bars


def _boulder(glyph: Glyph, cs: mf.CrossSection, S: float, p: dict):
    """A rough rock (a noisy ellipsoid) with a flattened front into which the glyph is carved, its
    bottom cut flat and sunk into the ground, like scenic-spot 石刻."""
    ia0, ib0, ia1, ib1 = _ink(cs)
    ca, cb = (ia0 + ia1) / 2, (ib0 + ib1) / 2
    k = 1 + p["rock_margin"]
    # the ellipse through the ink box corners, grown by k: semi-axes sqrt(2) * half-size * k
    ra, rb = math.sqrt(2) * k * (ia1 - ia0) / 2, math.sqrt(2) * k * (ib1 - ib0) / 2
    rc = p["rock_depth"] * max(ra, rb)
    # flatten the front just deep enough that the flat section (the outline scaled by
    # sqrt(1 - (front/rc)^2)) holds the ink box (at scale 1/k) with 10% to spare beyond the noise
    amp = p["roughness"]
    s_need = min(0.97, 1.1 / k * (1 + 1.5 * amp))
    front = rc * math.sqrt(1 - s_need**2)
    rng = np.random.default_rng(p["noise_seed"])
    n_waves = 10  # sum of plane waves over the sphere: broad lumps plus smaller bumps
    dirs = rng.normal(size=(n_waves, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freq = rng.uniform(0.8, 4.0, n_waves)
    phase = rng.uniform(0, 2 * np.pi, n_waves)
    weight = rng.uniform(0.5, 1.0, n_waves) / freq
    weight /= weight.sum()

    def warp(v: np.ndarray) -> np.ndarray:  # v on the unit sphere -> noisy ellipsoid
        n = np.linalg.norm(v, axis=1, keepdims=True)
        u = v / n
        noise = (weight * np.cos(freq * (u @ dirs.T) * np.pi + phase)).sum(axis=1, keepdims=True)
        return u * (1 + amp * noise) * (ra, rb, rc) + (ca, cb, 0.0)

    rock = mf.Manifold.sphere(1.0, ROCK_SEGMENTS).warp_batch(warp)
    rock = rock.trim_by_plane((0, 0, -1), -front)  # keep c <= front
    ground = cb - rb * (1 - p["sink"])
    rock = rock.trim_by_plane((0, 1, 0), ground)  # keep b >= ground
    d = p["carve_depth"] * S
    cut = _flare(cs, d, p["bevel"] * S, p["bevel_steps"]).translate((0, 0, front))
    return rock - cut, (0.0, S, 0.0, S, front - d, front)

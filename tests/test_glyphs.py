"""Glyph sources: the style registry, outlines in the unit square, stroke data, rasters, errors."""
from __future__ import annotations

from pathlib import Path

import manifold3d as mf
import numpy as np
import pytest

from hzlib import assets
from hzlib.corpus import glyphs as G
from hzlib.corpus.types import STROKE_TYPES, Glyph

CHARS = ("真", "山")
ZHEN_TYPES = ["横", "竖", "竖", "折", "横", "横", "横", "横", "撇", "点"]  # char-similar 1225111134


def _hanzi_dir() -> Path | None:
    """The unpacked hanzi-writer-data package, wherever the asset module keeps it (None if absent)."""
    try:
        return Path(assets.asset_dir("hanzi-writer-data"))
    except Exception:  # not fetched through `hz assets fetch` (unverified): look in the cache itself
        path = assets.cache_dir() / "hanzi-writer-data-2.0.1" / "package"
        return path if path.is_dir() else None


HANZI = _hanzi_dir()


def need(style: str) -> None:
    """Skip, saying what to install, when a style's source is absent here."""
    spec = G.STYLES[style]
    if style == G.STROKES:
        if HANZI is None:
            pytest.skip(f"hanzi-writer-data not fetched: run `hz assets fetch` ({G.HANZI_WRITER_PACKAGE})")
    elif not G.is_installed(style):
        pytest.skip(f"font {spec.path} for style {style!r} not installed: apt-get install {spec.package}")


def square(x0, y0, x1, y1, ccw=True) -> np.ndarray:
    pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
    return pts if ccw else pts[::-1].copy()


# ------------------------------------------------------------------------------------ registry


def test_registry_is_consistent():
    scripts = {"宋体", "楷书", "黑体", "仿宋", "行书", "草书"}
    assert {"song", "kai", "hei", "strokes"} <= set(G.STYLES)
    for key, spec in G.STYLES.items():
        assert spec.key == key
        assert spec.script in scripts, spec
        assert spec.name and spec.name_zh and spec.package
        if key != G.STROKES:
            assert spec.path.startswith("/usr/share/fonts/"), spec
    with pytest.raises(Exception):  # frozen
        G.STYLES["song"].path = "/tmp/x"


# ------------------------------------------------------------------------------------ outlines


@pytest.mark.parametrize("char", CHARS)
@pytest.mark.parametrize("style", list(G.STYLES))
def test_outline_in_unit_square(style, char):
    need(style)
    assert G.covers(style, char, HANZI)
    g = G.load_glyph(char, style, HANZI)
    assert (g.char, g.style) == (char, style)
    assert g.contours, "no contours"
    for c in g.contours:
        assert c.dtype == np.float64 and c.ndim == 2 and c.shape[1] == 2 and len(c) >= 3
        assert np.all(c >= 0) and np.all(c <= 1)
        assert not np.array_equal(c[0], c[-1]), "closing point repeated"
    area = mf.CrossSection(g.contours, mf.FillRule.NonZero).area()
    assert 0.02 < area < 0.5  # a real character, not a box or a speck


def test_em_box_keeps_typeset_size_and_position():
    need("song")
    def bbox(ch):
        pts = np.concatenate(G.load_glyph(ch, "song").contours)
        return pts.min(axis=0), pts.max(axis=0)

    (k0, k1), (g0, g1) = bbox("口"), bbox("國")
    assert np.prod(k1 - k0) < 0.8 * np.prod(g1 - g0)  # 口 is typeset smaller than 國
    (y0, y1) = bbox("一")
    assert y1[1] - y0[1] < 0.15 and 0.35 < (y0[1] + y1[1]) / 2 < 0.6  # 一 is a thin bar mid-height
    # the same character in two styles lands in about the same place
    s, k = np.concatenate(G.load_glyph("国", "song").contours), np.concatenate(G.load_glyph("国", "hei").contours)
    assert np.abs(s.mean(axis=0) - k.mean(axis=0)).max() < 0.08


def test_loaded_glyphs_are_independent_copies():
    need("song")
    a = G.load_glyph("真", "song")
    a.contours[0][:] = -5.0
    b = G.load_glyph("真", "song")
    assert b.contours[0].min() >= 0


def test_font_is_loaded_once():
    need("kai")
    G.load_glyph("真", "kai")
    before = G._load_font.cache_info()
    G.load_glyph("山", "kai")
    G.covers("kai", "水")
    after = G._load_font.cache_info()
    assert after.misses == before.misses and after.hits > before.hits


# ------------------------------------------------------------------------------------ strokes


def test_strokes_zhen():
    need(G.STROKES)
    g = G.load_glyph("真", G.STROKES, HANZI)
    assert g.has_strokes and len(g.strokes) == 10
    assert g.stroke_types == ZHEN_TYPES
    assert all(t in STROKE_TYPES for t in g.stroke_types)
    assert sum(len(s) for s in g.strokes) == len(g.contours)
    first = np.concatenate(g.strokes[0])
    w, h = first.max(axis=0) - first.min(axis=0)
    assert w > 3 * h, "the first stroke of 真 is a horizontal"
    second = np.concatenate(g.strokes[1])
    w, h = second.max(axis=0) - second.min(axis=0)
    assert h > 2 * w, "the second stroke of 真 is a vertical"


def test_stroke_types_dropped_when_counts_disagree(monkeypatch):
    need(G.STROKES)
    # 夢: char-similar has a 13-stroke code, hanzi-writer-data 14 strokes
    g = G.load_glyph("夢", G.STROKES, HANZI)
    assert len(g.strokes) != len(G.stroke_order_code("夢")) and g.stroke_types is None
    monkeypatch.setattr(G, "stroke_order_code", lambda ch: "12")
    assert G.load_glyph("真", G.STROKES, HANZI).stroke_types is None


def test_stroke_order_code_from_char_similar():
    assert G.stroke_order_code("真") == "1225111134"
    assert G.stroke_types("山") == ["竖", "折", "竖"]
    assert G.stroke_order_code("A") is None


def test_svg_paths():
    (p,) = G.svg_polygons("M 0 0 L 10 0 L 10 10 Z")
    assert p.tolist() == [[0, 0], [10, 0], [10, 10]]
    (q,) = G.svg_polygons("M 0 0 Q 10 10 20 0 L 10 -5 Z", tolerance=0.01)
    assert len(q) > 4 and q[:, 1].max() == pytest.approx(5, abs=0.1)  # the curve's apex is at y = 5
    (c,) = G.svg_polygons("M 0 0 C 0 10 10 10 10 0 Z", tolerance=0.01)
    assert c[:, 1].max() == pytest.approx(7.5, abs=0.1)
    assert len(G.svg_polygons("M 0 0 L 1 0 L 1 1 Z M 5 5 L 6 5 L 6 6 Z")) == 2
    with pytest.raises(ValueError, match="relative"):
        G.svg_polygons("M 0 0 l 1 0 l 0 1 z")


# ------------------------------------------------------------------------------------ errors


def test_unknown_style():
    with pytest.raises(G.UnknownStyleError, match="seal.*known styles: song"):
        G.load_glyph("真", "seal")
    with pytest.raises(ValueError):
        G.covers("seal", "真")


def test_uncovered_char_names_everything():
    need("song")
    assert not G.covers("song", "한")
    with pytest.raises(G.NotCoveredError) as e:
        G.load_glyph("한", "song")
    msg = str(e.value)
    for part in ("'song'", G.STYLES["song"].path, "fonts-arphic-uming", "한", "U+D55C"):
        assert part in msg


def test_empty_glyph_is_not_covered():
    need("worn_mincho")
    # Oradano maps some simplified characters (你, 吧, 呢) to glyphs without an outline
    empty = [ch for ch in "你吧呢" if G._outline(G.STYLES["worn_mincho"].path, 0, ch) == ()]
    if not empty:
        pytest.skip("this Oradano version has no empty glyphs among the probes")
    assert not G.covers("worn_mincho", empty[0])
    with pytest.raises(G.NotCoveredError, match="empty glyph"):
        G.load_glyph(empty[0], "worn_mincho")


def test_missing_font_file(monkeypatch):
    ghost = G.StyleSpec("ghost", "fonts-ghost", "/nonexistent/ghost.ttf", 0, "Ghost", "幽灵", "楷书")
    monkeypatch.setitem(G.STYLES, "ghost", ghost)
    assert not G.is_installed("ghost") and "ghost" not in G.available_styles()
    for call in (lambda: G.load_glyph("真", "ghost"), lambda: G.covers("ghost", "真")):
        with pytest.raises(G.MissingSourceError) as e:
            call()
        assert "/nonexistent/ghost.ttf" in str(e.value) and "apt-get install fonts-ghost" in str(e.value)
        assert "'ghost'" in str(e.value)


def test_strokes_need_their_folder(tmp_path):
    with pytest.raises(G.MissingSourceError, match="hanzi_dir"):
        G.load_glyph("真", G.STROKES)
    with pytest.raises(G.MissingSourceError, match="does not exist"):
        G.load_glyph("真", G.STROKES, tmp_path / "nowhere")
    assert not G.covers(G.STROKES, "真", tmp_path)  # an empty folder covers nothing
    with pytest.raises(G.NotCoveredError, match="真"):
        G.load_glyph("真", G.STROKES, tmp_path)


# ------------------------------------------------------------------------------------ raster


def test_raster_square_with_hole():
    g = Glyph("口", "test", [square(0.25, 0.25, 0.75, 0.75), square(0.4, 0.4, 0.6, 0.6, ccw=False)])
    r = G.glyph_raster(g, 100)
    assert r.dtype == np.int16 and r.shape == (100, 100)
    expect = np.zeros((100, 100), np.int16)
    expect[25:75, 25:75] = -1  # pixel centres (k + 0.5) / 100 inside (0.25, 0.75)
    expect[40:60, 40:60] = 0
    np.testing.assert_array_equal(r, expect)
    # reversing every contour (CFF vs TrueType winding) gives the same raster
    flipped = Glyph("口", "test", [c[::-1].copy() for c in g.contours])
    np.testing.assert_array_equal(G.glyph_raster(flipped, 100), expect)


def test_raster_orientation_row0_is_top():
    g = Glyph("x", "test", [square(0.0, 0.5, 0.5, 1.0)])  # the top-left quarter
    r = G.glyph_raster(g, 64)
    assert (r[:32, :32] == -1).all() and (r[32:, :] == 0).all() and (r[:, 32:] == 0).all()


def test_raster_nonzero_overlap_is_filled():
    # two overlapping squares wound the same way: NonZero fills the overlap, even-odd would not
    g = Glyph("x", "test", [square(0.1, 0.1, 0.6, 0.6), square(0.4, 0.4, 0.9, 0.9)])
    r = G.glyph_raster(g, 100)
    assert (r[45:55, 45:55] == -1).all()
    assert (r != 0).sum() == 50 * 50 * 2 - 20 * 20


def test_raster_strokes_later_wins():
    s1, s2 = [square(0.1, 0.4, 0.9, 0.6)], [square(0.4, 0.1, 0.6, 0.9)]
    g = Glyph("十", "test", s1 + s2, strokes=[s1, s2], stroke_types=["横", "竖"])
    r = G.glyph_raster(g, 100)
    assert r[50, 50] == 2 and r[50, 20] == 1 and r[20, 50] == 2 and r[5, 5] == 0
    assert set(np.unique(r)) == {0, 1, 2}


@pytest.mark.parametrize("char", CHARS)
@pytest.mark.parametrize("style", list(G.STYLES))
def test_raster_area_matches_cross_section(style, char):
    need(style)
    g = G.load_glyph(char, style, HANZI)
    area = mf.CrossSection(g.contours, mf.FillRule.NonZero).area()
    r = G.glyph_raster(g, 512)
    assert (r != 0).mean() == pytest.approx(area, rel=0.02)
    if g.has_strokes:
        assert -1 not in r  # every glyph pixel belongs to a stroke
        assert set(np.unique(r)) == set(range(len(g.strokes) + 1))
    else:
        assert set(np.unique(r)) == {-1, 0}


# ------------------------------------------------------------------------------ the form shown


def test_form_variants_from_cc_cedict():
    assert G.form_variants("真") == ("眞",)
    assert "靜" in G.form_variants("静") and "壽" in G.form_variants("寿")
    assert "龙" in G.form_variants("龍") and "龍" in G.form_variants("龙")


def test_a_font_that_draws_zhen_as_its_own_variant_is_caught():
    need("kai")
    need("song")
    kai = G.form_similarity(G.load_glyph("真", "kai"), G.load_glyph("眞", "kai"))
    song = G.form_similarity(G.load_glyph("真", "song"), G.load_glyph("眞", "song"))
    assert kai >= G.SAME_GLYPH > 0.8 > song  # UKai's 真 is its 眞; UMing distinguishes them
    assert G.form_shown("kai", "真") == "眞" and not G.shows_named_form("kai", "真")
    for style in ("song", "hei"):  # the same form in two other typefaces
        need(style)
        assert G.form_shown(style, "真") == "真" and G.shows_named_form(style, "真")


@pytest.mark.parametrize("style,char,shown", [
    ("worn_mincho", "寿", "壽"), ("worn_mincho", "礼", "禮"), ("worn_mincho", "禅", "禪"),
    ("worn_mincho", "真", "眞"), ("worn_mincho", "静", "靜"), ("kai", "真", "眞"), ("soseki", "静", "靜"),
])
def test_known_other_forms(style, char, shown):
    """The pairs an OCR model read as another form (issue 17)."""
    need(style)
    assert G.form_shown(style, char, HANZI) == shown
    assert not G.shows_named_form(style, char, HANZI)


def test_forms_seen_are_needed_and_are_variants():
    """Each pair decided by looking is one the score decides otherwise, and names a form of the char."""
    for (style, char), shown in G.FORM_SEEN.items():
        need(style)
        assert shown == char or shown in G.form_variants(char)
        scores = G.form_scores(style, char, None)
        by_score = any(s >= G.SAME_GLYPH for s in scores.values())
        assert by_score == (shown == char), (style, char, scores)


def test_strokes_show_the_named_form():
    need(G.STROKES)
    assert G.shows_named_form(G.STROKES, "真", HANZI)


def test_every_default_plan_pair_shows_the_named_form():
    """Acceptance (issue 17, item 4): no default-corpus image shows another form of its character."""
    from hzlib.config import load_profile
    from hzlib.corpus import build as B

    need(G.STROKES)
    pairs = {(r["style"], r["char"]) for r in B.plan(load_profile("default"), HANZI)}
    assert len(pairs) > 300
    wrong = {p: G.form_shown(*p, HANZI) for p in pairs if G.form_shown(*p, HANZI) != p[1]}
    assert not wrong
    assert not pairs & {("kai", "真"), ("soseki", "静")}

"""The built book in headless Chromium: pages load, images show, links resolve, figures are there.

The pure parts run on a hand-made tree; the browser runs on a hand-made tree with one broken link
and one broken image (so the check is seen to fail) and, slow, on the smoke book that
test_reproduce builds (one build per session, see conftest)."""
import os
from pathlib import Path

import pytest
from PIL import Image

from hzlib.browser import check_book, check_links, resolve_href, scan_html, summary_page
from hzlib.reproduce import toc_files

ROOT = Path(__file__).resolve().parent.parent
# The smoke book's screenshot, a CI artefact: a stable path in the clone (git-ignored), not pytest's tmp.
ARTEFACTS = Path(os.environ.get("HZ_ARTEFACTS", ROOT / "_build" / "artefacts"))

# The paper's figures and tables each chapter reproduces (see the notebooks' headings): the page must
# show a heading or caption with the label whose section holds an image (Figure) or a table (Table).
PAPER_LABELS = {
    "book/chapters/01_data_statistics": ["Table 1"],
    "book/chapters/02_normalization": ["Figure 1"],
    "book/chapters/03_structure_from_motion": ["Figure 2"],
    "book/chapters/04_text_mapping": ["Table 2"],
    "book/chapters/05_clip_training": ["Figure 3"],
    "book/chapters/06_gradcam": ["Figure 4"],
    "book/chapters/07_clustering": ["Figure 5", "Figure 6"],
    "book/chapters/08_evaluation": ["Figure 7", "Figure 8", "Table 3"],
}


def test_toc_files_lists_root_chapters_and_sections_in_order(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: book/chapters/01_a.ipynb\n        sections:\n          - file: book/chapters/01_a_more\n"
        "  - caption: B\n    chapters:\n      - file: book/generated/summary\n      - url: https://example.org\n",
        encoding="utf-8")
    files = toc_files(tmp_path)
    assert files == ["book/intro", "book/chapters/01_a", "book/chapters/01_a_more", "book/generated/summary"]
    assert summary_page(files) == "book/generated/summary"
    assert summary_page(files[:3]) == "book/intro"  # no summary page yet: the root page


def test_the_book_toc_starts_at_its_root_and_lists_every_chapter():
    files = toc_files(ROOT)
    assert files[0] == "book/intro"
    assert set(PAPER_LABELS) <= set(files)


@pytest.mark.parametrize("page, href, expected", [
    ("book/chapters/01_a.html", "02_b.html", ("book/chapters/02_b.html", "")),
    ("book/chapters/01_a.html", "../../_images/x.png", ("_images/x.png", "")),
    ("book/chapters/01_a.html", "../intro.html#how-to", ("book/intro.html", "how-to")),
    ("book/chapters/01_a.html", "#table-1", ("book/chapters/01_a.html", "table-1")),
    ("book/chapters/01_a.html", "./02_b.html?v=1#x%20y", ("book/chapters/02_b.html", "x y")),
    ("book/intro.html", "/search.html", ("search.html", "")),
    ("book/intro.html", "chapters/", ("book/chapters/index.html", "")),
    ("index.html", "../outside.html", ("../outside.html", "")),  # climbs out of the book: kept, fails
    ("index.html", "https://doi.org/10.1", None),
    ("index.html", "//cdn.example.org/x.js", None),
    ("index.html", "mailto:a@b.c", None),
    ("index.html", "javascript:void(0)", None),
])
def test_resolve_href(page, href, expected):
    assert resolve_href(page, href) == expected


def test_scan_html_finds_ids_links_and_images():
    s = scan_html('<section id="figure-2"><a name="old"></a><a href="b.html#x">b</a><a>no href</a>'
                  '<img src="../_images/f.png" alt="f"></section>')
    assert s.ids == {"figure-2", "old"} and s.hrefs == ["b.html#x"] and s.srcs == ["../_images/f.png"]


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><main>{body}</main></body></html>")


def _tree(root: Path) -> Path:
    """A tiny built book: two pages, a figure below the fold (lazily loaded), a table, an external link."""
    html = root / "_build" / "html"
    (html / "book" / "chapters").mkdir(parents=True)
    (html / "_images").mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(html / "_images" / "fig.png")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapters/01_a\n",
                                   encoding="utf-8")
    (html / "book" / "intro.html").write_text(_page("Intro", (
        '<h1 id="intro">Intro</h1><a href="chapters/01_a.html#figure-2">Figure 2</a> '
        '<a href="https://example.org/">external</a> <a href="#intro">top</a>')), encoding="utf-8")
    (html / "book" / "chapters" / "01_a.html").write_text(_page("A", (
        '<h1>A, with Figure 2 and Table 1</h1>'
        '<section id="results"><h2>Results</h2><div class="cell_input"><pre>x = 1</pre></div>'
        '<div class="cell_output"><img src="../../_images/fig.png" alt="result"></div></section>'
        '<section id="table-1"><h2>Table 1: counts</h2><table><tr><td>1</td></tr></table></section>'
        '<section id="figure-2"><h2>Figure 2</h2><div style="height:4000px"></div>'
        '<img loading="lazy" src="../../_images/fig.png" alt="fig"></section>'
        '<a href="../intro.html">back</a> <a href="../../_images/fig.png">the image</a>')), encoding="utf-8")
    return html


def test_check_links_on_a_hand_made_tree(tmp_path):
    html = _tree(tmp_path)
    links = {p: scan_html((html / p).read_text()).hrefs for p in ("book/intro.html", "book/chapters/01_a.html")}
    assert check_links(html, links) == []
    links["book/intro.html"] += ["chapters/02_missing.html", "chapters/01_a.html#figure-9", "../../../etc/passwd"]
    assert check_links(html, links) == [
        "book/intro.html: link 'chapters/02_missing.html' -> book/chapters/02_missing.html does not exist",
        "book/intro.html: link 'chapters/01_a.html#figure-9' -> book/chapters/01_a.html has no element "
        "with id 'figure-9'",
        "book/intro.html: link '../../../etc/passwd' -> book/../../../etc/passwd does not exist",
    ]


def test_browser_passes_a_good_tree_and_photographs_the_root_page(tmp_path, headless_chromium):
    html = _tree(tmp_path)
    files = toc_files(tmp_path)
    report = check_book(html, files, expect={"book/chapters/01_a": ["Figure 2", "Table 1"]},
                        images_per_page={"book/chapters/01_a": 1}, screenshot=tmp_path / "shot.png",
                        figure_above_fold=["book/chapters/01_a"])
    assert report.problems == []
    seen = report.pages["book/chapters/01_a.html"]
    assert seen["images"] == [{"src": "../../_images/fig.png", "shown": True}] * 2
    assert seen["wide_code"] == [] and seen["first_figure"]["heading"] == "Results"
    assert 0 < seen["first_figure"]["offset"] < 200 and seen["first_figure"]["screen"] > 600
    with Image.open(report.screenshot) as im:  # the root page (no summary page), whole
        assert im.format == "PNG" and im.width >= 1000


def test_browser_names_the_page_and_the_src_or_href_of_what_is_broken(tmp_path, headless_chromium):
    html = _tree(tmp_path)
    page = html / "book" / "chapters" / "01_a.html"
    # one broken image, one broken link, a figure without its image; a toc page that was not built
    page.write_text(page.read_text().replace('src="../../_images/fig.png" alt="fig"', 'src="../../_images/gone.png"')
                    .replace('href="../intro.html"', 'href="../intro.html#nowhere"')
                    # a code line that runs past its column, and plumbing that pushes the first figure down
                    .replace("<pre>x = 1</pre>", f"<pre style='white-space: pre; overflow: hidden'>{'x' * 400}</pre>"
                             "<div style='height: 1200px'></div>"))
    (tmp_path / "_toc.yml").write_text((tmp_path / "_toc.yml").read_text() + "  - file: book/chapters/02_b\n")
    report = check_book(html, toc_files(tmp_path), expect={"book/chapters/01_a": ["Figure 2", "Figure 3"]},
                        images_per_page={"book/chapters/01_a": 2}, figure_above_fold=["book/chapters/01_a"])
    p = "book/chapters/01_a.html"
    problems = "\n".join(report.problems)
    assert f"{p}: image not displayed: src='../../_images/gone.png'" in report.problems
    assert f"{p}: link '../intro.html#nowhere' -> book/intro.html has no element with id 'nowhere'" in report.problems
    assert f"{p}: 1 images displayed, expected at least 2" in report.problems
    assert f"{p}: code block wider than its column: {'x' * 80!r}" in report.problems
    assert (f"{p}: the first figure (section 'Results') starts " in problems
            and "px below its heading, under the fold of a " in problems), problems
    assert f"{p}: 'Figure 2' is there but shows no image" in report.problems
    assert f"{p}: no heading or caption 'Figure 3'" in report.problems  # "Figure 2" in the h1 does not count
    assert "book/chapters/02_b.html: the page listed in _toc.yml was not built" in report.problems
    assert f"{p}: browser error:" in problems and "gone.png" in problems  # the 404, from the console
    assert len(report.problems) == 9, problems


@pytest.mark.slow
def test_smoke_book_in_a_browser(headless_chromium, smoke_book):
    root, _ = smoke_book
    files = toc_files(root)
    shot = ARTEFACTS / "smoke_summary.png"
    chapters = [f for f in files if f.startswith("book/chapters/")]
    report = check_book(root / "_build" / "html", files, expect=PAPER_LABELS, images_per_page={f: 1 for f in chapters},
                        screenshot=shot, figure_above_fold=chapters)
    assert not report.problems, "the smoke book in Chromium:\n" + "\n".join(report.problems)
    assert len(report.pages) == len(files)
    print(f"screenshot of {summary_page(files)}: {report.screenshot}")
    assert report.screenshot == shot and shot.stat().st_size > 10_000

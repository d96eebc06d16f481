"""Open the built HTML book in headless Chromium and check what a reader would see.

Every page of ``_toc.yml`` is loaded from a local ``http.server`` on 127.0.0.1 (as the book is served,
so its scripts and relative links behave as in production); each page must load without a failed
request to the book's own origin, every ``<img>`` must be displayed (lazy loading forced), every
internal link must resolve to a file of the build and, with ``#anchor``, to an element with that id,
and each chapter must show the figures and tables it promises. A full-page screenshot of the summary
page (else the root page) is saved.

The pure parts (the summary page, how an ``href`` resolves, which ids a page has) take no browser and are
unit-tested on a hand-made tree. Chromium and chromedriver are Debian's (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``HZ_CHROMIUM`` / ``HZ_CHROMEDRIVER`` override), driven by Selenium with
the driver given explicitly so that Selenium Manager never downloads anything; every host but
127.0.0.1 is unresolvable, so a run never touches the network (the book's CDN scripts just fail).
"""
from __future__ import annotations

import base64
import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

CHROMIUM = os.environ.get("HZ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HZ_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

# Console errors of the themes, harmless and on every page; anything else from the book's origin fails:
# sphinx-thebe's config script is added twice under jupyter-book; pydata-sphinx-theme finds no stored
# light/dark mode in a fresh profile; Chromium asks for a favicon the book does not have.
CONSOLE_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode", "/favicon.ico ")


# --- pure parts -----------------------------------------------------------------------------------

def summary_page(files: list[str]) -> str:
    """The page to photograph: the summary page of the toc if there is one, else the root page."""
    return next((f for f in files if "summary" in PurePosixPath(f).name), files[0])


def resolve_href(page: str, href: str) -> tuple[str, str] | None:
    """Resolve a link written on ``page`` (a path relative to the HTML root, e.g. ``book/a.html``) to
    ``(target, fragment)`` relative to the HTML root; ``None`` for links that leave the book (a scheme
    or host) or that are not links (``javascript:``). ``target`` is ``page`` for ``#anchor`` links and
    ``..`` beyond the root is kept, so that it fails to resolve."""
    parts = urlsplit(href.strip())
    if parts.scheme or parts.netloc:
        return None
    path = unquote(parts.path)
    if not path:
        target = page
    else:
        base = PurePosixPath("/") if path.startswith("/") else PurePosixPath("/", page).parent
        stack = []
        for seg in (base / path).parts[1:]:
            if seg == "..":
                if not stack:  # escapes the book: keep the path as written, it cannot resolve
                    return str(PurePosixPath(page).parent / path), unquote(parts.fragment)
                stack.pop()
            elif seg != ".":
                stack.append(seg)
        target = "/".join(stack)
        if path.endswith("/"):
            target = (target + "/index.html").lstrip("/")
    return target, unquote(parts.fragment)


class _Scan(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])  # an old-style anchor is a fragment target too
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src") is not None:
            self.srcs.append(a["src"])


def scan_html(text: str) -> _Scan:
    """Ids, link hrefs and image srcs of an HTML document (static, no scripts run)."""
    s = _Scan()
    s.feed(text)
    return s


def check_links(html_root: Path, links: dict[str, list[str]]) -> list[str]:
    """Problems with the internal links of each page (``{page: [href, ...]}``): a target that is not a
    file of the build, or an ``#anchor`` with no element of that id on its (HTML) target page. Each
    message names the page and the href."""
    html_root = Path(html_root)

    @functools.lru_cache(maxsize=None)
    def ids(target: str) -> frozenset[str]:
        return frozenset(scan_html((html_root / target).read_text(encoding="utf-8", errors="replace")).ids)

    problems = []
    for page, hrefs in links.items():
        for href in dict.fromkeys(hrefs):  # each distinct href once
            r = resolve_href(page, href)
            if r is None:
                continue
            target, frag = r
            f = html_root / target
            if ".." in PurePosixPath(target).parts or not f.is_file():
                problems.append(f"{page}: link {href!r} -> {target} does not exist")
            elif frag and target.endswith(".html") and frag not in ids(target):
                problems.append(f"{page}: link {href!r} -> {target} has no element with id {frag!r}")
    return problems


def figure_pattern(label: str) -> str:
    """A regular expression (JavaScript and Python alike) for a caption label such as ``Figure 2``:
    the whole number, so that ``Figure 1`` matches neither ``Figure 1.1`` nor ``Figure 12``."""
    return r"\b" + r"\s+".join(map(re.escape, label.split())) + r"(?!\d|\.\d)"


# --- the browser ----------------------------------------------------------------------------------

def browser_missing() -> str | None:
    """Why the browser check cannot run here, or ``None`` when it can."""
    for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{name} not found at {path} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401  (optional: the "test" extra)
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def serve(html_root: Path):
    """A quiet ``http.server`` for ``html_root`` on 127.0.0.1 (a free port); yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html_root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}/"
        finally:
            httpd.shutdown()
            t.join(5)


@contextmanager
def chromium():
    """A headless Chromium (Selenium WebDriver) with a fresh profile directory, removed afterwards."""
    # here, not at the top: selenium is optional (the "test" extra); browser_missing() says when it is absent
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hz-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in CHROMIUM_ARGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console: failed requests, JS errors
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# Force lazy images to load (eager + scroll through the page), wait until every <img> has settled,
# then report what the page shows: links as written, images, and the caption labels found.
_INSPECT_JS = r"""
const [labels, done] = [arguments[0], arguments[arguments.length - 1]];
const imgs = Array.from(document.images);
imgs.forEach(i => { i.loading = 'eager'; i.decoding = 'sync'; });
for (let y = 0; y < document.body.scrollHeight; y += window.innerHeight) window.scrollTo(0, y);
window.scrollTo(0, 0);
const settled = i => i.complete ? Promise.resolve() :
  new Promise(r => { i.addEventListener('load', r, {once: true}); i.addEventListener('error', r, {once: true}); });
const shown = i => i.complete && i.naturalWidth > 0;
Promise.race([Promise.all(imgs.map(settled)), new Promise(r => setTimeout(r, 20000))]).then(() => {
  // not h1: a chapter's title names its figures, and its section is the whole page
  const heads = Array.from((document.querySelector('main') || document).querySelectorAll(
    'h2, h3, h4, h5, h6, figcaption, caption, .caption-text'));
  const found = {};
  for (const [label, pat] of Object.entries(labels)) {
    const re = new RegExp(pat);
    const hits = heads.filter(h => re.test(h.textContent));
    // what the label heads: its section (heading), its <figure> (figcaption) or its <table> (caption)
    const scopes = hits.map(h => h.closest('figure, table, section') || h.parentElement);
    found[label] = {
      captions: hits.length,
      images: scopes.reduce((n, s) => n + Array.from(s.querySelectorAll('img')).filter(shown).length, 0),
      tables: scopes.reduce((n, s) => n + (s.matches('table') ? 1 : s.querySelectorAll('table').length), 0),
    };
  }
  // code blocks wider than their column: clipped or scrolled sideways (a collapsed input measures 0)
  const column = document.querySelector('main, [role=main], article') || document.body;
  const right = column.getBoundingClientRect().right;
  const wideCode = Array.from(column.querySelectorAll('div.cell_input pre, div.highlight pre'))
    .filter(p => p.scrollWidth > p.clientWidth + 1 || p.getBoundingClientRect().right > right + 1)
    .map(p => p.textContent.split('\n')[0].slice(0, 80));
  // the first figure a cell drew, and how far below the top of its section's heading it starts
  const top = el => el.getBoundingClientRect().top + window.scrollY;
  const fig = Array.from(column.querySelectorAll('.cell_output img')).find(shown);
  let firstFigure = null;
  if (fig) {
    const head = Array.from(column.querySelectorAll('h1, h2, h3')).filter(h => top(h) <= top(fig)).pop();
    firstFigure = {heading: head ? head.textContent.replace(/[#¶]/g, '').trim() : '',
                   offset: top(fig) - (head ? top(head) : 0), height: fig.getBoundingClientRect().height,
                   screen: window.innerHeight};
  }
  done({
    title: document.title, ready: document.readyState, wide_code: wideCode, first_figure: firstFigure,
    main: !!document.querySelector('main, [role=main], article'),
    hrefs: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    images: imgs.map(i => ({src: i.getAttribute('src'), shown: shown(i)})),
    found: found,
  });
});
"""


def full_page_screenshot(driver, path: Path) -> Path:
    """A PNG of the whole page, not just the window (Chrome DevTools ``Page.captureScreenshot``)."""
    m = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = m.get("cssContentSize") or m["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "fromSurface": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@dataclass
class BookReport:
    pages: dict[str, dict] = field(default_factory=dict)  # page -> what the browser saw
    problems: list[str] = field(default_factory=list)
    screenshot: Path | None = None


# How much of a chapter's first figure its first screen of results must show (CSS pixels; all of a
# shorter figure): a strip this high clears the theme's fixed header and tells the reader it is there.
FIGURE_SHOWN_PX = 150


def first_figure_problem(page: str, seen: dict | None) -> str | None:
    """Whether a chapter shows its first figure above the fold of its first screen of results.

    The first screen of results is the window-high screen that starts at the heading of the section
    holding the chapter's first figure (the first displayed image in a cell's output), as a reader
    sees it after jumping to that section. The figure's top must lie on that screen with at least
    :data:`FIGURE_SHOWN_PX` of it (or all of it, if shorter) above the fold: plumbing code between the
    heading and the figure pushes it down."""
    if not seen:
        return f"{page}: no figure in any cell's output"
    need = min(FIGURE_SHOWN_PX, seen["height"])
    if seen["offset"] + need > seen["screen"]:
        return (f"{page}: the first figure (section {seen['heading']!r}) starts {seen['offset']:.0f} px below its "
                f"heading, under the fold of a {seen['screen']} px screen")
    return None


def check_book(html_root: Path, files: list[str], *, expect: dict[str, list[str]] | None = None,
               images_per_page: dict[str, int] | None = None, screenshot: Path | None = None,
               figure_above_fold: Sequence[str] = ()) -> BookReport:
    """Load every page (``files`` as :func:`hzlib.reproduce.toc_files` gives them) of the build in
    ``html_root`` in headless Chromium and collect every problem a reader would meet, each naming its page:

    * the page is missing, does not finish loading, has no title or main content, or a request to
      the book's own server fails (a 404 stylesheet, script or image) or a script of the book throws;
    * an ``<img>`` is not displayed (``complete && naturalWidth > 0`` after lazy loading is forced);
    * an internal link does not resolve (:func:`check_links`);
    * ``expect[file]`` lists caption labels (``"Figure 2"``, ``"Table 1"``) the page must show: a
      heading or caption with that label whose section or figure holds a displayed image (Figure) or
      a table (Table);
    * ``images_per_page[file]``: the page must display at least that many images;
    * a code block is wider than its column (clipped at the right edge, or scrolled sideways);
    * a page of ``figure_above_fold`` does not show its first figure above the fold of its first screen
      of results (:func:`first_figure_problem`).

    ``screenshot``: where to save a full-page PNG of :func:`summary_page`."""
    html_root = Path(html_root)
    expect, images_per_page = expect or {}, images_per_page or {}
    report = BookReport()
    shot_of = summary_page(files)
    with serve(html_root) as base, chromium() as driver:
        links = {}
        for f in files:
            page = f + ".html"
            if not (html_root / page).is_file():
                report.problems.append(f"{page}: the page listed in _toc.yml was not built")
                continue
            driver.get(base + page)
            labels = {lab: figure_pattern(lab) for lab in expect.get(f, [])}
            seen = driver.execute_async_script(_INSPECT_JS, labels)
            report.pages[page] = seen
            p = report.problems
            if seen["ready"] != "complete" or not seen["title"] or not seen["main"]:
                p.append(f"{page}: did not load (readyState {seen['ready']!r}, title {seen['title']!r}, "
                         f"main content {'found' if seen['main'] else 'missing'})")
            for entry in driver.get_log("browser"):
                msg = entry["message"]
                if entry["level"] == "SEVERE" and base in msg and not any(n in msg for n in CONSOLE_NOISE):
                    p.append(f"{page}: browser error: {msg[:300]}")
            p += [f"{page}: image not displayed: src={im['src']!r}" for im in seen["images"] if not im["shown"]]
            n_shown = sum(im["shown"] for im in seen["images"])
            if n_shown < images_per_page.get(f, 0):
                p.append(f"{page}: {n_shown} images displayed, expected at least {images_per_page[f]}")
            for lab, got in seen["found"].items():
                kind = "table" if lab.lower().startswith("table") else "image"
                if not got["captions"]:
                    p.append(f"{page}: no heading or caption {lab!r}")
                elif not got["tables" if kind == "table" else "images"]:
                    p.append(f"{page}: {lab!r} is there but shows no {kind}")
            p += [f"{page}: code block wider than its column: {line!r}" for line in seen["wide_code"]]
            if f in figure_above_fold and (fold := first_figure_problem(page, seen["first_figure"])):
                p.append(fold)
            links[page] = seen["hrefs"]
            if f == shot_of and screenshot is not None:
                driver.execute_script("window.scrollTo(0, 0)")
                report.screenshot = full_page_screenshot(driver, screenshot)
        report.problems += check_links(html_root, links)
    return report

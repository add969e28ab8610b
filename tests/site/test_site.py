"""The built website, checked in a real browser (headless Chromium driven by Playwright).

Run by ``make site-test`` after ``make strict`` (CI) or ``make book`` (full site). The site
is served on 127.0.0.1; every page of the table of contents must load without console
errors, show every image (each figure with alt text and a caption), contain no traceback
or TensorFlow log line in any output, and every internal link and anchor must resolve.
Every chapter's figures are saved as screenshots under ``_build/screenshots/``;
maths must render with every other host blocked; the API page must link to the source.
At phone, tablet and laptop widths the visible sidebar buttons open and close the
navigation and the page's table of contents; figures link to their full-size files and
their smallest text is readable at desktop width; printed tables never break a number;
searching a Keras option finds the chapter that teaches it first; the API page documents
the library alone and opens with its table of jobs; no page shows a warning, a traceback, a
TensorFlow log line or a ``headline(`` bookkeeping call.

``RNNCOURSE_SITE`` names the HTML directory (default: ``_build/html`` when ``make book``
built it, else the CI-scale ``_build/site/_build/html``). ``RNNCOURSE_SITE_REQUIRED=1``
turns a missing site or browser into a failure instead of a skip.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("RNNCOURSE_SITE_REQUIRED") == "1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# What must never show in a rendered output: tracebacks, TF/absl log lines, Python warnings.
NOISE = re.compile(r"Traceback \(most recent call last\)|oneDNN|absl::|^[IWEF]\d{4} \d\d:|"
                   r"\w+Warning: |cuda_[a-z]+\.cc|Could not find cuda", re.M)
# What a reader must never see in a page's text: a markdown table that was not rendered
# (its rule row), or a path of the machine that built the site.
UNRENDERED_TABLE = re.compile(r"\|\s*:?-{3,}:?\s*\|")
BUILD_PATH = re.compile(r"(/root/|/home/[a-z_][\w-]*/|/work/|/tmp/[\w.-]+/|/\.venv/)")
# What no page's visible text may contain outside its code listings: a Python warning or
# traceback, a TensorFlow log line; and nowhere, code included: a headline(...) bookkeeping
# call (its cell is tagged remove-cell).
LEFTOVERS = re.compile(r"UserWarning|Traceback|oneDNN|absl::|^[IWEF]\d{4} \d\d:\d\d|"
                       r"cuda_[a-z]+\.cc|tensorflow/core/", re.M)
BOOKKEEPING = re.compile(r"\bheadline\(")
# The page's text without its code listings (notebook inputs, literalinclude, code blocks);
# cell outputs stay in. A listing of library code may well say `UserWarning`.
PROSE_AND_OUTPUTS = """() => {
  document.querySelectorAll('.cell_input, div.highlight, pre').forEach(e => {
    if (!e.closest('.cell_output')) e.style.display = 'none'; });
  return (document.querySelector('main') || document.body).innerText; }"""


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def site_dir() -> Path:
    if os.environ.get("RNNCOURSE_SITE"):
        return Path(os.environ["RNNCOURSE_SITE"]).resolve()
    for candidate in (ROOT / "_build" / "html", ROOT / "_build" / "site" / "_build" / "html"):
        if (candidate / "index.html").exists():
            return candidate
    return ROOT / "_build" / "html"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{name}.html" for name in files]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def site():
    root = site_dir()
    if not (root / "index.html").exists():
        _unavailable(f"no built site at {root}: run `make strict` or `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"root": root, "url": f"http://127.0.0.1:{server.server_address[1]}/"}
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def anchors_of(path: Path) -> frozenset[str]:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def visit(browser, url: str, width: int = 1280, height: int = 900):
    """Open ``url``; return the page, console errors and failed local requests."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    failed: list[str] = []
    local = urlparse(url).netloc
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

    def on_failed(request):
        if urlparse(request.url).netloc == local:
            failed.append(request.url)

    page.on("requestfailed", on_failed)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    # Resources from other hosts (MathJax's CDN) cannot load on an offline machine; only
    # errors about this site count.
    errors = [e for e in errors if "net::ERR_" not in e or local in e]
    return page, errors, failed


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_loads_clean_with_images_and_no_noise(site, browser, page_path):
    file = site["root"] / page_path
    assert file.exists(), f"{page_path} missing from the built site"
    page, errors, failed = visit(browser, site["url"] + page_path)
    try:
        assert errors == [], f"{page_path}: console errors {errors}"
        assert failed == [], f"{page_path}: failed requests {failed}"
        broken = page.eval_on_selector_all(
            "img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert broken == [], f"{page_path}: images that did not load: {broken}"
        uncaptioned = page.eval_on_selector_all(
            ".cell_output img",
            "els => els.filter(i => !(i.alt || '').trim() || !i.closest('figure')"
            " || !i.closest('figure').querySelector('figcaption')).map(i => i.src)")
        assert uncaptioned == [], f"{page_path}: figures without alt text or caption: {uncaptioned}"
        outputs = page.eval_on_selector_all(".cell_output", "els => els.map(e => e.innerText)")
        noisy = [text[:200] for text in outputs if NOISE.search(text)]
        assert noisy == [], f"{page_path}: outputs with tracebacks or log lines: {noisy}"
        text = page.inner_text("main") if page.query_selector("main") else page.inner_text("body")
        bookkeeping = BOOKKEEPING.findall(text)
        assert bookkeeping == [], f"{page_path}: the page shows a headline( cell"
        tables = UNRENDERED_TABLE.findall(text)
        assert tables == [], f"{page_path}: a markdown table shows as text: {tables[:3]}"
        paths = sorted(set(BUILD_PATH.findall(text)))
        assert paths == [], f"{page_path}: the page shows build-machine paths {paths}"
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.getAttribute('href'))")
        prose = page.evaluate(PROSE_AND_OUTPUTS)
        leftovers = sorted({m.group(0) for m in LEFTOVERS.finditer(prose)})
        assert leftovers == [], f"{page_path}: the page shows {leftovers}"
    finally:
        page.close()
    base = site["url"] + page_path
    for href in hrefs:
        absolute = urljoin(base, href)
        if not absolute.startswith(site["url"]):
            continue
        target_url, fragment = urldefrag(absolute)
        target = site["root"] / unquote(urlparse(target_url).path.lstrip("/"))
        if target.is_dir():
            target = target / "index.html"
        assert target.exists(), f"{page_path}: link {href!r} points to a missing file"
        if fragment and target.suffix == ".html":
            assert unquote(fragment) in anchors_of(target), (
                f"{page_path}: link {href!r} points to a missing anchor")


@pytest.mark.parametrize("term", ["masking", "GloVe"])
def test_search_finds(site, browser, term):
    page, errors, _ = visit(browser, site["url"] + f"search.html?q={term}")
    try:
        page.wait_for_selector("#search-results li, ul.search li", timeout=15_000)
        hits = page.eval_on_selector_all("ul.search li a", "els => els.map(a => a.href)")
    finally:
        page.close()
    assert hits, f"search for {term!r} found nothing"
    assert errors == [], errors


def test_maths_renders_offline(site, browser):
    """MathJax is served by the site itself: with every other host blocked, a formula of
    chapter 1 is typeset."""
    page = browser.new_page()
    local = urlparse(site["url"]).netloc
    outside: list[str] = []

    def only_local(route):
        if urlparse(route.request.url).netloc == local:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto(site["url"] + "book/01_rnn_gradients.html", wait_until="load")
        page.wait_for_selector("mjx-container mjx-math", timeout=20_000)
        typeset = page.eval_on_selector_all("mjx-container", "els => els.length")
        scripts = page.eval_on_selector_all("script[src*='mathjax'], script[src*='tex-']",
                                            "els => els.map(s => s.src)")
    finally:
        page.close()
    assert typeset > 0, "no formula was typeset"
    assert scripts and all(s.startswith(site["url"]) for s in scripts), scripts
    assert not [u for u in outside if "mathjax" in u.lower()], outside


def test_api_reference_documents_the_library_only(site, browser):
    """The API page links every library module to its source, opens with the table of
    which function does which job, and has no entry of the chapters' experiments (they
    are not the library, so they stay out of the search index too)."""
    page, errors, _ = visit(browser, site["url"] + "book/api.html")
    try:
        links = page.eval_on_selector_all(
            "a.viewcode-link, a[href*='_modules/']", "els => els.map(a => a.getAttribute('href'))")
        entries = page.eval_on_selector_all("dt[id], section[id], span[id]",
                                            "els => els.map(e => e.id)")
        first_table = page.evaluate(
            "() => { const t = document.querySelector('main table');"
            " const d = document.querySelector('main dl.py');"
            " return !!t && (!d || !!(t.compareDocumentPosition(d) & 4)); }")
    finally:
        page.close()
    modules = {urlparse(h).path.split("_modules/")[-1] for h in links if "_modules/" in h}
    for name in ("rnncourse/text.html", "rnncourse/models.html", "rnncourse/tbptt.html"):
        assert name in modules, f"the API page has no [source] link into {name}"
    chapters = [e for e in entries if "rnncourse.chapters" in e]
    assert chapters == [], f"the API page documents chapter experiments: {chapters[:5]}"
    assert not [m for m in modules if "chapters/" in m], "the API page links chapter sources"
    assert first_table, "the API page must open with the 'which function for which job' table"
    assert errors == []


# A Keras option, and the chapter that teaches it: search must rank that chapter first.
TAUGHT_BY = {"clipnorm": "01_rnn_gradients", "mask_zero": "04_variable_length_batching",
             "stateful": "05_tbptt"}


@pytest.mark.parametrize("term", sorted(TAUGHT_BY))
def test_search_ranks_the_teaching_chapter_first(site, browser, term):
    page, errors, _ = visit(browser, site["url"] + f"search.html?q={term}")
    try:
        page.wait_for_selector("ul.search li", timeout=15_000)
        page.wait_for_timeout(500)  # results arrive in batches
        hits = page.eval_on_selector_all("ul.search li a", "els => els.map(a => a.href)")
    finally:
        page.close()
    pages = [urlparse(h).path.rsplit("/", 1)[-1].removesuffix(".html") for h in hits]
    assert pages, f"search for {term!r} found nothing"
    assert pages[0] == TAUGHT_BY[term], f"search for {term!r} ranks {pages[:5]}"
    assert errors == [], errors


def test_training_loops_chapter_shows_its_recipes(site, browser):
    """Chapter 6 trains with compile/fit and with its own GradientTape loop: both are on
    the page, in its code cells (not hidden in rnncourse.chapters or a library listing)."""
    page, _, _ = visit(browser, site["url"] + "book/06_training_loops.html")
    try:
        code = "\n".join(page.eval_on_selector_all(
            ".cell_input pre", "els => els.map(e => e.textContent)"))
    finally:
        page.close()
    assert "fit(" in code, "chapter 6 shows no fit( call"
    assert "GradientTape" in code, "chapter 6 shows no GradientTape loop"


# Viewports: a phone, a tablet (both below the themes' 992 px breakpoint, where the sidebars
# open as dialogs) and a laptop (where the hamburger collapses the sidebar in place).
WIDTHS = [390, 900, 1366]
CHAPTER = "book/04_variable_length_batching.html"


def _visible(page, selector: str):
    for handle in page.query_selector_all(selector):
        box = handle.bounding_box()
        if handle.is_visible() and box and box["width"] > 0 and box["height"] > 0:
            return handle
    return None


def _shown(page, selector: str) -> bool:
    """True when the element is laid out, visible and at least partly on screen."""
    return page.evaluate(
        """sel => { const e = document.querySelector(sel); if (!e) return false;
           const s = getComputedStyle(e), b = e.getBoundingClientRect();
           return s.visibility !== 'hidden' && s.display !== 'none' && +s.opacity > 0
             && b.width > 0 && b.height > 0 && b.right > 0 && b.left < innerWidth; }""",
        selector)


@pytest.mark.parametrize("width", WIDTHS)
def test_sidebar_buttons_open_and_close_the_navigation(site, browser, width):
    page, errors, _ = visit(browser, site["url"] + CHAPTER, width=width, height=800)
    try:
        toggle = _visible(page, ".primary-toggle")
        assert toggle is not None, f"{width} px: no visible button for the site navigation"
        if width >= 992:  # the sidebar sits beside the page and collapses in place
            assert _shown(page, "#pst-primary-sidebar"), f"{width} px: sidebar not shown"
            toggle.click()
            page.wait_for_timeout(600)  # the theme animates the margin
            assert not _shown(page, "#pst-primary-sidebar"), f"{width} px: did not collapse"
            toggle.click()
            page.wait_for_timeout(600)
            assert _shown(page, "#pst-primary-sidebar"), f"{width} px: did not come back"
        else:  # the sidebar opens as a dialog holding the chapters' links
            assert not _shown(page, "#pst-primary-sidebar-modal")
            toggle.click()
            page.wait_for_timeout(300)
            assert page.evaluate("() => document.querySelector('#pst-primary-sidebar-modal').open")
            links = page.eval_on_selector_all(
                "#pst-primary-sidebar-modal a[href]",
                "els => els.filter(a => a.getBoundingClientRect().height > 0).length")
            assert links >= 5, f"{width} px: the navigation dialog shows {links} links"
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)
            assert not page.evaluate(
                "() => document.querySelector('#pst-primary-sidebar-modal').open"), (
                f"{width} px: Escape did not close the navigation")

        contents = _visible(page, ".secondary-toggle")
        if width >= 992 and contents is None:  # wide: the contents sit beside the page
            assert _shown(page, "#pst-secondary-sidebar"), f"{width} px: no table of contents"
        else:
            assert contents is not None, f"{width} px: no visible 'On this page' button"
            contents.click()
            page.wait_for_timeout(300)
            assert page.evaluate(
                "() => document.querySelector('#pst-secondary-sidebar-modal').open"), (
                f"{width} px: 'On this page' did not open the page's table of contents")
            entries = page.eval_on_selector_all(
                "#pst-secondary-sidebar-modal nav a[href^='#']",
                "els => els.filter(a => a.getBoundingClientRect().height > 0).length")
            assert entries >= 2, f"{width} px: the page's contents show {entries} entries"
            page.mouse.click(width - 5, 795)  # beside the dialog: on its backdrop
            page.wait_for_timeout(300)
            if page.evaluate("() => document.querySelector('#pst-secondary-sidebar-modal').open"):
                page.keyboard.press("Escape")
                page.wait_for_timeout(300)
            assert not page.evaluate(
                "() => document.querySelector('#pst-secondary-sidebar-modal').open")
    finally:
        page.close()
    assert errors == [], errors


def _chapter_pages() -> list[str]:
    return [p for p in toc_pages() if Path(p).name[:2].isdigit()]


def _figures(page) -> list[dict]:
    """Every visible output image: its size on screen and in its file, and its link."""
    return page.eval_on_selector_all(
        ".cell_output img",
        """els => els.filter(i => i.getBoundingClientRect().width > 0).map(i => ({
             src: i.getAttribute('src'), rendered: i.getBoundingClientRect().width,
             natural: i.naturalWidth,
             href: i.closest('a') ? i.closest('a').href : null}))""")


def _smallest_text_points() -> tuple[float, float]:
    """The smallest font size of the book's figure style (ticks, legends) and its dpi."""
    from rnncourse.plots import STYLE

    sizes = [STYLE[k] for k in ("font.size", "legend.fontsize", "xtick.labelsize",
                                 "ytick.labelsize", "axes.labelsize", "axes.titlesize")]
    return float(min(sizes)), float(STYLE["figure.dpi"])


READABLE_POINTS = 9.0


def test_figures_link_to_full_size_and_their_text_is_readable(site, browser):
    """At desktop width, each figure's smallest text is at least 9 pt on screen:
    font size (pt) x image dpi / 96 (CSS px per inch) x rendered width / natural width,
    with the font sizes and dpi of rnncourse.plots.STYLE (no figure function writes text
    smaller than the style's smallest size: tests/test_plots.py). Each figure links to its
    file."""
    points, dpi = _smallest_text_points()
    small, unlinked, seen = [], [], 0
    for page_path in _chapter_pages():
        page, _, _ = visit(browser, site["url"] + page_path, width=1366)
        try:
            for figure in _figures(page):
                seen += 1
                effective = points * dpi / 96 * figure["rendered"] / figure["natural"]
                if effective < READABLE_POINTS:
                    small.append(f"{page_path} {figure['src']}: {effective:.1f} pt "
                                 f"({figure['natural']} px shown at "
                                 f"{figure['rendered']:.0f})")
                if not figure["href"] or not figure["href"].endswith(
                        Path(figure["src"]).name):
                    unlinked.append(f"{page_path} {figure['src']} -> {figure['href']}")
        finally:
            page.close()
    if seen == 0:
        pytest.skip("the site has no figures (built from unexecuted sources)")
    assert unlinked == [], f"figures that do not link to their full-size file: {unlinked}"
    assert small == [], (
        f"figures whose smallest text is under {READABLE_POINTS} pt at desktop width: "
        f"{small}")


def test_a_phone_can_open_a_figure_full_size(site, browser):
    """At 390 px a figure is shrunk to the screen; tapping it opens the image file, shown
    at its own resolution."""
    for page_path in _chapter_pages():
        page, _, _ = visit(browser, site["url"] + page_path, width=390, height=800)
        try:
            figures = [f for f in _figures(page) if f["natural"] > f["rendered"] + 1]
            if not figures:
                continue
            link = page.query_selector(".cell_output a.rnncourse-full-size img")
            link.scroll_into_view_if_needed()
            link.click()
            page.wait_for_load_state("load")
            assert page.url.endswith(".png") or page.url.endswith(".svg") or page.url.endswith(
                ".jpg"), f"{page_path}: tapping a figure opened {page.url}"
            natural = page.evaluate("() => document.images[0] && document.images[0].naturalWidth")
            assert natural and natural > 390, f"{page_path}: full-size image is {natural} px"
            return
        finally:
            page.close()
    pytest.skip("no figure is shrunk at 390 px (a site built from unexecuted sources)")


def test_printed_tables_keep_numbers_on_one_line_on_a_phone(site, browser):
    """A table a cell printed scrolls sideways on a phone; no cell breaks over lines."""
    broken, seen = [], 0
    for page_path in _chapter_pages():
        page, _, _ = visit(browser, site["url"] + page_path, width=390, height=800)
        try:
            cells = page.eval_on_selector_all(
                ".cell_output table td, .cell_output table th",
                """els => els.map(e => {
                     const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
                     const boxes = [];
                     for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                       const r = document.createRange();
                       r.selectNodeContents(n);
                       for (const x of r.getClientRects()) if (x.width > 0) boxes.push(x);
                     }
                     // a new line starts more than half a line below the last one (a code
                     // span on the same line sits a pixel or two lower)
                     boxes.sort((a, b) => a.top - b.top);
                     let lines = 0, last = -Infinity;
                     for (const x of boxes) {
                       if (x.top > last + x.height / 2) { lines += 1; last = x.top; }
                     }
                     return [e.innerText, lines]; })""")
        finally:
            page.close()
        seen += len(cells)
        broken += [f"{page_path}: {text!r}" for text, lines in cells if lines > 1]
    if seen == 0:
        pytest.skip("the site has no printed table (built from unexecuted sources)")
    assert broken == [], f"table cells broken over lines at 390 px: {broken[:10]}"


def test_screenshot_every_chapter_figure(site, browser):
    """Each chapter's top and figures, saved under _build/screenshots/ for a quick look
    (a site built without outputs, e.g. from the sources, has no figure and fails here)."""
    out = ROOT / "_build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    saved = 0
    for page_path in toc_pages():
        if not Path(page_path).name[:2].isdigit():
            continue
        page, _, _ = visit(browser, site["url"] + page_path)
        try:
            page.screenshot(path=str(out / f"{Path(page_path).stem}_top.png"))
            # Figures inside a collapsed solution (hide-cell) are not visible: skipped.
            figures = [f for f in page.query_selector_all(".cell_output img") if f.is_visible()]
            for number, figure in enumerate(figures, 1):
                figure.scroll_into_view_if_needed()
                name = f"{Path(page_path).stem}_fig{number:02d}.png"
                figure.screenshot(path=str(out / name))
                saved += 1
        finally:
            page.close()
    assert saved > 0, "no figure found on any chapter page"
    print(f"{saved} figure screenshots in {out}")

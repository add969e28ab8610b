"""The built website, checked in a real browser (headless Chromium driven by Playwright).

Run by ``make site-test`` after ``make strict`` (CI) or ``make book`` (full site). The site
is served on 127.0.0.1; every page of the table of contents must load without console
errors, show every image (each figure with alt text and a caption), contain no traceback
or TensorFlow log line in any output, and every internal link and anchor must resolve.
Every chapter's figures are saved as screenshots under ``_build/screenshots/``;
maths must render with every other host blocked; the API page must link to the source.

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


def visit(browser, url: str):
    """Open ``url``; return the page, console errors and failed local requests."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
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
        tables = UNRENDERED_TABLE.findall(text)
        assert tables == [], f"{page_path}: a markdown table shows as text: {tables[:3]}"
        paths = sorted(set(BUILD_PATH.findall(text)))
        assert paths == [], f"{page_path}: the page shows build-machine paths {paths}"
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.getAttribute('href'))")
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


def test_api_reference_links_to_source(site, browser):
    page, errors, _ = visit(browser, site["url"] + "book/api.html")
    try:
        links = page.eval_on_selector_all(
            "a.viewcode-link, a[href*='_modules/']", "els => els.map(a => a.getAttribute('href'))")
    finally:
        page.close()
    modules = {urlparse(h).path.split("_modules/")[-1] for h in links if "_modules/" in h}
    for name in ("rnncourse/text.html", "rnncourse/models.html", "rnncourse/tbptt.html",
                 "rnncourse/chapters/ch00_setup.html"):
        assert name in modules, f"the API page has no [source] link into {name}"
    assert errors == []


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

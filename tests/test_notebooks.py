"""What every chapter notebook must look like on the page (checked on the sources).

* code fits 88 columns, so no line is cut on the website;
* a code cell has at most 15 lines: longer logic belongs in the package (thin notebooks);
* an exercise's solution code follows its ":::{dropdown} Solution" and is tagged ``hide-cell``,
  so neither its code nor its output shows before the reader opens it;
* no literal seed: ``config.set_seed()`` reads the seed knob ``RNNCOURSE_SEED``;
* the page shows at least two library objects it teaches, included from the package source;
* every figure has a caption and alt text of its own (none repeated in the book, alt text not
  a copy of the caption), so a reader of the page or of a screen reader can tell them apart.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.ipynb") if not p.name.startswith("00_"))
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
LIBRARY = {p.stem for p in (ROOT / "rnncourse").glob("*.py")} - {"__init__", "__main__"}


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_fits_88_columns(path):
    long = [(i, line) for i, cell in enumerate(cells(path)) if cell["cell_type"] == "code"
            for line in source(cell).splitlines() if len(line) > 88]
    assert not long, f"{path.name}: code lines over 88 columns (cell, line): {long}"


MAX_CELL_LINES = 15


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_are_thin(path):
    long = [(i, n) for i, cell in enumerate(cells(path)) if cell["cell_type"] == "code"
            if (n := len(source(cell).splitlines())) > MAX_CELL_LINES]
    assert not long, (f"{path.name}: code cells over {MAX_CELL_LINES} lines (cell, lines): "
                      f"{long}; move the logic into rnncourse/chapters or the library")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_are_hidden_with_their_output(path):
    notebook = cells(path)
    for i, cell in enumerate(notebook):
        if cell["cell_type"] == "markdown" and "dropdown} Solution" in source(cell):
            following = notebook[i + 1] if i + 1 < len(notebook) else None
            if following is None or following["cell_type"] != "code":
                continue  # a solution in words only
            tags = following.get("metadata", {}).get("tags", [])
            assert "hide-cell" in tags, (
                f"{path.name}, cell {i + 1}: a solution's code cell must be tagged hide-cell "
                f"(hides code and output), has {tags}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_literal_seed(path):
    for cell in cells(path):
        if cell["cell_type"] == "code":
            found = re.findall(r"set_seed\(\s*\d+|seed\s*=\s*\d+", source(cell))
            assert not found, f"{path.name}: literal seed {found}; use config.set_seed() / seed(k)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_shows_the_library_code_it_teaches(path):
    text = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    pattern = r"```\{literalinclude\}\s+\.\./rnncourse/(\w+)\.py\s*\n:pyobject:\s*(\S+)"
    included = re.findall(pattern, text)
    library = [(module, name) for module, name in included if module in LIBRARY]
    assert len(library) >= 2, (
        f"{path.name}: show at least two library objects with literalinclude + :pyobject:, "
        f"found {included}")


def test_every_figure_has_its_own_caption_and_alt_text():
    captions: dict[str, str] = {}
    alts: dict[str, str] = {}
    for path in NOTEBOOKS:
        for i, cell in enumerate(cells(path)):
            meta = cell.get("metadata", {}).get("mystnb", {})
            if cell["cell_type"] != "code" or "figure" not in meta:
                continue
            where = f"{path.name}, cell {i}"
            caption = meta["figure"].get("caption", "").strip()
            alt = meta.get("image", {}).get("alt", "").strip()
            assert caption and alt, f"{where}: a figure needs a caption and alt text"
            assert alt != caption, f"{where}: the alt text repeats the caption"
            assert caption not in captions, f"{where}: same caption as {captions.get(caption)}"
            assert alt not in alts, f"{where}: same alt text as {alts.get(alt)}"
            captions[caption], alts[alt] = where, where


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_an_id(path):
    missing = [i for i, cell in enumerate(cells(path)) if not cell.get("id")]
    assert not missing, (f"{path.name}: cells without an id {missing} (nbformat will refuse "
                         "them); fix with nbformat.validator.normalize")

"""What every chapter notebook must look like on the page (checked on the sources).

* code fits 88 columns, so no line is cut on the website;
* an exercise's solution code follows its ":::{dropdown} Solution" and is tagged ``hide-cell``,
  so neither its code nor its output shows before the reader opens it;
* no literal seed: ``config.set_seed()`` reads the seed knob ``RNNCOURSE_SEED``;
* the page shows at least two library objects it teaches, included from the package source;
* every figure has a caption and alt text of its own (none repeated in the book, alt text not
  a copy of the caption), so a reader of the page or of a screen reader can tell them apart;
* a temporary folder the page makes is removed on the page (test runners kill kernels, so
  exit handlers do not run);
* no placeholder text (``BENCHMARK_PARAGRAPH``, ``TODO``) in a notebook's prose or a book page;
* the page shows the recipe: no chapter module (``rnncourse/chapters/*.py``) trains a model
  itself (``.fit(``, ``.compile(``, ``GradientTape``, ``.apply_gradients(``,
  ``.train_on_batch(``, an optimizer's ``.apply(``).
"""

import ast
import importlib.util
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_temporary_folders_are_removed_on_the_page(path):
    # nbval stops its kernels by force (``shutdown_kernel(now=True)``), so no exit handler
    # runs: a TemporaryDirectory the page does not clean up stays in /tmp after every test run
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    made = re.findall(r"^(\w+)\s*=\s*tempfile\.TemporaryDirectory\(", code, re.MULTILINE)
    loose = re.findall(r"tempfile\.mkdtemp\((?![^)]*\bdir=)[^)]*\)", code)
    assert not loose, f"{path.name}: mkdtemp outside a folder the page removes: {loose}"
    kept = [name for name in made if f"{name}.cleanup()" not in code]
    assert not kept, f"{path.name}: temporary folders never removed on the page: {kept}"


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


# Placeholder text: an ALL-CAPS word joined by underscores (BENCHMARK_PARAGRAPH, TODO_FIGURE)
# or of 12 letters or more, or TODO / TBD / FIXME / XXX. Acronyms (GPU, CUDA, LSTM, WNUT) are
# shorter than 12 letters and have no underscore. Code spans and blocks, maths and link
# targets are not prose: an environment variable such as `RNNCOURSE_SCALE` is allowed there.
PLACEHOLDER = re.compile(r"\b(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{12,}|TODO|TBD|FIXME|XXX)\b")
NOT_PROSE = re.compile(r"```.*?```|~~~.*?~~~|`[^`\n]*`|\$\$.*?\$\$|\$[^$]+\$|\]\([^)]*\)"
                       r"|^:\w[\w-]*:.*$|\{[\w:-]+\}", re.S | re.M)
PAGES = sorted((ROOT / "book").glob("*.md")) + [ROOT / "README.md"]


def placeholders(markdown: str) -> list[str]:
    return PLACEHOLDER.findall(NOT_PROSE.sub(" ", markdown))


def test_placeholder_rule_is_precise():
    found = placeholders("See BENCHMARK_PARAGRAPH here. TODO: fill. The figure is TBD, FIXME."
                         " PLACEHOLDERTEXT and `RNNCOURSE_SCALE=ci` in code, GPU, CUDA, LSTM,"
                         " WNUT-16, IMDB, OOV, BPTT, TBPTT, NaN, a $W_{HH}$ matrix.")
    assert found == ["BENCHMARK_PARAGRAPH", "TODO", "TBD", "FIXME", "PLACEHOLDERTEXT"]


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_no_placeholder_text(path):
    if path.suffix == ".ipynb":
        texts = [(i, source(c)) for i, c in enumerate(cells(path)) if c["cell_type"] == "markdown"]
    else:
        texts = [(0, path.read_text(encoding="utf-8"))]
    found = [(i, word) for i, text in texts for word in placeholders(text)]
    assert not found, f"{path.name}: placeholder text (cell, word): {found}"


# The calls that train a model. A chapter module may build data and figures, never train:
# the training is on the chapter's page (issue 22).
TRAINING_METHODS = {"fit", "compile", "apply_gradients", "train_on_batch"}
CHAPTER_MODULES = sorted((ROOT / "rnncourse" / "chapters").glob("ch*.py"))


def training_calls(code: str) -> list[tuple[int, str]]:
    """(line, what) for every call that trains: ``x.fit(``, ``x.compile(``,
    ``x.apply_gradients(``, ``x.train_on_batch(``, ``GradientTape`` (as ``tf.GradientTape``
    or imported), and ``<optimizer>.apply(`` (a receiver whose name says optimizer, ``opt``
    or ``optimizer``, or ``model.optimizer.apply``)."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                if func.attr in TRAINING_METHODS and not (
                        isinstance(func.value, ast.Name) and func.value.id == "re"):
                    found.append((node.lineno, f".{func.attr}("))
                elif func.attr == "apply" and _is_optimizer(func.value):
                    found.append((node.lineno, ".apply("))
                elif func.attr == "GradientTape":
                    found.append((node.lineno, "GradientTape"))
            elif isinstance(func, ast.Name) and func.id == "GradientTape":
                found.append((node.lineno, "GradientTape"))
        elif isinstance(node, ast.ImportFrom) and any(a.name == "GradientTape"
                                                     for a in node.names):
            found.append((node.lineno, "GradientTape"))
    return sorted(found)


def _is_optimizer(node: ast.AST) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    name = name.lower()
    return "optimizer" in name or name in {"opt", "optim"} or name.endswith("_opt")


def test_training_call_finder_sees_every_form():
    code = ("model.compile('sgd')\nmodel.fit(x)\nwith tf.GradientTape() as tape:\n    pass\n"
            "opt.apply_gradients(z)\nmodel.train_on_batch(x)\noptimizer.apply(g, v)\n"
            "model.optimizer.apply(g)\nfrom tensorflow import GradientTape\n"
            "df.apply(f)\nnp.fit = 1\nre.compile('x')\n")
    assert [what for _, what in training_calls(code)] == [
        ".compile(", ".fit(", "GradientTape", ".apply_gradients(", ".train_on_batch(",
        ".apply(", ".apply(", "GradientTape"]


@pytest.mark.parametrize("path", CHAPTER_MODULES, ids=lambda p: p.name)
def test_chapter_modules_do_not_train(path):
    found = training_calls(path.read_text(encoding="utf-8"))
    assert not found, (f"rnncourse/chapters/{path.name} trains off the page (line, call): "
                       f"{found}; move the recipe into a notebook cell")


LISTING = re.compile(r"```\{literalinclude\}\s+\.\./(\S+)\s*\n((?::[^\n]*\n)*)```")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_listing_names_its_file(path):
    text = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    listings = LISTING.findall(text)
    assert text.count("{literalinclude}") == len(listings), f"{path.name}: unparsed listing"
    for target, options in listings:
        caption = re.search(r"^:caption:\s*(.*)$", options, re.M)
        assert caption and target in caption.group(1), (
            f"{path.name}: the listing of {target} needs a :caption: naming that file")


_spec = importlib.util.spec_from_file_location("recipe_coverage",
                                               ROOT / "tests" / "recipe_coverage.py")
recipe_coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe_coverage)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_module_code_is_on_the_page(path):
    """At most 10 % of a chapter's code is off its page: every statement of its module but
    imports and __all__ that no literalinclude shows counts, whether it runs or not (a
    stricter bound than `make recipe-coverage` measures by running the chapter)."""
    modules = sorted((ROOT / "rnncourse" / "chapters").glob(f"ch{path.name[:2]}_*.py"))
    if not modules:
        pytest.skip(f"{path.name} has no chapter module")
    off_page, page = recipe_coverage.static_share(path, modules[0])
    assert off_page <= 0.10 * (off_page + page), (
        f"{path.name}: {off_page} statements of {modules[0].name} are not on "
        f"the page, against {page} on it; show them (a cell, or a literalinclude)")

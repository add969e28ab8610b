"""The recipe-on-page bound (tests/recipe_coverage.py static_share, which
test_notebooks.py::test_chapter_module_code_is_on_the_page applies to every chapter): it
counts what it should, and a chapter that hides its code fails it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("recipe_coverage",
                                              ROOT / "tests" / "recipe_coverage.py")
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)

MODULE = '''"""A chapter module."""
from dataclasses import dataclass

LIMIT = 3


@dataclass
class Sizes:
    epochs: int = 1


def train(model, x):
    """Docstrings are not statements."""
    model.compile("adam", "mse")
    for _ in range(LIMIT):
        model.fit(x, x)
    return model


def shown(x):
    return x + 1
'''


def book(tmp_path: Path, cells: list[str], markdown: str = "") -> tuple[Path, Path]:
    (tmp_path / "rnncourse" / "chapters").mkdir(parents=True)
    module = tmp_path / "rnncourse" / "chapters" / "ch01_demo.py"
    module.write_text(MODULE, encoding="utf-8")
    (tmp_path / "book").mkdir()
    notebook = tmp_path / "book" / "01_demo.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown)]
                                  + [nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, notebook)
    return notebook, module


def test_counts_function_statements_and_page_statements(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "CHAPTERS", tmp_path / "rnncourse" / "chapters")
    notebook, module = book(tmp_path, ["import numpy as np\nx = np.zeros(3)",
                                       "%time y = x + 1\nprint(y)"])
    # LIMIT, class Sizes, its field, def train and its compile, for, fit, return, def shown
    # and its return; not the import or the docstrings
    assert recipe.static_share(notebook, module) == (10, 4)


def test_a_literalinclude_puts_a_function_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "CHAPTERS", tmp_path / "rnncourse" / "chapters")
    listing = ("```{literalinclude} ../rnncourse/chapters/ch01_demo.py\n:pyobject: shown\n"
               ":caption: rnncourse/chapters/ch01_demo.py, shown\n```")
    notebook, module = book(tmp_path, ["x = 1"], listing)
    assert recipe.static_share(notebook, module) == (8, 3)


def test_a_literalinclude_range_puts_its_lines_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "CHAPTERS", tmp_path / "rnncourse" / "chapters")
    listing = ("::::{dropdown} sizes\n```{literalinclude} ../rnncourse/chapters/ch01_demo.py\n"
               ":start-at: LIMIT = 3\n:end-before: def train\n"
               ":caption: rnncourse/chapters/ch01_demo.py: sizes\n```\n::::")
    notebook, module = book(tmp_path, ["x = 1"], listing)
    # LIMIT, class Sizes and its field are shown; not train's five statements, shown's two
    assert recipe.static_share(notebook, module) == (7, 4)
    whole = "```{literalinclude} ../rnncourse/chapters/ch01_demo.py\n```"
    monkeypatch.setattr(recipe, "CHAPTERS", tmp_path / "whole" / "rnncourse" / "chapters")
    notebook, module = book(tmp_path / "whole", ["x = 1"], whole)
    assert recipe.static_share(notebook, module) == (0, 11)


def test_the_chapters_pass_and_a_hidden_recipe_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "CHAPTERS", tmp_path / "rnncourse" / "chapters")
    notebook, module = book(tmp_path, ["from demo import train", "train(model, x)"])
    off_page, page = recipe.static_share(notebook, module)
    assert off_page > 0.10 * (off_page + page)  # the rule test_notebooks.py applies

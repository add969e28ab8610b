"""The recipe-on-page check that `make notebooks` runs on the kernels' coverage
(tests/recipe_coverage.py --data): it passes, and fails for the reasons it names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import coverage
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("recipe_coverage",
                                              ROOT / "tests" / "recipe_coverage.py")
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)

NOTEBOOK = ROOT / "book" / "00_setup.ipynb"
MODULE = ROOT / "rnncourse" / "chapters" / "ch00_setup.py"


def data_file(tmp_path: Path, lines: set[int]) -> Path:
    path = tmp_path / ".coverage"
    data = coverage.CoverageData(basename=str(path))
    data.add_lines({str(MODULE): sorted(lines)})
    data.write()
    return path


def test_page_statements_counts_statements_not_lines():
    # one statement per line of code the cells hold, never more than the cells' lines
    cells = recipe.notebook_script(NOTEBOOK, Path("/dev/null"))
    code_lines = sum(len([x for x in code.splitlines() if x.strip()]) for _, code in cells)
    assert 0 < recipe.page_statements(NOTEBOOK) <= code_lines


@pytest.mark.parametrize("limit, status", [(1.0, 0), (0.0, 1)])
def test_share_over_the_limit_fails(tmp_path, capsys, limit, status):
    body = recipe.body_lines(MODULE)
    assert body, "ch00 has functions"
    assert recipe.from_data(data_file(tmp_path, body), [NOTEBOOK], limit) == status
    out = capsys.readouterr().out
    assert "00_setup.ipynb" in out
    assert ("off the page (limit 0%)" in out) == (status == 1)


def test_module_lines_outside_bodies_do_not_count(tmp_path, capsys):
    outside = {1, 2, 3} - recipe.body_lines(MODULE)
    assert recipe.from_data(data_file(tmp_path, outside), [NOTEBOOK], 0.0) == 0


def test_a_notebook_that_did_not_run_fails(tmp_path, capsys):
    assert recipe.from_data(data_file(tmp_path, set()), [NOTEBOOK], 1.0) == 1
    assert "no coverage recorded" in capsys.readouterr().out


def test_training_off_the_page_fails(tmp_path, capsys, monkeypatch):
    line = min(recipe.body_lines(MODULE))
    monkeypatch.setattr(recipe, "training_lines", lambda path: {line: "fit"})
    assert recipe.from_data(data_file(tmp_path, {line}), [NOTEBOOK], 1.0) == 1
    assert "training off the page" in capsys.readouterr().out

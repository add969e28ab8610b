"""pytest plugin for ``make notebooks``: keep what nbval executed, report how long it took.

When ``RNNCOURSE_EXECUTED_DIR`` is set, every notebook that nbval ran is written there with
the outputs nbval collected (figures, tables, printed numbers), under its path relative to
the repository. ``make strict`` builds the website from those copies without executing
anything again, so the CI-scale site that the browser test checks shows real figures while
each notebook runs only once.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent


_ran: set[int] = set()
_seconds: dict[str, float] = {}


def pytest_runtest_makereport(item, call):
    if call.when == "call" and getattr(item, "test_outputs", None) is not None:
        item.cell.outputs = item.test_outputs
        _ran.add(id(item.cell))
        name = Path(str(item.parent.path)).name
        _seconds[name] = _seconds.get(name, 0.0) + call.duration


def pytest_terminal_summary(terminalreporter):
    """Seconds spent executing each notebook's cells (kernel start-up not included)."""
    if _seconds:
        terminalreporter.section("notebook execution time")
        for name, seconds in sorted(_seconds.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("RNNCOURSE_EXECUTED_DIR")
    if not target:
        return
    notebooks = {id(item.parent): item.parent for item in session.items
                 if hasattr(item.parent, "nb") and str(item.parent.path).endswith(".ipynb")}
    for notebook in notebooks.values():
        out = Path(target) / Path(notebook.path).resolve().relative_to(ROOT)
        out.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        for cell in notebook.nb.cells:
            if cell.cell_type == "code" and id(cell) in _ran:
                count += 1
                cell.execution_count = count
                for output in cell.outputs:
                    if output.get("output_type") == "execute_result":
                        output["execution_count"] = count
        nbformat.write(notebook.nb, out)

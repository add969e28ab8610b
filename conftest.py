"""pytest plugin for ``make notebooks``: keep what nbval executed, report how long it took.

When ``RNNCOURSE_EXECUTED_DIR`` is set, every notebook that nbval ran is written there with
the outputs nbval collected (figures, tables, printed numbers), under its path relative to
the repository. ``make strict`` builds the website from those copies without executing
anything again, so the CI-scale site that the browser test checks shows real figures while
each notebook runs only once.

Each notebook's execution time (its cells' seconds; kernel start-up not included) is printed
at the end; with ``RNNCOURSE_NOTEBOOK_TIMES`` set it is also merged into that JSON file with
the date, the scale, the machine's CPU count and how many notebooks ran at once, and the
intro's table of run times shows it (``book/_ext/site_fixes.py``). Both work with
pytest-xdist (``make notebooks`` runs two notebooks at a time): times come from the test
reports, which reach the controlling process, and each worker writes the notebooks it ran.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent

_ran: set[int] = set()
_seconds: dict[str, float] = {}


# Seconds per notebook at CI scale (idle clean clone, 2 cores): the order when no
# RNNCOURSE_NOTEBOOK_TIMES file has CI-scale times yet.
CI_SECONDS = {"06_training_loops.ipynb": 266, "07_scaling_out.ipynb": 111,
              "03_embeddings_glove.ipynb": 95, "01_rnn_gradients.ipynb": 90,
              "02_gru_lstm.ipynb": 70, "04_variable_length_batching.ipynb": 49,
              "05_tbptt.ipynb": 45, "08_your_project.ipynb": 14, "00_setup.ipynb": 13,
              "09_rnn_or_attention.ipynb": 65}


def pytest_collection_modifyitems(config, items):
    """Longest notebook first: with two at a time (pytest-xdist, ``--dist loadfile
    --no-loadscope-reorder``) the long chapter starts at once and the short ones fill the
    other worker, instead of the long one starting last and running alone."""
    seconds = dict(CI_SECONDS)
    try:
        recorded = json.loads(Path(os.environ["RNNCOURSE_NOTEBOOK_TIMES"]).read_text())
        seconds.update({name: entry["seconds"] for name, entry in recorded.items()
                        if entry.get("scale") == os.environ.get("RNNCOURSE_SCALE", "full")})
    except (KeyError, OSError, ValueError, TypeError, AttributeError):
        pass
    position = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (-seconds.get(Path(str(item.path)).name, 0.0)
                                 if str(item.path).endswith(".ipynb") else 0.0,
                                 position[id(item)]))


def pytest_runtest_makereport(item, call):
    if call.when == "call" and getattr(item, "test_outputs", None) is not None:
        item.cell.outputs = item.test_outputs
        _ran.add(id(item.cell))


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if report.when == "call" and path.endswith(".ipynb"):
        name = Path(path).name
        _seconds[name] = _seconds.get(name, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Seconds spent executing each notebook's cells (kernel start-up not included)."""
    if _seconds:
        terminalreporter.section("notebook execution time")
        for name, seconds in sorted(_seconds.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")


def _write_times(config) -> None:
    target = os.environ.get("RNNCOURSE_NOTEBOOK_TIMES")
    if not target or not _seconds or hasattr(config, "workerinput"):
        return
    path = Path(target)
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):
        times = {}
    workers = getattr(config.option, "numprocesses", None) or 1
    measured = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for name, seconds in _seconds.items():
        times[name] = {"seconds": round(seconds, 1), "measured": measured,
                       "scale": os.environ.get("RNNCOURSE_SCALE", "full"),
                       "cpus": os.cpu_count(), "at_once": workers,
                       "machine": f"{platform.system()} {platform.machine()}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")


def pytest_sessionfinish(session, exitstatus):
    _write_times(session.config)
    target = os.environ.get("RNNCOURSE_EXECUTED_DIR")
    if not target:
        return
    notebooks = {id(item.parent): item.parent for item in session.items
                 if hasattr(item.parent, "nb") and str(item.parent.path).endswith(".ipynb")}
    for notebook in notebooks.values():
        code = [cell for cell in notebook.nb.cells if cell.cell_type == "code"]
        if not any(id(cell) in _ran for cell in code):
            continue  # collected here, run by another pytest-xdist worker
        out = Path(target) / Path(notebook.path).resolve().relative_to(ROOT)
        out.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        for cell in code:
            if id(cell) in _ran:
                count += 1
                cell.execution_count = count
                for output in cell.outputs:
                    if output.get("output_type") == "execute_result":
                        output["execution_count"] = count
        nbformat.write(notebook.nb, out)

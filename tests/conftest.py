"""Shared set-up: CI scale, no progress bars; TensorFlow imported quietly, and only by the
test modules that need it; the slow tier marked.

A test module that uses TensorFlow (directly or through a library module that imports it)
gets it through :func:`rnncourse.config.quiet_tensorflow` before the module is imported, so
its start-up notices never reach the output. Modules that do not (the notebook and packaging
checks, the CLI, the data cache) run without paying the ~4 s and ~0.5 GB of the import.

The slow tier (``@pytest.mark.slow``; ``make quick`` runs ``-m "not slow"``) is what starts
processes, trains on a real corpus, or builds a book: a test marks itself, and the modules
in ``SLOW_MODULES`` are marked here as a whole.
"""

import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("RNNCOURSE_SCALE", "ci")
os.environ.setdefault("RNNCOURSE_PROGRESS", "0")

# Library modules whose import pulls TensorFlow in (rnncourse, config, data, text, glove,
# devices, distributed, process, progress, plots and chapters do not).
_TF_MODULES = r"(?:models|cells|gradients|batching|tbptt|training|ch\d\d_\w+)"
USES_TENSORFLOW = re.compile(
    rf"^\s*(?:import|from)\s+(?:tensorflow|keras)\b"
    rf"|^\s*from\s+rnncourse(?:\.chapters)?\s+import\s+[^\n]*\b{_TF_MODULES}\b"
    rf"|^\s*(?:import|from)\s+rnncourse\.(?:chapters\.)?{_TF_MODULES}\b", re.M)

# Whole modules in the slow tier: each of their tests starts worker processes or trains a
# chapter's model on real data (measured: seconds per test on two cores).
SLOW_MODULES = {"test_distributed.py", "test_process.py"}


def pytest_collect_file(file_path: Path, parent):
    """Before a test module that needs TensorFlow is imported, import it quietly."""
    if file_path.suffix == ".py" and file_path.name.startswith("test_"):
        try:
            text = file_path.read_text(encoding="utf-8")
        except OSError:
            return None
        if USES_TENSORFLOW.search(text):
            from rnncourse.config import quiet_tensorflow

            quiet_tensorflow()
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.path)).name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

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

# The slow tier: whole modules that start worker processes, and the tests that took longest
# in a full run (``pytest tests --durations=80`` on two cores: each of these several seconds
# when the machine is idle; together most of the unit phase). A test can also mark itself.
SLOW_MODULES = {"test_distributed.py", "test_process.py"}
SLOW_TESTS = {
    "test_tagger_comparison_on_tiny_tweets",
    "test_mirrored_strategy_on_two_logical_cpus_matches_one_device",
    "test_gradient_accumulation_equivalence",
    "test_doctor_finds_a_cut_corpus_file",
    "test_doctor_says_how_to_fetch_what_is_missing",
    "test_doctor_reports_versions_cache_and_corpora",
    "test_quiet_tensorflow_prints_nothing",
    "test_importing_the_package_changes_no_setting",
    "test_run_overfitting_records_curves_per_seed_and_dropout_changes_them",
    "test_zero_dropout_rate_reproduces_the_plain_run",
    "test_run_adding_returns_every_cell_and_the_baseline",
    "test_memory_is_flat_for_tbptt_and_grows_for_full_bptt",
    "test_language_models_on_a_small_text",
    "test_fixed_length_model_trains_and_epoch_times_counts",
    "test_loss_normalisations_agree_with_hand_sums",
    "test_per_example_loop_takes_one_step_per_example",
    "test_accumulate_and_apply_with_sgd_equals_keras_accumulation",
    "test_step_losses_equal_the_losses_of_separate_evaluations",
}


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
        name = getattr(item, "originalname", item.name)
        if Path(str(item.path)).name in SLOW_MODULES or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def refuses():
    """``refuses(call, (error, argument))``: ``call()`` raises ``error`` as one of
    rnncourse's argument errors naming ``argument`` (the type and the name, not the
    wording), for the bad-input tables of the newer modules."""

    def check(call, expect):
        from rnncourse import _checks

        error, argument = expect
        with pytest.raises(error) as info:
            call()
        assert isinstance(info.value, (_checks.ArgumentTypeError, _checks.ArgumentValueError))
        assert info.value.argument == argument

    return check

"""Tests of chapter 6's settings (rnncourse.chapters.ch06_training) and its figures
(rnncourse.plots.training). The chapter's data, models and comparisons are on its page and
run under nbval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnncourse import plots, training
from rnncourse.chapters import ch06_training as ch06
from rnncourse.plots import training as training_plots


# ----------------------------------------------------------------------------- contract
def test_the_recipe_regularises_and_ci_repeats():
    assert ch06.RECIPE.dropout > 0 and ch06.RECIPE.patience >= 1  # one recipe, CI included
    assert ch06.SIZES["ci"].repeats >= 2  # paired differences need a standard error
    assert ch06.RECIPE.accumulation_examples % ch06.RECIPE.accumulation_steps == 0


def test_settings_follow_the_scale(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    assert ch06.settings().sizes == ch06.SIZES["ci"]
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    assert ch06.settings().sizes == ch06.SIZES["full"] and ch06.settings().recipe == ch06.RECIPE


def test_the_chapter_module_trains_nothing():
    """Every fit, compile and update of the chapter is on its page, none in the module."""
    source = Path(ch06.__file__).read_text(encoding="utf-8")
    for call in (".fit(", ".compile(", "tf.GradientTape", ".apply_gradients(",
                 ".train_on_batch(", ".apply("):
        assert call not in source, call


# ----------------------------------------------------------------------------- figures
def _history(steps: int, epochs: int, size: int) -> training.LoopHistory:
    rng = np.random.default_rng(0)
    return training.LoopHistory(step_losses=rng.uniform(0.1, 2, steps * epochs),
                                step_sizes=np.full(steps * epochs, size),
                                epoch_losses=np.linspace(1, 0.5, epochs),
                                epoch_seconds=np.ones(epochs), val_losses=np.ones(epochs))


def test_loop_and_confusion_figures_have_data():
    per_example, minibatch = _history(10, 2, 1), _history(5, 2, 32)
    assert plots.has_data(training_plots.plot_loop_comparison(per_example, minibatch, 150, 32))
    counts, names = training.type_confusion([["B-person", "O"]], [["B-person", "B-geo-loc"]])
    assert plots.has_data(training_plots.plot_type_confusion(counts, names))
    with pytest.raises(ValueError, match="counts must be"):
        training_plots.plot_type_confusion(counts, names[:1])


def test_accumulation_figure_has_a_panel_per_optimizer():
    diffs = {"sgd": {"accumulated-big": (1e-9, 1e-8), "separate-big": (1e-3, 1e-2)},
             "adam": {"accumulated-big": (1e-3, 1e-8), "separate-big": (1e-2, 1e-2)}}
    fig = training_plots.plot_accumulation(diffs, {"sgd": 0.1, "adam": 0.01}, 4, 8)
    assert plots.has_data(fig)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["SGD: 4 micro-batches of 8", "ADAM: 4 micro-batches of 8"]
    assert [len(ax.patches) for ax in fig.axes] == [4, 4]  # two pairs x two weight groups
    with pytest.raises(ValueError) as error:
        training_plots.plot_accumulation(diffs, {"sgd": 0.1}, 4, 8)
    assert error.value.argument == "moved"


def test_tagger_comparison_figure_shows_every_seed_and_run():
    f1 = {"random init": [0.1, 0.2, 0.3], "GloVe": np.array([0.3, 0.3, 0.6])}
    val_losses = {"random init": [[0.9, 0.8], [0.9, 0.7, 0.7], [1.0, 0.8]],
                  "GloVe": [np.array([0.7, 0.6]), [0.7], [0.8, 0.6]]}
    fig = training_plots.plot_tagger_comparison(f1, val_losses)
    assert plots.has_data(fig)
    ax_f1, ax_loss = fig.axes[:2]
    assert "3 seeds" in ax_f1.get_xlabel()
    assert len([line for line in ax_loss.lines if len(line.get_xdata())]) == 6  # every run
    assert [t.get_text() for t in ax_f1.get_yticklabels()] == list(f1)  # first on top
    only = training_plots.plot_tagger_comparison(f1, val_losses, variants=["GloVe"])
    assert [t.get_text() for t in only.axes[0].get_yticklabels()] == ["GloVe"]

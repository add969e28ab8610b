"""Chapter 2, *GRU and LSTM*: the chapter's sizes and recipe.

Follows the chapter contract of :mod:`rnncourse.chapters`. The library this chapter teaches
is :mod:`rnncourse.cells` (the scratch cells and their equivalence with Keras); everything
the chapter runs is on its page: the adding problem's runs and the steps each cell needs,
the probes of Keras layers, the dropout experiment's data, runs and paired differences.
What lives here is the two scales, the recipe and the constant predictor's error
(:data:`BASELINE_MSE`, :data:`SQUARED_ERROR_VARIANCE`).

Wall-clock timings of the cuDNN kernel are in ``benchmarks/cudnn_speed.py``, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnncourse.chapters import Settings, settings_for

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "BASELINE_MSE",
           "SQUARED_ERROR_VARIANCE"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        timesteps: length ``T`` of the adding-problem sequences.
        train_examples: training sequences (the same for every cell).
        test_examples: test sequences (learning curves, constant-predictor check).
        epochs: the largest budget a cell gets; training stops earlier once the test MSE
            is below the recipe's target (one epoch is ``ceil(train_examples / batch)``
            Adam steps).
        units: recurrent units of every cell.
        eval_steps: Adam steps between two measurements of the test MSE: the resolution of the
            steps each cell needs (an epoch is 94 steps at CI scale, 313 at full).
        probe_examples: test sequences on which the gradient through time is measured.
        overfit_epochs: epochs of every run of the dropout experiment.
        overfit_repeats: training seeds per variant of that experiment.
        overfit_units: LSTM units of its classifier.
    """

    timesteps: int
    train_examples: int
    test_examples: int
    epochs: int
    units: int
    eval_steps: int
    probe_examples: int
    overfit_epochs: int
    overfit_repeats: int
    overfit_units: int


SIZES = {
    "ci": Sizes(timesteps=20, train_examples=3000, test_examples=1000, epochs=20, units=32,
                eval_steps=10, probe_examples=256, overfit_epochs=5, overfit_repeats=3,
                overfit_units=32),
    "full": Sizes(timesteps=100, train_examples=10_000, test_examples=1000, epochs=24,
                  units=64, eval_steps=50, probe_examples=256, overfit_epochs=10, overfit_repeats=4,
                  overfit_units=32),
}


@dataclass(frozen=True)
class Recipe:
    """The training recipe, the same at both scales.

    Attributes:
        learning_rate: Adam's step size, for every cell.
        batch_size: sequences per Adam step.
        target_fraction: a cell has learned the lag once its test MSE is below
            ``target_fraction * BASELINE_MSE`` (1/30 for 0.2); training stops there.
        cells: the compared cells, each with the same recipe and the same largest budget.
        dropout_rate: ``p`` of ``dropout=p`` and ``recurrent_dropout=p`` in the dropout
            experiment.
        regularisers: its compared variants: no dropout, ``LSTM(dropout=p)`` (inputs,
            keeps cuDNN), ``LSTM(recurrent_dropout=p)`` (state fed back, rules cuDNN out).
        overfit_sentences: labelled training sentences of that experiment, at both scales:
            few labels, so that the classifier over-fits (part of the question asked);
            validation uses the whole held-out share.
        overfit_timesteps: sentences are cut to their first this many tokens (51% are no
            longer): every step of the LSTM costs time on a CPU.
        overfit_learning_rate: Adam's step size there.
        overfit_batch_size: sentences per Adam step there.
        validation_fraction: share of the 4,000 sentences held out for validation.
    """

    learning_rate: float = 3e-3
    batch_size: int = 32
    target_fraction: float = 0.2
    cells: tuple[str, ...] = ("simple_rnn", "gru", "lstm")
    dropout_rate: float = 0.5
    regularisers: tuple[str, ...] = ("none", "dropout", "recurrent_dropout")
    overfit_sentences: int = 1000
    overfit_timesteps: int = 20
    overfit_learning_rate: float = 1e-2
    overfit_batch_size: int = 64
    validation_fraction: float = 0.2


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


# ------------------------------------------------------------------------ the baseline

#: MSE of the best constant prediction (1.0) on the adding problem: Var(U1 + U2) = 2/12.
BASELINE_MSE = 1.0 / 6.0

#: Variance of the squared error ``(y - 1)**2`` of the constant predictor. ``y - 1`` has the
#: triangular density ``1 - |d|`` on ``[-1, 1]``, so ``E[d**4] = 1/15`` and the variance is
#: ``1/15 - (1/6)**2 = 7/180``.
SQUARED_ERROR_VARIANCE = 7.0 / 180.0

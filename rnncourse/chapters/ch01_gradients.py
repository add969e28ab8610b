"""Chapter 1, RNN gradients: the chapter's sizes (see :mod:`rnncourse.chapters`).

Everything the chapter runs is on its page, ``book/01_rnn_gradients.ipynb``: the batches
(:func:`rnncourse.data.adding_problem`, the movie-review sentences), the measurements of
untrained models over several weight draws, the trainings (the IRNN with and without
clipping, the regulariser runs, the review classifier) and the statistics behind each
claim. The tools live in :mod:`rnncourse.gradients`, the models in
:func:`rnncourse.models.sequence_regressor` and :func:`rnncourse.models.sequence_classifier`;
this module holds only the sizes for ``RNNCOURSE_SCALE`` and the recipe.

Seed offsets the page uses (:func:`rnncourse.config.seed`): 0 the probe batch, 1 the probe
model, 3 the clipping data, 4 the clipping model, 5 the review sentences, 6 the review
classifier, 7 the exercise-1 model, and ``10 ..`` the weight draws averaged over
(``Sizes.weight_seeds`` of them; ``seed + 1`` rescales or initialises a draw's ``W_aa``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rnncourse.chapters import Settings, settings_for

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        timesteps: sequence length of the gradient-through-time measurements.
        units: recurrent units of every model of the chapter.
        probe_examples: sequences in the measurement batch.
        weight_seeds: weight draws each gradient curve is averaged over.
        train_examples: adding-problem sequences of the clipping experiment.
        train_timesteps: their length.
        train_epochs: epochs of the clipping experiment.
        review_sentences: movie-review sentences of the gradient-logger demo.
        review_epochs: its epochs.
    """

    timesteps: int
    units: int
    probe_examples: int
    weight_seeds: int
    train_examples: int
    train_timesteps: int
    train_epochs: int
    review_sentences: int
    review_epochs: int


SIZES = {
    "ci": Sizes(timesteps=100, units=32, probe_examples=32, weight_seeds=5,
                train_examples=512, train_timesteps=50, train_epochs=8,
                review_sentences=640, review_epochs=2),
    "full": Sizes(timesteps=100, units=32, probe_examples=32, weight_seeds=10,
                  train_examples=512, train_timesteps=50, train_epochs=8,
                  review_sentences=4000, review_epochs=4),
}


@dataclass(frozen=True)
class Recipe:
    """Everything else, the same at both scales.

    Attributes:
        batch_size: sequences per optimizer step.
        learning_rate: plain SGD step size of the clipping experiment.
        global_clipnorm: the norm-clipping threshold compared.
        clipvalue: the value-clipping threshold compared.
        gate_bias: bias that opens the LSTM forget / GRU update gate
            (:func:`rnncourse.gradients.open_gates`).
        sigmas: largest singular values of ``W_aa`` swept.
        review_vocabulary: words kept (ids 0 and 1 are padding and OOV).
        review_maxlen: tokens per review sentence (longer ones are cut).
        review_optimizer: optimizer of the gradient-logger demo.
        omega_alpha: weight of Pascanu et al.'s regulariser Omega in the regulariser runs.
    """

    batch_size: int = 32
    learning_rate: float = 0.05
    global_clipnorm: float = 1.0
    clipvalue: float = 0.1
    gate_bias: float = 5.0
    sigmas: tuple[float, ...] = (0.5, 0.7, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 2.0)
    review_vocabulary: int = 5000
    review_maxlen: int = 40
    review_optimizer: str = "adam"
    omega_alpha: float = 1.0


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)

"""Chapter 6, training loops and the BiLSTM tagger: the sizes and the recipe.

Follows the chapter contract of :mod:`rnncourse.chapters`: :class:`Sizes` (what the scale
changes), one :data:`RECIPE` for both scales and :func:`settings`. Everything else the
chapter runs is on its page (``book/06_training_loops.ipynb``): the tweets and their
vocabularies, every model, loss, optimizer and loop, the comparisons and their statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnncourse.chapters import Settings, settings_for

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings"]


# ============================================================================ settings
@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        loop_examples: training tweets the per-example ``fit`` loop runs on.
        loop_epochs: epochs of the loop comparison.
        tagger_tweets: tweets used for the tagger (training + validation).
        tagger_epochs: most epochs of a tagger run (early stopping may end it sooner).
        units: LSTM units per direction of the tagger and the reader's model.
        repeats: seeds per tagger variant.
    """

    loop_examples: int
    loop_epochs: int
    tagger_tweets: int
    tagger_epochs: int
    units: int
    repeats: int


SIZES = {
    "ci": Sizes(loop_examples=40, loop_epochs=2, tagger_tweets=1000, tagger_epochs=8,
                units=32, repeats=3),
    "full": Sizes(loop_examples=60, loop_epochs=3, tagger_tweets=2394, tagger_epochs=40,
                  units=32, repeats=3),
}


@dataclass(frozen=True)
class Recipe:
    """The chapter's recipe, the same at both scales.

    Attributes:
        batch_size: tweets per optimizer step.
        validation_fraction: share of tweets held out (``rnncourse.text.split_indices``).
        optimizer, learning_rate: the tagger's optimizer.
        dropout: on the word vectors and on the BiLSTM outputs.
        patience: early stopping on the validation loss, best epoch's weights kept.
        glove_dim: GloVe 6B vectors used.
        min_count: training words seen fewer times and without a GloVe vector map to
            ``<oov>`` in the "trained <oov>" vocabularies, so the ``<oov>`` row is trained.
        reader_optimizer, reader_learning_rate: the reader's model (SGD, 0.1).
        accumulation_steps, accumulation_examples: micro-batches per update and examples
            in all of them together.
        accumulation_units: LSTM units of the small tagger of the accumulation check.
        accumulation_rates: learning rate per optimizer of the accumulation check.
    """

    batch_size: int = 32
    validation_fraction: float = 0.2
    optimizer: str = "adam"
    learning_rate: float = 0.01
    dropout: float = 0.5
    patience: int = 3
    glove_dim: int = 50
    min_count: int = 2
    reader_optimizer: str = "sgd"
    reader_learning_rate: float = 0.1
    accumulation_steps: int = 4
    accumulation_examples: int = 32
    accumulation_units: int = 16
    accumulation_rates: tuple[tuple[str, float], ...] = (("sgd", 0.5), ("adam", 0.01))


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)

"""Chapter 3, *Embeddings and GloVe*: the chapter's sizes and recipe.

Follows the chapter contract of :mod:`rnncourse.chapters`. Everything the chapter runs is
on its page: the probes of ``keras.layers.Embedding``, the dictionary loader against
:func:`rnncourse.glove.read_glove`, the geometry of the vectors, the coverage of two
corpora, and the capstone (its data, one training run, the loop over seeds and variants,
the paired statistics). What lives here is the two scales and the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnncourse.chapters import Settings, settings_for

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "VARIANTS"]

VARIANTS = ("glove", "random", "glove_frozen")
"""The compared embedding tables: GloVe fine-tuned, random (trained), GloVe frozen."""


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        epochs: training epochs of each sentiment run.
        repeats: training seeds per variant (mean and spread over them).
        glove_words: GloVe rows (most frequent first) loaded for neighbours and analogies.
    """

    epochs: int
    repeats: int
    glove_words: int


SIZES = {"ci": Sizes(epochs=4, repeats=3, glove_words=100_000),
         "full": Sizes(epochs=8, repeats=4, glove_words=400_000)}


@dataclass(frozen=True)
class Recipe:
    """The sentiment experiment's recipe, the same at both scales.

    ``train_sentences`` labelled sentences (of the 3,200 in the training split) is part
    of the question asked (few labels), so both scales use it; validation uses the other
    800 sentences.
    """

    train_sentences: int = 1000
    validation_fraction: float = 0.2
    timesteps: int = 50
    units: int = 32
    dropout: float = 0.3
    learning_rate: float = 5e-3
    batch_size: int = 32
    variants: tuple[str, ...] = VARIANTS


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)

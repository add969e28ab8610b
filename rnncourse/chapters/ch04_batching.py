"""Chapter 4, variable-length batching: the chapter's data and sizes.

The tools a practitioner imports (padding, bucketing, padding counts) live in
:mod:`rnncourse.batching` and :func:`rnncourse.text.pad`; the models the chapter trains,
their losses, their training loops and the probes of Keras' masking are on the chapter's
page. This module holds the sizes, the recipe and the data assembly:
:func:`review_ids`, the Pang & Lee reviews or sentences as id sequences.

Epoch wall times per batching strategy are measured by ``benchmarks/batching_speed.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncourse import batching, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.data import load_movie_reviews

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "review_ids"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        sentences: sentences of the loss, gradient and fixed-length experiments.
        vocabulary: ids kept by the vocabulary (including 0 = padding and 1 = OOV).
        units: recurrent units of the models trained here.
        embedding_dim: width of their embeddings.
        epochs: epochs of the fixed-length classifier.
    """

    sentences: int
    vocabulary: int
    units: int
    embedding_dim: int
    epochs: int


SIZES = {
    "ci": Sizes(sentences=256, vocabulary=5000, units=16, embedding_dim=16, epochs=2),
    "full": Sizes(sentences=2048, vocabulary=20000, units=32, embedding_dim=32, epochs=4),
}


@dataclass(frozen=True)
class Recipe:
    """The chapter's recipe, the same at both scales.

    Attributes:
        batch_size: examples per batch everywhere.
        strategies: the compared batching strategies (:data:`rnncourse.batching.STRATEGIES`).
        train_timesteps: the fixed input length of the fixed-length classifier.
        probe_units: units of the small layers that probe Keras' masking.
        optimizer: of the trained classifier.
    """

    batch_size: int = 32
    strategies: tuple[str, ...] = batching.STRATEGIES
    train_timesteps: int = 20
    probe_units: int = 8
    optimizer: str = "adam"


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


# --------------------------------------------------------------------------- data


def review_ids(kind: str = "reviews", max_words: int | None = None, limit: int | None = None,
               seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Pang & Lee movie reviews as id sequences, shuffled (the corpus is sorted by label).

    Args:
        kind: ``"reviews"`` (1,500 full reviews) or ``"sentences"`` (4,000 sentences).
        max_words: vocabulary size including ids 0 and 1 (:class:`rnncourse.text.Vocabulary`).
        limit: keep the first ``limit`` examples after shuffling.
        seed: shuffling seed.

    Returns:
        ``(sequences, labels)``: int32 id arrays, labels int32 ``(n,)`` with 1 = positive.
    """
    texts, labels = load_movie_reviews(kind)
    order = np.random.default_rng(seed).permutation(len(texts))[:limit]
    tokens = [texts[i].split() for i in order]
    vocabulary = text.Vocabulary.from_tokens(tokens, max_size=max_words)
    ids = [np.asarray(row, dtype="int32") for row in vocabulary.encode_batch(tokens)]
    return ids, np.asarray(labels)[order].astype("int32")

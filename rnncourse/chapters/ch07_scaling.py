"""Chapter 7, Scaling out: the chapter's sizes, recipe and data (see :mod:`rnncourse.chapters`).

The chapter-6 BiLSTM tagger (GloVe + OOV rows, masking, bucketed batches) is trained three
ways (:data:`KINDS`) from the same initial weights on the same global batches, by a worker
script that the chapter's page writes and shows (``tagger_worker.py``): one replica in the
notebook, ``MirroredStrategy`` over two logical CPUs of a fresh process, and
``MultiWorkerMirroredStrategy`` with two local worker processes. The script, the runs and
their comparison are on the page. This module holds what every process builds the same way
and a reader need not see: the data (:func:`tagging_set`, :func:`global_batches`) and the
script's arguments (:func:`worker_kwargs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncourse import config, data, distributed, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.embeddings import embedding_matrix
from rnncourse.glove import read_glove

config.quiet_tensorflow()
import tensorflow as tf  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "KINDS", "TaggingSet",
           "tagging_set", "synthetic_set", "global_batches", "worker_kwargs"]

KINDS = ("single", "mirrored", "multi_worker")
"""The compared ways to train: one replica; two replicas in one process; two workers."""


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter."""

    tweets: int
    epochs: int
    units: int


SIZES = {"ci": Sizes(tweets=200, epochs=2, units=8),
         "full": Sizes(tweets=1200, epochs=4, units=32)}


@dataclass(frozen=True)
class Recipe:
    """The recipe, the same at both scales.

    ``batch_size`` is the GLOBAL batch: each of two replicas gets half of every batch.
    No dropout and no shuffling, so the compared runs see the same numbers (exactness).
    The worker-lost run kills worker ``kill_worker`` before batch ``kill_batch`` of epoch
    ``kill_epoch`` (0-based); backups are written at every epoch end. ``corpus``
    ``"wnut16"`` trains on the tweets with GloVe rows; ``"synthetic"`` (the tests) on
    random ids of random lengths, with no download.
    """

    batch_size: int = 32
    learning_rate: float = 0.01
    glove_dim: int = 50
    validation_fraction: float = 0.2
    replicas: int = 2
    kill_worker: int = 1
    kill_epoch: int = 1
    kill_batch: int = 2
    collective_timeout: float = 60.0
    worker_timeout: float = 420.0
    worker_grace: float = 90.0
    corpus: str = "wnut16"


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TaggingSet:
    """The training tweets, encoded: what every replica and worker rebuilds identically.

    Attributes:
        x, y: ``(n, timesteps)`` int32 token ids (0 = padding) and tag ids.
        embeddings: ``(vocab_size, glove_dim)`` GloVe rows + truncated-normal OOV rows.
        tag_names: id -> BIO tag.
    """

    x: np.ndarray
    y: np.ndarray
    embeddings: np.ndarray
    tag_names: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return int(self.embeddings.shape[0])


def tagging_set(tweets: int, seed: int, glove_dim: int = 50,
                validation_fraction: float = 0.2, corpus: str = "wnut16") -> TaggingSet:
    """The first ``tweets`` WNUT-16 tweets, split with ``seed``; the training part, encoded.

    The vocabulary comes from the training tweets; GloVe rows are looked up lower-cased and
    OOV rows drawn per word (:func:`rnncourse.embeddings.embedding_matrix`), so two processes
    calling this with the same arguments build the same arrays. ``corpus="synthetic"``
    (the tests): random sentences instead (:func:`synthetic_set`), no download.
    """
    if corpus == "synthetic":
        return synthetic_set(tweets - int(round(tweets * validation_fraction)), seed, glove_dim)
    if corpus != "wnut16":
        raise ValueError(f"corpus must be 'wnut16' or 'synthetic', not {corpus!r}")
    tokens, tags = data.load_tweet_ner()
    tokens, tags = tokens[:tweets], tags[:tweets]
    train, _ = text.split_indices(len(tokens), validation_fraction, seed=seed)
    tokens = [tokens[i] for i in train]
    tags = [tags[i] for i in train]
    vocab = text.Vocabulary.from_tokens(tokens)
    glove = read_glove(data.glove_path(glove_dim), vocabulary={w.lower() for w in vocab.words})
    matrix, _ = embedding_matrix(vocab, glove, oov="truncated_normal", seed=seed)
    tag_names = text.tag_vocabulary(tags)
    x, y = text.encode_tagging(tokens, tags, vocab, tag_names)
    return TaggingSet(x=x, y=y, embeddings=matrix, tag_names=tuple(tag_names))


def synthetic_set(n: int, seed: int, dim: int) -> TaggingSet:
    """``n`` random "sentences" of 3 to 20 ids (2..59), random tags of three, random
    ``(60, dim)`` vectors, from ``seed``: a tagging set for the tests, no download."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 21, size=n)
    x = np.zeros((n, int(lengths.max())), dtype="int32")
    y = np.zeros_like(x)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.integers(2, 60, size=length)
        y[i, :length] = rng.integers(0, 3, size=length)
    matrix = rng.normal(0, 0.3, size=(60, dim)).astype("float32")
    return TaggingSet(x=x, y=y, embeddings=matrix, tag_names=("O", "B-x", "I-x"))


def global_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Bucketed global batches ``(ids, tags, weights)`` in a fixed order, one pass.

    Each sentence is cut to its real length, then ``bucket_by_sequence_length`` groups
    sentences of similar length (buckets split at the quartiles of the lengths) and pads
    each batch to its own longest sentence. No shuffling: every process builds the same
    batches in the same order. ``weights`` are
    :func:`rnncourse.distributed.global_token_weights`.

    Returns:
        Dataset of ``(batch, timesteps)`` int32 ids, int32 tags and float32 weights;
        ``timesteps`` differs from batch to batch.
    """
    lengths = (np.asarray(x) != 0).sum(axis=1).astype("int32")  # 0 = padding
    cuts = np.quantile(lengths, [0.25, 0.5, 0.75]).astype(int) + 1
    boundaries = sorted({int(c) for c in cuts if 1 < c <= lengths.max()})
    ds = tf.data.Dataset.from_tensor_slices((x, y, lengths))
    ds = ds.map(lambda ids, tags, n: (ids[:n], tags[:n]))
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda ids, tags: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], [None]))
    return ds.map(lambda ids, tags: (ids, tags,
                                     distributed.global_token_weights(ids)))


# --------------------------------------------------------------------------- the script's arguments
def worker_kwargs(out_dir: str, setup: Settings | None = None) -> dict:
    """The JSON keyword arguments of the worker script's ``train_tagger`` (all but ``kind``)."""
    s = setup or settings()
    r = s.recipe
    return {"out_dir": out_dir, "tweets": s.sizes.tweets,
            "epochs": s.sizes.epochs, "units": s.sizes.units, "batch_size": r.batch_size,
            "learning_rate": r.learning_rate, "seed": config.seed(0),
            "glove_dim": r.glove_dim, "validation_fraction": r.validation_fraction,
            "replicas": r.replicas, "collective_timeout": r.collective_timeout,
            "corpus": r.corpus}

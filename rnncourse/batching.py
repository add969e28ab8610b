"""Variable-length batching: padding, masking, bucketing and batches without masks.

A recurrent layer takes ``(batch, timesteps, features)`` tensors, so every sequence in one
batch must have the same number of timesteps. Between batches the number may change: a model
built with ``keras.Input(shape=(None,))`` accepts any length. This module holds the tools the
chapter *Variable-length batching* measures:

* words to ids (:func:`build_vocabulary`, :func:`texts_to_ids`; id 0 is padding, id 1 is
  out-of-vocabulary), input checks (:func:`validate_sequences`) and padding
  (:func:`pad`, a checked wrapper of ``keras.utils.pad_sequences``);
* padding statistics (:func:`padding_stats`) and bucket boundaries from the length
  distribution (:func:`choose_boundaries`);
* ``tf.data`` pipelines: pad-to-global-max, pad-per-batch and bucketed
  (:func:`bucketed_dataset`, a wrapper of ``Dataset.bucket_by_sequence_length``), and
  batches of exactly equal length that need no mask (:func:`length_grouped_batches`);
* checks of Keras behaviour: masked outputs equal unpadded outputs
  (:func:`mask_exactness`), which layers pass a mask on (:func:`mask_propagation`),
  loss normalisation with a mask vs a 2-D ``sample_weight`` (:func:`loss_normalisations`),
  gradients of length-grouped vs masked padded batches (:func:`grouped_vs_padded_gradients`),
  moving weights between fixed- and free-length models (:func:`fixed_to_free_length`),
  the cuDNN right-padding rule (:func:`is_right_padded`);
* epoch timing of the three batching strategies (:func:`epoch_times`).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse.config import by_scale, quiet_tensorflow
from rnncourse.devices import mask_layout

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

PAD = 0
OOV = 1
STRATEGIES = ("global_max", "per_batch", "bucketed")


@dataclass(frozen=True)
class Settings:
    """Sizes of the chapter's experiments at the current scale (see :func:`settings`).

    Attributes:
        timing_examples: full reviews the timing experiment trains on (no length cap: every
            strategy sees the same full sequences).
        timing_strategies: batching strategies timed (CI scale skips ``per_batch``).
        timing_repeats: epochs timed per strategy (the fastest counts).
        sentences: sentences used by the gradient, loss and inference experiments.
        vocab_size: ids kept by the vocabulary (including 0 = padding and 1 = OOV).
        batch_size: examples per batch.
        units: recurrent units of the models trained here.
        embedding_dim: width of the embeddings.
        epochs: epochs of the fixed-length model of the inference experiment.
        train_length: timesteps of that fixed-length model.
    """

    timing_examples: int
    timing_strategies: tuple[str, ...]
    timing_repeats: int
    sentences: int
    vocab_size: int
    batch_size: int
    units: int
    embedding_dim: int
    epochs: int
    train_length: int


def settings() -> Settings:
    """The chapter's sizes: small at ``RNNCOURSE_SCALE=ci``, the real thing otherwise."""
    return Settings(
        timing_examples=by_scale(ci=128, full=480),
        timing_strategies=by_scale(ci=("global_max", "bucketed"), full=STRATEGIES),
        timing_repeats=2,
        sentences=by_scale(ci=256, full=2048),
        vocab_size=by_scale(ci=5000, full=20000),
        batch_size=32,
        units=by_scale(ci=16, full=32),
        embedding_dim=by_scale(ci=16, full=32),
        epochs=by_scale(ci=2, full=4),
        train_length=20,
    )


# --------------------------------------------------------------------------- words -> ids


def build_vocabulary(texts: Iterable[str], max_words: int | None = None) -> dict[str, int]:
    """Ids by frequency: the most frequent word gets id 2 (0 is padding, 1 is OOV).

    The ``{word: id}`` view of :class:`rnncourse.embeddings.Vocabulary`, same ids.

    Args:
        texts: space-tokenised strings.
        max_words: size of the id range including the two reserved ids (``None``: all words).

    Returns:
        ``{word: id}`` with ids ``2 .. max_words-1``; ties broken by first appearance.
    """
    from rnncourse.embeddings import Vocabulary

    tokens = [text.split() for text in texts]
    if not any(tokens):
        raise ValueError("build_vocabulary got no words; pass a non-empty list of texts")
    if max_words is not None and max_words < 3:
        raise ValueError(f"max_words={max_words} leaves no room for words; use at least 3")
    vocabulary = Vocabulary.from_tokens(tokens, max_size=max_words)
    return {word: index for index, word in enumerate(vocabulary.words) if index >= 2}


def texts_to_ids(texts: Iterable[str], vocabulary: dict[str, int]) -> list[np.ndarray]:
    """Map each space-tokenised text to an int32 array of ids (unknown words become 1)."""
    return [np.array([vocabulary.get(word, OOV) for word in text.split()], dtype="int32")
            for text in texts]


def load_review_ids(kind: str = "reviews", max_words: int | None = None, limit: int | None = None,
                    seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Pang & Lee movie reviews as id sequences, shuffled (the corpus is sorted by label).

    Args:
        kind: ``"reviews"`` (1,500 full reviews) or ``"sentences"`` (4,000 sentences).
        max_words: vocabulary size including ids 0 and 1.
        limit: keep the first ``limit`` examples after shuffling.
        seed: shuffling seed.

    Returns:
        ``(sequences, labels)``: a list of int32 id arrays, labels int32 ``(n,)`` with 1 = positive.
    """
    from rnncourse.data import load_movie_reviews

    texts, labels = load_movie_reviews(kind)
    order = np.random.default_rng(seed).permutation(len(texts))[:limit]
    texts = [texts[i] for i in order]
    vocabulary = build_vocabulary(texts, max_words)
    return texts_to_ids(texts, vocabulary), np.asarray(labels)[order].astype("int32")


# --------------------------------------------------------------------------- checks, padding


def validate_sequences(sequences: Sequence, labels: Sequence | np.ndarray | None = None
                       ) -> list[np.ndarray]:
    """Check a list of id sequences (and labels) and return them as int32 arrays.

    Raises:
        ValueError: on an empty list, an empty sequence (it would become an all-padding row),
            an id 0 inside a sequence (0 is reserved for padding), or a label count that
            differs from the sequence count.
    """
    if len(sequences) == 0:
        raise ValueError("no sequences given; pass a non-empty list of id sequences")
    arrays = [np.asarray(s, dtype="int32").reshape(-1) for s in sequences]
    empty = [i for i, s in enumerate(arrays) if s.size == 0]
    if empty:
        raise ValueError(
            f"{len(empty)} empty sequence(s), first at index {empty[0]}: an empty sequence "
            "becomes an all-padding row whose output is just the initial state (and which "
            "cuDNN rejects). Drop it, or give it one OOV token (id 1).")
    zeros = [i for i, s in enumerate(arrays) if (s == PAD).any()]
    if zeros:
        raise ValueError(
            f"sequence {zeros[0]} contains id 0, which is reserved for padding; shift your ids "
            "so real tokens start at 1 (e.g. 1 for OOV, 2.. for words)")
    if labels is not None and len(labels) != len(arrays):
        raise ValueError(
            f"{len(arrays)} sequences but {len(labels)} labels; pass one label per sequence "
            "(check that you filtered both lists the same way)")
    return arrays


def lengths_of(sequences: Sequence) -> np.ndarray:
    """Lengths of a list of sequences, int ``(n,)``."""
    return np.array([len(s) for s in sequences], dtype="int64")


def pad(sequences: Sequence, maxlen: int | None = None, padding: str = "post",
        truncating: str = "post") -> np.ndarray:
    """``keras.utils.pad_sequences`` with input checks; returns int32 ``(n, maxlen)``.

    ``padding="post"`` puts zeros after the tokens (the layout cuDNN accepts);
    ``truncating="post"`` keeps the first ``maxlen`` tokens, ``"pre"`` keeps the last ones.
    """
    for name, value in (("padding", padding), ("truncating", truncating)):
        if value not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', not {value!r}")
    arrays = validate_sequences(sequences)
    return keras.utils.pad_sequences(arrays, maxlen=maxlen, dtype="int32", padding=padding,
                                     truncating=truncating, value=PAD)


def mask_of(x: np.ndarray) -> np.ndarray:
    """Boolean mask ``(batch, timesteps)``: True at real tokens (id != 0)."""
    return np.asarray(x) != PAD


def is_right_padded(mask: np.ndarray) -> bool:
    """Whether every row of a boolean ``(batch, timesteps)`` mask is ``True...True False...False``.

    This is the layout the cuDNN kernels accept (Keras checks the same condition before
    using cuDNN on a GPU); pre-padding and gaps inside a row break it.
    """
    return mask_layout(mask)[0]


def has_all_padding_row(mask: np.ndarray) -> bool:
    """Whether some row of a ``(batch, timesteps)`` mask has no real token (cuDNN rejects it)."""
    return mask_layout(mask)[1]


# --------------------------------------------------------------------------- statistics


def choose_boundaries(lengths: Sequence[int], batch_size: int, per_bucket: int | None = None
                      ) -> list[int]:
    """Bucket boundaries at quantiles of the length distribution.

    Each bucket holds about ``per_bucket`` examples (default ``1.5 * batch_size``, so which
    examples share a batch still changes between epochs; buckets of exactly ``batch_size``
    would give the same batches every epoch, only in another order). Boundaries follow the
    convention of ``tf.data.Dataset.bucket_by_sequence_length``: bucket ``i`` holds lengths
    in ``[boundaries[i-1], boundaries[i])``.

    Returns:
        Strictly increasing ints, all ``> min(lengths)`` and ``<= max(lengths)``.
    """
    lengths = np.sort(np.asarray(lengths))
    if lengths.size == 0:
        raise ValueError("choose_boundaries got no lengths")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    per_bucket = per_bucket or max(1, (3 * batch_size) // 2)
    cuts = lengths[per_bucket::per_bucket]
    return sorted({int(c) for c in cuts if lengths[0] < c <= lengths[-1]})


def _random_batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def padding_fraction(batches: Iterable) -> float:
    """Fraction of positions that are padding (id 0) over an iterable of ``(x, ...)`` batches."""
    padded = total = 0
    for batch in batches:
        x = np.asarray(batch[0] if isinstance(batch, tuple) else batch)
        padded += int((x == PAD).sum())
        total += x.size
    if total == 0:
        raise ValueError("padding_fraction got no batches")
    return padded / total


def padding_stats(lengths: Sequence[int], batch_size: int = 32,
                  boundaries: Sequence[int] | None = None, seed: int = 0) -> dict[str, float]:
    """Fraction of padded positions for four ways of batching the same sequences.

    * ``global_max``: every batch padded to the longest sequence of the corpus;
    * ``per_batch``: random batches, each padded to its own longest sequence;
    * ``bucketed``: the batches :func:`bucketed_dataset` produces (measured by running it);
    * ``sorted``: batches of consecutive sequences in length order (the lower bound for
      batches of this size, but the same batches every epoch).

    Args:
        lengths: sequence lengths, ``(n,)``.
        batch_size: examples per batch.
        boundaries: bucket boundaries (default :func:`choose_boundaries`).
        seed: seed of the random batches.
    """
    lengths = np.asarray(lengths, dtype="int64")
    if lengths.size == 0 or (lengths <= 0).any():
        raise ValueError("padding_stats needs positive lengths; drop empty sequences first")
    real = lengths.sum()
    batches = _random_batches(len(lengths), batch_size, seed)
    per_batch = sum(lengths[b].max() * len(b) for b in batches)
    ordered = np.sort(lengths)
    sorted_total = sum(ordered[i:i + batch_size].max() * len(ordered[i:i + batch_size])
                       for i in range(0, len(ordered), batch_size))
    dummy = [np.ones(n, dtype="int32") for n in lengths]
    bucketed = padding_fraction(bucketed_dataset(dummy, np.zeros(len(dummy)), batch_size,
                                                 boundaries=boundaries, seed=seed))
    return {
        "global_max": float(1 - real / (lengths.max() * len(lengths))),
        "per_batch": float(1 - real / per_batch),
        "bucketed": float(bucketed),
        "sorted": float(1 - real / sorted_total),
    }


# --------------------------------------------------------------------------- tf.data pipelines


def _ragged_dataset(sequences: Sequence, labels) -> tf.data.Dataset:
    arrays = validate_sequences(sequences, labels)
    flat = np.concatenate(arrays)
    ragged = tf.RaggedTensor.from_row_lengths(flat, lengths_of(arrays))
    labels = np.asarray(labels)
    return tf.data.Dataset.from_tensor_slices((ragged, labels)).map(
        lambda x, y: (tf.ensure_shape(tf.convert_to_tensor(x), [None]), y))


def padded_dataset(sequences: Sequence, labels, batch_size: int = 32, strategy: str = "per_batch",
                   shuffle: bool = True, seed: int = 0, maxlen: int | None = None,
                   boundaries: Sequence[int] | None = None) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of padded ``(x, y)`` batches, by batching strategy.

    Args:
        sequences: list of int id arrays (ids >= 1).
        labels: ``(n, ...)`` targets, one per sequence.
        batch_size: examples per batch.
        strategy: ``"global_max"`` (pad every batch to the longest sequence),
            ``"per_batch"`` (pad each random batch to its own longest sequence) or
            ``"bucketed"`` (see :func:`bucketed_dataset`).
        shuffle: reshuffle the examples every epoch.
        seed: shuffling seed.
        maxlen: truncate longer sequences to their first ``maxlen`` ids first.
        boundaries: bucket boundaries for ``"bucketed"``.

    Returns:
        Dataset of ``x: (batch, timesteps) int32`` (post-padded with 0) and ``y: (batch, ...)``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    arrays = validate_sequences(sequences, labels)
    if maxlen is not None:
        arrays = [s[:maxlen] for s in arrays]
    if strategy == "bucketed":
        return bucketed_dataset(arrays, labels, batch_size, boundaries, shuffle, seed)
    ds = _ragged_dataset(arrays, labels)
    if shuffle:
        ds = ds.shuffle(len(arrays), seed=seed, reshuffle_each_iteration=True)
    longest = int(lengths_of(arrays).max()) if strategy == "global_max" else None
    ds = ds.padded_batch(batch_size, padded_shapes=([longest], []))
    return ds.prefetch(tf.data.AUTOTUNE)


def _bucket_batch_count(lengths: np.ndarray, boundaries: Sequence[int], batch_size: int) -> int:
    """Batches ``bucket_by_sequence_length`` emits per epoch: sum of ceil(bucket size / batch)."""
    buckets = np.searchsorted(np.asarray(boundaries), lengths, side="right")
    counts = np.bincount(buckets, minlength=len(boundaries) + 1)
    return int(sum(-(-c // batch_size) for c in counts))


def bucketed_dataset(sequences: Sequence, labels, batch_size: int = 32,
                     boundaries: Sequence[int] | None = None, shuffle: bool = True,
                     seed: int = 0) -> tf.data.Dataset:
    """Batches of similar length, each padded to its own maximum (``bucket_by_sequence_length``).

    The examples are shuffled first (anew each epoch), then each goes to the bucket of its
    length, and a bucket emits a batch when it holds ``batch_size`` examples; what is left in
    the buckets at the end of the epoch comes out as smaller batches. So every example appears
    exactly once per epoch, batches come in a random order, and padding only fills the gap
    between lengths in one bucket.

    Args:
        sequences: list of int id arrays (ids >= 1).
        labels: ``(n, ...)`` targets.
        batch_size: examples per batch.
        boundaries: bucket boundaries (default :func:`choose_boundaries`).
        shuffle: reshuffle every epoch.
        seed: shuffling seed.

    Returns:
        Dataset of ``x: (batch, timesteps) int32`` post-padded with 0, ``y: (batch, ...)``.
    """
    arrays = validate_sequences(sequences, labels)
    if boundaries is None:
        boundaries = choose_boundaries(lengths_of(arrays), batch_size)
    boundaries = [int(b) for b in boundaries]
    if any(b <= a for a, b in zip(boundaries, boundaries[1:], strict=False)) or (
            boundaries and boundaries[0] < 1):
        raise ValueError(f"boundaries must be positive and strictly increasing, got {boundaries}")
    ds = _ragged_dataset(arrays, labels)
    if shuffle:
        ds = ds.shuffle(len(arrays), seed=seed, reshuffle_each_iteration=True)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], []),
        padding_values=(PAD, tf.constant(0, dtype=tf.as_dtype(np.asarray(labels).dtype))),
    )
    # The batch count is fixed by the bucket sizes; telling tf.data lets Keras know the
    # epoch length (otherwise fit warns that the input "ran out of data").
    count = _bucket_batch_count(lengths_of(arrays), boundaries, batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    return ds.prefetch(tf.data.AUTOTUNE)


def length_grouped_batches(sequences: Sequence, labels, batch_size: int = 32, seed: int = 0
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches in which every sequence has exactly the same length: no padding, no mask.

    Sequences are grouped by length, each group is shuffled and cut into batches of at most
    ``batch_size``, and the batch order is shuffled. Short groups give small batches, so the
    number of batches grows with the number of distinct lengths. (It equals bucketing with one
    bucket per length: ``bucketed_dataset(..., boundaries=sorted(set(lengths))[1:])``.)

    Returns:
        List of ``(x, y)`` with ``x: (batch, length) int32`` (no zeros) and ``y: (batch, ...)``.
    """
    arrays = validate_sequences(sequences, labels)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    lengths = lengths_of(arrays)
    batches = []
    for length in np.unique(lengths):
        members = rng.permutation(np.flatnonzero(lengths == length))
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            batches.append((np.stack([arrays[i] for i in chunk]), labels[chunk]))
    return [batches[i] for i in rng.permutation(len(batches))]


# --------------------------------------------------------------------------- Keras behaviour


def _recurrent(kind: str, units: int, return_sequences: bool) -> keras.layers.Layer:
    layers = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
    base = kind.removeprefix("bi_")
    if base not in layers:
        raise ValueError(f"kind must be lstm, gru, bi_lstm or bi_gru, not {kind!r}")
    # Random biases, as after training: with zero biases a zero input leaves a zero LSTM
    # state at zero, which would hide what zero padding does to a trained layer.
    layer = layers[base](units, return_sequences=return_sequences, return_state=True,
                         bias_initializer=keras.initializers.RandomNormal(stddev=0.5))
    return keras.layers.Bidirectional(layer) if kind.startswith("bi_") else layer


def mask_exactness(kind: str = "lstm", padding: str = "post", use_mask: bool = True,
                   features: str = "ids", sequences: Sequence | None = None, units: int = 8,
                   seed: int = 0) -> dict[str, float]:
    """Run a padded batch and each sequence alone; return the largest differences.

    Args:
        kind: ``"lstm"``, ``"gru"``, ``"bi_lstm"`` or ``"bi_gru"``.
        padding: ``"pre"`` or ``"post"``.
        use_mask: ``Embedding(mask_zero=True)`` / a ``Masking`` layer, or no mask.
        features: ``"ids"`` (``Embedding`` in front) or ``"floats"`` (random float features
            with zero vectors as padding, and a ``Masking`` layer).
        sequences: id sequences to test (default: five of lengths 2..9).
        units: recurrent units.
        seed: weight and feature seed.

    Returns:
        ``{"outputs": ..., "states": ...}``: max abs difference between the padded batch and
        the sequences run alone, over the real timesteps of ``return_sequences`` outputs and
        over the final states (for ``bi_*`` the forward and backward states).
    """
    keras.utils.set_random_seed(seed)
    if sequences is None:
        sequences = [np.arange(2, 2 + n) % 50 + 2 for n in (5, 2, 9, 7, 3)]
    arrays = validate_sequences(sequences)
    x = pad(arrays, padding=padding)
    mask = mask_of(x)
    if features == "ids":
        front = keras.layers.Embedding(60, 4, mask_zero=use_mask)
        inputs, alone = x, [a[None, :] for a in arrays]
    elif features == "floats":
        table = np.random.default_rng(seed).normal(size=(60, 4)).astype("float32")
        table[PAD] = 0.0
        front = keras.layers.Masking(0.0) if use_mask else keras.layers.Identity()
        inputs, alone = table[x], [table[a][None] for a in arrays]
    else:
        raise ValueError(f"features must be 'ids' or 'floats', not {features!r}")
    rnn = _recurrent(kind, units, return_sequences=True)
    batch = [np.asarray(t) for t in rnn(front(inputs))]
    out_diff = state_diff = 0.0
    for i, single in enumerate(alone):
        ref = [np.asarray(t) for t in rnn(front(single))]
        real = batch[0][i][mask[i]]
        out_diff = max(out_diff, float(np.abs(real - ref[0][0]).max()))
        for b, r in zip(batch[1:], ref[1:], strict=True):
            state_diff = max(state_diff, float(np.abs(b[i] - r[0]).max()))
    return {"outputs": out_diff, "states": state_diff}


def mask_propagation() -> dict[str, dict[str, bool]]:
    """Which layers pass an ``Embedding(mask_zero=True)`` mask on, checked in this Keras.

    Returns:
        ``{layer description: {"keeps_mask": bool, "warns": bool}}``; ``warns`` tells whether
        Keras warned that the layer destroys the mask (silent drops are the dangerous ones).
    """

    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    class MaskedDoubler(Doubler):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

    candidates: dict[str, Callable] = {
        "Dense": lambda t: keras.layers.Dense(4)(t),
        "Dropout": lambda t: keras.layers.Dropout(0.1)(t),
        "Activation": lambda t: keras.layers.Activation("relu")(t),
        "LayerNormalization": lambda t: keras.layers.LayerNormalization()(t),
        "TimeDistributed(Dense)": lambda t: keras.layers.TimeDistributed(keras.layers.Dense(4))(t),
        "LSTM(return_sequences=True)": lambda t: keras.layers.LSTM(4, return_sequences=True)(t),
        "Bidirectional(LSTM, return_sequences=True)": lambda t: keras.layers.Bidirectional(
            keras.layers.LSTM(4, return_sequences=True))(t),
        "Add()([x, x])": lambda t: keras.layers.Add()([t, t]),
        "Concatenate()([x, x])": lambda t: keras.layers.Concatenate()([t, t]),
        "LSTM(return_sequences=False)": lambda t: keras.layers.LSTM(4)(t),
        "GlobalAveragePooling1D": lambda t: keras.layers.GlobalAveragePooling1D()(t),
        "Conv1D": lambda t: keras.layers.Conv1D(4, 3, padding="same")(t),
        "Lambda(lambda x: 2 * x)": lambda t: keras.layers.Lambda(lambda v: 2.0 * v)(t),
        "keras.ops.multiply(x, 2)": lambda t: keras.ops.multiply(t, 2.0),
        "x * 2 (Python operator)": lambda t: t * 2.0,
        "custom Layer": lambda t: Doubler()(t),
        "custom Layer, supports_masking=True": lambda t: MaskedDoubler()(t),
    }
    table = {}
    for name, apply in candidates.items():
        inputs = keras.Input(shape=(None,), dtype="int32")
        embedded = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = apply(embedded)
        table[name] = {
            "keeps_mask": getattr(out, "_keras_mask", None) is not None,
            "warns": any("mask" in str(w.message) for w in caught),
        }
    return table


def _tagger(vocab_size: int, units: int, mask_zero: bool, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, 8, mask_zero=mask_zero)(inputs)
    x = keras.layers.LSTM(units, return_sequences=True)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    return model


def loss_normalisations(x: np.ndarray, y: np.ndarray, units: int = 8, seed: int = 0
                        ) -> dict[str, float]:
    """Per-token loss of a padded batch: mask vs 2-D ``sample_weight``, against hand sums.

    A small tagger (Embedding -> LSTM(return_sequences) -> Dense sigmoid) scores every
    timestep; ``x`` is post- or pre-padded ids ``(batch, timesteps)``, ``y`` the 0/1 targets
    ``(batch, timesteps)``. The whole batch is evaluated at once, so each normalisation is
    over the batch.

    Returns:
        ``mask_loss`` (model with ``mask_zero=True``), ``weight_loss`` (no mask,
        ``sample_weight`` = 1 at real tokens), ``rescaled_weight_loss`` (the same weights
        multiplied by ``positions / real tokens``), ``real_mean`` and ``all_mean`` (the per-token
        losses summed over real tokens divided by the real-token count, or by all positions),
        ``real_fraction``, ``mask_accuracy`` (Keras accuracy with the mask) and
        ``real_accuracy`` / ``all_accuracy`` (by hand, over real tokens / all positions).
    """
    x = np.asarray(x)
    if x.shape != np.asarray(y).shape[:2]:
        raise ValueError(f"x has shape {x.shape} but y has {np.asarray(y).shape}; "
                         "pass one target per timestep, (batch, timesteps)")
    y = np.asarray(y, dtype="float32").reshape(x.shape + (1,))
    vocab = int(x.max()) + 1
    masked = _tagger(vocab, units, True, seed)
    unmasked = _tagger(vocab, units, False, seed)
    unmasked.set_weights(masked.get_weights())
    weights = mask_of(x).astype("float32")
    n = len(x)
    mask_loss, mask_accuracy = masked.evaluate(x, y, batch_size=n, verbose=0)
    weight_loss = unmasked.evaluate(x, y, sample_weight=weights, batch_size=n, verbose=0)[0]
    rescaled = weights * weights.size / weights.sum()
    rescaled_loss = unmasked.evaluate(x, y, sample_weight=rescaled, batch_size=n, verbose=0)[0]
    p = np.clip(masked.predict(x, batch_size=n, verbose=0)[..., 0], 1e-7, 1 - 1e-7)
    token_loss = -(y[..., 0] * np.log(p) + (1 - y[..., 0]) * np.log(1 - p))
    hits = ((p > 0.5) == (y[..., 0] > 0.5)).astype("float64")
    return {
        "mask_loss": float(mask_loss),
        "weight_loss": float(weight_loss),
        "rescaled_weight_loss": float(rescaled_loss),
        "real_mean": float((token_loss * weights).sum() / weights.sum()),
        "all_mean": float((token_loss * weights).sum() / weights.size),
        "real_fraction": float(weights.mean()),
        "mask_accuracy": float(mask_accuracy),
        "real_accuracy": float((hits * weights).sum() / weights.sum()),
        "all_accuracy": float(hits.mean()),
    }


def grouped_vs_padded_gradients(sequences: Sequence, labels, batch_size: int = 32,
                                units: int = 8, seed: int = 0) -> dict[str, float]:
    """Loss and gradients over a data set: length-grouped batches without a mask vs padding.

    Two copies of one classifier (Embedding -> LSTM -> Dense sigmoid) with equal weights:
    one with ``mask_zero=True`` sees all sequences padded in one batch, the other has no mask
    at all and sees :func:`length_grouped_batches`. Each batch's mean loss and gradients are
    weighted by ``batch / n`` and summed, which is the mean over all sequences.

    Returns:
        ``loss_padded``, ``loss_grouped``, ``max_grad_diff`` (largest absolute difference over
        all weights), ``max_grad`` (largest absolute gradient, for scale), ``batches``.
    """
    from rnncourse.models import sequence_classifier

    arrays = validate_sequences(sequences, labels)
    labels = np.asarray(labels, dtype="float32").reshape(-1, 1)
    vocab = int(max(a.max() for a in arrays)) + 1
    keras.utils.set_random_seed(seed)
    masked = sequence_classifier(vocab, 8, units, mask_zero=True)
    plain = sequence_classifier(vocab, 8, units, mask_zero=False)
    plain.set_weights(masked.get_weights())
    loss_fn = keras.losses.BinaryCrossentropy()

    def loss_and_grads(model, x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), [tf.convert_to_tensor(g).numpy() for g in grads]

    loss_padded, grads_padded = loss_and_grads(masked, pad(arrays), labels)
    n = len(arrays)
    loss_grouped, grads_grouped = 0.0, [np.zeros_like(g) for g in grads_padded]
    batches = length_grouped_batches(arrays, labels, batch_size, seed)
    for x, y in batches:
        loss, grads = loss_and_grads(plain, x, y)
        loss_grouped += loss * len(x) / n
        grads_grouped = [a + g * len(x) / n for a, g in zip(grads_grouped, grads, strict=True)]
    return {
        "loss_padded": loss_padded,
        "loss_grouped": loss_grouped,
        "max_grad_diff": float(max(np.abs(a - b).max()
                                   for a, b in zip(grads_padded, grads_grouped, strict=True))),
        "max_grad": float(max(np.abs(g).max() for g in grads_padded)),
        "batches": len(batches),
    }


def classifier(vocab_size: int, timesteps: int | None, units: int = 16, embedding_dim: int = 16,
               seed: int = 0) -> keras.Model:
    """Ids ``(batch, timesteps)`` -> Embedding(mask_zero) -> LSTM -> sigmoid ``(batch, 1)``.

    ``timesteps=None`` accepts any length; an int fixes the input length (the model then
    rejects other lengths). Same layer names either way, so weights move between the two.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(timesteps,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(inputs)
    x = keras.layers.LSTM(units, name="lstm")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(inputs, outputs, name=f"classifier_{timesteps or 'any'}_steps")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fixed_to_free_length(fixed: keras.Model, vocab_size: int, units: int = 16,
                         embedding_dim: int = 16) -> keras.Model:
    """Copy a fixed-timesteps :func:`classifier` into a new ``None``-timesteps one.

    Recurrent weights do not depend on the number of timesteps, so ``set_weights`` works
    unchanged; the new model predicts on any length.
    """
    free = classifier(vocab_size, None, units, embedding_dim)
    free.set_weights(fixed.get_weights())
    return free


def padded_step_outputs(padding: str = "post", kind: str = "lstm", units: int = 4,
                        seed: int = 0) -> np.ndarray:
    """``return_sequences`` outputs of a masked layer for a short row in a padded batch.

    The batch is ``[[3, 4, 5, 6, 7], [8, 9]]`` padded on the given side; the result is the
    ``(5, units)`` output of the second row. With the mask, padded steps repeat the last
    real output (post-padding) or stay at the zero initial state (pre-padding).
    """
    keras.utils.set_random_seed(seed)
    embedding = keras.layers.Embedding(10, 4, mask_zero=True)
    layer = _recurrent(kind, units, return_sequences=True)
    x = pad([[3, 4, 5, 6, 7], [8, 9]], padding=padding)
    return np.asarray(layer(embedding(x))[0])[1]


def all_padding_row_output(kind: str = "lstm", units: int = 4, seed: int = 0) -> np.ndarray:
    """What a masked layer returns for a row that is all padding, next to a real row.

    Returns:
        ``(units,)`` (``(2 * units,)`` for ``bi_*``): the final output of the all-padding row
        of the batch ``[[3, 4, 5], [0, 0, 0]]`` after ``Embedding(mask_zero=True)``. On CPU
        Keras returns the initial state (zeros) there; the cuDNN path refuses such a batch.
    """
    keras.utils.set_random_seed(seed)
    embedding = keras.layers.Embedding(10, 4, mask_zero=True)
    layer = _recurrent(kind, units, return_sequences=False)
    return np.asarray(layer(embedding(np.array([[3, 4, 5], [0, 0, 0]])))[0])[1]


def call_error(model: keras.Model, x: np.ndarray) -> str:
    """The ``ValueError`` text when calling ``model(x)`` fails (``""`` when it works).

    Calling a model whose ``keras.Input`` fixes the timesteps on another length fails with
    "incompatible with the layer". (In Keras 3.15 ``model.predict`` skips that check once
    its predict function has been traced, so do not rely on ``predict`` to catch it.)
    """
    try:
        model(x)
    except ValueError as error:
        return str(error).strip().splitlines()[0]
    return ""


def ragged_lstm_error() -> str:
    """The error this TensorFlow/Keras gives when a ``tf.RaggedTensor`` goes into an LSTM."""
    ragged = tf.RaggedTensor.from_row_lengths(tf.ones((5, 3)), [3, 2])
    try:
        keras.layers.LSTM(2)(ragged)
    except (ValueError, TypeError) as error:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
        lines = [line.strip() for line in text.splitlines() if line.strip()
                 and not line.startswith("Exception encountered")]
        return f"{type(error).__name__}: {lines[0] if lines else text.strip()}"
    return ""


def ragged_to_padded(ragged: tf.RaggedTensor) -> tuple[np.ndarray, np.ndarray]:
    """A ragged ``(batch, None, features)`` tensor -> post-padded dense tensor and its mask."""
    dense = ragged.to_tensor(default_value=0.0)
    mask = tf.sequence_mask(ragged.row_lengths(), maxlen=tf.shape(dense)[1])
    return dense.numpy(), mask.numpy()


# --------------------------------------------------------------------------- timing


def epoch_times(sequences: Sequence, labels, batch_size: int = 32, units: int = 16,
                embedding_dim: int = 16, strategies: Sequence[str] = STRATEGIES,
                maxlen: int | None = None, seed: int = 0, repeats: int = 1
                ) -> dict[str, dict[str, float]]:
    """Time one training epoch of the same classifier under each batching strategy.

    One :func:`classifier` (``None`` timesteps) trains on every strategy's dataset: one batch
    each first (so tracing is not timed), then ``repeats`` rounds of one full epoch per
    strategy, interleaved so that a burst of load on a shared machine hits all strategies
    alike; the fastest epoch of each strategy counts. Every strategy sees the same examples
    with the same ``maxlen`` cap.

    Returns:
        ``{strategy: {"seconds": epoch time, "padded": padded fraction of the positions,
        "timesteps": sum over batches of the padded length, "batches": batch count}}``.
    """
    arrays = validate_sequences(sequences, labels)
    labels = np.asarray(labels, dtype="float32")
    vocab = int(max(a.max() for a in arrays)) + 1
    model = classifier(vocab, None, units, embedding_dim, seed)
    datasets = {strategy: padded_dataset(arrays, labels, batch_size, strategy, seed=seed,
                                         maxlen=maxlen) for strategy in strategies}
    results = {}
    for strategy, ds in datasets.items():
        widths = [int(x.shape[1]) for x, _ in ds]
        results[strategy] = {"seconds": float("inf"), "padded": padding_fraction(ds),
                             "timesteps": float(sum(widths)), "batches": float(len(widths))}
        model.fit(ds.take(1), epochs=1, verbose=0, shuffle=False)
    for _ in range(repeats):
        for strategy, ds in datasets.items():
            start = time.perf_counter()
            model.fit(ds, epochs=1, verbose=0, shuffle=False)
            results[strategy]["seconds"] = min(results[strategy]["seconds"],
                                               time.perf_counter() - start)
    return results

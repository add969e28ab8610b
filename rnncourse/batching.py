"""Variable-length batching: padding, masking, bucketing and batches without masks.

A recurrent layer takes ``(batch, timesteps, features)`` tensors, so every sequence in one
batch must have the same number of timesteps. Between batches the number may change: a model
built with ``keras.Input(shape=(None,))`` accepts any length. This module holds the tools
for that, for your own id sequences (build them with :class:`rnncourse.text.Vocabulary`;
id 0 is padding, id 1 out-of-vocabulary):

* input checks (:func:`validate_sequences`: ids, labels, an optional ``vocab_size``;
  padding itself is :func:`rnncourse.text.pad`), masks (:func:`mask_of`) and the two
  mask conditions of the cuDNN kernels (:func:`is_right_padded`,
  :func:`has_all_padding_row`);
* padding statistics (:func:`padding_stats`, :func:`count_padding`) and bucket boundaries
  from the length distribution (:func:`choose_boundaries`);
* ``tf.data`` pipelines: pad-to-global-max, pad-per-batch and bucketed
  (:func:`padded_dataset`; :func:`bucketed_dataset`, a wrapper of
  ``Dataset.bucket_by_sequence_length``), and batches of exactly equal length that need no
  mask (:func:`length_grouped_batches`); labels may be one per sequence (scalars, ``(n, 1)``,
  one-hot ``(n, classes)``) or one per token (a list of arrays, padded with 0 like the ids);
* :func:`ragged_to_padded` for ``tf.RaggedTensor`` inputs, which Keras' LSTM does not take.

The epoch timing of the strategies is in ``benchmarks/batching_speed.py``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks
from rnncourse.config import quiet_tensorflow
from rnncourse.devices import mask_layout
from rnncourse.text import PAD

quiet_tensorflow()

import tensorflow as tf  # noqa: E402

__all__ = ["STRATEGIES", "validate_sequences", "validate_labels", "lengths_of",
           "mask_of", "is_right_padded", "has_all_padding_row", "choose_boundaries",
           "PaddingCount", "count_padding", "padding_fraction", "padding_stats",
           "padded_dataset", "bucketed_dataset", "length_grouped_batches", "ragged_to_padded"]

STRATEGIES = ("global_max", "per_batch", "bucketed")
"""Batching strategies of :func:`padded_dataset`: pad every batch to the longest sequence of
the data set, pad each random batch to its own longest, or bucket by length."""

_INT32_MAX = int(np.iinfo(np.int32).max)


# --------------------------------------------------------------------------- checks


def _padding_diagnosis(index: int, ids: np.ndarray) -> str:
    """What a padding id 0 inside sequence ``index`` means, and the fix."""
    real = np.flatnonzero(ids != PAD)
    trailing = real.size and (ids[real[-1] + 1:] == PAD).all() and ids[real[-1] + 1:].size
    leading = real.size and real[0] > 0 and (ids[:real[0]] == PAD).all()
    inside = real.size and (ids[real[0]:real[-1] + 1] == PAD).any()
    if (trailing or leading) and not inside:
        side = "ends" if trailing else "starts"
        return (f"sequence {index} {side} with the id {PAD}, which is reserved for padding: it "
                "looks already padded; pass the unpadded sequences (these functions pad each "
                "batch themselves). If your ids start at 0, shift them so real tokens start "
                "at 1")
    if not real.size:
        return (f"sequence {index} is all padding ({PAD}); drop it, or give it one OOV token "
                "(id 1)")
    return (f"sequence {index} holds the id {PAD} between real tokens, but {PAD} is reserved "
            "for padding; shift your ids so real tokens start at 1 (1 for OOV, 2.. for words)")


@_checks.arguments(vocab_size=_checks.optional(_checks.at_least(2)))
def validate_sequences(sequences: Sequence, labels: Sequence | np.ndarray | None = None, *,
                       vocab_size: int | None = None) -> list[np.ndarray]:
    """Check a list of id sequences (and labels) and return them as int32 arrays.

    Normalised by the library's one argument normaliser (lists, ragged lists, arrays, tensors,
    ``tf.RaggedTensor``, pandas columns); on top of it this refuses what would otherwise be
    silent in a padded batch: the padding id 0 inside a sequence (already padded input, or
    ids that start at 0), an id beyond int32 (the batches are int32) and, given
    ``vocab_size``, an id beyond the embedding (which fails only deep inside ``fit``).

    Args:
        sequences: ``n`` id sequences, each ``(timesteps_i,)`` integers ``>= 1``
            (0 is reserved for padding).
        labels: optional; only their number is checked here (see :func:`validate_labels`).
        vocab_size: optional; every id must then be ``< vocab_size``.

    Returns:
        ``n`` int32 arrays of shape ``(timesteps_i,)``.

    Raises:
        ValueError: no sequences, an empty sequence, an id 0 inside a sequence, a negative
            id, an id beyond int32 or ``vocab_size``, a sequence that is not 1-D, or a label
            count that differs from the sequence count (``argument`` names which).
        TypeError: non-integer ids (floats, booleans, text), or ``sequences`` that is not a
            batch of sequences (a number, a flat list of ids).
    """
    labels = list(labels) if isinstance(labels, Iterator) else labels
    # the ids index an Embedding of vocab_size rows, in int32 batches
    limit = min(vocab_size or _INT32_MAX + 1, _INT32_MAX + 1)
    sequences = _checks.sequences(sequences, "sequences", below=limit)
    for i, ids in enumerate(sequences):
        if (ids == PAD).any():
            _checks.fail("sequences", _padding_diagnosis(i, ids))
    if isinstance(labels, (str, bytes, numbers.Number)) or getattr(labels, "ndim", 1) == 0:
        _checks.fail("labels", "must hold one label per sequence", TypeError)
    if labels is not None and len(labels) != len(sequences):
        _checks.fail("labels", f"must hold {len(sequences)} labels, one per sequence")
    return [ids.astype("int32") for ids in sequences]


def _is_per_token(arrays: list[np.ndarray], labels) -> bool:
    if isinstance(labels, np.ndarray) and labels.dtype != object:
        return False
    try:
        return all(np.ndim(label) >= 1 and len(label) == len(seq)
                   for seq, label in zip(arrays, labels, strict=True))
    except TypeError:
        return False


def validate_labels(arrays: list[np.ndarray], labels, per_token: bool | None = None
                    ) -> tuple[bool, list[np.ndarray] | np.ndarray]:
    """Check labels against validated sequences; say whether they are per token.

    Accepted layouts (``n`` sequences):

    * one label per sequence: ``(n,)`` scalars, ``(n, 1)``, one-hot ``(n, classes)``,
      any numeric ``(n, ...)`` array;
    * one label per token: a list of ``n`` arrays, the ``i``-th ``(timesteps_i,)`` or
      ``(timesteps_i, classes)``; batches pad them with 0, like the ids.

    Args:
        arrays: the output of :func:`validate_sequences`.
        labels: the labels.
        per_token: ``None`` infers the layout (a list whose items have the lengths of the
            sequences is per token); ``True``/``False`` forces it.

    Returns:
        ``(per_token, labels)``: a numeric ndarray ``(n, ...)``, or a list of ``n`` arrays.

    Raises:
        ValueError: missing labels, a count or length that differs from the sequences,
            non-numeric labels, or NaN/infinite labels (a NaN label turns the loss into NaN).
        TypeError: per-token labels that are not numbers (tag names).
    """
    _checks.fail_if(labels is None or len(labels) != len(arrays), "labels", "must match sequences")
    if per_token is None:
        per_token = _is_per_token(arrays, labels)
    if per_token:
        out = []
        for i, (seq, label) in enumerate(zip(arrays, labels, strict=True)):
            label = _checks.array(label, "labels", finite=True)  # numbers, no NaN
            if label.ndim == 0 or len(label) != len(seq):
                _checks.fail("labels", f"sequence {i}: {len(seq)} tokens, {label.size} labels")
            out.append(label)
        if len({o.shape[1:] for o in out}) > 1 or len({o.dtype for o in out}) > 1:
            _checks.fail("labels", "per token differ in trailing shape or dtype by sequence")
        return True, out
    try:
        array = np.asarray(labels)
    except ValueError:
        array = np.asarray(labels, dtype=object)
    if array.dtype == object or array.dtype.kind not in "biuf":
        lengths = {np.size(label) for label in labels}
        hint = (" They look like per-token labels of other lengths than the sequences: "
                "give sequence i exactly len(sequences[i]) labels"
                if len(lengths) > 1 else "")
        _checks.fail("labels", f"must be numbers, one per sequence or token.{hint}")
    return False, _checks.array(array, "labels", finite=True)


def lengths_of(sequences: Sequence) -> np.ndarray:
    """Lengths of a list of sequences, int64 ``(n,)``."""
    return np.array([len(s) for s in sequences], dtype="int64")


def mask_of(x: np.ndarray) -> np.ndarray:
    """Boolean mask ``(batch, timesteps)``: True at real tokens (id != 0)."""
    return _checks.array(x, "x") != PAD


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
def _lengths(value, argument: str) -> np.ndarray:
    """Sequence lengths as an int64 ``(n,)`` array: at least one, all positive."""
    lengths = _checks.ids(value, argument).reshape(-1)
    _checks.fail_if(not lengths.size or not lengths.all(), argument, "must be >= 1, not empty")
    return lengths



@_checks.arguments(lengths=_lengths, batch_size=_checks.count,
                   per_bucket=_checks.optional_count)
def choose_boundaries(lengths: Sequence[int], batch_size: int, per_bucket: int | None = None
                      ) -> list[int]:
    """Bucket boundaries at quantiles of the length distribution.

    Each bucket holds about ``per_bucket`` examples (default ``1.5 * batch_size``, so which
    examples share a batch still changes between epochs; buckets of exactly ``batch_size``
    would give the same batches every epoch, only in another order). Boundaries follow the
    convention of ``tf.data.Dataset.bucket_by_sequence_length``: bucket ``i`` holds lengths
    in ``[boundaries[i-1], boundaries[i])``.

    Args:
        lengths: ``(n,)`` positive sequence lengths.
        batch_size: examples per batch.
        per_bucket: examples per bucket (default ``1.5 * batch_size``).

    Returns:
        Strictly increasing ints, all ``> min(lengths)`` and ``<= max(lengths)``.
    """
    lengths = np.sort(lengths)
    per_bucket = per_bucket or max(1, (3 * batch_size) // 2)
    cuts = lengths[per_bucket::per_bucket]
    return sorted({int(c) for c in cuts if lengths[0] < c <= lengths[-1]})


def _random_batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


@dataclass(frozen=True)
class PaddingCount:
    """What one pass over a batched data set computes, counted from its ``x`` batches.

    Attributes:
        batches: number of batches.
        timesteps: sum over batches of the padded width ``T_b``: the steps an RNN runs one
            after another in an epoch.
        positions: sum over batches of ``|b| * T_b``: the cells the RNN computes.
        tokens: real (non-zero) ids among them.
    """

    batches: int
    timesteps: int
    positions: int
    tokens: int

    @property
    def padded(self) -> float:
        """Fraction of the positions that are padding."""
        return 1.0 - self.tokens / self.positions


def count_padding(batches: Iterable) -> PaddingCount:
    """Count batches, padded timesteps and positions over ``(x, ...)`` or ``x`` batches.

    ``x`` is ``(batch, timesteps)`` ids with 0 as padding (a ``tf.data`` dataset from
    :func:`padded_dataset` works). Load-independent: the cost of an epoch in RNN steps.
    """
    count = timesteps = positions = tokens = 0
    for batch in batches:
        x = _checks.array(batch[0] if isinstance(batch, (tuple, list)) else batch, "batches")
        _checks.fail_if(x.ndim != 2, "batches", f"batch {count}: {x.shape} is not 2-D")
        count += 1
        timesteps += int(x.shape[1])
        positions += int(x.size)
        tokens += int((x != PAD).sum())
    _checks.fail_if(count == 0 or positions == 0, "batches", "holds no batch of ids")
    return PaddingCount(count, timesteps, positions, tokens)


def padding_fraction(batches: Iterable) -> float:
    """Fraction of positions that are padding (id 0) over an iterable of ``(x, ...)`` batches."""
    return count_padding(batches).padded


@_checks.arguments(lengths=_lengths, batch_size=_checks.count)
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


def _ragged_dataset(arrays: list[np.ndarray], labels, per_token: bool
                    ) -> tuple[tf.data.Dataset, list, tuple]:
    """``(ids, label)`` examples of variable length, and the label's padded shape and value."""
    ids = tf.RaggedTensor.from_row_lengths(np.concatenate(arrays), lengths_of(arrays))
    if per_token:
        dtype = labels[0].dtype
        tags = tf.RaggedTensor.from_row_lengths(np.concatenate(labels).astype(dtype),
                                                lengths_of(labels))
        label_shape = [None, *labels[0].shape[1:]]

        def dense(x, y):
            return (tf.ensure_shape(tf.convert_to_tensor(x), [None]),
                    tf.ensure_shape(y.to_tensor() if isinstance(y, tf.RaggedTensor)
                                    else tf.convert_to_tensor(y), label_shape))

        ds = tf.data.Dataset.from_tensor_slices((ids, tags)).map(dense)
    else:
        dtype = labels.dtype
        label_shape = list(labels.shape[1:])
        ds = tf.data.Dataset.from_tensor_slices((ids, labels)).map(
            lambda x, y: (tf.ensure_shape(tf.convert_to_tensor(x), [None]), y))
    return ds, label_shape, tf.zeros([], tf.as_dtype(dtype))  # False for bool labels


def _prepare(sequences, labels, batch_size, per_token, vocab_size):
    labels = list(labels) if isinstance(labels, Iterator) else labels  # read once, used twice
    batch_size = _checks.count(batch_size, "batch_size")
    arrays = validate_sequences(sequences, labels, vocab_size=vocab_size)
    per_token, labels = validate_labels(arrays, labels, per_token)
    return batch_size, arrays, per_token, labels


@_checks.arguments(strategy=STRATEGIES, maxlen=_checks.optional_count)
def padded_dataset(sequences: Sequence, labels, batch_size: int = 32, strategy: str = "per_batch",
                   shuffle: bool = True, seed: int = 0, maxlen: int | None = None,
                   boundaries: Sequence[int] | None = None, *, per_token: bool | None = None,
                   vocab_size: int | None = None) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of padded ``(x, y)`` batches, by batching strategy.

    Args:
        sequences: ``n`` int id arrays ``(timesteps_i,)``, ids >= 1.
        labels: one per sequence (``(n,)``, ``(n, 1)``, one-hot ``(n, classes)``) or one per
            token (a list of ``(timesteps_i, ...)`` arrays); see :func:`validate_labels`.
        batch_size: examples per batch.
        strategy: ``"global_max"`` (pad every batch to the longest sequence),
            ``"per_batch"`` (pad each random batch to its own longest sequence) or
            ``"bucketed"`` (see :func:`bucketed_dataset`).
        shuffle: reshuffle the examples every epoch.
        seed: shuffling seed.
        maxlen: truncate longer sequences (and per-token labels) to their first ``maxlen``.
        boundaries: bucket boundaries for ``"bucketed"``.
        per_token: force the label layout (``None``: inferred).
        vocab_size: if given, refuse ids ``>= vocab_size``.

    Returns:
        Dataset of ``x: (batch, timesteps) int32`` (post-padded with 0) and ``y: (batch, ...)``
        (per-token labels: ``(batch, timesteps, ...)``, padded with 0).
    """
    batch_size, arrays, per_token, labels = _prepare(sequences, labels, batch_size, per_token,
                                                     vocab_size)
    if maxlen is not None:
        arrays = [s[:maxlen] for s in arrays]
        if per_token:
            labels = [label[:maxlen] for label in labels]
    if strategy == "bucketed":
        return bucketed_dataset(arrays, labels, batch_size, boundaries, shuffle, seed,
                                per_token=per_token)
    ds, label_shape, _ = _ragged_dataset(arrays, labels, per_token)
    if shuffle:
        ds = ds.shuffle(len(arrays), seed=seed, reshuffle_each_iteration=True)
    longest = int(lengths_of(arrays).max()) if strategy == "global_max" else None
    if per_token:
        label_shape = [longest, *label_shape[1:]]
    ds = ds.padded_batch(batch_size, padded_shapes=([longest], label_shape))
    return ds.prefetch(tf.data.AUTOTUNE)


def _bucket_batch_count(lengths: np.ndarray, boundaries: Sequence[int], batch_size: int) -> int:
    """Batches ``bucket_by_sequence_length`` emits per epoch: sum of ceil(bucket size / batch)."""
    buckets = np.searchsorted(np.asarray(boundaries), lengths, side="right")
    counts = np.bincount(buckets, minlength=len(boundaries) + 1)
    return int(sum(-(-c // batch_size) for c in counts))


@_checks.arguments()  # shuffle: a bool, seed: an int >= 0
def bucketed_dataset(sequences: Sequence, labels, batch_size: int = 32,
                     boundaries: Sequence[int] | None = None, shuffle: bool = True,
                     seed: int = 0, *, per_token: bool | None = None,
                     vocab_size: int | None = None) -> tf.data.Dataset:
    """Batches of similar length, each padded to its own maximum (``bucket_by_sequence_length``).

    The examples are shuffled first (anew each epoch), then each goes to the bucket of its
    length, and a bucket emits a batch when it holds ``batch_size`` examples; what is left in
    the buckets at the end of the epoch comes out as smaller batches. So every example appears
    exactly once per epoch, batches come in a random order, and padding only fills the gap
    between lengths in one bucket.

    Args:
        sequences: ``n`` int id arrays ``(timesteps_i,)``, ids >= 1.
        labels: one per sequence (``(n,)``, ``(n, 1)``, one-hot ``(n, classes)``) or one per
            token (a list of ``(timesteps_i, ...)`` arrays, e.g. a tagger's tag ids);
            see :func:`validate_labels`.
        batch_size: examples per batch.
        boundaries: bucket boundaries, strictly increasing positive ints (default
            :func:`choose_boundaries`).
        shuffle: reshuffle every epoch.
        seed: shuffling seed.
        per_token: force the label layout (``None``: inferred).
        vocab_size: if given, refuse ids ``>= vocab_size``.

    Returns:
        Dataset of ``x: (batch, timesteps) int32`` post-padded with 0 and ``y: (batch, ...)``;
        per-token labels come as ``(batch, timesteps, ...)``, padded with 0 like the ids.
    """
    batch_size, arrays, per_token, labels = _prepare(sequences, labels, batch_size, per_token,
                                                     vocab_size)
    if boundaries is None:
        boundaries = choose_boundaries(lengths_of(arrays), batch_size)
    edges = _checks.array(boundaries, "boundaries", ndim=1, kinds="iuf")
    if (edges % 1 != 0).any() or (np.diff(edges) <= 0).any() or (edges[:1] < 1).any():
        _checks.fail("boundaries", f"must be increasing whole lengths >= 1, got {boundaries}")
    boundaries = edges.astype(int).tolist()
    ds, label_shape, label_pad = _ragged_dataset(arrays, labels, per_token)
    if shuffle:
        ds = ds.shuffle(len(arrays), seed=seed, reshuffle_each_iteration=True)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], label_shape),
        padding_values=(PAD, label_pad),
    )
    # The batch count is fixed by the bucket sizes; telling tf.data lets Keras know the
    # epoch length (otherwise fit warns that the input "ran out of data").
    count = _bucket_batch_count(lengths_of(arrays), boundaries, batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    return ds.prefetch(tf.data.AUTOTUNE)


@_checks.arguments()  # seed: an int >= 0
def length_grouped_batches(sequences: Sequence, labels, batch_size: int = 32, seed: int = 0, *,
                           per_token: bool | None = None
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches in which every sequence has exactly the same length: no padding, no mask.

    Sequences are grouped by length, each group is shuffled and cut into batches of at most
    ``batch_size``, and the batch order is shuffled. Short groups give small batches, so the
    number of batches grows with the number of distinct lengths. (It equals bucketing with one
    bucket per length: ``bucketed_dataset(..., boundaries=sorted(set(lengths))[1:])``.)

    Returns:
        List of ``(x, y)`` with ``x: (batch, length) int32`` (no zeros) and ``y: (batch, ...)``
        (per-token labels: ``(batch, length, ...)``).
    """
    batch_size, arrays, per_token, labels = _prepare(sequences, labels, batch_size, per_token,
                                                     None)
    rng = np.random.default_rng(seed)
    lengths = lengths_of(arrays)
    batches = []
    for length in np.unique(lengths):
        members = rng.permutation(np.flatnonzero(lengths == length))
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            y = np.stack([labels[i] for i in chunk]) if per_token else labels[chunk]
            batches.append((np.stack([arrays[i] for i in chunk]), y))
    return [batches[i] for i in rng.permutation(len(batches))]


@_checks.arguments(ragged=tf.RaggedTensor)
def ragged_to_padded(ragged: tf.RaggedTensor) -> tuple[np.ndarray, np.ndarray]:
    """A ragged ``(batch, None, features)`` tensor -> post-padded dense tensor and its mask.

    Returns:
        ``(dense, mask)``: ``(batch, timesteps, features)`` floats with zeros after each
        row's end, and the boolean ``(batch, timesteps)`` mask (True at real steps) to pass
        to a recurrent layer as ``mask=``.
    """
    dense = ragged.to_tensor(default_value=0)
    mask = tf.sequence_mask(ragged.row_lengths(), maxlen=tf.shape(dense)[1])
    return dense.numpy(), mask.numpy()

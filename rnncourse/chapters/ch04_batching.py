"""Chapter 4, variable-length batching: what the chapter measures beyond its recipes.

The tools a practitioner imports (padding, bucketing, padding counts) live in
:mod:`rnncourse.batching` and :func:`rnncourse.text.pad`; the models the chapter trains,
their losses and their training loops are on the chapter's page. This module holds data
assembly and the probes of Keras behaviour that a reader need not see:

* :func:`review_ids`: the Pang & Lee reviews or sentences as id sequences;
* :func:`run_mask_exactness` (over :func:`mask_exactness`): a padded batch against each
  sequence run alone, with and without a mask;
* :func:`padded_step_outputs`, :func:`all_padding_row_output`: what a masked layer returns
  at padded steps and for an all-padding row;
* :func:`mask_propagation` (printed by :func:`format_mask_propagation`): which layers pass
  a mask on, in this Keras;
* :func:`sentiment_tagging_batch`: a padded tagging batch for the loss comparison;
* :func:`epoch_cost_report`: the padding counts of an epoch per batching strategy, as text;
* :func:`max_prediction_diff`, :func:`tagger_predictions`: what ``predict`` returns;
* :func:`ragged_input_errors`: what a recurrent layer says about a ``tf.RaggedTensor``.

Epoch wall times per batching strategy are measured by ``benchmarks/batching_speed.py``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import batching, config, models, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.data import load_movie_reviews
from rnncourse.text import PAD

config.quiet_tensorflow()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "review_ids",
           "MaskExactness", "mask_exactness", "run_mask_exactness", "padded_step_outputs",
           "all_padding_row_output", "mask_propagation", "format_mask_propagation",
           "sentiment_tagging_batch", "epoch_cost_report", "max_prediction_diff",
           "tagger_predictions", "ragged_input_errors"]


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


# --------------------------------------------------------------------------- masking probes


def _recurrent(kind: str, units: int, return_sequences: bool, seed: int) -> keras.layers.Layer:
    """LSTM/GRU (``bi_*``: bidirectional) with random biases and ``return_state=True``."""
    base = kind.removeprefix("bi_")
    if base not in ("lstm", "gru"):
        raise ValueError(f"kind must be lstm, gru, bi_lstm or bi_gru, not {kind!r}")
    # Random biases, as after training: with zero biases a zero input leaves a zero LSTM
    # state at zero, which would hide what zero padding does to a trained layer.
    layer = models.recurrent_layer(
        base, units, seed=seed, return_sequences=return_sequences, return_state=True,
        bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 2))
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
    if sequences is None:
        sequences = [np.arange(2, 2 + n) % 50 + 2 for n in (5, 2, 9, 7, 3)]
    arrays = batching.validate_sequences(sequences, vocab_size=60)
    x = text.pad(arrays, padding=padding)
    mask = batching.mask_of(x)
    if features == "ids":
        front = models.embedding(60, 4, mask_zero=use_mask, seed=seed + 3)
        inputs, alone = x, [a[None, :] for a in arrays]
    elif features == "floats":
        table = np.random.default_rng(seed).normal(size=(60, 4)).astype("float32")
        table[PAD] = 0.0
        front = keras.layers.Masking(0.0) if use_mask else keras.layers.Identity()
        inputs, alone = table[x], [table[a][None] for a in arrays]
    else:
        raise ValueError(f"features must be 'ids' or 'floats', not {features!r}")
    rnn = _recurrent(kind, units, return_sequences=True, seed=seed)
    batch = [np.asarray(t) for t in rnn(front(inputs))]
    out_diff = state_diff = 0.0
    for i, single in enumerate(alone):
        ref = [np.asarray(t) for t in rnn(front(single))]
        real = batch[0][i][mask[i]]
        out_diff = max(out_diff, float(np.abs(real - ref[0][0]).max()))
        for b, r in zip(batch[1:], ref[1:], strict=True):
            state_diff = max(state_diff, float(np.abs(b[i] - r[0]).max()))
    return {"outputs": out_diff, "states": state_diff}


@dataclass(frozen=True)
class MaskExactness:
    """Padded batch vs each sequence alone, per layer and padding side, mask or not.

    Attributes:
        table: ``{(label, "mask" | "no mask"): {"outputs": diff, "states": diff}}``.
    """

    table: dict[tuple[str, str], dict[str, float]]

    @property
    def worst_masked(self) -> float:
        """Largest difference with a mask (float rounding when masking is exact)."""
        return max(max(r.values()) for (_, m), r in self.table.items() if m == "mask")

    @property
    def best_unmasked(self) -> float:
        """Smallest of the per-layer largest differences without a mask."""
        return min(max(r.values()) for (_, m), r in self.table.items() if m == "no mask")


def run_mask_exactness(setup: Settings[Sizes, Recipe] | None = None) -> MaskExactness:
    """:func:`mask_exactness` for LSTM, GRU and BiLSTM, pre and post, with and without a mask,
    on ids, plus a BiLSTM behind a ``Masking`` layer on float features."""
    s = setup or settings()
    seed = config.seed(4)
    table = {}
    for kind in ("lstm", "gru", "bi_lstm"):
        for padding in ("pre", "post"):
            for use_mask in (True, False):
                table[(f"{kind} {padding}", "mask" if use_mask else "no mask")] = mask_exactness(
                    kind, padding, use_mask, "ids", units=s.recipe.probe_units, seed=seed)
    for use_mask in (True, False):
        table[("bi_lstm pre, Masking", "mask" if use_mask else "no mask")] = mask_exactness(
            "bi_lstm", "pre", use_mask, "floats", units=s.recipe.probe_units, seed=seed)
    return MaskExactness(table)


def padded_step_outputs(padding: str = "post", kind: str = "lstm", units: int = 4,
                        seed: int = 0, zero_output_for_mask: bool = False) -> np.ndarray:
    """``return_sequences`` outputs of a masked layer for a short row in a padded batch.

    The batch is ``[[3, 4, 5, 6, 7], [8, 9]]`` padded on the given side; the result is the
    ``(5, units)`` (``bi_*``: ``(5, 2 * units)``) output of the second row on this machine's
    kernel. On Keras' generic kernel (CPU, or GPU without cuDNN) post-padded steps repeat the
    last real output unless ``zero_output_for_mask=True``; ``Bidirectional`` forces that
    flag on (zeros), and so does the cuDNN kernel's output.
    """
    embedding = models.embedding(10, 4, mask_zero=True, seed=seed + 3)
    layer = _recurrent(kind, units, return_sequences=True, seed=seed)
    if not kind.startswith("bi_"):
        layer.zero_output_for_mask = zero_output_for_mask
    x = text.pad([[3, 4, 5, 6, 7], [8, 9]], padding=padding)
    return np.asarray(layer(embedding(x))[0])[1]


def all_padding_row_output(kind: str = "lstm", units: int = 4, seed: int = 0) -> np.ndarray:
    """What a masked layer returns for a row that is all padding, next to a real row.

    Returns:
        ``(units,)`` (``(2 * units,)`` for ``bi_*``): the final output of the all-padding row
        of the batch ``[[3, 4, 5], [0, 0, 0]]`` after ``Embedding(mask_zero=True)``. On CPU
        Keras returns the initial state (zeros) there; the cuDNN path refuses such a batch.
    """
    embedding = models.embedding(10, 4, mask_zero=True, seed=seed + 3)
    layer = _recurrent(kind, units, return_sequences=False, seed=seed)
    return np.asarray(layer(embedding(np.array([[3, 4, 5], [0, 0, 0]])))[0])[1]


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

    class MaskProbe(keras.layers.Layer):
        """Passes its input on and records whether Keras handed it a mask (public API:
        Keras passes ``mask=`` to a ``call`` that takes it)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True
            self.saw_mask = False

        def call(self, inputs, mask=None):
            self.saw_mask = mask is not None
            return inputs

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
        probe = MaskProbe()
        probe(out)
        table[name] = {
            "keeps_mask": probe.saw_mask,
            "warns": any("mask" in str(w.message) for w in caught),
        }
    return table


def format_mask_propagation(table: dict[str, dict[str, bool]]) -> str:
    """One line per layer of a :func:`mask_propagation` table: keeps or drops the mask.

    A dropped mask is marked ``DROPS it (with a warning)`` or ``DROPS it silently``.
    """
    lines = []
    for name, row in table.items():
        verdict = ("keeps the mask" if row["keeps_mask"]
                   else "DROPS it" + (" (with a warning)" if row["warns"] else " silently"))
        lines.append(f"{name:<45}{verdict}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- losses


def sentiment_tagging_batch(sequences: Sequence, labels, n: int = 64
                            ) -> tuple[np.ndarray, np.ndarray]:
    """A tagging batch from labelled sentences: each sentence's label at every timestep.

    Args:
        sequences: id sequences; the first ``n`` are used.
        labels: one label per sequence, ``(len(sequences),)``.
        n: sequences in the batch.

    Returns:
        ``(x, y)``: ``x`` the first ``n`` sequences post-padded to the longest of them,
        ``(n, timesteps)``; ``y`` their labels repeated over the timesteps (padding
        included), ``(n, timesteps)``.
    """
    x = text.pad(sequences[:n])
    y = np.repeat(np.asarray(labels)[:n, None], x.shape[1], axis=1)
    return x, y


# --------------------------------------------------------------------------- bucketing


def epoch_cost_report(cost: dict[str, batching.PaddingCount]) -> str:
    """The work of one epoch per batching strategy, one line each, and what bucketing saves.

    Args:
        cost: ``{strategy: count}`` from ``batching.count_padding`` of each strategy's
            data set; needs ``"global_max"`` and ``"bucketed"``.

    Returns:
        A line per strategy (batches, padded timesteps, cells, padded fraction), then the
        ratios of pad-to-global-max to bucketed timesteps and cells.
    """
    lines = [f"{name:<11} batches {c.batches:3d}  timesteps {c.timesteps:7d}  "
             f"cells {c.positions:9d}  padded {c.padded:6.1%}" for name, c in cost.items()]
    step_ratio = cost["global_max"].timesteps / cost["bucketed"].timesteps
    cell_ratio = cost["global_max"].positions / cost["bucketed"].positions
    lines.append(f"bucketed: {step_ratio:.2f}x fewer timesteps, {cell_ratio:.2f}x fewer cells "
                 "than pad-to-global-max")
    return "\n".join(lines)


# --------------------------------------------------------------------------- other lengths


def max_prediction_diff(first: keras.Model, second: keras.Model, x: np.ndarray) -> float:
    """Largest absolute difference between two models' outputs on the same input ``x``.

    Calls the models directly (inference mode) rather than through ``predict``, so that no
    prediction function is traced for them: TensorFlow warns about "retracing" once many
    models' ``predict`` functions have been traced in one process.
    """
    return float(np.abs(np.asarray(first(x, training=False))
                        - np.asarray(second(x, training=False))).max())


def tagger_predictions(tagger: keras.Model, sequences: Sequence, batch_size: int = 16
                       ) -> tuple[np.ndarray, tf.RaggedTensor, list[int]]:
    """What ``predict`` returns for a tagger's per-step outputs, from an array and a pipeline.

    Args:
        tagger: a model with one prediction per step, ``(batch, timesteps, tags)``.
        sequences: id sequences of different lengths.
        batch_size: batch size of the per-batch padded pipeline (not shuffled).

    Returns:
        ``(as_array, as_ragged, widths)``: ``predict`` on the sequences padded to the
        longest, in one batch, ``(n, max length, tags)``; ``predict`` on a ``per_batch`` padded
        ``tf.data`` pipeline, a ``tf.RaggedTensor`` ``(n, None, tags)``; and each
        sequence's padded width in that pipeline (its batch's width), in order.
    """
    padded = text.pad(sequences)
    as_array = tagger.predict(padded, batch_size=len(padded), verbose=0)  # one batch shape
    per_batch = batching.padded_dataset(sequences, np.zeros(len(sequences)), batch_size,
                                        "per_batch", shuffle=False)
    as_ragged = tagger.predict(per_batch.map(lambda x, y: x), verbose=0)
    widths = [int(x.shape[1]) for x, _ in per_batch for _ in range(len(x))]
    return as_array, as_ragged, widths


def ragged_input_errors(ragged: tf.RaggedTensor, kind: str = "lstm", units: int = 2
                        ) -> list[str]:
    """Call a fresh recurrent layer on a ragged batch; return the error lines about raggedness.

    Args:
        ragged: a ``tf.RaggedTensor`` ``(batch, None, features)``.
        kind: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        units: recurrent units.

    Returns:
        ``"ErrorType: line"`` for each line of the raised ``ValueError`` or ``TypeError``
        that mentions "ragged" (terminal colour codes removed); empty when the layer
        accepted the input.
    """
    try:
        models.recurrent_layer(kind, units)(ragged)
    except (ValueError, TypeError) as err:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # drop the terminal colours
        return [f"{type(err).__name__}: {line.strip()}" for line in message.splitlines()
                if "ragged" in line.lower()]
    return []

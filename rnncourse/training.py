"""Training loops, gradient accumulation and sequence-labelling metrics.

The general tools behind the chapter *Training loops and sequence labelling* (its
experiments live in :mod:`rnncourse.chapters.ch06_training`):

* loops: :func:`fit_per_example` (the loop people write first: ``model.fit`` once per
  example) next to :func:`fit_minibatches` (one ``fit`` call), both returning a
  :class:`LoopHistory` with the loss of every optimizer step (:class:`StepLosses`), and
  :func:`roughness`, how jagged a loss curve is;
* gradient accumulation with ``tf.GradientTape``: :func:`accumulated_gradients` and
  :func:`accumulate_and_apply`, which handle the ``tf.IndexedSlices`` gradients of an
  ``Embedding`` (:func:`add_gradients`, :func:`deduplicate`, :func:`scale_gradient`) and can
  weight micro-batches by their real tokens. Keras 3 optimizers do the batch-weighted
  version themselves with ``gradient_accumulation_steps``;
* metrics for taggers: :func:`masked_accuracy`, :func:`predict_tags`, entity-level scores
  with ``seqeval`` (:func:`entity_scores`), :func:`type_confusion`;
* :func:`optimizer` by name, and :class:`EpochProgress`, one progress bar per ``fit``.

Conventions (:mod:`rnncourse.text`): token id 0 is padding, tag id 0 is ``"O"``; padded
positions carry tag 0 in ``y`` and are masked out of loss and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse.config import quiet_tensorflow
from rnncourse.progress import progress
from rnncourse.text import OUTSIDE, PAD

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = [
    "optimizer", "OPTIMIZERS", "LoopHistory", "StepLosses", "fit_per_example",
    "fit_minibatches", "roughness", "add_gradients", "deduplicate", "scale_gradient",
    "accumulated_gradients", "accumulate_and_apply", "masked_accuracy", "predict_tags",
    "EntityScores", "entity_scores", "entity_type", "type_confusion", "EpochProgress",
]

OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
              "rmsprop": keras.optimizers.RMSprop, "adamw": keras.optimizers.AdamW}
"""Optimizer names accepted by :func:`optimizer`."""


def _check_count(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


# ----------------------------------------------------------------------------- optimizer
def optimizer(name: str | keras.optimizers.Optimizer, learning_rate: float,
              **kwargs) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer by name, e.g. ``optimizer("adam", 5e-3)``.

    Args:
        name: ``"adam"``, ``"sgd"``, ``"rmsprop"`` or ``"adamw"`` (see :data:`OPTIMIZERS`);
            an optimizer instance is returned unchanged (``kwargs`` must then be empty).
        learning_rate: a positive float or a ``keras.optimizers.schedules`` schedule.
        **kwargs: any other argument of the optimizer, e.g.
            ``gradient_accumulation_steps=4``, ``clipnorm=1.0``.
    """
    if isinstance(name, keras.optimizers.Optimizer):
        if kwargs:
            raise ValueError(f"name is already an optimizer; pass {sorted(kwargs)} when "
                             "building it, or pass a name")
        return name
    if name not in OPTIMIZERS:
        raise ValueError(f"name must be one of {sorted(OPTIMIZERS)} or an optimizer "
                         f"instance, not {name!r}")
    schedule = isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule)
    if not schedule and (isinstance(learning_rate, bool)
                         or not isinstance(learning_rate, (int, float, np.floating))
                         or not learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number or a schedule, got "
                         f"{learning_rate!r}")
    if not schedule:
        learning_rate = float(learning_rate)  # Keras refuses NumPy scalars (np.float32(1e-3))
    return OPTIMIZERS[name](learning_rate=learning_rate, **kwargs)


# ----------------------------------------------------------------------------- loops
@dataclass
class LoopHistory:
    """What a training loop recorded.

    Attributes:
        step_losses: (steps,) loss of each optimizer step, in order.
        step_sizes: (steps,) examples in each step.
        epoch_losses: (epochs,) example-weighted mean of the step losses of each epoch.
        epoch_seconds: (epochs,) wall time of each epoch.
        val_losses: (epochs,) validation loss after each epoch (empty without validation).
        fit_calls: ``model.fit`` calls the loop made.
    """

    step_losses: np.ndarray
    step_sizes: np.ndarray
    epoch_losses: np.ndarray
    epoch_seconds: np.ndarray
    val_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fit_calls: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return len(self.step_losses) // max(1, len(self.epoch_losses))

    @property
    def examples_seen(self) -> np.ndarray:
        """(steps,) examples seen after each step: the x axis that makes loops comparable."""
        return np.cumsum(self.step_sizes)


def _check_xy(x, y) -> None:
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}; pass one target per "
                         "input")
    if len(x) == 0:
        raise ValueError("x holds no examples to train on")


def fit_per_example(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int = 1,
                    validation_data: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> LoopHistory:
    """The loop people write first: ``model.fit`` on one example at a time, epochs outside.

    Reproduces ``for epoch: for X, y in data: model.fit(X[None], y[None], epochs=1,
    batch_size=1)``. Every call builds a fresh data pipeline and callback list and takes one
    optimizer step on a single example, so it is slow and its per-step losses are noisy.

    Args:
        model: a compiled model.
        x: (n, ...) inputs; y: (n, ...) targets.
        epochs: passes over the data.
        validation_data: optional (x_val, y_val), evaluated after each epoch.
    """
    _check_xy(x, y)
    _check_count("epochs", epochs)
    losses, seconds, val = [], [], []
    for _ in range(epochs):
        start = time.perf_counter()
        for i in range(len(x)):
            history = model.fit(x[i:i + 1], y[i:i + 1], epochs=1, batch_size=1, verbose=0)
            losses.append(history.history["loss"][0])
        seconds.append(time.perf_counter() - start)
        if validation_data is not None:
            val.append(_evaluate_loss(model, validation_data))
    step_losses = np.asarray(losses, dtype=np.float64)
    return LoopHistory(step_losses=step_losses, step_sizes=np.ones(len(losses), dtype=int),
                       epoch_losses=step_losses.reshape(epochs, len(x)).mean(axis=1),
                       epoch_seconds=np.asarray(seconds), val_losses=np.asarray(val),
                       fit_calls=epochs * len(x))


class StepLosses(keras.callbacks.Callback):
    """Record the loss of every training step and the wall time of every epoch.

    Keras reports a running mean over the epoch in ``on_train_batch_end``; the loss of step
    ``k`` is recovered from consecutive means weighted by the examples seen,
    ``l_k = (N_k m_k - N_{k-1} m_{k-1}) / b_k``.

    Args:
        n_examples: examples per epoch (the last batch may be smaller).
        batch_size: examples per step, as passed to ``fit``.
    """

    def __init__(self, n_examples: int, batch_size: int) -> None:
        super().__init__()
        _check_count("n_examples", n_examples)
        _check_count("batch_size", batch_size)
        self.n_examples, self.batch_size = n_examples, batch_size
        self.losses, self.sizes, self.epoch_seconds = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._seen, self._previous_total = 0, 0.0
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        size = min(self.batch_size, self.n_examples - self._seen)
        self._seen += size
        total = float(logs["loss"]) * self._seen
        self.losses.append((total - self._previous_total) / size)
        self.sizes.append(size)
        self._previous_total = total

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)


def fit_minibatches(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int = 1,
                    batch_size: int = 32, validation_data=None, shuffle: bool = True,
                    callbacks: Sequence[keras.callbacks.Callback] = ()) -> LoopHistory:
    """One ``model.fit`` call over all epochs with shuffled mini-batches; per-step losses kept.

    Args:
        model: a compiled model.
        x: (n, ...) inputs; y: (n, ...) targets.
        epochs: passes over the data.
        batch_size: examples per optimizer step.
        validation_data: optional (x_val, y_val).
        shuffle: reshuffle the examples every epoch.
        callbacks: extra Keras callbacks (e.g. :class:`EpochProgress`, ``EarlyStopping``).
    """
    _check_xy(x, y)
    _check_count("epochs", epochs)
    _check_count("batch_size", batch_size)
    recorder = StepLosses(len(x), batch_size)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                        validation_data=validation_data, verbose=0,
                        callbacks=[recorder, *callbacks])
    return LoopHistory(step_losses=np.asarray(recorder.losses),
                       step_sizes=np.asarray(recorder.sizes),
                       epoch_losses=np.asarray(history.history["loss"]),
                       epoch_seconds=np.asarray(recorder.epoch_seconds),
                       val_losses=np.asarray(history.history.get("val_loss", [])))


def roughness(losses: Sequence[float]) -> float:
    """How jagged a loss curve is: the standard deviation of its step-to-step changes.

    Args:
        losses: (steps,) a loss per optimizer step, at least 3 finite values.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or len(losses) < 3:
        raise ValueError(f"losses must be a 1-D curve of at least 3 values, got shape "
                         f"{losses.shape}")
    if not np.isfinite(losses).all():
        raise ValueError("losses hold NaN or infinite values; the run diverged")
    return float(np.std(np.diff(losses)))


def _evaluate_loss(model, data) -> float:
    result = model.evaluate(data[0], data[1], verbose=0, batch_size=256, return_dict=True)
    return float(result["loss"])


# ----------------------------------------------------------------------------- accumulation
def add_gradients(a, b):
    """Sum two gradients of one variable, keeping ``tf.IndexedSlices`` sparse.

    ``Embedding`` gradients are ``IndexedSlices`` (one row per token of the batch), which do
    not support ``+``; two of them are summed by concatenating their rows (repeated indices
    add up when applied). Anything else is converted to a dense tensor first. ``a=None``
    (nothing accumulated yet) returns ``b``.
    """
    if a is None:
        return b
    if b is None:
        raise ValueError("b is None: the variable got no gradient in this micro-batch; "
                         "check that it is connected to the loss")
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], axis=0),
                                tf.concat([a.indices, b.indices], axis=0), a.dense_shape)
    return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)


def deduplicate(g):
    """Sum the rows of an ``IndexedSlices`` that share an index (dense tensors pass through).

    A linear update (SGD) does not care, but Adam squares the gradient: on a gradient with
    a repeated row it squares each copy instead of their sum, so deduplicate first.
    ``(rows, dim)`` values with ``(rows,)`` indices -> ``(unique rows, dim)``.
    """
    if not isinstance(g, tf.IndexedSlices):
        return g
    unique, position = tf.unique(g.indices)
    values = tf.math.unsorted_segment_sum(g.values, position, tf.shape(unique)[0])
    return tf.IndexedSlices(values, unique, g.dense_shape)


def scale_gradient(g, factor: float):
    """``factor * g`` for a dense gradient or ``tf.IndexedSlices``."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.floating)):
        raise TypeError(f"factor must be a number, got {type(factor).__name__}")
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(g.values * factor, g.indices, g.dense_shape)
    return g * factor


def accumulated_gradients(model: keras.Model, micro_batches: Iterable[tuple],
                          weighting: str = "batch") -> tuple[list, float]:
    """Average the gradients of several micro-batches with ``tf.GradientTape``.

    The loss is sparse categorical cross-entropy over real tokens (token id 0 is padding
    when the inputs are int ids; float inputs count every step). ``Embedding`` gradients
    stay sparse (``tf.IndexedSlices``) and come back with duplicate rows summed.

    Args:
        model: a tagger, (batch, timesteps) -> (batch, timesteps, num_tags) probabilities.
        micro_batches: ``(x, y)`` pairs, x (b, timesteps), y (b, timesteps) int tag ids.
        weighting: ``"batch"`` gives every micro-batch the same weight (the mean of the
            micro-batch mean losses, what ``gradient_accumulation_steps`` does);
            ``"token"`` weights each by its real tokens, which equals one step on the
            concatenated batch even when micro-batches hold different numbers of tokens.

    Returns:
        (gradients aligned with ``model.trainable_variables``, mean loss).
    """
    if weighting not in ("batch", "token"):
        raise ValueError(f"weighting must be 'batch' or 'token', not {weighting!r}")
    variables = model.trainable_variables
    totals, loss_total, weight_total = [None] * len(variables), 0.0, 0.0
    for k, pair in enumerate(micro_batches):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"micro_batches[{k}] must be an (x, y) pair")
        x, y = tf.convert_to_tensor(pair[0]), tf.convert_to_tensor(pair[1])
        if x.shape.rank != 2 or tuple(x.shape) != tuple(y.shape):
            raise ValueError(f"micro_batches[{k}]: x {tuple(x.shape)} and y "
                             f"{tuple(y.shape)} must both be (batch, timesteps)")
        mask = tf.cast(x != PAD, "float32") if x.dtype.is_integer else tf.ones(tf.shape(y))
        tokens = float(tf.reduce_sum(mask))
        if tokens == 0:
            raise ValueError(f"micro_batches[{k}] holds only padding; drop all-padding rows")
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            per_token = keras.losses.sparse_categorical_crossentropy(y, probabilities)
            summed = tf.reduce_sum(per_token * mask)
            loss = summed if weighting == "token" else summed / tokens
        grads = tape.gradient(loss, variables)
        totals = [add_gradients(t, g) for t, g in zip(totals, grads, strict=True)]
        loss_total += float(loss)
        weight_total += tokens if weighting == "token" else 1.0
    if weight_total == 0:
        raise ValueError("micro_batches is empty; pass at least one (x, y) pair")
    grads = [deduplicate(scale_gradient(g, 1.0 / weight_total)) for g in totals]
    return grads, loss_total / weight_total


def accumulate_and_apply(model: keras.Model, micro_batches: Iterable[tuple],
                         optimizer: keras.optimizers.Optimizer, weighting: str = "batch"
                         ) -> float:
    """One optimizer update from the averaged gradients of several micro-batches.

    Returns the mean loss. See :func:`accumulated_gradients` for shapes and ``weighting``.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"optimizer must be a keras optimizer, got {type(optimizer).__name__}; "
                        "build one with rnncourse.training.optimizer('sgd', 0.1)")
    grads, loss = accumulated_gradients(model, micro_batches, weighting)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return loss


# ----------------------------------------------------------------------------- metrics
def masked_accuracy(y_true: np.ndarray, probabilities: np.ndarray, mask: np.ndarray) -> float:
    """Token accuracy over real tokens only.

    Args:
        y_true: (batch, timesteps) int tag ids.
        probabilities: (batch, timesteps, num_tags) predicted probabilities.
        mask: (batch, timesteps) bool, True at real tokens.

    Raises:
        ValueError: shapes that disagree, a mask with no token, or tag ids in ``y_true``
            outside ``0 .. num_tags - 1``.
    """
    y_true, mask = np.asarray(y_true), np.asarray(mask, dtype=bool)
    probabilities = np.asarray(probabilities)
    if (y_true.shape != mask.shape or probabilities.ndim != 3
            or probabilities.shape[:2] != y_true.shape):
        raise ValueError(f"shapes disagree: y_true {y_true.shape}, mask {mask.shape}, "
                         f"probabilities {probabilities.shape}; expected (batch, timesteps) "
                         "and (batch, timesteps, num_tags)")
    if not mask.any():
        raise ValueError("the mask selects no token (all-padding batch); pass mask=x != 0 for "
                         "the token ids x, and drop all-padding rows")
    real = y_true[mask]
    if real.min() < 0 or real.max() >= probabilities.shape[-1]:
        raise ValueError(f"y_true holds tag ids {int(real.min())}..{int(real.max())} but "
                         f"probabilities has {probabilities.shape[-1]} tags (ids 0.."
                         f"{probabilities.shape[-1] - 1}); encode y_true with the tag names "
                         "the model was trained on")
    correct = np.argmax(probabilities, axis=-1) == y_true
    return float(correct[mask].mean())


def predict_tags(model: keras.Model, x: np.ndarray, tag_names: Sequence[str],
                 lengths: Sequence[int] | None = None, batch_size: int = 256
                 ) -> list[list[str]]:
    """Most likely tag of every real token.

    Args:
        model: a tagger with (batch, timesteps, num_tags) output.
        x: (n, timesteps) int token ids, 0 as padding.
        tag_names: id -> tag name (``num_tags`` of them).
        lengths: real length of each sentence (default: count of non-zero ids).
        batch_size: examples per prediction batch (an int >= 1).

    Returns:
        ``n`` lists of tag names, one per real token.

    Raises:
        ValueError: ``x`` not 2-D, a bad ``batch_size``, ``lengths`` that are not one int
            per row within ``0 .. timesteps``, or a model with another number of tags.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be (n, timesteps) token ids, got shape {x.shape}")
    _check_count("batch_size", batch_size)
    lengths = (x != PAD).sum(axis=1) if lengths is None else np.asarray(lengths)
    if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu" or (lengths < 0).any() \
            or (lengths > x.shape[1]).any():
        raise ValueError(f"lengths must hold one length in 0..{x.shape[1]} per row of x "
                         f"({len(x)} rows), as ints")
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    if probabilities.shape[-1] != len(tag_names):
        raise ValueError(f"the model predicts {probabilities.shape[-1]} tags but tag_names "
                         f"has {len(tag_names)}; pass the tag names the model was trained on")
    ids = np.argmax(probabilities, axis=-1)
    return [[tag_names[t] for t in row[:n]] for row, n in zip(ids, lengths, strict=True)]


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores from ``seqeval`` (an entity counts only if span and type match)."""

    precision: float
    recall: float
    f1: float
    report: str

    def __str__(self) -> str:
        return (f"entity precision {self.precision:.3f}, recall {self.recall:.3f}, "
                f"F1 {self.f1:.3f}")


def _check_tag_lists(true_tags, predicted_tags) -> None:
    if len(true_tags) != len(predicted_tags):
        raise ValueError(f"{len(true_tags)} true and {len(predicted_tags)} predicted "
                         "sentences; predict one tag list per sentence")
    for i, (t, p) in enumerate(zip(true_tags, predicted_tags, strict=True)):
        if isinstance(t, str) or isinstance(p, str):
            raise ValueError(f"sentence {i} is a string; pass one list of tags per sentence")
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags, {len(p)} predicted; "
                             "trim predictions to the real length (see predict_tags)")


def entity_scores(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
                  ) -> EntityScores:
    """Entity precision, recall and F1 (micro-averaged) with ``seqeval``, CoNLL rules.

    Args:
        true_tags, predicted_tags: one list of BIO tags per sentence, of equal lengths.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    _check_tag_lists(true_tags, predicted_tags)
    true_tags, predicted_tags = [list(t) for t in true_tags], [list(p) for p in predicted_tags]
    kwargs = {"zero_division": 0}
    return EntityScores(
        precision=float(precision_score(true_tags, predicted_tags, **kwargs)),
        recall=float(recall_score(true_tags, predicted_tags, **kwargs)),
        f1=float(f1_score(true_tags, predicted_tags, **kwargs)),
        report=classification_report(true_tags, predicted_tags, digits=3, **kwargs),
    )


def entity_type(tag: str) -> str:
    """``"B-person"`` -> ``"person"``; ``"O"`` -> ``"O"``."""
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a string such as 'B-person', got {type(tag).__name__}")
    return tag.split("-", 1)[1] if "-" in tag else tag


def type_confusion(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
                   ) -> tuple[np.ndarray, list[str]]:
    """Token-level confusion of entity types (B-/I- merged).

    Args:
        true_tags, predicted_tags: one list of BIO tags per sentence, of equal lengths.

    Returns:
        ``counts``: (types, types) int, rows true type, columns predicted type;
        ``names``: the types, ``"O"`` last.
    """
    _check_tag_lists(true_tags, predicted_tags)
    pairs = [(entity_type(t), entity_type(p))
             for ts, ps in zip(true_tags, predicted_tags, strict=True)
             for t, p in zip(ts, ps, strict=True)]
    names = sorted({n for pair in pairs for n in pair} - {OUTSIDE}) + [OUTSIDE]
    index = {n: i for i, n in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=int)
    for t, p in pairs:
        counts[index[t], index[p]] += 1
    return counts, names


# ----------------------------------------------------------------------------- progress
class EpochProgress(keras.callbacks.Callback):
    """One progress bar over epochs with the latest metrics as its postfix.

    Use with ``model.fit(..., verbose=0, callbacks=[EpochProgress()])`` instead of Keras'
    per-step bars, which flood notebooks and rendered pages. ``RNNCOURSE_PROGRESS=0``
    turns the bar off (see :mod:`rnncourse.progress`).
    """

    def __init__(self, desc: str = "epochs") -> None:
        super().__init__()
        self.desc = desc
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = progress(total=self.params.get("epochs"), desc=self.desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{float(v):.4g}" for k, v in (logs or {}).items()})

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

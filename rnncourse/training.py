"""Training loops, gradient accumulation and sequence-labelling metrics.

The general tools behind the chapter *Training loops and sequence labelling*, whose page
(``book/06_training_loops.ipynb``) writes out every loop it trains:

* loops: :func:`fit_per_example` (the loop people write first: ``model.fit`` once per
  example) next to :func:`fit_minibatches` (one ``fit`` call), both returning a
  :class:`LoopHistory` with the loss of every optimizer step (:class:`StepLosses` records
  it inside any ``fit``), and
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

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse import _checks
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


# ----------------------------------------------------------------------------- optimizer
@_checks.arguments(gradient_accumulation_steps=_checks.optional(_checks.at_least(2)))
def optimizer(name: str | keras.optimizers.Optimizer, learning_rate: float, *,
              gradient_accumulation_steps: int | None = None,
              **kwargs) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer by name, e.g. ``optimizer("adam", 5e-3)``.

    Args:
        name: ``"adam"``, ``"sgd"``, ``"rmsprop"`` or ``"adamw"`` (see :data:`OPTIMIZERS`);
            an optimizer instance is returned unchanged (``kwargs`` must then be empty).
        learning_rate: a positive finite number or a ``keras.optimizers.schedules``
            schedule.
        gradient_accumulation_steps: ``None``, or an int >= 2 (Keras 3.15 silently reads 0
            as "no accumulation").
        **kwargs: any other argument of the optimizer, e.g. ``clipnorm=1.0``.
    """
    if isinstance(name, keras.optimizers.Optimizer):
        _checks.fail_if(kwargs or gradient_accumulation_steps, "name",
                        "is already an optimizer: its options would be lost")
        return name
    name = _checks.choice(name, "name", OPTIMIZERS)
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = _checks.number(learning_rate, "learning_rate")  # Keras refuses NumPy
    if gradient_accumulation_steps is not None:  # Keras 3.15 reads 0 as "off"
        kwargs["gradient_accumulation_steps"] = gradient_accumulation_steps
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
    epoch_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    val_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fit_calls: int = 1

    @classmethod
    @_checks.arguments(epochs=_checks.count, fit_calls=_checks.count)
    def from_steps(cls, step_losses: Sequence[float], step_sizes: Sequence[int] | None = None,
                   epochs: int = 1, fit_calls: int = 1) -> LoopHistory:
        """The history of a loop that logged one loss per step, e.g. per-example ``fit`` calls.

        Args:
            step_losses: (steps,) loss of each step, ``epochs`` epochs of equal steps.
            step_sizes: (steps,) examples in each step (default: 1 each).
            epochs: epochs the steps cover; each epoch's loss is the example-weighted mean.
            fit_calls: ``model.fit`` calls the loop made.
        """
        losses = _checks.array(step_losses, "step_losses", ndim=1).astype(np.float64)
        sizes = (np.ones(len(losses), dtype=int) if step_sizes is None
                 else _checks.ids(step_sizes, "step_sizes", ndim=1))
        if len(sizes) != len(losses) or len(losses) % epochs or not sizes.all() or not len(sizes):
            _checks.fail("step_losses", f"{len(losses)} for {len(sizes)} sizes >0, {epochs} epochs")
        per_epoch = (losses * sizes).reshape(epochs, -1).sum(axis=1)
        return cls(step_losses=losses, step_sizes=sizes,
                   epoch_losses=per_epoch / sizes.reshape(epochs, -1).sum(axis=1),
                   fit_calls=fit_calls)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.step_losses) // max(1, len(self.epoch_losses))

    @property
    def examples_seen(self) -> np.ndarray:
        """(steps,) examples seen after each step: the x axis that makes loops comparable."""
        return np.cumsum(self.step_sizes)


def _examples(x, y) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` as arrays with one target per example; labels that TF would refuse deep
    inside ``fit`` (bools, negative ids such as PyTorch's ``-100`` padding) refused here."""
    x, y = _checks.array(x, "x"), _checks.array(y, "y")
    _checks.fail_if(len(x) == 0, "x", "holds no examples to train on")
    _checks.fail_if(len(x) != len(y), "y", "needs one target per example of x")
    if y.dtype.kind in "biu":
        y = _labels(y, "y")
    return x, y


def _labels(y, argument: str) -> np.ndarray:
    """Integer class ids: no bools, no negative ids (mask padding, do not label it -100)."""
    y = _checks.array(y, argument)
    _checks.fail_if(y.dtype.kind == "b", argument, "holds bools; pass int class ids", TypeError)
    if y.dtype.kind in "iu":  # no -100 padding label: Keras ignores none, mask x == 0
        y = _checks.ids(y, argument)
    return y


@_checks.arguments(epochs=_checks.count)
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
    x, y = _examples(x, y)
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

    @_checks.arguments(n_examples=_checks.count, batch_size=_checks.count)
    def __init__(self, n_examples: int, batch_size: int) -> None:
        super().__init__()
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

    def history(self) -> LoopHistory:
        """What was recorded, as a :class:`LoopHistory` (one ``fit`` call)."""
        epochs = max(1, len(self.epoch_seconds))
        result = LoopHistory.from_steps(self.losses, self.sizes, epochs=epochs)
        return dataclasses.replace(result, epoch_seconds=np.asarray(self.epoch_seconds))


@_checks.arguments(epochs=_checks.count, batch_size=_checks.count)
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
    x, y = _examples(x, y)
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
    losses = _checks.array(losses, "losses", ndim=1, kinds="iuf", finite=True)
    _checks.fail_if(len(losses) < 3, "losses", "needs at least 3 values")
    losses = losses.astype(np.float64)
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
    _checks.fail_if(b is None, "b", "is None: the variable got no gradient (is it in the loss?)")
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], axis=0),
                                tf.concat([a.indices, b.indices], axis=0), a.dense_shape)
    a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
    _checks.fail_if(a.shape != b.shape, "b", lambda: f"has shape {b.shape}, a has {a.shape}")
    return a + b


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


@_checks.arguments(factor=_checks.real)
def scale_gradient(g, factor: float):
    """``factor * g`` for a dense gradient or ``tf.IndexedSlices``."""
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
    weighting = _checks.choice(weighting, "weighting", ("batch", "token"))
    variables = model.trainable_variables
    totals, loss_total, weight_total = [None] * len(variables), 0.0, 0.0
    for k, pair in enumerate(micro_batches):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            _checks.fail("micro_batches", f"item {k} must be an (x, y) pair")
        x = tf.convert_to_tensor(pair[0])
        y = tf.convert_to_tensor(_labels(pair[1], "micro_batches"))
        if x.shape.rank != 2 or tuple(x.shape) != tuple(y.shape):
            _checks.fail("micro_batches", f"item {k}: x, y must be (batch, timesteps) alike")
        mask = tf.cast(x != PAD, "float32") if x.dtype.is_integer else tf.ones(tf.shape(y))
        tokens = float(tf.reduce_sum(mask))
        _checks.fail_if(tokens == 0, "micro_batches", f"item {k} holds only padding")
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            per_token = keras.losses.sparse_categorical_crossentropy(y, probabilities)
            summed = tf.reduce_sum(per_token * mask)
            loss = summed if weighting == "token" else summed / tokens
        grads = tape.gradient(loss, variables)
        totals = [add_gradients(t, g) for t, g in zip(totals, grads, strict=True)]
        loss_total += float(loss)
        weight_total += tokens if weighting == "token" else 1.0
    _checks.fail_if(weight_total == 0, "micro_batches", "is empty; pass at least one (x, y) pair")
    grads = [deduplicate(scale_gradient(g, 1.0 / weight_total)) for g in totals]
    return grads, loss_total / weight_total


@_checks.arguments(optimizer=keras.optimizers.Optimizer)
def accumulate_and_apply(model: keras.Model, micro_batches: Iterable[tuple],
                         optimizer: keras.optimizers.Optimizer, weighting: str = "batch"
                         ) -> float:
    """One optimizer update from the averaged gradients of several micro-batches.

    Returns the mean loss. See :func:`accumulated_gradients` for shapes and ``weighting``.
    """
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
        TypeError: bool or float tags in ``y_true``.
    """
    probabilities = _checks.array(probabilities, "probabilities", ndim=3)
    y_true = _checks.ids(y_true, "y_true", below=probabilities.shape[-1])  # bools refused
    mask = _checks.array(mask, "mask").astype(bool)
    if y_true.shape != mask.shape or probabilities.shape[:2] != y_true.shape:
        _checks.fail("probabilities", f"{probabilities.shape} does not fit {y_true.shape}")
    _checks.fail_if(not mask.any(), "mask", "selects no token; pass mask=x != 0")
    correct = np.argmax(probabilities, axis=-1) == y_true
    return float(correct[mask].mean())


@_checks.arguments(tag_names=_checks.strings, batch_size=_checks.count)
def predict_tags(model: keras.Model, x: np.ndarray, tag_names: Sequence[str],
                 batch_size: int = 256) -> list[list[str]]:
    """Most likely tag of every real token (id != 0), wherever the padding is.

    Args:
        model: a tagger with (batch, timesteps, num_tags) output.
        x: (n, timesteps) int token ids, 0 as padding (before or after the tokens).
        tag_names: id -> tag name (``num_tags`` of them).
        batch_size: examples per prediction batch (an int >= 1).

    Returns:
        ``n`` lists of tag names, one per real token, in order.

    Raises:
        ValueError: ``x`` not 2-D or with negative ids, a bad ``batch_size``, or a model
            with another number of tags.
    """
    x = _checks.ids(x, "x", ndim=2)
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    _checks.fail_if(probabilities.shape[-1] != len(tag_names), "tag_names", "differs from model")
    ids = np.argmax(probabilities, axis=-1)
    return [[tag_names[t] for t in row[real]] for row, real in zip(ids, x != PAD, strict=True)]


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


@_checks.arguments(true_tags=_checks.token_lists, predicted_tags=_checks.token_lists)
def _tag_lists(true_tags, predicted_tags) -> tuple[list[list[str]], list[list[str]]]:
    if list(map(len, true_tags)) != list(map(len, predicted_tags)):
        _checks.fail("predicted_tags", "must hold one tag per true tag, sentence by sentence")
    return true_tags, predicted_tags


def entity_scores(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
                  ) -> EntityScores:
    """Entity precision, recall and F1 (micro-averaged) with ``seqeval``, CoNLL rules.

    With no entity in either list every score is 0, as ``conlleval`` reports (``seqeval``'s
    report itself fails on that case).

    Args:
        true_tags, predicted_tags: one list of BIO tags per sentence, of equal lengths.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    true_tags, predicted_tags = _tag_lists(true_tags, predicted_tags)
    if all(tag == OUTSIDE for tags in (*true_tags, *predicted_tags) for tag in tags):
        return EntityScores(0.0, 0.0, 0.0, "no entity in true_tags or predicted_tags")
    kwargs = {"zero_division": 0}
    return EntityScores(
        precision=float(precision_score(true_tags, predicted_tags, **kwargs)),
        recall=float(recall_score(true_tags, predicted_tags, **kwargs)),
        f1=float(f1_score(true_tags, predicted_tags, **kwargs)),
        report=classification_report(true_tags, predicted_tags, digits=3, **kwargs),
    )


@_checks.arguments(tag=str)
def entity_type(tag: str) -> str:
    """``"B-person"`` -> ``"person"``; ``"O"`` -> ``"O"``."""
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
    true_tags, predicted_tags = _tag_lists(true_tags, predicted_tags)
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

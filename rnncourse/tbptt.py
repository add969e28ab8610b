"""Truncated backpropagation through time (TBPTT): stateful layers and an explicit-state loop.

Two ways to train a recurrent network on sequences too long for one backward pass:

1. **Stateful Keras layers.** :func:`stateful_batches` lays ``N`` sequences of length ``L``
   out as windows so that row ``i`` of batch ``j + 1`` continues row ``i`` of batch ``j``;
   a model built with ``stateful=True`` (:func:`rnncourse.models.char_lm`) carries the state
   from batch to batch, and :class:`ResetStateCallback` zeroes it every ``ceil(L / window)``
   batches, when a new group of sequences starts. Train with ``shuffle=False``
   (:func:`fit_stateful` does all of it).
2. **An explicit-state loop.** :class:`TBPTTTrainer` passes the recurrent state in and out
   of a ``tf.function`` train step as tensors, with ``tf.stop_gradient`` between windows. It
   implements BPTT(h; h') of Williams & Peng (1990): an update every ``window`` (h') steps,
   gradients flowing back ``depth`` (h >= h') steps. No stateful layer, so the batch size
   is free; any ``[x, *states] -> [y, *states]`` model and any loss work, and the losses it
   reports are in the loss's unit (nats for the default :func:`sequence_loss`).

:func:`convert` moves a trained character model between its three views: stateful (for
``fit`` on a window layout), explicit state (any batch size) and batch-1 inference;
:func:`bits_per_char` and :func:`generate` take any of them.

Tools for a character-level language model complete it: :func:`char_sequences` (a text as
consecutive next-character examples), :func:`bits_per_char`, :func:`unigram_entropy_bits`,
:func:`generate`. Models come from :mod:`rnncourse.models` (``char_lm``,
``state_char_lm``), vocabularies from :mod:`rnncourse.text` (``char_vocabulary``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, models
from rnncourse.config import quiet_tensorflow
from rnncourse.progress import progress
from rnncourse.text import CharVocabulary

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["char_sequences", "unigram_entropy_bits", "StatefulBatches", "stateful_batches",
           "reset_states", "ResetStateCallback", "fit_stateful", "predict_stateful",
           "VIEWS", "convert", "zero_state", "masked_cross_entropy", "sequence_loss",
           "run_windows", "TBPTTTrainer", "full_bptt_gradients", "bits_per_char", "generate"]

LN2 = math.log(2.0)


def _int_ids(value, argument: str, ndim: int | None = 2) -> np.ndarray:
    """Non-negative integer ids (``(batch, timesteps)`` unless ``ndim``) as int32."""
    return _checks.ids(value, argument, ndim=ndim).astype(np.int32)


def _check_id_range(model: keras.Model, inputs: np.ndarray, targets=None) -> None:
    """Refuse ids beyond the model's Embedding rows and target ids beyond its outputs.

    TensorFlow would fail deep inside the step on a CPU, and on a GPU an out-of-range
    embedding look-up silently returns zeros. Only a model with exactly one Embedding
    layer has its inputs checked; ``targets`` (integer class ids) are checked against the
    last dimension of the model's first output.
    """
    rows = [layer.input_dim for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    _checks.ids(inputs, "inputs", below=rows[0] if len(rows) == 1 else None)
    if targets is not None and targets.dtype.kind in "iu":
        _checks.ids(targets, "targets", below=model.outputs[0].shape[-1])


# --------------------------------------------------------------------------- text
@_checks.arguments(sequence_length=_checks.count)
def char_sequences(ids: np.ndarray, sequence_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a stream of ids into consecutive, non-overlapping next-character examples.

    Args:
        ids: ``(n,)`` int ids of the whole text.
        sequence_length: ``L``, characters per sequence.

    Returns:
        ``inputs`` ``(N, L)`` and ``targets`` ``(N, L)`` int32 with
        ``targets[i, t] == inputs[i, t + 1]`` and sequence ``i + 1`` continuing sequence ``i``;
        ``N = (n - 1) // L``.
    """
    ids = _int_ids(ids, "ids", ndim=None).reshape(-1)
    n = (len(ids) - 1) // sequence_length
    _checks.fail_if(n < 1, "ids", f"makes no sequence of {sequence_length} + 1")
    inputs = ids[: n * sequence_length].reshape(n, sequence_length)
    targets = ids[1: n * sequence_length + 1].reshape(n, sequence_length)
    return inputs, targets


@_checks.arguments(vocab_size=_checks.count)
def unigram_entropy_bits(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy in bits of the id frequencies: the bits/char of a model without context.

    ``ids`` any shape of ids in ``0 .. vocab_size - 1``.
    """
    flat = _checks.ids(ids, "ids", below=vocab_size).reshape(-1)
    _checks.fail_if(flat.size == 0, "ids", "is empty; pass the encoded text")
    counts = np.bincount(flat, minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


# --------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class StatefulBatches:
    """Windows laid out for a stateful model; see :func:`stateful_batches`.

    Attributes:
        inputs: ``(num_batches * batch_size, window, ...)`` windows, batch ``j`` is rows
            ``j * batch_size .. (j + 1) * batch_size - 1``.
        targets: same leading shape as ``inputs``.
        sample_weight: ``(num_batches * batch_size, window)`` float32, 1 on real steps,
            0 on filler sequences and on the padding of the last window.
        reset_every: batches per group of sequences, ``ceil(L / window)``: reset the state
            before batch ``j`` whenever ``j % reset_every == 0``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    sample_weight: np.ndarray
    batch_size: int
    window: int
    reset_every: int
    num_sequences: int
    sequence_length: int

    @property
    def num_batches(self) -> int:
        return len(self.inputs) // self.batch_size

    @property
    def num_filler(self) -> int:
        """Dummy sequences added so that ``batch_size`` divides the number of sequences."""
        return -self.num_sequences % self.batch_size

    def unstack(self, windows: np.ndarray) -> np.ndarray:
        """Undo the layout: ``(num_batches * batch_size, window, ...)`` -> ``(N, L, ...)``.

        Works on the layout's own arrays and on a model's per-window outputs alike.
        """
        windows = np.asarray(windows)
        b, w, k = self.batch_size, self.window, self.reset_every
        if windows.shape[:2] != (self.num_batches * b, w):
            _checks.fail("windows", f"must be ({self.num_batches * b}, {w}, ...) like inputs")
        groups = self.num_batches // k
        tail = windows.shape[2:]
        x = windows.reshape(groups, k, b, w, *tail)  # (group, window index, row, step, ...)
        x = np.moveaxis(x, 2, 1)  # (group, row, window index, step, ...)
        x = x.reshape(groups * b, k * w, *tail)
        return x[: self.num_sequences, : self.sequence_length]


@_checks.arguments(window=_checks.count, batch_size=_checks.count)
def stateful_batches(inputs: np.ndarray, targets: np.ndarray, window: int,
                     batch_size: int) -> StatefulBatches:
    """Arrange whole sequences as windows for a stateful RNN (row ``i`` continues row ``i``).

    Sequence ``g * batch_size + i`` occupies row ``i`` of batches
    ``g * k, ..., g * k + k - 1`` where ``k = ceil(L / window)``: its windows follow each other
    in *successive batches*, never inside one batch, because the rows of a batch run in
    parallel and cannot pass state to each other. Filler sequences (all zeros, weight 0)
    make the number of sequences a multiple of ``batch_size``; the last window of each
    sequence is zero-padded at its end (weight 0) when ``window`` does not divide ``L``.

    Args:
        inputs: ``(N, L)`` ids or ``(N, L, features)`` values.
        targets: ``(N, L)`` or ``(N, L, ...)``, aligned with ``inputs`` step by step.
        window: steps per window (the truncation length).
        batch_size: sequences processed side by side.

    Returns:
        A :class:`StatefulBatches`; feed ``inputs``, ``targets`` and ``sample_weight`` to
        ``fit(..., batch_size=batch_size, shuffle=False)`` with
        ``ResetStateCallback(reset_every)`` (:func:`fit_stateful`).
    """
    inputs, targets = _checks.array(inputs, "inputs"), _checks.array(targets, "targets")
    _checks.fail_if(inputs.ndim < 2 or 0 in inputs.shape[:2], "inputs", "must be (N, L, ...), no 0")
    _checks.fail_if(targets.shape[:2] != inputs.shape[:2], "targets", "must agree on (N, L)")
    n, length = inputs.shape[:2]
    k = -(-length // window)
    n_pad, l_pad = -n % batch_size, k * window - length
    groups = (n + n_pad) // batch_size
    weight = np.ones((n, length), np.float32)

    def arrange(a: np.ndarray) -> np.ndarray:
        pad = [(0, n_pad), (0, l_pad)] + [(0, 0)] * (a.ndim - 2)
        a = np.pad(a, pad)  # (N', k*w, ...)
        a = a.reshape(groups, batch_size, k, window, *a.shape[2:])
        a = np.moveaxis(a, 2, 1)  # (group, window index, row, step, ...)
        return np.ascontiguousarray(a.reshape(groups * k * batch_size, window, *a.shape[4:]))

    return StatefulBatches(arrange(inputs), arrange(targets), arrange(weight), batch_size,
                           window, k, n, length)


# --------------------------------------------------------------------------- stateful layers
@_checks.arguments(model=keras.layers.Layer)
def reset_states(model: keras.Model) -> int:
    """Zero the state of every stateful layer of ``model`` (Keras 3 ``layer.reset_state()``).

    Keras 3 models have no ``reset_states()``; this walks the layers (nested models and
    ``Bidirectional`` wrappers included). Returns how many layers were reset.
    """
    count = 0
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):  # a nested model: walk its layers too
            count += reset_states(layer)
        elif getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            layer.reset_state()
            count += 1
    return count


class ResetStateCallback(keras.callbacks.Callback):
    """Reset the stateful layers before every ``reset_every``-th batch of fit/evaluate/predict.

    With :func:`stateful_batches`' layout a new group of sequences starts at batch
    ``j`` whenever ``j % reset_every == 0``; forgetting the reset lets the end of one
    sequence leak into the start of an unrelated one. The layout also needs
    ``fit(..., shuffle=False)``, which Keras does not tell callbacks about:
    :func:`fit_stateful` passes it and refuses ``shuffle=True``.
    """

    @_checks.arguments(reset_every=_checks.count)
    def __init__(self, reset_every: int) -> None:
        super().__init__()
        self.reset_every = reset_every
        self.resets = 0

    def _maybe_reset(self, batch: int) -> None:
        if batch % self.reset_every == 0:
            reset_states(self.model)
            self.resets += 1

    def on_train_batch_begin(self, batch, logs=None):
        self._maybe_reset(batch)

    def on_test_batch_begin(self, batch, logs=None):
        self._maybe_reset(batch)

    def on_predict_batch_begin(self, batch, logs=None):
        self._maybe_reset(batch)


def _check_model_fits_layout(model: keras.Model, batches: StatefulBatches) -> None:
    batch, steps = tuple(model.inputs[0].shape[:2])
    if (batch, steps) != (batches.batch_size, steps and batches.window):
        _checks.fail("batches", f"(batch_size, window) do not fit the model's {batch, steps}")


_STEPS_IN_LOSS = {"mean_with_sample_weight": "real", "sum_over_batch_size": "all",
                  "mean": "all", "sum": "one"}


class _RealStepLoss(keras.callbacks.Callback):
    """The epoch's training loss per real step (token-weighted), and a progress bar.

    Keras' epoch ``loss`` is the mean of the batches' losses, each batch counting alike
    (its loss tracker weighs a batch by its rows, which are the same in every batch of a
    layout); a batch of filler rows and padded windows then counts as much as a full one.
    This callback recovers each batch's loss from the running mean Keras logs after every
    batch, turns it back into a sum over steps with the loss's reduction
    (``"mean_with_sample_weight"`` divides by the batch's real steps,
    ``"sum_over_batch_size"`` by all ``batch * window`` steps), and at the end of the epoch
    replaces ``logs["loss"]`` by that sum over the real steps of the epoch; Keras' own
    number stays as ``logs["batch_mean_loss"]``.
    """

    def __init__(self, real_steps: np.ndarray, all_steps: int, reduction: str,
                 desc: str) -> None:
        super().__init__()
        self.real_steps, self.all_steps = real_steps, all_steps
        self.reduction, self.desc = reduction, desc
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = progress(total=self.params.get("epochs"), desc=self.desc, unit="epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.mean, self.total = 0.0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])  # Keras' running mean over batches 0..batch
        loss = (batch + 1) * mean - batch * self.mean
        self.mean = mean
        steps = {"real": self.real_steps[batch], "all": self.all_steps, "one": 1.0}
        self.total += loss * steps[_STEPS_IN_LOSS[self.reduction]]

    def on_epoch_end(self, epoch, logs=None):
        logs["batch_mean_loss"] = logs["loss"]
        logs["loss"] = self.total / float(self.real_steps.sum())
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@_checks.arguments(model=keras.Model, batches=StatefulBatches, epochs=_checks.count)
def fit_stateful(model: keras.Model, batches: StatefulBatches, epochs: int = 1,
                 callbacks: Sequence[keras.callbacks.Callback] | None = None,
                 verbose: int = 0, shuffle: bool = False,
                 desc: str = "stateful fit") -> keras.callbacks.History:
    """``model.fit`` on a window layout: ``shuffle=False``, resets on the period, weights.

    ``model`` is a stateful model compiled with one loss (e.g.
    :func:`sequence_loss`) whose input batch size is ``batches.batch_size``. One
    ``fit`` call trains on ``batches.inputs``/``targets`` (``(num_batches * batch_size,
    window)``) with ``batches.sample_weight`` (0 on filler rows and padding), in order, with
    a :class:`ResetStateCallback`, and shows one progress bar over the epochs
    (``RNNCOURSE_PROGRESS=0`` hides it).

    Returns:
        Keras' ``History``. Its ``"loss"`` is each epoch's training loss per *real* step,
        in the loss's unit (nats per character for :func:`sequence_loss`): the batches'
        losses weighted by their real steps, so the filler-heavy batches of the last group
        count for what they hold. Keras' own epoch loss, the plain mean over batches, is
        ``"batch_mean_loss"``.

    Raises:
        ValueError: ``shuffle=True`` (it would feed every row a window of another
            sequence), a layout whose batch size or window the model was not built for,
            or a model compiled with ``steps_per_execution > 1`` (the resets happen
            between batches) or with a loss reduction other than ``"mean_with_sample_weight"``,
            ``"sum_over_batch_size"``, ``"mean"`` or ``"sum"``.
    """
    _check_model_fits_layout(model, batches)
    _checks.fail_if(shuffle, "shuffle", "must be False: rows would continue other sequences' state")
    # the resets happen between batches
    _checks.fail_if(model.steps_per_execution != 1, "model", "needs steps_per_execution=1")
    reduction = getattr(model.loss, "reduction", "sum_over_batch_size")  # Keras' default
    _checks.fail_if(reduction not in _STEPS_IN_LOSS, "model", f"has a {reduction!r} loss")
    real = batches.sample_weight.reshape(batches.num_batches, -1).sum(axis=1)
    loss = _RealStepLoss(real.astype(np.float64), batches.batch_size * batches.window,
                         reduction, desc)
    return model.fit(batches.inputs, batches.targets, sample_weight=batches.sample_weight,
                     batch_size=batches.batch_size, epochs=epochs, shuffle=False,
                     verbose=verbose,
                     callbacks=[ResetStateCallback(batches.reset_every), loss,
                                *(callbacks or [])])


@_checks.arguments(model=keras.Model, batches=StatefulBatches)
def predict_stateful(model: keras.Model, batches: StatefulBatches, reset: bool = True,
                     shuffle_seed: int | None = None) -> np.ndarray:
    """Per-window outputs of a stateful model, put back as ``(N, L, ...)``.

    The two pitfalls can be switched on to see what they do: ``reset=False`` leaves out
    :class:`ResetStateCallback`; ``shuffle_seed`` feeds the windows in a shuffled order
    (what ``fit(shuffle=True)`` does) and puts the outputs back in place afterwards.
    """
    _check_model_fits_layout(model, batches)
    callbacks = [ResetStateCallback(batches.reset_every)] if reset else []
    order = np.arange(len(batches.inputs))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)
    out = model.predict(batches.inputs[order], batch_size=batches.batch_size, verbose=0,
                        callbacks=callbacks)
    restored = np.empty_like(out)
    restored[order] = out
    return batches.unstack(restored)


# --------------------------------------------------------------------------- the three views
VIEWS = ("stateful", "explicit", "inference")
"""The views of a character model that :func:`convert` moves weights between."""


def _is_explicit(model: keras.Model) -> bool:
    """Whether ``model`` takes its state as inputs: ``[x, *states] -> [y, *states]``."""
    return len(model.inputs) >= 2


def _is_stateful(model: keras.Model) -> bool:
    return any(getattr(layer, "stateful", False) for layer in model.layers)


def _char_lm_sizes(model: keras.Model) -> dict | None:
    """The builder arguments of a :mod:`rnncourse.models` char LM, or ``None`` for others.

    A char LM has an ``Embedding`` called ``embedding``, an ``LSTM`` called ``lstm`` and a
    ``Dense`` called ``logits`` (the names :func:`rnncourse.models.char_lm` and
    :func:`rnncourse.models.state_char_lm` share).
    """
    layers = {layer.name: layer for layer in model.layers}
    kinds = {"embedding": keras.layers.Embedding, "lstm": keras.layers.LSTM,
             "logits": keras.layers.Dense}
    if not all(isinstance(layers.get(name), kind) for name, kind in kinds.items()):
        return None
    embedding, lstm = layers["embedding"], layers["lstm"]
    dropout = layers.get("dropout")
    return {"vocab_size": embedding.input_dim, "units": lstm.units,
            "embedding_dim": embedding.output_dim,
            "activation": lstm.get_config()["activation"],
            "dropout": dropout.rate if isinstance(dropout, keras.layers.Dropout) else 0.0}


def _stateful_clone(trained: keras.Model, batch_size: int) -> keras.Model:
    """Any one-input recurrent model, cloned on ``(batch_size, None, ...)`` and stateful."""
    if not any(isinstance(layer, keras.layers.RNN) for layer in trained.layers):
        _checks.fail("model", f"{trained.name!r} has no keras.layers.RNN to make stateful")
    spec = trained.inputs[0]
    inputs = keras.Input(batch_shape=(batch_size, None, *spec.shape[2:]), dtype=spec.dtype,
                         name=spec.name)

    def stateful_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, keras.layers.RNN):
            config["stateful"] = True
        return layer.__class__.from_config(config)

    model = keras.models.clone_model(trained, input_tensors=inputs,
                                     clone_function=stateful_layer)
    model.set_weights(trained.get_weights())  # RNN state variables are not weights
    return model


@_checks.arguments(model=keras.Model, to=VIEWS, batch_size=_checks.optional_count)
def convert(model: keras.Model, to: str, batch_size: int | None = None) -> keras.Model:
    """The same trained character model in another view, with the same weights.

    A character LM of :mod:`rnncourse.models` comes in three views that share their
    weights (layers ``embedding``, ``lstm``, ``logits``) and differ in who keeps the state:

    * ``"stateful"``: :func:`~rnncourse.models.char_lm` with ``stateful=True`` and a fixed
      ``batch_size`` (required), any number of steps per call; trained with
      :func:`fit_stateful` on a :func:`stateful_batches` layout;
    * ``"explicit"``: :func:`~rnncourse.models.state_char_lm`, ``[ids, h, c] -> [logits, h,
      c]`` with any batch size; trained with :class:`TBPTTTrainer` or a train step of your
      own, scored with :func:`run_windows`;
    * ``"inference"``: the stateful view with ``batch_size`` 1 (default), what
      :func:`generate` feeds one character at a time.

    ``model`` may be any of the three, or a plain ``char_lm`` (no state kept); the result
    is a new model (a ``Dropout`` rate of the source is kept where the target has one).
    For ``"stateful"`` and ``"inference"``, any other one-input recurrent model (GRU,
    ``Sequential``, ...) works too: it is cloned with every ``keras.layers.RNN`` made
    stateful (found by type, not by name).

    Args:
        model: the trained model.
        to: ``"stateful"``, ``"explicit"`` or ``"inference"``.
        batch_size: rows of the stateful views (``"inference"``: default 1); not taken by
            ``"explicit"``, which serves any batch size.

    Returns:
        An uncompiled ``keras.Model`` with ``model``'s weights; stateful views start from a
        zero state.
    """
    if (to == "explicit" and batch_size is not None) or (to == "stateful" and not batch_size):
        _checks.fail("batch_size", "is needed by the stateful view, not taken by the explicit")
    batch_size = 1 if to == "inference" and batch_size is None else batch_size
    sizes = _char_lm_sizes(model)
    if sizes is None:
        _checks.fail_if(to == "explicit" or _is_explicit(model), "model", "is not a char_lm")
        return _stateful_clone(model, batch_size)
    dropout = sizes.pop("dropout")
    if to == "explicit":
        target = models.state_char_lm(**sizes)
    else:
        target = models.char_lm(**sizes, batch_size=batch_size, stateful=True,
                                dropout=dropout)
    return models.copy_weights_by_name(model, target)


# --------------------------------------------------------------------------- explicit loop
@_checks.arguments(batch_size=_checks.count, units=_checks.count)
def zero_state(batch_size: int, units: int) -> tuple[tf.Tensor, tf.Tensor]:
    """An LSTM's ``(h, c)`` zeros, each ``(batch_size, units)`` float32."""
    return tf.zeros((batch_size, units)), tf.zeros((batch_size, units))


def masked_cross_entropy(targets, logits, weights) -> tf.Tensor:
    """Mean cross-entropy in nats over steps with weight > 0 (0 when there are none).

    ``targets`` ``(batch, timesteps)`` int, ``logits`` ``(batch, timesteps, vocab)``,
    ``weights`` ``(batch, timesteps)`` float32: ``sum(ce * w) / sum(w)``. The same number as
    Keras 3's ``SparseCategoricalCrossentropy(from_logits=True,
    reduction="mean_with_sample_weight")`` (:func:`sequence_loss`).
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, tf.int32), logits)
    weights = tf.cast(weights, ce.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(ce * weights), tf.reduce_sum(weights))


def sequence_loss() -> keras.losses.Loss:
    """Per-step cross-entropy on logits, averaged over the steps with weight > 0.

    Keras 3 dropped ``sample_weight_mode="temporal"``: pass a 2-D ``(batch, timesteps)``
    ``sample_weight`` instead. Its default reduction (``"sum_over_batch_size"``) then
    divides by *all* ``batch * timesteps`` steps, zero-weight padding included;
    ``reduction="mean_with_sample_weight"`` (Keras >= 3.x, checked on 3.15) divides by the
    sum of the weights, the mean over real steps.
    """
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")


@_checks.arguments(model=keras.Model)
def _state_inputs(model: keras.Model) -> list[tuple[int, ...]]:
    """The state shapes of an explicit-state model ``[x, *states] -> [y, *states]``."""
    ins, outs = list(model.inputs), list(model.outputs)
    shapes = [tuple(s.shape[1:]) for s in ins[1:]]
    if len(ins) < 2 or shapes != [tuple(s.shape[1:]) for s in outs[1:]] or any(
            None in shape for shape in shapes):  # see convert(model, to="explicit")
        _checks.fail("model", "must map [x, *states] to [y, *states] of fixed shapes")
    return shapes


def _initial_states(shapes, batch_size: int) -> tuple[tf.Tensor, ...]:
    return tuple(tf.zeros((batch_size, *shape)) for shape in shapes)


@_checks.arguments(window=_checks.count)
def run_windows(model: keras.Model, inputs: np.ndarray, window: int,
                state=None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Forward an explicit-state model window by window, carrying the state as tensors.

    Args:
        model: ``[ids, *states] -> [logits, *states]`` (e.g.
            :func:`rnncourse.models.state_char_lm`).
        inputs: ``(batch, L)`` ids; any batch size.
        window: steps per call.
        state: initial states (e.g. ``(h, c)``, each ``(batch, units)``); zeros when ``None``.

    Returns:
        logits ``(batch, L, vocab)`` and the final states, each ``(batch, units)``; the
        states can be passed back as ``state`` to continue the same sequences.

    Raises:
        ValueError: ids the model's Embedding has no row for, a ``window`` that is not a
            positive int, or ``state`` of other shapes than the model's states.
    """
    shapes = _state_inputs(model)
    inputs = _int_ids(inputs, "inputs")
    _check_id_range(model, inputs)
    if state is not None:
        states = tuple(tf.convert_to_tensor(s, dtype=spec.dtype)
                       for s, spec in zip(state, model.inputs[1:], strict=False))
        expected = [(len(inputs), *shape) for shape in shapes]
        if len(tuple(state)) != len(shapes) or [tuple(s.shape) for s in states] != expected:
            _checks.fail("state", f"must be {len(shapes)} arrays of shapes {expected}")
    else:
        states = _initial_states(shapes, len(inputs))
    outs = []
    for start in range(0, inputs.shape[1], window):
        x = tf.constant(inputs[:, start: start + window])
        outputs, *states = model([x, *states], training=False)
        outs.append(np.asarray(outputs))
    return np.concatenate(outs, axis=1), tuple(np.asarray(s) for s in states)


LossFunction = Callable[..., tf.Tensor]


class TBPTTTrainer:
    """Truncated BPTT with explicit state tensors: BPTT(h; h') of Williams & Peng (1990).

    Every ``window`` (h') steps the trainer makes one update whose loss covers those
    ``window`` steps and whose gradient flows back ``depth`` (h) steps, through the current
    window and the ``depth / window - 1`` windows before it. The state entering the oldest
    window is a constant (``tf.stop_gradient``); nothing is stateful, so any batch size
    works and the state is a tuple of tensors the loop hands from step to step.

    ``depth == window`` is the common TBPTT (one backward pass per window); ``depth ==
    window == L`` is full BPTT.

    Args:
        model: ``[inputs, *states] -> [outputs, *states]``, e.g.
            :func:`rnncourse.models.state_char_lm` (``[ids, h, c] -> [logits, h, c]``); the
            states are found from the model's extra inputs, whatever the cell.
        optimizer: a Keras optimizer (e.g. ``Adam(1e-2, clipnorm=1.0)``).
        window: h', steps between updates.
        depth: h, steps the gradient flows back; a multiple of ``window``; default ``window``.
        loss: ``loss(targets, outputs, sample_weight) -> scalar``, e.g. any Keras loss;
            default :func:`sequence_loss` (cross-entropy on logits, mean over real steps).
            Every loss the trainer reports is in this loss's unit (nats for the default).
    """

    @_checks.arguments(window=_checks.count, depth=_checks.optional_count,
                       optimizer=keras.optimizers.Optimizer, loss=_checks.optional(Callable))
    def __init__(self, model: keras.Model, optimizer, window: int,
                 depth: int | None = None, loss: LossFunction | None = None) -> None:
        self._shapes = _state_inputs(model)
        depth = window if depth is None else depth
        _checks.fail_if(depth % window, "depth", f"must be a multiple of window={window}")
        self.model, self.optimizer = model, optimizer
        self.window, self.depth = window, depth
        self.loss = loss if loss is not None else sequence_loss()
        self._class_targets = loss is None  # the default loss takes class-id targets
        optimizer.build(model.trainable_variables)
        self._functions: dict[tuple, Callable] = {}

    def _function(self, span: bool, apply: bool, targets: np.ndarray) -> Callable:
        """The compiled update, traced once: any batch size, any number of windows.

        Its input signature leaves the batch and the time dimension open, so neither a
        last batch of another size nor an update reaching back over more windows traces it
        again (a retrace costs seconds and TensorFlow warns after five). One function per
        kind of update (one window; a first window and the rest), per ``apply`` and per
        kind of targets.
        """
        key = (span, apply, targets.dtype.str, targets.shape[2:])
        if key not in self._functions:
            ids = tf.TensorSpec((None, None), tf.int32)
            states = tuple(tf.TensorSpec((None, *shape), spec.dtype)
                           for shape, spec in zip(self._shapes, self.model.inputs[1:],
                                                  strict=True))
            signature = [tf.TensorSpec((None, self.window), tf.int32), *[ids] * span,
                         tf.TensorSpec((None, None, *targets.shape[2:]), targets.dtype),
                         tf.TensorSpec((None, None), tf.float32), states]
            if span:
                def update(first, rest, y, w, states):
                    return self._update(first, rest, y, w, states, apply)
            else:
                def update(first, y, w, states):
                    return self._update(first, None, y, w, states, apply)
            self._functions[key] = tf.function(update, input_signature=signature)
        return self._functions[key]

    # One update on the windows x[:, 0..n-1] from the states; loss on the last window only.
    def _update(self, first, rest, y, w, states, apply):
        states = tuple(tf.stop_gradient(s) for s in states)  # truncation: h steps back
        with tf.GradientTape() as tape:
            outputs, *after_first = self.model([first, *states], training=True)
            last = after_first
            if rest is not None:  # the later windows, from the state after the first
                outputs, *last = self.model([rest, *after_first], training=True)
            loss = self.loss(y[:, -self.window:], outputs[:, -self.window:],
                             sample_weight=w[:, -self.window:])
        grads = tape.gradient(loss, self.model.trainable_variables)
        if apply:
            self.optimizer.apply(grads, self.model.trainable_variables)
        return loss, grads, tuple(after_first), tuple(last)

    def gradients(self, inputs, targets, weights=None) -> list[list[np.ndarray]]:
        """Gradients of each update over one batch of sequences, without applying them.

        Returns a list (one entry per update) of lists of gradient arrays, in the order of
        ``model.trainable_variables``; used to check TBPTT against full BPTT.
        """
        out = []
        for _, grads, _, _ in self._updates(inputs, targets, weights, apply=False):
            out.append([np.asarray(tf.convert_to_tensor(g)) for g in grads])
        return out

    def train_on_sequences(self, inputs, targets, weights=None) -> float:
        """Run all windows of ``(batch, L)`` sequences from a zero state; mean loss.

        ``L`` need not be a multiple of ``window``: the last window is padded at its end
        with weight 0 (the padding comes after every real step, so it changes nothing they
        compute). Returns the updates' losses averaged with their real steps (the sum of
        their weights) as weights, in the loss's unit (nats for the default
        :func:`sequence_loss`); 0.0 when no step has weight.
        """
        total = count = 0.0
        for loss, _, _, real in self._updates(inputs, targets, weights):
            total += float(loss) * real
            count += real
        return total / count if count else 0.0

    def _arrays(self, inputs, targets, weights):
        inputs = _int_ids(inputs, "inputs")
        targets = np.asarray(targets)
        _checks.fail_if(0 in inputs.shape, "inputs", "holds no step of a sequence")
        _checks.fail_if(targets.shape[:2] != inputs.shape, "targets", "must start with (N, L)")
        weights = np.ones(inputs.shape, np.float32) if weights is None else weights
        weights = np.asarray(weights, np.float32)
        if weights.shape != inputs.shape or not (np.isfinite(weights) & (weights >= 0)).all():
            _checks.fail("weights", "must be >= 0, one weight per step of inputs")
        _check_id_range(self.model, inputs, targets if self._class_targets else None)
        pad = -inputs.shape[1] % self.window
        if pad:  # zero-weight padding after the last real step of every sequence
            inputs = np.pad(inputs, [(0, 0), (0, pad)])
            targets = np.pad(targets, [(0, 0), (0, pad)] + [(0, 0)] * (targets.ndim - 2))
            weights = np.pad(weights, [(0, 0), (0, pad)])
        return inputs, targets, weights

    def _updates(self, inputs, targets, weights=None, apply=True):
        inputs, targets, weights = self._arrays(inputs, targets, weights)
        length, w, m = inputs.shape[1], self.window, self.depth // self.window
        state = _initial_states(self._shapes, len(inputs))
        oldest = 0  # index of the oldest window inside the gradient's reach
        first = state  # state after the oldest window, set by each update
        for k in range(length // w):
            lo = max(0, k - m + 1)
            if lo > oldest:
                state, oldest = first, lo  # the state after the window that drops out
            sl = slice(lo * w, (k + 1) * w)
            head = tf.constant(inputs[:, lo * w: (lo + 1) * w])
            y, weight = tf.constant(targets[:, sl]), tf.constant(weights[:, sl])
            real = float(weights[:, k * w: (k + 1) * w].sum())  # weight of this update's loss
            update = self._function(k > lo, apply, targets)
            if k == lo:
                loss, grads, first, last = update(head, y, weight, state)
            else:
                rest = tf.constant(inputs[:, (lo + 1) * w: (k + 1) * w])
                loss, grads, first, last = update(head, rest, y, weight, state)
            yield loss, grads, last, real

    @_checks.arguments(batch_size=_checks.count, epochs=_checks.count)
    def fit(self, inputs, targets, batch_size: int, epochs: int = 1, weights=None,
            seed: int = 0, shuffle: bool = True, desc: str = "TBPTT epochs") -> list[float]:
        """Train on ``(N, L)`` sequences in mini-batches of whole sequences.

        Each batch starts from a zero state and walks its windows in order; the order of
        the *sequences* is shuffled each epoch (``seed``), the order of windows never. Every
        sequence is used every epoch: when ``batch_size`` does not divide ``N`` (``N`` may
        be smaller than ``batch_size``) the last batch is completed with zero-weight filler
        rows, which add nothing to the loss or the gradient.

        Returns:
            The mean training loss per epoch over the real steps, in the loss's unit (nats
            for the default :func:`sequence_loss`; divide by ``ln 2`` for bits per
            character).

        Raises:
            TypeError: non-integer ``inputs``.
            ValueError: ``targets``/``weights`` whose shape differs from ``inputs``, NaN or
                negative ``weights``, ids beyond the model's Embedding rows or (default
                loss) target ids beyond its outputs, or a size that is not a positive int.
        """
        inputs, targets, weights = self._arrays(inputs, targets, weights)
        n = len(inputs)
        rng = np.random.default_rng(seed)
        history = []
        bar = progress(range(epochs), desc=desc, unit="epoch")
        for _ in bar:
            order = rng.permutation(n) if shuffle else np.arange(n)
            order = np.concatenate([order, np.full(-n % batch_size, -1)])  # -1: filler
            total, count = 0.0, 0.0
            for start in range(0, len(order), batch_size):
                rows = order[start: start + batch_size]
                real = rows >= 0
                w = np.where(real[:, None], weights[np.maximum(rows, 0)], 0.0)
                loss = self.train_on_sequences(inputs[np.maximum(rows, 0)],
                                               targets[np.maximum(rows, 0)], w)
                total += loss * float(w.sum())
                count += float(w.sum())
            history.append(total / count if count else 0.0)
            bar.set_postfix(loss=f"{history[-1]:.3f}")
        return history


@_checks.arguments(last=_checks.optional_count)
def full_bptt_gradients(model: keras.Model, inputs, targets, weights=None,
                        last: int | None = None,
                        loss: LossFunction | None = None) -> list[np.ndarray]:
    """Gradients of ``loss`` over whole sequences with full BPTT (reference for TBPTT).

    ``model`` as for :class:`TBPTTTrainer`; ``inputs``/``targets`` ``(batch, L)``;
    ``last`` restricts the loss to the last ``last`` steps (the gradient still flows back
    through all of them). Returns arrays in the order of ``model.trainable_variables``.
    """
    shapes = _state_inputs(model)
    inputs = _int_ids(inputs, "inputs")
    weights = np.ones(inputs.shape, np.float32) if weights is None else np.asarray(weights)
    last = inputs.shape[1] if last is None else last
    loss_fn = loss if loss is not None else sequence_loss()
    states = _initial_states(shapes, len(inputs))
    with tf.GradientTape() as tape:
        outputs, *_ = model([tf.constant(inputs), *states], training=True)
        value = loss_fn(np.asarray(targets)[:, -last:], outputs[:, -last:],
                        sample_weight=weights[:, -last:])
    grads = tape.gradient(value, model.trainable_variables)
    return [np.asarray(tf.convert_to_tensor(g)) for g in grads]  # Embedding: IndexedSlices


@_checks.arguments(model=keras.Model, batch_size=_checks.count)
def bits_per_char(model: keras.Model, inputs, targets, window: int = 200,
                  batch_size: int = 256) -> float:
    """Bits per character of a char LM on held-out text, in any of its views.

    ``model``: the explicit view ``[ids, *states] -> [logits, *states]``
    (:func:`rnncourse.models.state_char_lm`), or a stateful, batch-1 or plain
    :func:`rnncourse.models.char_lm`, which is scored through its explicit view
    (:func:`convert`) and left untouched. Each ``(N, L)`` sequence of ``inputs`` is run from
    a zero state, ``window`` steps at a time, ``batch_size`` sequences side by side;
    ``targets`` ``(N, L)`` ids.
    """
    inputs, targets = _int_ids(inputs, "inputs"), _int_ids(targets, "targets")
    if inputs.shape != targets.shape or len(inputs) == 0:
        _checks.fail("targets", f"{targets.shape} and inputs {inputs.shape} differ or are empty")
    if not _is_explicit(model):
        model = convert(model, "explicit")
    _check_id_range(model, inputs, targets)
    total, count = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start: start + batch_size], targets[start: start + batch_size]
        logits, _ = run_windows(model, x, window)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        total += float(tf.reduce_sum(ce))
        count += y.size
    return total / count / LN2


@_checks.arguments(model=keras.Model, prompt=str, length=_checks.natural,
                   temperature=_checks.number)
def generate(model: keras.Model, vocab: CharVocabulary, prompt: str, length: int,
             temperature: float = 0.8, seed: int = 0) -> str:
    """Sample ``length`` characters after ``prompt`` from a char LM in any of its views.

    The model reads the prompt from a zero state, then each sampled character is fed back
    in, one step per call. The explicit view (``[ids, *states] -> [logits, *states]``) gets
    the state handed in and out; a batch-1 stateful model (:func:`convert` ``to=
    "inference"``) is reset and used as it is; any other view (the stateful training
    model, a plain ``char_lm``) is converted to a batch-1 model first.
    """
    _checks.fail_if(not prompt, "prompt", "is empty; give at least one character")
    _checks.fail_if(model.outputs[0].shape[-1] != len(vocab), "vocab", "differs from the model's")
    if _is_explicit(model):
        states = _initial_states(_state_inputs(model), 1)

        def step(ids: np.ndarray) -> np.ndarray:
            nonlocal states
            logits, *states = model([tf.constant(ids), *states], training=False)
            return np.asarray(logits)[0, -1]
    else:
        if not (_is_stateful(model) and model.inputs[0].shape[0] == 1):
            model = convert(model, "inference")
        reset_states(model)

        def step(ids: np.ndarray) -> np.ndarray:
            return np.asarray(model(ids, training=False))[0, -1]

    rng = np.random.default_rng(seed)
    logits = step(vocab.encode(prompt)[None, :].astype(np.int32))
    out = []
    for _ in range(length):
        z = logits.astype(np.float64) / temperature
        p = np.exp(z - z.max())
        nxt = int(rng.choice(len(p), p=p / p.sum()))
        out.append(vocab.chars[nxt])
        logits = step(np.array([[nxt]], np.int32))
    return "".join(out)

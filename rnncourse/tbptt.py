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

:func:`inference_model` turns a trained one-input model into a stateful one with another
batch size (batch 1 for generation), finding its recurrent layers by type.

Tools for a character-level language model complete it: :func:`char_sequences` (a text as
consecutive next-character examples), :func:`bits_per_char`, :func:`unigram_entropy_bits`,
:func:`generate`. Models come from :mod:`rnncourse.models` (``char_lm``,
``state_char_lm``), vocabularies from :mod:`rnncourse.text` (``char_vocabulary``).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse.config import quiet_tensorflow
from rnncourse.progress import progress
from rnncourse.text import CharVocabulary

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["char_sequences", "unigram_entropy_bits", "StatefulBatches", "stateful_batches",
           "reset_states", "ResetStateCallback", "fit_stateful", "predict_stateful",
           "inference_model", "zero_state", "masked_cross_entropy", "sequence_loss",
           "run_windows", "TBPTTTrainer", "full_bptt_gradients", "bits_per_char", "generate"]

LN2 = math.log(2.0)


def _check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_ids(name: str, ids, ndim: int | None = 2) -> np.ndarray:
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids, got dtype {array.dtype}; encode text "
                        "with rnncourse.text.char_vocabulary(text).encode(...)")
    if ndim is not None and array.ndim != ndim:
        shape = "(batch, timesteps)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{name} must be {shape} ids, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} holds negative ids (smallest {int(array.min())}); ids start "
                         "at 0")
    return array.astype(np.int32)


def _check_id_range(model: keras.Model, inputs: np.ndarray, targets=None) -> None:
    """Refuse ids beyond the model's Embedding rows and target ids beyond its outputs.

    TensorFlow would fail deep inside the step on a CPU, and on a GPU an out-of-range
    embedding look-up silently returns zeros. Only a model with exactly one Embedding
    layer has its inputs checked; ``targets`` (integer class ids) are checked against the
    last dimension of the model's first output.
    """
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if len(embeddings) == 1 and inputs.size and int(inputs.max()) >= embeddings[0].input_dim:
        rows = embeddings[0].input_dim
        raise ValueError(f"inputs hold the id {int(inputs.max())} but the model's Embedding has "
                         f"{rows} rows (ids 0..{rows - 1}); encode with the vocabulary the "
                         "model was built for (vocab_size=len(vocab))")
    classes = model.outputs[0].shape[-1]
    if targets is not None and classes is not None and targets.size and \
            np.asarray(targets).dtype.kind in "iu" and not 0 <= int(targets.min()) <= \
            int(targets.max()) < classes:
        raise ValueError(f"targets hold ids {int(targets.min())}..{int(targets.max())} but the "
                         f"model predicts {classes} classes (ids 0..{classes - 1}); encode "
                         "targets with the same vocabulary as the inputs")


# --------------------------------------------------------------------------- text
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
    ids = _check_ids("ids", ids, ndim=None).reshape(-1)
    sequence_length = _check_count("sequence_length", sequence_length)
    n = (len(ids) - 1) // sequence_length
    if n < 1:
        raise ValueError(f"{len(ids)} ids are too few for one sequence of {sequence_length} "
                         "plus its target; use more text or a shorter sequence_length")
    inputs = ids[: n * sequence_length].reshape(n, sequence_length)
    targets = ids[1: n * sequence_length + 1].reshape(n, sequence_length)
    return inputs, targets


def unigram_entropy_bits(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy in bits of the id frequencies: the bits/char of a model without context.

    ``ids`` any shape of ids in ``0 .. vocab_size - 1``.
    """
    flat = _check_ids("ids", ids, ndim=None).reshape(-1)
    vocab_size = _check_count("vocab_size", vocab_size)
    if flat.size == 0:
        raise ValueError("ids is empty; pass the encoded text")
    if flat.max() >= vocab_size:
        raise ValueError(f"ids go up to {int(flat.max())} but vocab_size={vocab_size}; pass "
                         "len(vocabulary)")
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
            raise ValueError(f"windows must be ({self.num_batches * b}, {w}, ...), the shape "
                             f"of this layout's inputs; got {windows.shape}")
        groups = self.num_batches // k
        tail = windows.shape[2:]
        x = windows.reshape(groups, k, b, w, *tail)  # (group, window index, row, step, ...)
        x = np.moveaxis(x, 2, 1)  # (group, row, window index, step, ...)
        x = x.reshape(groups * b, k * w, *tail)
        return x[: self.num_sequences, : self.sequence_length]


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
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim < 2 or len(inputs) == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs must be (N, L[, features]) with N, L >= 1, got shape "
                         f"{inputs.shape}; stack your sequences first")
    if targets.ndim < 2 or targets.shape[:2] != inputs.shape[:2]:
        raise ValueError(f"targets {targets.shape[:2]} and inputs {inputs.shape[:2]} must agree "
                         "on (N, L); shift them before laying out windows")
    window = _check_count("window", window)
    batch_size = _check_count("batch_size", batch_size)
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
def reset_states(model: keras.Model) -> int:
    """Zero the state of every stateful layer of ``model`` (Keras 3 ``layer.reset_state()``).

    Keras 3 models have no ``reset_states()``; this walks the layers (nested models and
    ``Bidirectional`` wrappers included). Returns how many layers were reset.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a Keras model or layer, got {type(model).__name__}")
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
    ``fit(..., shuffle=False)``: the callback warns when it finds ``fit`` shuffling.
    """

    def __init__(self, reset_every: int) -> None:
        super().__init__()
        self.reset_every = _check_count("reset_every", reset_every)
        self.resets = 0

    def _maybe_reset(self, batch: int) -> None:
        if batch % self.reset_every == 0:
            reset_states(self.model)
            self.resets += 1

    def on_train_begin(self, logs=None):
        if _fit_shuffles():
            warnings.warn("ResetStateCallback with fit(shuffle=True): the windows of a "
                          "stateful layout run in a shuffled order, so every row continues "
                          "an unrelated window; pass shuffle=False (tbptt.fit_stateful does)",
                          UserWarning, stacklevel=2)

    def on_train_batch_begin(self, batch, logs=None):
        self._maybe_reset(batch)

    def on_test_batch_begin(self, batch, logs=None):
        self._maybe_reset(batch)

    def on_predict_batch_begin(self, batch, logs=None):
        self._maybe_reset(batch)


def _fit_shuffles() -> bool:
    """Whether the Keras ``fit`` that is running was called with ``shuffle=True``.

    Keras does not hand ``shuffle`` to callbacks; the ``fit`` frame on the call stack has it.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            code = frame.f_code
            if code.co_name == "fit" and "shuffle" in frame.f_locals and \
                    "keras" in code.co_filename:
                return bool(frame.f_locals["shuffle"])
            frame = frame.f_back
    finally:
        del frame
    return False


def _check_model_fits_layout(model: keras.Model, batches: StatefulBatches) -> None:
    batch, steps = tuple(model.inputs[0].shape[:2])
    if batch != batches.batch_size:
        raise ValueError(f"model was built for batch {batch}, layout has "
                         f"batch_size={batches.batch_size}; build both with the same size")
    if steps is not None and steps != batches.window:
        raise ValueError(f"model takes windows of {steps} steps, layout has "
                         f"window={batches.window}; lay out with stateful_batches(..., "
                         f"window={steps}) or build the model with window=None")


def fit_stateful(model: keras.Model, batches: StatefulBatches, epochs: int = 1,
                 callbacks: Sequence[keras.callbacks.Callback] | None = None,
                 verbose: int = 0) -> keras.callbacks.History:
    """``model.fit`` on a window layout: ``shuffle=False``, resets on the period, weights.

    ``model`` is a compiled stateful model whose input batch size is
    ``batches.batch_size``; returns Keras' ``History``.
    """
    if not isinstance(batches, StatefulBatches):
        raise TypeError("batches must be a StatefulBatches from tbptt.stateful_batches(...)")
    epochs = _check_count("epochs", epochs)
    _check_model_fits_layout(model, batches)
    return model.fit(batches.inputs, batches.targets, sample_weight=batches.sample_weight,
                     batch_size=batches.batch_size, epochs=epochs, shuffle=False,
                     verbose=verbose,
                     callbacks=[ResetStateCallback(batches.reset_every), *(callbacks or [])])


def predict_stateful(model: keras.Model, batches: StatefulBatches, reset: bool = True,
                     shuffle_seed: int | None = None) -> np.ndarray:
    """Per-window outputs of a stateful model, put back as ``(N, L, ...)``.

    The two pitfalls can be switched on to see what they do: ``reset=False`` leaves out
    :class:`ResetStateCallback`; ``shuffle_seed`` feeds the windows in a shuffled order
    (what ``fit(shuffle=True)`` does) and puts the outputs back in place afterwards.
    """
    if not isinstance(batches, StatefulBatches):
        raise TypeError("batches must be a StatefulBatches from tbptt.stateful_batches(...)")
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


def inference_model(trained: keras.Model, batch_size: int = 1) -> keras.Model:
    """A stateful copy of a trained recurrent model, with its own batch size.

    Solves "trained stateful with batch 32, must generate with batch 1": the batch size is
    part of a stateful model's input shape (and of its state variables), so clone the model
    on a ``(batch_size, None, ...)`` input, make every recurrent layer (any
    ``keras.layers.RNN``: LSTM, GRU, SimpleRNN, found by type, not by name) stateful, and
    copy the weights in (they do not depend on the batch). ``trained`` is a one-input
    Functional or Sequential model, stateful or not (e.g. :func:`rnncourse.models.char_lm`);
    the copy takes any number of steps per call.
    """
    batch_size = _check_count("batch_size", batch_size)
    if not isinstance(trained, keras.Model) or len(trained.inputs) != 1:
        raise ValueError("inference_model needs a one-input Keras model such as "
                         "models.char_lm; an explicit-state model ([ids, *states]) takes any "
                         "batch size already: call it with tbptt.run_windows")
    if not any(isinstance(layer, keras.layers.RNN) for layer in trained.layers):
        raise ValueError(f"model {trained.name!r} has no recurrent layer (keras.layers.RNN) "
                         "to make stateful")
    spec = trained.inputs[0]
    inputs = keras.Input(batch_shape=(batch_size, None, *spec.shape[2:]), dtype=spec.dtype,
                         name=spec.name)

    def stateful_clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, keras.layers.RNN):
            config["stateful"] = True
        return layer.__class__.from_config(config)

    model = keras.models.clone_model(trained, input_tensors=inputs,
                                     clone_function=stateful_clone)
    model.set_weights(trained.get_weights())  # RNN state variables are not weights
    return model


# --------------------------------------------------------------------------- explicit loop
def zero_state(batch_size: int, units: int) -> tuple[tf.Tensor, tf.Tensor]:
    """An LSTM's ``(h, c)`` zeros, each ``(batch_size, units)`` float32."""
    batch_size, units = _check_count("batch_size", batch_size), _check_count("units", units)
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


def _state_inputs(model: keras.Model) -> list[tuple[int, ...]]:
    """The state shapes of an explicit-state model ``[x, *states] -> [y, *states]``."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    ins, outs = list(model.inputs), list(model.outputs)
    if len(ins) < 2 or len(outs) != len(ins):
        raise ValueError(f"model {model.name!r} must map [inputs, *states] to [outputs, "
                         f"*states] (got {len(ins)} inputs, {len(outs)} outputs); build it "
                         "with rnncourse.models.state_char_lm or an RNN with "
                         "return_state=True and initial_state=[...] inputs")
    shapes = []
    for i, (state_in, state_out) in enumerate(zip(ins[1:], outs[1:], strict=True), 1):
        shape = tuple(state_in.shape[1:])
        if None in shape or shape != tuple(state_out.shape[1:]):
            raise ValueError(f"state {i} of model {model.name!r} has input shape "
                             f"{state_in.shape} and output shape {state_out.shape}; each "
                             "state must go out with the fixed shape it came in with")
        shapes.append(shape)
    return shapes


def _initial_states(shapes, batch_size: int) -> tuple[tf.Tensor, ...]:
    return tuple(tf.zeros((batch_size, *shape)) for shape in shapes)


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
    inputs = _check_ids("inputs", inputs)
    window = _check_count("window", window)
    _check_id_range(model, inputs)
    if state is not None:
        states = tuple(tf.convert_to_tensor(s, dtype=spec.dtype)
                       for s, spec in zip(state, model.inputs[1:], strict=False))
        expected = [(len(inputs), *shape) for shape in shapes]
        if len(tuple(state)) != len(shapes) or [tuple(s.shape) for s in states] != expected:
            raise ValueError(f"state must be {len(shapes)} arrays of shapes {expected}, got "
                             f"{[tuple(np.shape(s)) for s in state]}; pass the states "
                             "run_windows returned for these sequences, or None for zeros")
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

    def __init__(self, model: keras.Model, optimizer, window: int,
                 depth: int | None = None, loss: LossFunction | None = None) -> None:
        self._shapes = _state_inputs(model)
        window = _check_count("window", window)
        depth = window if depth is None else _check_count("depth", depth)
        if depth < window or depth % window:
            raise ValueError(f"need depth >= window with depth a multiple of window "
                             f"(BPTT(h; h') with h' <= h), got window={window}, depth={depth}")
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(f"optimizer must be a keras.optimizers.Optimizer, got "
                            f"{type(optimizer).__name__}; e.g. keras.optimizers.Adam(1e-3)")
        if loss is not None and not callable(loss):
            raise TypeError(f"loss must be callable (targets, outputs, sample_weight), got "
                            f"{type(loss).__name__}")
        self.model, self.optimizer = model, optimizer
        self.window, self.depth = window, depth
        self.loss = loss if loss is not None else sequence_loss()
        self._class_targets = loss is None  # the default loss takes class-id targets
        optimizer.build(model.trainable_variables)
        self._step = tf.function(self._step_impl)
        self._grads = tf.function(self._grads_impl)

    # One update: windows x[:, 0..n-1] from the states; loss on the last window only.
    def _loss_and_states(self, x, y, w, states):
        states = tuple(tf.stop_gradient(s) for s in states)
        n = x.shape[1] // self.window
        first = states
        for i in range(n):
            sl = slice(i * self.window, (i + 1) * self.window)
            outputs, *states = self.model([tf.convert_to_tensor(x[:, sl]), *states],
                                          training=True)
            if i == 0:
                first = tuple(states)
        loss = self.loss(y[:, -self.window:], outputs[:, -self.window:],
                         sample_weight=w[:, -self.window:])
        return loss, first, tuple(states)

    def _grads_impl(self, x, y, w, states):
        with tf.GradientTape() as tape:
            loss, first, last = self._loss_and_states(x, y, w, states)
        grads = tape.gradient(loss, self.model.trainable_variables)
        return loss, grads, first, last

    def _step_impl(self, x, y, w, states):
        loss, grads, first, last = self._grads_impl(x, y, w, states)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return loss, first, last

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
        inputs = _check_ids("inputs", inputs)
        targets = np.asarray(targets)
        if targets.shape[:2] != inputs.shape:
            raise ValueError(f"targets {targets.shape} must start with the (batch, L) "
                             f"{inputs.shape} of inputs; shift them by one step, don't cut")
        if len(inputs) == 0 or inputs.shape[1] == 0:
            raise ValueError(f"inputs must hold at least one step of one sequence, got shape "
                             f"{inputs.shape}")
        if weights is None:
            weights = np.ones(inputs.shape, np.float32)
        weights = np.asarray(weights, np.float32)
        if weights.shape != inputs.shape:
            raise ValueError(f"weights {weights.shape} must match inputs {inputs.shape} "
                             "(one weight per step)")
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("weights must be finite and >= 0 (one weight per step, 0 for "
                             "padding); a NaN or negative weight corrupts every update")
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
            args = (tf.constant(inputs[:, sl]), tf.constant(targets[:, sl]),
                    tf.constant(weights[:, sl]), state)
            real = float(weights[:, k * w: (k + 1) * w].sum())  # weight of this update's loss
            if apply:
                loss, first, last = self._step(*args)
                yield loss, None, last, real
            else:
                loss, grads, first, last = self._grads(*args)
                yield loss, grads, last, real

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
        batch_size, epochs = _check_count("batch_size", batch_size), _check_count("epochs",
                                                                                  epochs)
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


def full_bptt_gradients(model: keras.Model, inputs, targets, weights=None,
                        last: int | None = None,
                        loss: LossFunction | None = None) -> list[np.ndarray]:
    """Gradients of ``loss`` over whole sequences with full BPTT (reference for TBPTT).

    ``model`` as for :class:`TBPTTTrainer`; ``inputs``/``targets`` ``(batch, L)``;
    ``last`` restricts the loss to the last ``last`` steps (the gradient still flows back
    through all of them). Returns arrays in the order of ``model.trainable_variables``.
    """
    shapes = _state_inputs(model)
    inputs = _check_ids("inputs", inputs)
    weights = np.ones(inputs.shape, np.float32) if weights is None else np.asarray(weights)
    last = inputs.shape[1] if last is None else _check_count("last", last)
    loss_fn = loss if loss is not None else sequence_loss()
    states = _initial_states(shapes, len(inputs))
    with tf.GradientTape() as tape:
        outputs, *_ = model([tf.constant(inputs), *states], training=True)
        value = loss_fn(np.asarray(targets)[:, -last:], outputs[:, -last:],
                        sample_weight=weights[:, -last:])
    grads = tape.gradient(value, model.trainable_variables)
    return [np.asarray(tf.convert_to_tensor(g)) for g in grads]  # Embedding: IndexedSlices


def bits_per_char(model: keras.Model, inputs, targets, window: int = 200,
                  batch_size: int = 256) -> float:
    """Bits per character of an explicit-state char LM on held-out text.

    ``model``: ``[ids, *states] -> [logits, *states]`` (:func:`rnncourse.models.state_char_lm`,
    or a stateful model's weights copied into one). Each ``(N, L)`` sequence is run from a
    zero state, ``window`` steps at a time; ``targets`` ``(N, L)`` ids.
    """
    inputs, targets = _check_ids("inputs", inputs), _check_ids("targets", targets)
    if inputs.shape != targets.shape or len(inputs) == 0:
        raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must be the "
                         "same non-empty (N, L)")
    batch_size = _check_count("batch_size", batch_size)
    _check_id_range(model, inputs, targets)
    total, count = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start: start + batch_size], targets[start: start + batch_size]
        logits, _ = run_windows(model, x, window)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        total += float(tf.reduce_sum(ce))
        count += y.size
    return total / count / LN2


def generate(model: keras.Model, vocab: CharVocabulary, prompt: str, length: int,
             temperature: float = 0.8, seed: int = 0) -> str:
    """Sample ``length`` characters after ``prompt`` with a batch-1 stateful model.

    ``model`` is an :func:`inference_model`; its state is reset first, then it reads the
    prompt and feeds each sampled character back in, one step per call.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty str; give at least one character")
    length = _check_count("length", length, minimum=0)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if model.inputs[0].shape[0] != 1:
        raise ValueError("generate() needs a batch-1 model; use inference_model(trained)")
    if model.outputs[0].shape[-1] != len(vocab):
        raise ValueError(f"vocab has {len(vocab)} characters but the model predicts "
                         f"{model.outputs[0].shape[-1]}; pass the vocabulary the model was "
                         "trained with")
    rng = np.random.default_rng(seed)
    reset_states(model)
    logits = model(vocab.encode(prompt)[None, :], training=False)[0, -1]
    out = []
    for _ in range(length):
        z = np.asarray(logits, np.float64) / temperature
        p = np.exp(z - z.max())
        nxt = int(rng.choice(len(p), p=p / p.sum()))
        out.append(vocab.chars[nxt])
        logits = model(np.array([[nxt]], np.int32), training=False)[0, -1]
    return "".join(out)

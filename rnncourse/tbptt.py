"""Truncated backpropagation through time (TBPTT): stateful layers and an explicit-state loop.

Two ways to train a recurrent network on sequences too long for one backward pass:

1. **Stateful Keras layers.** :func:`stateful_batches` lays ``N`` sequences of length ``L``
   out as windows so that row ``i`` of batch ``j + 1`` continues row ``i`` of batch ``j``;
   :func:`char_lm` with ``stateful=True`` carries the state from batch to batch, and
   :class:`ResetStateCallback` zeroes it every ``ceil(L / window)`` batches, when a new
   group of sequences starts. Train with ``shuffle=False``.
2. **An explicit-state loop.** :class:`TBPTTTrainer` passes the LSTM state in and out of a
   ``tf.function`` train step as tensors, with ``tf.stop_gradient`` between windows. It
   implements BPTT(h; h') of Williams & Peng (1990): an update every ``window`` (h') steps,
   gradients flowing back ``depth`` (h >= h') steps. No stateful layer, so the batch size
   is free, and the same weights serve a batch-1 generator (:func:`inference_model`).

The character-level language model on Shakespeare that the chapter trains lives here too
(:class:`CharVocabulary`, :func:`char_sequences`, :func:`bits_per_char`, :func:`generate`),
with the memory measurements (:func:`peak_step_bytes`, :func:`memory_vs_length`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnncourse import config
from rnncourse.config import quiet_tensorflow
from rnncourse.progress import progress

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

LN2 = math.log(2.0)


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Sizes of the chapter's experiments at the current scale (see :func:`settings`)."""

    plays: tuple[str, ...]
    max_chars: int
    sequence_length: int
    window: int
    batch_size: int
    units: int
    embedding_dim: int
    epochs: int
    learning_rate: float
    generate_chars: int
    memory_lengths: tuple[int, ...]
    memory_units: int
    memory_batch: int


def settings() -> Settings:
    """The chapter's sizes: small at ``RNNCOURSE_SCALE=ci``, website sizes at ``full``."""
    return Settings(
        plays=config.by_scale(ci=("macbeth",), full=("macbeth", "hamlet", "othello", "king-lear")),
        max_chars=config.by_scale(ci=60_000, full=400_000),
        sequence_length=config.by_scale(ci=200, full=400),
        window=25,
        batch_size=config.by_scale(ci=32, full=64),
        units=config.by_scale(ci=128, full=256),
        embedding_dim=32,
        epochs=config.by_scale(ci=4, full=6),
        learning_rate=config.by_scale(ci=1e-2, full=5e-3),
        generate_chars=config.by_scale(ci=80, full=400),
        memory_lengths=config.by_scale(ci=(50, 100, 200), full=(200, 500, 1000, 2000)),
        memory_units=config.by_scale(ci=64, full=128),
        memory_batch=config.by_scale(ci=16, full=32),
    )


# --------------------------------------------------------------------------- text
@dataclass
class CharVocabulary:
    """Characters of a text, sorted; id ``i`` is ``chars[i]``."""

    chars: str
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``(len(text),)`` int32 ids; an unknown character raises ``ValueError``."""
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary; build it "
                             "with char_vocabulary() from text that contains it") from None

    def decode(self, ids) -> str:
        """``(n,)`` ids -> text."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def char_vocabulary(text: str) -> CharVocabulary:
    """The sorted set of characters of ``text``."""
    if not text:
        raise ValueError("text is empty; load some with rnncourse.data.load_shakespeare()")
    return CharVocabulary("".join(sorted(set(text))))


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
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    if sequence_length < 1:
        raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
    n = (len(ids) - 1) // sequence_length
    if n < 1:
        raise ValueError(f"{len(ids)} ids are too few for one sequence of {sequence_length} "
                         "plus its target; use more text or a shorter sequence_length")
    inputs = ids[: n * sequence_length].reshape(n, sequence_length)
    targets = ids[1: n * sequence_length + 1].reshape(n, sequence_length)
    return inputs, targets


def unigram_entropy_bits(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy in bits of the character frequencies: the bits/char of a model without context."""
    counts = np.bincount(np.asarray(ids).reshape(-1), minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


# --------------------------------------------------------------------------- layout
@dataclass
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
    sequence is zero-padded (weight 0) when ``window`` does not divide ``L``.

    Args:
        inputs: ``(N, L)`` ids or ``(N, L, features)`` values.
        targets: ``(N, L)`` or ``(N, L, ...)``, aligned with ``inputs`` step by step.
        window: steps per window (the truncation length).
        batch_size: sequences processed side by side.

    Returns:
        A :class:`StatefulBatches`; feed ``inputs``, ``targets`` and ``sample_weight`` to
        ``fit(..., batch_size=batch_size, shuffle=False)`` with
        ``ResetStateCallback(reset_every)``.
    """
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim < 2 or len(inputs) == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs must be (N, L[, features]) with N, L >= 1, got shape "
                         f"{inputs.shape}; stack your sequences first")
    if targets.shape[:2] != inputs.shape[:2]:
        raise ValueError(f"targets {targets.shape[:2]} and inputs {inputs.shape[:2]} must agree "
                         "on (N, L); shift them before laying out windows")
    if window < 1 or batch_size < 1:
        raise ValueError(f"window and batch_size must be >= 1, got {window} and {batch_size}")
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


# --------------------------------------------------------------------------- models
def char_lm(vocab_size: int, units: int = 128, embedding_dim: int = 32, *,
            batch_size: int | None = None, window: int | None = None, stateful: bool = False,
            activation: str = "tanh", dropout: float = 0.0,
            name: str | None = None) -> keras.Model:
    """Character language model: ids -> Embedding -> LSTM -> logits for the next character.

    Input ``(batch, timesteps)`` int32 ids, output ``(batch, timesteps, vocab_size)`` logits.
    ``stateful=True`` needs a fixed ``batch_size`` (Keras 3: ``keras.Input(batch_shape=...)``)
    and keeps the last state of row ``i`` as the initial state of row ``i`` of the next
    batch. Layer names (``embedding``, ``lstm``, ``logits``) are shared with
    :func:`state_model`, so :func:`copy_weights` moves weights between them.

    Args:
        activation: the LSTM's cell activation; anything but ``"tanh"`` rules out cuDNN.
        dropout: rate of a ``Dropout`` on the LSTM's outputs (inactive at inference).
    """
    if stateful and batch_size is None:
        raise ValueError("a stateful model needs a fixed batch_size (keras.Input(batch_shape="
                         "(batch_size, window))); pass batch_size=...")
    inputs = keras.Input(batch_shape=(batch_size, window), dtype="int32", name="char_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(inputs)
    x = keras.layers.LSTM(units, activation=activation, return_sequences=True,
                          stateful=stateful, name="lstm")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or ("stateful_char_lm" if stateful
                                                      else "char_lm"))


def state_model(vocab_size: int, units: int = 128, embedding_dim: int = 32,
                activation: str = "tanh") -> keras.Model:
    """Explicit-state char LM: ``[ids, h, c] -> [logits, h, c]`` with any batch size.

    Inputs ``ids`` ``(batch, timesteps)`` int32 and the LSTM state ``h``, ``c``, each
    ``(batch, units)`` float32; outputs the logits ``(batch, timesteps, vocab_size)`` and the
    state after the last step. No stateful layer: the caller owns the state.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")
    h0 = keras.Input(shape=(units,), name="h")
    c0 = keras.Input(shape=(units,), name="c")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(ids)
    x, h, c = keras.layers.LSTM(units, activation=activation, return_sequences=True,
                                return_state=True, name="lstm")(x, initial_state=[h0, c0])
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model([ids, h0, c0], [logits, h, c], name="state_char_lm")


def copy_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copy weights layer by layer, matched by name (``embedding``, ``lstm``, ``logits``)."""
    names = [layer.name for layer in source.layers if layer.weights]
    for name in names:
        try:
            target.get_layer(name).set_weights(source.get_layer(name).get_weights())
        except ValueError as err:
            raise ValueError(f"cannot copy layer {name!r} into {target.name!r}: {err}; build "
                             "both models with the same vocab_size, units and embedding_dim"
                             ) from None
    return target


def inference_model(trained: keras.Model, batch_size: int = 1) -> keras.Model:
    """A stateful copy of a trained char LM for generation, with its own batch size.

    Solves "trained stateful with batch 32, must generate with batch 1": the batch size is
    part of a stateful model's input shape, so build a second model with ``batch_size`` and
    one step per call, and copy the weights into it (weights do not depend on the batch).
    """
    lstm = trained.get_layer("lstm")
    model = char_lm(trained.get_layer("logits").units, lstm.units,
                    trained.get_layer("embedding").output_dim, batch_size=batch_size,
                    window=None, stateful=True,
                    activation=keras.activations.serialize(lstm.cell.activation),
                    name="generator")
    return copy_weights(trained, model)


def reset_states(model: keras.Model) -> int:
    """Zero the state of every stateful layer of ``model`` (Keras 3 ``layer.reset_state()``).

    Keras 3 models have no ``reset_states()``; this walks the layers. Returns how many
    layers were reset.
    """
    count = 0
    for layer in model.layers:
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
    sequence leak into the start of an unrelated one.
    """

    def __init__(self, reset_every: int) -> None:
        super().__init__()
        if reset_every < 1:
            raise ValueError(f"reset_every must be >= 1, got {reset_every}")
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


def compile_char_lm(model: keras.Model, learning_rate: float = 1e-2,
                    clipnorm: float | None = 1.0) -> keras.Model:
    """Adam with gradient clipping and sparse cross-entropy on logits."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def fit_stateful(model: keras.Model, batches: StatefulBatches, epochs: int = 1,
                 callbacks: list | None = None) -> keras.callbacks.History:
    """``model.fit`` on a window layout: ``shuffle=False``, resets on the period, weights."""
    if model.inputs[0].shape[0] != batches.batch_size:
        raise ValueError(f"model was built for batch {model.inputs[0].shape[0]}, layout has "
                         f"batch_size={batches.batch_size}; build both with the same size")
    return model.fit(batches.inputs, batches.targets, sample_weight=batches.sample_weight,
                     batch_size=batches.batch_size, epochs=epochs, shuffle=False, verbose=0,
                     callbacks=[ResetStateCallback(batches.reset_every), *(callbacks or [])])


def predict_stateful(model: keras.Model, batches: StatefulBatches, reset: bool = True,
                     shuffle_seed: int | None = None) -> np.ndarray:
    """Per-window outputs of a stateful model, put back as ``(N, L, ...)``.

    The two pitfalls can be switched on to see what they do: ``reset=False`` leaves out
    :class:`ResetStateCallback`; ``shuffle_seed`` feeds the windows in a shuffled order
    (what ``fit(shuffle=True)`` does) and puts the outputs back in place afterwards.
    """
    callbacks = [ResetStateCallback(batches.reset_every)] if reset else []
    order = np.arange(len(batches.inputs))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)
    out = model.predict(batches.inputs[order], batch_size=batches.batch_size, verbose=0,
                        callbacks=callbacks)
    restored = np.empty_like(out)
    restored[order] = out
    return batches.unstack(restored)


def history_bits(history: keras.callbacks.History, batches: StatefulBatches) -> list[float]:
    """Keras' per-epoch training loss turned into bits per real character.

    Keras divides a batch's weighted loss by all its ``batch * window`` steps, filler and
    padding included; this rescales by the share of real steps and converts nats to bits.
    """
    real = float(batches.sample_weight.sum()) / batches.sample_weight.size
    return [float(loss) / real / LN2 for loss in history.history["loss"]]


def split_sequences(inputs: np.ndarray, targets: np.ndarray, validation: float = 0.1):
    """The last ``validation`` share of the sequences (at least one) held out, in order.

    Returns ``(train_inputs, train_targets, validation_inputs, validation_targets)``.
    """
    if not 0 < validation < 1 or len(inputs) < 2:
        raise ValueError(f"need 0 < validation < 1 and >= 2 sequences, got {validation} and "
                         f"{len(inputs)}")
    n = max(1, int(round(len(inputs) * validation)))
    return inputs[:-n], targets[:-n], inputs[-n:], targets[-n:]


def cudnn_eligible(layer: keras.layers.Layer) -> bool:
    """Whether a Keras LSTM/GRU's settings allow the fused cuDNN kernel on a GPU.

    cuDNN implements only ``tanh`` cell activation, ``sigmoid`` gates, a bias, no
    recurrent dropout and no unrolling; other settings fall back to the generic loop.
    The yes/no of :func:`rnncourse.devices.cudnn_eligibility`, which also says why.
    """
    from rnncourse.devices import cudnn_eligibility

    if getattr(layer, "cell", None) is None:
        raise ValueError(f"{layer.name!r} is not a recurrent layer (no .cell)")
    return cudnn_eligibility(layer)[0]


# --------------------------------------------------------------------------- explicit loop
def zero_state(batch_size: int, units: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``(h, c)`` zeros, each ``(batch_size, units)`` float32."""
    return tf.zeros((batch_size, units)), tf.zeros((batch_size, units))


def masked_cross_entropy(targets, logits, weights) -> tf.Tensor:
    """Mean cross-entropy in nats over steps with weight > 0 (0 when there are none).

    ``targets`` ``(batch, timesteps)`` int, ``logits`` ``(batch, timesteps, vocab)``,
    ``weights`` ``(batch, timesteps)`` float32.
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, tf.int32), logits)
    weights = tf.cast(weights, ce.dtype)
    return tf.reduce_sum(ce * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def run_windows(model: keras.Model, inputs: np.ndarray, window: int,
                state=None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Forward a :func:`state_model` window by window, carrying the state as tensors.

    Args:
        inputs: ``(batch, L)`` ids; any batch size.
        window: steps per call.
        state: initial ``(h, c)``; zeros when ``None``.

    Returns:
        logits ``(batch, L, vocab)`` and the final ``(h, c)``, each ``(batch, units)``.
    """
    inputs = np.asarray(inputs, dtype=np.int32)
    units = model.get_layer("lstm").units
    h, c = state if state is not None else zero_state(len(inputs), units)
    outs = []
    for start in range(0, inputs.shape[1], window):
        x = tf.constant(inputs[:, start: start + window])
        logits, h, c = model([x, h, c], training=False)
        outs.append(np.asarray(logits))
    return np.concatenate(outs, axis=1), (np.asarray(h), np.asarray(c))


class TBPTTTrainer:
    """Truncated BPTT with explicit state tensors: BPTT(h; h') of Williams & Peng (1990).

    Every ``window`` (h') steps the trainer makes one update whose loss covers those
    ``window`` steps and whose gradient flows back ``depth`` (h) steps, through the current
    window and the ``depth / window - 1`` windows before it. The state entering the oldest
    window is a constant (``tf.stop_gradient``); nothing is stateful, so any batch size
    works and the state is just a pair of tensors the loop hands from step to step.

    ``depth == window`` is the common TBPTT (one backward pass per window); ``depth ==
    window == L`` is full BPTT.

    Args:
        model: a :func:`state_model`.
        optimizer: a Keras optimizer (e.g. ``Adam(1e-2, clipnorm=1.0)``).
        window: h', steps between updates.
        depth: h, steps the gradient flows back; a multiple of ``window``; default ``window``.
    """

    def __init__(self, model: keras.Model, optimizer, window: int,
                 depth: int | None = None) -> None:
        depth = window if depth is None else depth
        if window < 1 or depth < window or depth % window:
            raise ValueError(f"need 1 <= window <= depth with depth a multiple of window "
                             f"(BPTT(h; h') with h' <= h), got window={window}, depth={depth}")
        self.model, self.optimizer = model, optimizer
        self.window, self.depth = window, depth
        self.units = model.get_layer("lstm").units
        optimizer.build(model.trainable_variables)
        self._step = tf.function(self._step_impl)
        self._grads = tf.function(self._grads_impl)

    # One update: windows x[:, 0..n-1] from state (h, c); loss on the last window only.
    def _loss_and_states(self, x, y, w, h, c):
        h, c = tf.stop_gradient(h), tf.stop_gradient(c)
        n = x.shape[1] // self.window
        first = None
        for i in range(n):
            sl = slice(i * self.window, (i + 1) * self.window)
            logits, h, c = self.model([x[:, sl], h, c], training=True)
            if i == 0:
                first = (h, c)
        loss = masked_cross_entropy(y[:, -self.window:], logits, w[:, -self.window:])
        return loss, first, (h, c)

    def _grads_impl(self, x, y, w, h, c):
        with tf.GradientTape() as tape:
            loss, first, last = self._loss_and_states(x, y, w, h, c)
        grads = tape.gradient(loss, self.model.trainable_variables)
        return loss, grads, first, last

    def _step_impl(self, x, y, w, h, c):
        loss, grads, first, last = self._grads_impl(x, y, w, h, c)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return loss, first, last

    def gradients(self, inputs, targets, weights=None):
        """Gradients of each update over one batch of sequences, without applying them.

        Returns a list (one entry per update) of lists of gradient arrays, in the order of
        ``model.trainable_variables``; used to check TBPTT against full BPTT.
        """
        out = []
        for _, grads, _ in self._updates(inputs, targets, weights, apply=False):
            out.append([np.asarray(tf.convert_to_tensor(g)) for g in grads])
        return out

    def train_on_sequences(self, inputs, targets, weights=None) -> float:
        """Run all windows of ``(batch, L)`` sequences from a zero state; mean loss (nats)."""
        losses = [float(loss) for loss, _, _ in self._updates(inputs, targets, weights)]
        return float(np.mean(losses))

    def _updates(self, inputs, targets, weights=None, apply=True):
        inputs = np.asarray(inputs, dtype=np.int32)
        targets = np.asarray(targets, dtype=np.int32)
        if inputs.shape != targets.shape or inputs.ndim != 2:
            raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must both be "
                             "(batch, L) ids")
        if weights is None:
            weights = np.ones(inputs.shape, np.float32)
        length, w, m = inputs.shape[1], self.window, self.depth // self.window
        if length % w:
            raise ValueError(f"L={length} is not a multiple of window={w}; lay the data out "
                             "with stateful_batches() (it pads and zero-weights the tail)")
        weights = np.asarray(weights, np.float32)
        state = zero_state(len(inputs), self.units)
        oldest = 0  # index of the oldest window inside the gradient's reach
        first = state  # state after the oldest window, set by each update
        for k in range(length // w):
            lo = max(0, k - m + 1)
            if lo > oldest:
                state, oldest = first, lo  # the state after the window that drops out
            sl = slice(lo * w, (k + 1) * w)
            args = (inputs[:, sl], targets[:, sl], weights[:, sl], *state)
            if apply:
                loss, first, last = self._step(*args)
                yield loss, None, last
            else:
                loss, grads, first, last = self._grads(*args)
                yield loss, grads, last

    def fit(self, inputs, targets, batch_size: int, epochs: int = 1,
            weights=None, seed: int = 0, desc: str = "TBPTT epochs") -> list[float]:
        """Train on ``(N, L)`` sequences in mini-batches of whole sequences.

        Each batch starts from a zero state and walks its windows in order; the order of
        the *sequences* may be shuffled freely (``seed``), the order of windows may not.

        Returns:
            Mean training loss per epoch in bits per character.
        """
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        weights = np.ones(inputs.shape, np.float32) if weights is None else weights
        rng = np.random.default_rng(seed)
        history = []
        bar = progress(range(epochs), desc=desc, unit="epoch")
        for _ in bar:
            order = rng.permutation(len(inputs))
            losses = []
            for start in range(0, len(order) - batch_size + 1, batch_size):
                rows = order[start: start + batch_size]
                losses.append(self.train_on_sequences(inputs[rows], targets[rows],
                                                      weights[rows]))
            history.append(float(np.mean(losses)) / LN2)
            bar.set_postfix(bits_per_char=f"{history[-1]:.3f}")
        return history


def full_bptt_gradients(model: keras.Model, inputs, targets, weights=None,
                        last: int | None = None) -> list[np.ndarray]:
    """Gradients of :func:`masked_cross_entropy` over whole sequences with full BPTT.

    ``last`` restricts the loss to the last ``last`` steps (the gradient still flows back
    through all of them). Reference for :meth:`TBPTTTrainer.gradients`.
    """
    inputs = np.asarray(inputs, dtype=np.int32)
    weights = np.ones(inputs.shape, np.float32) if weights is None else weights
    last = inputs.shape[1] if last is None else last
    h, c = zero_state(len(inputs), model.get_layer("lstm").units)
    with tf.GradientTape() as tape:
        logits, _, _ = model([tf.constant(inputs), h, c], training=True)
        loss = masked_cross_entropy(np.asarray(targets)[:, -last:], logits[:, -last:],
                                    np.asarray(weights)[:, -last:])
    grads = tape.gradient(loss, model.trainable_variables)
    return [np.asarray(tf.convert_to_tensor(g)) for g in grads]  # Embedding: IndexedSlices


def bits_per_char(model: keras.Model, inputs, targets, window: int = 200,
                  batch_size: int = 256) -> float:
    """Bits per character of a :func:`state_model` (or weights-compatible) on held-out text.

    Each ``(N, L)`` sequence is run from a zero state, ``window`` steps at a time.
    """
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    total, count = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start: start + batch_size], targets[start: start + batch_size]
        logits, _ = run_windows(model, x, window)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y.astype(np.int32), logits)
        total += float(tf.reduce_sum(ce))
        count += y.size
    return total / count / LN2


def generate(model: keras.Model, vocab: CharVocabulary, prompt: str, length: int,
             temperature: float = 0.8, seed: int = 0) -> str:
    """Sample ``length`` characters after ``prompt`` with a batch-1 stateful model.

    ``model`` is an :func:`inference_model`; its state is reset first, then it reads the
    prompt and feeds each sampled character back in, one step per call.
    """
    if not prompt:
        raise ValueError("prompt is empty; give at least one character to start from")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if model.inputs[0].shape[0] != 1:
        raise ValueError("generate() needs a batch-1 model; use inference_model(trained)")
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


# --------------------------------------------------------------------------- memory
def lstm_activation_bytes(batch_size: int, timesteps: int, units: int, input_dim: int,
                          output_dim: int = 0, dtype_bytes: int = 4) -> int:
    """Rough bytes a backward pass keeps for an LSTM(+Dense) over ``timesteps`` steps.

    Per sample and step: the input (``input_dim``), four gate pre-activations and
    activations (``8 * units``), the cell and hidden states and ``tanh(c)`` (``3 * units``),
    and the logits and softmax of an output layer (``2 * output_dim``). It grows linearly
    in ``batch_size * timesteps``: TBPTT bounds ``timesteps`` by the window.
    """
    per_step = input_dim + 11 * units + 2 * output_dim
    return int(batch_size) * int(timesteps) * per_step * dtype_bytes


def _memory_device() -> str:
    return "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"


def peak_step_bytes(fn, *args, repeats: int = 3) -> int:
    """Peak bytes of tensors allocated while ``fn(*args)`` runs, above what was live before.

    Uses TensorFlow's allocator statistics (``tf.config.experimental.get_memory_info``) on
    the GPU when there is one, else on the CPU; the smallest of ``repeats`` runs, since
    parallel ops make single peaks jitter. Call ``fn`` once before, so tracing is not
    counted. On the CPU, TensorFlow's default allocator leaves out small tensors: run with
    ``TF_CPU_ALLOCATOR_USE_BFC=true`` set before TensorFlow starts (as
    :func:`measure_memory` does) to count every byte.
    """
    device = _memory_device()
    peaks = []
    for _ in range(repeats):
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        fn(*args)
        peaks.append(int(tf.config.experimental.get_memory_info(device)["peak"] - before))
    return min(peaks)


def memory_vs_length(lengths, window: int = 25, batch_size: int = 32, units: int = 128,
                     vocab_size: int = 64, embedding_dim: int = 32, seed: int = 0,
                     repeats: int = 3) -> dict:
    """Measured peak tensor bytes of one training pass over ``(batch, L)`` sequences.

    For each ``L``: full BPTT (one gradient through all ``L`` steps) and TBPTT (``L /
    window`` updates, the gradient through ``window`` steps each), with the same model.

    Returns:
        ``{"lengths", "full_bptt", "tbptt", "full_seconds", "tbptt_seconds"}``, each a
        list aligned with ``lengths`` (bytes and wall seconds of the measured pass).
    """
    rng = np.random.default_rng(seed)
    model = state_model(vocab_size, units, embedding_dim)
    optimizer = keras.optimizers.SGD(0.0)
    trunc = TBPTTTrainer(model, optimizer, window=window)  # one compiled step for every L
    result = {"lengths": list(lengths), "full_bptt": [], "tbptt": [],
              "full_seconds": [], "tbptt_seconds": []}
    for length in lengths:
        if length % window:
            raise ValueError(f"length {length} is not a multiple of window {window}")
        x = rng.integers(0, vocab_size, (batch_size, length)).astype(np.int32)
        y = rng.integers(0, vocab_size, (batch_size, length)).astype(np.int32)
        full = TBPTTTrainer(model, optimizer, window=length)
        for name, trainer in (("full_bptt", full), ("tbptt", trunc)):
            trainer.train_on_sequences(x, y)  # trace first
            start = time.perf_counter()
            trainer.train_on_sequences(x, y)
            key = "full_seconds" if name == "full_bptt" else "tbptt_seconds"
            result[key].append(time.perf_counter() - start)
            result[name].append(peak_step_bytes(trainer.train_on_sequences, x, y,
                                                repeats=repeats))
    return result


def measure_memory(lengths, window: int = 25, batch_size: int = 32, units: int = 128,
                   vocab_size: int = 64, embedding_dim: int = 32, seed: int = 0,
                   repeats: int = 3) -> dict:
    """:func:`memory_vs_length` in a fresh Python process with every allocation counted.

    The child process sets ``TF_CPU_ALLOCATOR_USE_BFC=true`` before importing TensorFlow
    (on the CPU the default allocator does not count small tensors) and runs one op at a
    time (ops running side by side make the peak jitter); its allocator starts empty, so
    the numbers do not depend on what the caller ran before.
    """
    kwargs = dict(lengths=[int(n) for n in lengths], window=window, batch_size=batch_size,
                  units=units, vocab_size=vocab_size, embedding_dim=embedding_dim, seed=seed,
                  repeats=repeats)
    code = ("import json, sys; import tensorflow as tf; "
            "tf.config.threading.set_inter_op_parallelism_threads(1); "
            "from rnncourse import tbptt; "
            "print(json.dumps(tbptt.memory_vs_length(**json.loads(sys.argv[1]))))")
    env = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"memory measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


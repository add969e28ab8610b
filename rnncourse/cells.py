"""Recurrent cells written from scratch with ``keras.ops``, weight-compatible with Keras.

The three cells below hold their weights exactly as Keras' own cells do (same names,
shapes and gate order), so a Keras layer's weights load into them unchanged and the
outputs, final states and gradients agree to float32 rounding. They run inside
``keras.layers.RNN``, which supplies the time loop, masking and ``return_sequences``.

Gate order in the packed weight matrices (Keras' order, also the order the equations
below are written in):

* ``SimpleRNNCell``: one block. ``kernel (input_dim, units)``.
* ``GRUCell``: update ``z``, reset ``r``, candidate ``h``. ``kernel (input_dim, 3 units)``.
* ``LSTMCell``: input ``i``, forget ``f``, cell candidate ``g``, output ``o``.
  ``kernel (input_dim, 4 units)``.

Tools around them: :func:`from_keras` builds the scratch twin of a Keras layer,
:func:`load_keras_weights` copies a Keras layer's weights into a scratch layer,
:func:`compare_with_keras` measures how far the two are apart (outputs, states, gradients)
and :func:`parameter_count` gives the parameters from the gate equations. The cell names
are those of :data:`rnncourse.models.CELLS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, config, models
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

__all__ = ["SimpleRNNCell", "GRUCell", "LSTMCell", "SCRATCH_CELLS", "from_keras",
           "load_keras_weights", "parameter_count", "Equivalence", "random_padded_batch",
           "compare_with_keras"]


class _Cell(keras.layers.Layer):
    """Shared weight creation: ``kernel``, ``recurrent_kernel`` and ``bias`` as in Keras."""

    gates = 1

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        units = _checks.count(units, "units")
        self.units = units
        self.state_size = units
        self.output_size = units

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return "zeros"

    def build(self, input_shape) -> None:
        input_dim = input_shape[-1]
        _checks.fail_if(input_dim is None, "input_shape", "needs a known feature size")
        self.kernel = self.add_weight(shape=(input_dim, self.gates * self.units),
                                      initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.gates * self.units),
                                                initializer="orthogonal",
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=self._bias_shape(),
                                    initializer=self._bias_initializer(), name="bias")

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


class SimpleRNNCell(_Cell):
    r"""Elman's cell: :math:`h_t = \tanh(x_t W + h_{t-1} U + b)`.

    Shapes: ``x_t (batch, input_dim)``, ``h_t (batch, units)``, ``W = kernel
    (input_dim, units)``, ``U = recurrent_kernel (units, units)``, ``b = bias (units,)``.
    Equal to ``keras.layers.SimpleRNNCell`` with its default ``activation="tanh"``.
    """

    gates = 1

    def call(self, inputs, states):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        h = ops.tanh(ops.matmul(inputs, self.kernel)
                     + ops.matmul(h_prev, self.recurrent_kernel) + self.bias)
        return h, [h]


class GRUCell(_Cell):
    r"""Gated recurrent unit (Cho et al. 2014), Keras' formulation.

    .. math::
        z_t = \sigma(x_t W_z + b_z + h_{t-1} U_z + b'_z) \qquad
        r_t = \sigma(x_t W_r + b_r + h_{t-1} U_r + b'_r)

        \tilde h_t = \tanh\big(x_t W_h + b_h + r_t \odot (h_{t-1} U_h + b'_h)\big)
        \quad \text{(reset\_after=True, the cuDNN form)}

        \tilde h_t = \tanh\big(x_t W_h + b_h + (r_t \odot h_{t-1}) U_h\big)
        \quad \text{(reset\_after=False, the 2014 paper's form)}

        h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t

    Shapes: ``kernel (input_dim, 3 units)`` holds ``[W_z | W_r | W_h]``,
    ``recurrent_kernel (units, 3 units)`` holds ``[U_z | U_r | U_h]``; ``bias`` is
    ``(2, 3 units)`` (input bias ``b``, recurrent bias ``b'``) with ``reset_after=True``
    and ``(3 units,)`` (no ``b'``) with ``reset_after=False``.

    Args:
        units: size of the state ``h_t``.
        reset_after: apply the reset gate after the recurrent matrix product.
    """

    gates = 3

    def __init__(self, units: int, reset_after: bool = True, **kwargs) -> None:
        super().__init__(units, **kwargs)
        self.reset_after = _checks.boolean(reset_after, "reset_after")

    def _bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        u = self.units
        if self.reset_after:
            input_bias, recurrent_bias = self.bias[0], self.bias[1]
        else:
            input_bias, recurrent_bias = self.bias, ops.zeros((3 * u,), dtype=self.bias.dtype)
        x_proj = ops.matmul(inputs, self.kernel) + input_bias        # (batch, 3 units)
        x_z, x_r, x_h = x_proj[:, :u], x_proj[:, u:2 * u], x_proj[:, 2 * u:]
        h_proj = ops.matmul(h_prev, self.recurrent_kernel[:, :2 * u]) + recurrent_bias[:2 * u]
        z = ops.sigmoid(x_z + h_proj[:, :u])
        r = ops.sigmoid(x_r + h_proj[:, u:])
        if self.reset_after:
            candidate_in = r * (ops.matmul(h_prev, self.recurrent_kernel[:, 2 * u:])
                                + recurrent_bias[2 * u:])
        else:
            candidate_in = ops.matmul(r * h_prev, self.recurrent_kernel[:, 2 * u:])
        candidate = ops.tanh(x_h + candidate_in)
        h = z * h_prev + (1.0 - z) * candidate
        return h, [h]

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}


class LSTMCell(_Cell):
    r"""Long short-term memory (Hochreiter & Schmidhuber 1997), forget gate of Gers et al. 2000.

    .. math::
        [i_t, f_t, g_t, o_t] = x_t W + h_{t-1} U + b

        c_t = \sigma(f_t) \odot c_{t-1} + \sigma(i_t) \odot \tanh(g_t) \qquad
        h_t = \sigma(o_t) \odot \tanh(c_t)

    Shapes: ``kernel (input_dim, 4 units)``, ``recurrent_kernel (units, 4 units)``,
    ``bias (4 units,)``, in the gate order ``i, f, g, o``; states ``[h_t, c_t]``, each
    ``(batch, units)``. The forget-gate bias starts at 1 (Keras' ``unit_forget_bias``), so
    a fresh cell keeps about 73 % of its memory per step instead of 50 %.
    """

    gates = 4

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(units, **kwargs)
        self.state_size = [units, units]

    def _bias_initializer(self):
        units = self.units

        def unit_forget_bias(shape, dtype=None):
            return ops.concatenate([ops.zeros((units,)), ops.ones((units,)),
                                    ops.zeros((2 * units,))])

        return unit_forget_bias

    def call(self, inputs, states):
        h_prev, c_prev = states[0], states[1]
        u = self.units
        gates = (ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel)
                 + self.bias)                                         # (batch, 4 units)
        i = ops.sigmoid(gates[:, :u])
        f = ops.sigmoid(gates[:, u:2 * u])
        g = ops.tanh(gates[:, 2 * u:3 * u])
        o = ops.sigmoid(gates[:, 3 * u:])
        c = f * c_prev + i * g
        h = o * ops.tanh(c)
        return h, [h, c]


SCRATCH_CELLS = {"simple_rnn": SimpleRNNCell, "gru": GRUCell, "lstm": LSTMCell}
"""The scratch-cell registry, keyed by the names of :data:`rnncourse.models.CELLS`."""
TANH_SIGMOID = (keras.activations.tanh, keras.activations.sigmoid)
"""The activation and recurrent activation the scratch cells implement (Keras' defaults)."""



def _cell_name(layer, argument: str = "layer") -> str:
    for name, layer_class in models.CELLS.items():
        if type(layer) is layer_class:
            return name
    _checks.fail(argument, f"must be a SimpleRNN, GRU or LSTM, not {type(layer)}", TypeError)


def load_keras_weights(keras_layer: keras.layers.Layer,
                       scratch_layer: keras.layers.RNN) -> keras.layers.RNN:
    """Copy a built Keras layer's ``kernel``, ``recurrent_kernel`` and ``bias`` into its twin.

    Not :func:`rnncourse.models.copy_weights_by_name`, which moves whole models' weights
    layer by layer; this copies one Keras recurrent layer into one scratch layer.

    Args:
        keras_layer: a built ``keras.layers.SimpleRNN``, ``GRU`` or ``LSTM``.
        scratch_layer: a built ``keras.layers.RNN`` around the matching scratch cell
            (:class:`SimpleRNNCell`, :class:`GRUCell` or :class:`LSTMCell`) with the same
            ``units``, input width and, for a GRU, ``reset_after``.

    Shapes: ``kernel (input_dim, gates * units)``, ``recurrent_kernel (units, gates *
    units)``, ``bias (gates * units,)`` (``(2, 3 units)`` for a GRU with
    ``reset_after=True``); ``gates`` is 1, 3 or 4.

    Returns:
        ``scratch_layer``, holding the Keras layer's weights.

    Raises:
        TypeError: a layer of another kind, or a scratch cell of another kind.
        ValueError: a layer is not built, or the weight shapes differ.
    """
    name = _cell_name(keras_layer, "keras_layer")
    expected = SCRATCH_CELLS[name]
    _checks.fail_if(type(getattr(scratch_layer, "cell", None)) is not expected, "scratch_layer",
                    f"must be keras.layers.RNN(cells.{expected.__name__}(...))", TypeError)
    if not keras_layer.built or not scratch_layer.built:
        which = "keras_layer" if not keras_layer.built else "scratch_layer"
        _checks.fail(which, "is not built: call .build((None, None, input_dim)) first")
    source, target = keras_layer.get_weights(), scratch_layer.get_weights()
    if [w.shape for w in source] != [w.shape for w in target]:
        _checks.fail("scratch_layer", "has other weight shapes (units, input, reset_after?)")
    scratch_layer.set_weights(source)
    return scratch_layer


@_checks.arguments(input_dim=_checks.optional_count)
def from_keras(layer: keras.layers.Layer, input_dim: int | None = None) -> keras.layers.RNN:
    """The scratch equivalent of a built (or buildable) Keras recurrent layer, same weights.

    Every setting of ``keras.layers.RNN`` carries over: ``return_sequences``,
    ``return_state``, ``go_backwards``, ``stateful``, ``unroll`` and
    ``zero_output_for_mask`` (what a masked ``return_sequences`` output holds at padded
    steps). A stateful layer keeps its batch size, and its current state is copied too, so
    the twin continues where the layer is.

    Args:
        layer: a ``keras.layers.SimpleRNN``, ``GRU`` or ``LSTM`` with tanh/sigmoid
            activations and a bias (the defaults).
        input_dim: the feature width; only needed when ``layer`` is not built yet.

    Returns:
        A built ``keras.layers.RNN`` around :class:`SimpleRNNCell`, :class:`GRUCell` or
        :class:`LSTMCell` with the layer's settings and weights (:func:`load_keras_weights`).
        Like the Keras layer it maps ``(batch, timesteps, input_dim)`` to
        ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``.

    Raises:
        TypeError: ``layer`` is not a SimpleRNN, GRU or LSTM layer.
        ValueError: a setting the scratch cells do not implement (activation, bias,
            dropout), an unbuilt layer without ``input_dim``, or an unbuilt stateful layer
            (its batch size is unknown: build it with ``keras.Input(batch_shape=...)``).
    """
    name = _cell_name(layer)
    cell = layer.cell
    functions = (cell.activation, getattr(cell, "recurrent_activation", TANH_SIGMOID[1]))
    if cell.dropout or cell.recurrent_dropout or not cell.use_bias or functions != TANH_SIGMOID:
        _checks.fail("layer", f"{layer.name}: the scratch cells are tanh/sigmoid, bias, no dropout")
    if not layer.built:
        _checks.fail_if(layer.stateful, "layer", "is stateful: build it on Input(batch_shape)")
        _checks.fail_if(input_dim is None, "input_dim", "is needed: the layer is not built")
        layer.build((None, None, input_dim))
    input_dim = layer.cell.kernel.shape[0]
    batch = int(layer.states[0].shape[0]) if layer.stateful else None
    kwargs = {"reset_after": cell.reset_after} if name == "gru" else {}
    scratch = keras.layers.RNN(SCRATCH_CELLS[name](cell.units, **kwargs),
                               return_sequences=layer.return_sequences,
                               return_state=layer.return_state,
                               go_backwards=layer.go_backwards, stateful=layer.stateful,
                               unroll=layer.unroll,
                               zero_output_for_mask=layer.zero_output_for_mask,
                               name=f"scratch_{layer.name}")
    scratch.build((batch, None, input_dim))
    if layer.stateful:
        for target, source in zip(scratch.states, layer.states, strict=True):
            target.assign(source)
    return load_keras_weights(layer, scratch)


@_checks.arguments(cell=tuple(SCRATCH_CELLS), input_dim=_checks.count, units=_checks.count,
                   reset_after=(bool, np.bool_))
def parameter_count(cell: str, input_dim: int, units: int, reset_after: bool = True) -> int:
    """Trainable parameters of one recurrent layer, from the gate equations.

    * SimpleRNN: ``units * (input_dim + units) + units``
    * GRU: ``3 * (units * (input_dim + units) + units)``, plus ``3 * units`` for the
      second (recurrent) bias when ``reset_after=True``
    * LSTM: ``4 * (units * (input_dim + units) + units)``

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        input_dim: features per step of the layer's input ``(batch, timesteps, input_dim)``.
        units: width of the state ``(batch, units)``.
        reset_after: GRU only; ``True`` is Keras' default.
    """
    block = units * (input_dim + units) + units
    if cell == "simple_rnn":
        return block
    if cell == "gru":
        return 3 * block + (3 * units if reset_after else 0)
    return 4 * block


@dataclass(frozen=True)
class Equivalence:
    """Largest differences between a Keras layer and its scratch twin.

    ``outputs`` and ``states`` are absolute; ``gradients`` is relative to the largest
    gradient entry (gradients of a summed loss grow with the batch and the sequence).
    """

    cell: str
    reset_after: bool | None
    outputs: float
    states: float
    gradients: float

    @property
    def worst(self) -> float:
        return max(self.outputs, self.states, self.gradients)


@_checks.arguments(batch=_checks.count, timesteps=_checks.count, features=_checks.count)
def random_padded_batch(batch: int, timesteps: int, features: int,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random right-padded sequences of random lengths ``1..timesteps``.

    Returns:
        ``x (batch, timesteps, features)`` float32 with zeros after each length, and
        ``mask (batch, timesteps)`` bool, True on real steps.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, timesteps + 1, size=batch)
    lengths[0] = timesteps
    mask = np.arange(timesteps)[None, :] < lengths[:, None]
    x = rng.normal(size=(batch, timesteps, features)).astype(np.float32) * mask[..., None]
    return x, mask


@_checks.arguments(cell=tuple(SCRATCH_CELLS), units=_checks.count, features=_checks.count,
                   batch=_checks.count, timesteps=_checks.count)
def compare_with_keras(cell: str, units: int = 8, features: int = 5, batch: int = 6,
                       timesteps: int = 12, reset_after: bool = True,
                       seed: int = 0) -> Equivalence:
    """Run a Keras layer and the scratch layer with the same weights on masked random input.

    Both layers return the whole output sequence ``(batch, timesteps, units)`` and the
    final states (each ``(batch, units)``); the gradient of ``sum(outputs**2) +
    sum(states**2)`` with respect to every weight is compared too. The Keras layer gets
    random ``N(0, 0.5**2)`` weights (seed ``seed + 1``) so that every gate and bias matters;
    the input is :func:`random_padded_batch` ``(batch, timesteps, features)`` with its mask.

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        units, features, batch, timesteps: the sizes of the test.
        reset_after: GRU only.
        seed: seeds the weights and the batch.

    Returns:
        :class:`Equivalence` with the largest differences.
    """
    config.set_seed(seed)
    kwargs = {"reset_after": reset_after} if cell == "gru" else {}
    reference = models.CELLS[cell](units, return_sequences=True, return_state=True, **kwargs)
    reference.build((None, None, features))
    # random (not initial) weights so that every gate and bias matters
    rng = np.random.default_rng(seed + 1)
    reference.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32)
                           for w in reference.get_weights()])
    scratch = from_keras(reference)
    x, mask = random_padded_batch(batch, timesteps, features, seed=seed)
    x, mask = tf.constant(x), tf.constant(mask)

    def run(layer):
        with tf.GradientTape() as tape:
            outputs, *states = layer(x, mask=mask)
            loss = tf.reduce_sum(outputs ** 2) + sum(tf.reduce_sum(s ** 2) for s in states)
        grads = tape.gradient(loss, layer.trainable_weights)
        return outputs.numpy(), [s.numpy() for s in states], [g.numpy() for g in grads]

    out_a, states_a, grads_a = run(reference)
    out_b, states_b, grads_b = run(scratch)

    def gap(a, b):
        return float(max(np.max(np.abs(p - q)) for p, q in zip(a, b, strict=True)))

    def relative_gap(a, b):
        scale = max(1.0, max(float(np.max(np.abs(p))) for p in a))
        return gap(a, b) / scale

    return Equivalence(cell=cell, reset_after=reset_after if cell == "gru" else None,
                       outputs=float(np.max(np.abs(out_a - out_b))),
                       states=gap(states_a, states_b),
                       gradients=relative_gap(grads_a, grads_b))

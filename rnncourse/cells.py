"""Recurrent cells written from scratch with ``keras.ops``, and the long-lag task they solve.

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

The rest of the module measures the cells on the adding problem of Hochreiter and
Schmidhuber (1997): :class:`Settings`, :func:`adding_model`, :func:`train_adding`,
:func:`compare_on_adding`; and the cost of leaving the cuDNN kernel:
:func:`kernel_speed`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rnncourse import config
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

CELL_NAMES = ("simple_rnn", "gru", "lstm")


class _Cell(keras.layers.Layer):
    """Shared weight creation: ``kernel``, ``recurrent_kernel`` and ``bias`` as in Keras."""

    gates = 1

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = units
        self.state_size = units
        self.output_size = units

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return "zeros"

    def build(self, input_shape) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError("the last input dimension (features) must be known; "
                             "give keras.Input(shape=(timesteps, features))")
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
        self.reset_after = bool(reset_after)

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
KERAS_LAYERS = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU,
                "lstm": keras.layers.LSTM}


def _cell_name(layer) -> str:
    for name, layer_class in KERAS_LAYERS.items():
        if type(layer) is layer_class:
            return name
    raise ValueError(f"expected a keras.layers.SimpleRNN, GRU or LSTM layer, got "
                     f"{type(layer).__name__}")


def copy_weights(source: keras.layers.Layer, target: keras.layers.Layer) -> None:
    """Copy ``kernel``, ``recurrent_kernel`` and ``bias`` from one built layer to another.

    Works in both directions between a Keras ``SimpleRNN``/``GRU``/``LSTM`` layer and a
    ``keras.layers.RNN`` wrapping the matching scratch cell.

    Raises:
        ValueError: when a layer is not built or the weight shapes differ (a GRU with
            another ``reset_after``, other ``units``, another input width).
    """
    src, dst = source.get_weights(), target.get_weights()
    if not src or not dst:
        raise ValueError("both layers must be built first: call each once on a batch "
                         "(or on keras.Input) before copying weights")
    src_shapes = [w.shape for w in src]
    dst_shapes = [w.shape for w in dst]
    if src_shapes != dst_shapes:
        raise ValueError(f"weight shapes differ: source {src_shapes}, target {dst_shapes}; "
                         "use the same cell, units, input width (and reset_after for a GRU)")
    target.set_weights(src)


def from_keras(layer: keras.layers.Layer, input_dim: int | None = None) -> keras.layers.RNN:
    """The scratch equivalent of a built (or buildable) Keras recurrent layer, same weights.

    Args:
        layer: a ``keras.layers.SimpleRNN``, ``GRU`` or ``LSTM`` with tanh/sigmoid
            activations and a bias (the defaults).
        input_dim: the feature width; only needed when ``layer`` is not built yet.

    Returns:
        A built ``keras.layers.RNN`` around :class:`SimpleRNNCell`, :class:`GRUCell` or
        :class:`LSTMCell` with the same ``return_sequences``, ``return_state`` and
        ``go_backwards`` and the layer's weights.
    """
    name = _cell_name(layer)
    cell = layer.cell
    if cell.activation is not keras.activations.tanh or not cell.use_bias:
        raise ValueError("the scratch cells implement activation='tanh' with use_bias=True; "
                         f"{layer.name} uses another setting")
    if name != "simple_rnn" and cell.recurrent_activation is not keras.activations.sigmoid:
        raise ValueError("the scratch cells use recurrent_activation='sigmoid'")
    if not layer.built:
        if input_dim is None:
            raise ValueError("layer is not built: pass input_dim, or call it on data first")
        layer.build((None, None, input_dim))
    input_dim = layer.cell.kernel.shape[0]
    kwargs = {"reset_after": cell.reset_after} if name == "gru" else {}
    scratch = keras.layers.RNN(SCRATCH_CELLS[name](cell.units, **kwargs),
                               return_sequences=layer.return_sequences,
                               return_state=layer.return_state,
                               go_backwards=layer.go_backwards, name=f"scratch_{layer.name}")
    scratch.build((None, None, input_dim))
    copy_weights(layer, scratch)
    return scratch


def parameter_count(cell: str, input_dim: int, units: int, reset_after: bool = True) -> int:
    """Trainable parameters of one recurrent layer, from the gate equations.

    * SimpleRNN: ``units * (input_dim + units) + units``
    * GRU: ``3 * (units * (input_dim + units) + units)``, plus ``3 * units`` for the
      second (recurrent) bias when ``reset_after=True``
    * LSTM: ``4 * (units * (input_dim + units) + units)``
    """
    if cell not in SCRATCH_CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELL_NAMES)}, not {cell!r}")
    block = units * (input_dim + units) + units
    if cell == "simple_rnn":
        return block
    if cell == "gru":
        return 3 * block + (3 * units if reset_after else 0)
    return 4 * block


@dataclass
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


def random_padded_batch(batch: int, timesteps: int, features: int,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random right-padded sequences of random lengths ``1..timesteps``.

    Returns:
        ``x (batch, timesteps, features)`` float32 with zeros after each length, and
        ``mask (batch, timesteps)`` bool, True on real steps.
    """
    if batch < 1 or timesteps < 1 or features < 1:
        raise ValueError("batch, timesteps and features must all be >= 1")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, timesteps + 1, size=batch)
    lengths[0] = timesteps
    mask = np.arange(timesteps)[None, :] < lengths[:, None]
    x = rng.normal(size=(batch, timesteps, features)).astype(np.float32) * mask[..., None]
    return x, mask


def compare_with_keras(cell: str, units: int = 8, features: int = 5, batch: int = 6,
                       timesteps: int = 12, reset_after: bool = True,
                       seed: int = 0) -> Equivalence:
    """Run a Keras layer and the scratch layer with the same weights on masked random input.

    Both layers return the whole output sequence and the final states; the gradient of
    ``sum(outputs**2) + sum(states**2)`` with respect to every weight is compared too.

    Returns:
        :class:`Equivalence` with the largest differences.
    """
    if cell not in KERAS_LAYERS:
        raise ValueError(f"cell must be one of {', '.join(CELL_NAMES)}, not {cell!r}")
    config.set_seed(seed)
    kwargs = {"reset_after": reset_after} if cell == "gru" else {}
    reference = KERAS_LAYERS[cell](units, return_sequences=True, return_state=True, **kwargs)
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


# --------------------------------------------------------------------------------------
# The adding problem
# --------------------------------------------------------------------------------------

#: MSE of the best constant prediction (1.0) on the adding problem: Var(U1 + U2) = 2/12.
BASELINE_MSE = 1.0 / 6.0


@dataclass(frozen=True)
class Settings:
    """Sizes of the adding-problem experiment for the current scale.

    Every cell gets the same budget: ``epochs * ceil(n_train / batch_size)`` Adam steps.
    """

    timesteps: int
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    units: int
    learning_rate: float

    @property
    def steps(self) -> int:
        return self.epochs * -(-self.n_train // self.batch_size)

    @classmethod
    def current(cls) -> Settings:
        """The settings for ``RNNCOURSE_SCALE`` (see :func:`rnncourse.config.by_scale`)."""
        return config.by_scale(
            ci=cls(timesteps=20, n_train=3000, n_test=500, epochs=5, batch_size=32,
                   units=32, learning_rate=1e-2),
            full=cls(timesteps=100, n_train=10000, n_test=2000, epochs=14, batch_size=50,
                     units=64, learning_rate=3e-3),
        )


def adding_model(cell: str, units: int, timesteps: int | None = None,
                 learning_rate: float = 1e-2, clipnorm: float | None = None) -> keras.Model:
    """``(batch, timesteps, 2)`` -> recurrent layer -> Dense(1), compiled with Adam and MSE.

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"`` (Keras layers, cuDNN-eligible).
        units: recurrent units.
        timesteps: sequence length, or None for any length.
        learning_rate: Adam's step size.
        clipnorm: optional per-variable gradient-norm clipping passed to Adam.
    """
    if cell not in KERAS_LAYERS:
        raise ValueError(f"cell must be one of {', '.join(CELL_NAMES)}, not {cell!r}")
    inputs = keras.Input(shape=(timesteps, 2), name="values_and_markers")
    hidden = KERAS_LAYERS[cell](units, name=cell)(inputs)
    outputs = keras.layers.Dense(1, name="sum")(hidden)
    model = keras.Model(inputs, outputs, name=f"adding_{cell}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss="mse")
    return model


@dataclass
class AddingResult:
    """One trained cell: test MSE after every epoch, final test MSE, the model."""

    cell: str
    test_mse: list[float]
    model: keras.Model = field(repr=False)
    seconds: float = 0.0
    gradient_norms: list[float] = field(default_factory=list)

    @property
    def final_mse(self) -> float:
        return self.test_mse[-1]


class _TestMSE(keras.callbacks.Callback):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.values = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(float(self.model.evaluate(self.x, self.y, verbose=0,
                                                     batch_size=500)))


def train_adding(cell: str, settings: Settings | None = None, seed: int = 0,
                 clipnorm: float | None = None, log_gradients: bool = False) -> AddingResult:
    """Train one cell on the adding problem and record the test MSE after each epoch.

    Training and test sets come from :func:`rnncourse.data.adding_problem` with seeds
    ``seed`` and ``seed + 1``; the weights are seeded with ``seed``.

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        settings: sizes; :meth:`Settings.current` when None.
        seed: data and weight seed.
        clipnorm: optional gradient clipping for Adam.
        log_gradients: record the global gradient norm of every step, before clipping
            (:class:`rnncourse.gradients.GradientNormLogger`), in
            ``AddingResult.gradient_norms``.
    """
    from rnncourse.data import adding_problem

    settings = settings or Settings.current()
    x, y = adding_problem(settings.n_train, settings.timesteps, seed=seed)
    x_test, y_test = adding_problem(settings.n_test, settings.timesteps, seed=seed + 1)
    config.set_seed(seed)
    model = adding_model(cell, settings.units, settings.timesteps, settings.learning_rate,
                         clipnorm=clipnorm)
    tracker = _TestMSE(x_test, y_test)
    callbacks = [tracker]
    logger = None
    if log_gradients:
        from rnncourse.gradients import GradientNormLogger

        logger = GradientNormLogger()
        callbacks.append(logger)
    start = time.perf_counter()
    model.fit(x, y, batch_size=settings.batch_size, epochs=settings.epochs, verbose=0,
              callbacks=callbacks)
    return AddingResult(cell=cell, test_mse=tracker.values, model=model,
                        seconds=time.perf_counter() - start,
                        gradient_norms=logger.step_norms if logger else [])


def compare_on_adding(settings: Settings | None = None, seed: int = 0,
                      cells: tuple[str, ...] = CELL_NAMES,
                      log_gradients: bool = False) -> dict[str, AddingResult]:
    """:func:`train_adding` for each cell with the same data, seed and step budget."""
    return {cell: train_adding(cell, settings, seed=seed, log_gradients=log_gradients)
            for cell in cells}


# --------------------------------------------------------------------------------------
# cuDNN versus the generic kernel
# --------------------------------------------------------------------------------------

@dataclass
class KernelTiming:
    """Median seconds of one training step (forward + backward) for one layer setting."""

    cell: str
    kernel: str
    seconds: float


def kernel_speed(cell: str = "lstm", units: int = 128, batch: int = 64, timesteps: int = 100,
                 features: int = 32, repeats: int = 5, use_cudnn="auto") -> KernelTiming:
    """Time one compiled forward+backward step of a Keras LSTM/GRU layer.

    ``use_cudnn="auto"`` takes the fused cuDNN kernel when a GPU is visible and the
    settings allow it (see :func:`rnncourse.devices.cudnn_eligibility`); ``False`` forces
    the generic kernel (a ``tf.while_loop`` over time steps). On a CPU both are the
    generic kernel.

    Returns:
        :class:`KernelTiming` with the median over ``repeats`` timed steps (after one
        warm-up step that traces and compiles).
    """
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell must be 'lstm' or 'gru' (cuDNN has no SimpleRNN), not {cell!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    layer = KERAS_LAYERS[cell](units, use_cudnn=use_cudnn)
    x = tf.random.normal((batch, timesteps, features), seed=0)
    layer.build(x.shape)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True) ** 2)
        return tape.gradient(loss, layer.trainable_weights)

    def timed() -> float:
        start = time.perf_counter()
        grads = step()
        float(tf.reduce_sum(grads[0]))  # wait for the device
        return time.perf_counter() - start

    timed()
    seconds = float(np.median([timed() for _ in range(repeats)]))
    from rnncourse.devices import gpus

    kernel = "generic"
    if use_cudnn != False and gpus():  # noqa: E712 -- "auto" and True both allow cuDNN
        from rnncourse.devices import cudnn_eligibility

        kernel = "cudnn" if cudnn_eligibility(layer)[0] else "generic"
    return KernelTiming(cell=cell, kernel=kernel, seconds=seconds)


def cudnn_speedup(cell: str = "lstm", **shape) -> float | None:
    """Generic-kernel time divided by cuDNN time for one training step, or None on a CPU.

    ``shape`` goes to :func:`kernel_speed` (``units``, ``batch``, ``timesteps``,
    ``features``, ``repeats``). Without a visible GPU there is no cuDNN kernel to time,
    so the function returns None instead of a meaningless ratio of two generic kernels.
    """
    from rnncourse.devices import gpus

    if not gpus():
        return None
    generic = kernel_speed(cell, use_cudnn=False, **shape)
    fused = kernel_speed(cell, use_cudnn="auto", **shape)
    return generic.seconds / fused.seconds


#: Layer settings people write, for the chapter's eligibility table: (label, factory).
EXAMPLE_LAYERS = (
    ("LSTM(64)", lambda: keras.layers.LSTM(64)),
    ("LSTM(64, dropout=0.2)", lambda: keras.layers.LSTM(64, dropout=0.2)),
    ("LSTM(64, go_backwards=True)", lambda: keras.layers.LSTM(64, go_backwards=True)),
    ("Bidirectional(LSTM(64))", lambda: keras.layers.Bidirectional(keras.layers.LSTM(64))),
    ("LSTM(64, activation='relu')", lambda: keras.layers.LSTM(64, activation="relu")),
    ("LSTM(64, recurrent_dropout=0.2)", lambda: keras.layers.LSTM(64, recurrent_dropout=0.2)),
    ("LSTM(64, unroll=True)", lambda: keras.layers.LSTM(64, unroll=True)),
    ("LSTM(64, use_bias=False)", lambda: keras.layers.LSTM(64, use_bias=False)),
    ("LSTM(64, recurrent_activation='hard_sigmoid')",
     lambda: keras.layers.LSTM(64, recurrent_activation="hard_sigmoid")),
    ("GRU(64)", lambda: keras.layers.GRU(64)),
    ("GRU(64, reset_after=False)", lambda: keras.layers.GRU(64, reset_after=False)),
    ("RNN(LSTMCell(64))", lambda: keras.layers.RNN(keras.layers.LSTMCell(64))),
)


def eligibility_table() -> list[tuple[str, bool, str]]:
    """``(layer setting, cuDNN eligible, what rules it out)`` for :data:`EXAMPLE_LAYERS`.

    Uses :func:`rnncourse.devices.cudnn_eligibility`; the reasons column is empty for
    eligible layers.
    """
    from rnncourse.devices import cudnn_eligibility

    rows = []
    for label, factory in EXAMPLE_LAYERS:
        eligible, reasons = cudnn_eligibility(factory())
        rows.append((label, eligible, "; ".join(reasons)))
    return rows


def usage_shapes(batch: int = 4, timesteps: int = 7, features: int = 3,
                 units: int = 5) -> dict[str, tuple[int, ...]]:
    """Output shapes of the common ways to use a Keras LSTM, on a random batch.

    Keys: ``"last output"`` (default), ``"return_sequences"``, ``"return_state"`` (output,
    h, c), ``"stacked"`` (LSTM(return_sequences=True) -> LSTM), ``"bidirectional"``
    (forward and backward outputs concatenated).
    """
    x = np.random.default_rng(0).normal(size=(batch, timesteps, features)).astype("float32")
    lstm = keras.layers.LSTM
    shapes = {
        "last output": tuple(lstm(units)(x).shape),
        "return_sequences": tuple(lstm(units, return_sequences=True)(x).shape),
        "return_state": tuple(tuple(t.shape) for t in lstm(units, return_state=True)(x)),
        "stacked": tuple(lstm(units)(lstm(units, return_sequences=True)(x)).shape),
        "bidirectional": tuple(keras.layers.Bidirectional(lstm(units))(x).shape),
    }
    return shapes


def dropout_difference(rate: float = 0.5, seed: int = 0) -> dict[str, float]:
    """How ``dropout`` and ``recurrent_dropout`` act: at training time only.

    Runs one LSTM layer with the given ``dropout``/``recurrent_dropout`` on a fixed batch
    with ``training=False`` and ``training=True`` and returns the largest absolute change
    of the output against the same weights without dropout: zero at inference, non-zero
    in training, for both kinds.
    """
    x = np.random.default_rng(seed).normal(size=(4, 6, 3)).astype("float32")
    config.set_seed(seed)
    plain = keras.layers.LSTM(5)
    reference = plain(x).numpy()
    result = {}
    for kind in ("dropout", "recurrent_dropout"):
        layer = keras.layers.LSTM(5, **{kind: rate})
        layer.build(x.shape)
        layer.set_weights(plain.get_weights())
        result[f"{kind}, inference"] = float(np.max(np.abs(layer(x).numpy() - reference)))
        result[f"{kind}, training"] = float(np.max(np.abs(layer(x, training=True).numpy()
                                                          - reference)))
    return result

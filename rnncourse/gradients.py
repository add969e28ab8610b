"""Gradients of recurrent networks: BPTT by hand, gradient norms through time, clipping.

The chapter *RNN gradients* (``book/01_rnn_gradients.ipynb``) calls this module to
measure, rather than assert, why a plain RNN forgets and why its loss can blow up:

* :func:`numpy_bptt` - backpropagation through time for ``SimpleRNN(tanh) -> Dense``
  written in NumPy, checked against ``tf.GradientTape`` by :func:`tape_gradients`.
* :func:`timestep_gradient_norms` - ``||dLoss/dx_t||`` for every input step of any Keras
  model; :func:`state_gradient_norms` - ``||dLoss/dh_t||`` for the hidden state of the
  model's recurrent layer (SimpleRNN, GRU or LSTM).
* :func:`recurrent_regressor`, :func:`set_recurrent_spectrum`, :func:`largest_singular_value`,
  :func:`spectral_radius` - small models whose recurrent matrix has a chosen spectrum.
* :func:`clip_by_global_norm`, :func:`clip_by_value`, :func:`global_norm`,
  :func:`cosine_similarity` - what the optimizers' ``global_clipnorm`` and ``clipvalue`` do.
* :class:`GradientNormLogger` - a Keras callback that records the global gradient norm of
  every training step of ``model.fit``, for any model (Embedding layers included).
* :func:`fit_regressor` - compile and train with or without clipping, detecting divergence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse.config import by_scale, quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

#: Smallest norm reported by :func:`compare_cells` (float32 underflows below ~1e-38).
FLOOR = 1e-38

RECURRENT_CELLS = {
    "simple_rnn": keras.layers.SimpleRNN,
    "gru": keras.layers.GRU,
    "lstm": keras.layers.LSTM,
}


@dataclass(frozen=True)
class Settings:
    """Sizes used by the chapter, picked for the current scale (``RNNCOURSE_SCALE``).

    Attributes:
        timesteps: sequence length of the gradient-through-time measurements.
        units: recurrent units of the measured models.
        batch_size: sequences per measurement batch.
        train_examples: adding-problem sequences used for the clipping experiment.
        train_timesteps: sequence length of the clipping experiment.
        train_epochs: epochs of the clipping experiment.
        seeds: weight seeds averaged over when comparing cells.
        review_sentences: movie-review sentences of the gradient-logger demo.
        review_epochs: epochs of the gradient-logger demo.
    """

    timesteps: int = 100
    units: int = 32
    batch_size: int = 32
    train_examples: int = field(default_factory=lambda: by_scale(ci=512, full=2048))
    train_timesteps: int = 50
    train_epochs: int = field(default_factory=lambda: by_scale(ci=4, full=12))
    seeds: tuple[int, ...] = field(
        default_factory=lambda: by_scale(ci=(0,), full=(0, 1, 2, 3, 4)))
    review_sentences: int = field(default_factory=lambda: by_scale(ci=640, full=4000))
    review_epochs: int = field(default_factory=lambda: by_scale(ci=2, full=4))


def settings() -> Settings:
    """The chapter's sizes at the current scale (see :class:`Settings`)."""
    return Settings()


# ---------------------------------------------------------------------------------------
# Models with a chosen recurrent spectrum
# ---------------------------------------------------------------------------------------

def recurrent_regressor(cell: str = "simple_rnn", units: int = 32, features: int = 2,
                        timesteps: int | None = None, activation: str | None = None,
                        recurrent_initializer: str | keras.initializers.Initializer | None = None,
                        seed: int = 0, name: str | None = None) -> keras.Model:
    """``(batch, timesteps, features)`` floats -> one recurrent layer -> ``Dense(1)``.

    The model of the adding problem (:func:`rnncourse.data.adding_problem`) and of the
    chapter's gradient measurements.

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        units: recurrent units.
        features: input features per step.
        timesteps: fixed sequence length, or ``None`` for any length.
        activation: the cell's activation (``"tanh"``, ``"relu"``, ``"linear"``); ``None``
            keeps the Keras default (tanh). Only tanh keeps LSTM/GRU cuDNN-eligible.
        recurrent_initializer: initialiser of the recurrent matrix (Keras default:
            ``"orthogonal"``); e.g. ``"identity"`` for an IRNN (Le et al., 2015).
        seed: seed of every initialiser, so two calls build identical weights.
        name: model name.

    Returns:
        A built ``keras.Model`` with output ``(batch, 1)``.
    """
    if cell not in RECURRENT_CELLS:
        raise ValueError(f"cell must be one of {', '.join(RECURRENT_CELLS)}, not {cell!r}")
    if units < 1 or features < 1:
        raise ValueError(f"units and features must be >= 1, got units={units}, features={features}")
    kwargs = {
        "kernel_initializer": keras.initializers.GlorotUniform(seed=seed),
        "recurrent_initializer": keras.initializers.Orthogonal(seed=seed + 1),
        "name": cell,
    }
    if recurrent_initializer is not None:
        kwargs["recurrent_initializer"] = (keras.initializers.Identity()
                                           if recurrent_initializer == "identity"
                                           else recurrent_initializer)
    if activation is not None:
        kwargs["activation"] = activation
    inputs = keras.Input(shape=(timesteps, features), name="sequence")
    hidden = RECURRENT_CELLS[cell](units, **kwargs)(inputs)
    head = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2),
                              name="output")
    outputs = head(hidden)
    return keras.Model(inputs, outputs, name=name or f"{cell}_regressor")


def recurrent_layer_of(model: keras.Model, layer: str | keras.layers.Layer | None = None
                       ) -> keras.layers.RNN:
    """The recurrent layer of ``model`` (the only one, or the one named ``layer``)."""
    if isinstance(layer, keras.layers.Layer):
        candidates = [layer]
    else:
        candidates = [lay for lay in model.layers if isinstance(lay, keras.layers.RNN)]
        if layer is not None:
            candidates = [lay for lay in candidates if lay.name == layer]
    if len(candidates) != 1 or not isinstance(candidates[0], keras.layers.RNN):
        names = [lay.name for lay in model.layers if isinstance(lay, keras.layers.RNN)]
        raise ValueError(
            f"need exactly one recurrent layer, found {names or 'none'}"
            + (f" named {layer!r}" if layer is not None else "")
            + "; pass layer=<name> to pick one (Bidirectional wrappers are not supported)."
        )
    return candidates[0]


def recurrent_kernel(layer: keras.layers.Layer) -> np.ndarray:
    """The recurrent matrix ``W_aa`` of a recurrent layer, ``(units, gates * units)``."""
    cell = getattr(layer, "cell", layer)
    if not hasattr(cell, "recurrent_kernel"):
        raise ValueError(f"layer {layer.name!r} has no recurrent_kernel; build it first "
                         "(call the model once) and pass a SimpleRNN, GRU or LSTM layer.")
    return np.array(cell.recurrent_kernel.numpy())


def set_recurrent_spectrum(layer: keras.layers.Layer, radius: float, seed: int = 0) -> np.ndarray:
    """Set a SimpleRNN's recurrent matrix to ``radius`` times a random orthogonal matrix.

    Every singular value, and so the spectral radius, of the new matrix equals ``radius``:
    below 1 the linearised recurrence contracts, above 1 it expands.

    Returns:
        The new ``(units, units)`` matrix.
    """
    matrix = recurrent_kernel(layer)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"set_recurrent_spectrum needs a square recurrent matrix (SimpleRNN); "
                         f"{layer.name!r} has shape {matrix.shape}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal(matrix.shape))
    q = q * np.sign(np.diag(r))
    new = (radius * q).astype(np.float32)
    getattr(layer, "cell", layer).recurrent_kernel.assign(new)
    return new


def largest_singular_value(matrix: np.ndarray) -> float:
    """Largest singular value ``sigma_1`` of a matrix (its spectral norm)."""
    return float(np.linalg.norm(np.asarray(matrix, dtype=np.float64), ord=2))


def spectral_radius(matrix: np.ndarray) -> float:
    """Largest absolute eigenvalue of a square matrix (``<= sigma_1`` always)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"spectral_radius needs a square matrix, got shape {matrix.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


# ---------------------------------------------------------------------------------------
# BPTT by hand
# ---------------------------------------------------------------------------------------

def simple_rnn_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """The five weights of ``SimpleRNN(tanh) -> Dense(1)`` as NumPy arrays.

    Keys: ``kernel`` ``(features, units)`` = W_ax, ``recurrent_kernel`` ``(units, units)``
    = W_aa, ``bias`` ``(units,)``, ``dense_kernel`` ``(units, 1)``, ``dense_bias`` ``(1,)``.
    """
    rnn = recurrent_layer_of(model)
    if not isinstance(rnn, keras.layers.SimpleRNN) or rnn.return_sequences:
        raise ValueError("simple_rnn_weights needs a SimpleRNN (return_sequences=False) -> Dense "
                         "model such as recurrent_regressor('simple_rnn')")
    dense = [lay for lay in model.layers if isinstance(lay, keras.layers.Dense)]
    if len(dense) != 1:
        raise ValueError(
            f"expected exactly one Dense layer after the SimpleRNN, found {len(dense)}")
    cell = rnn.cell
    return {
        "kernel": np.array(cell.kernel.numpy()),
        "recurrent_kernel": np.array(cell.recurrent_kernel.numpy()),
        "bias": np.array(cell.bias.numpy()),
        "dense_kernel": np.array(dense[0].kernel.numpy()),
        "dense_bias": np.array(dense[0].bias.numpy()),
    }


@dataclass
class BPTTResult:
    """What :func:`numpy_bptt` computes.

    Attributes:
        loss: mean squared error over the batch.
        grads: gradients of ``loss`` with the keys of :func:`simple_rnn_weights`.
        state_grad_norms: ``(timesteps,)`` mean over the batch of ``||d loss_i / d h_t||``,
            where ``loss_i`` is example ``i``'s own squared error (independent of batch size).
        recurrent_contributions: ``(timesteps,)`` Frobenius norm of step ``t``'s term in
            ``d loss / d W_aa``; the gradient is their sum.
    """

    loss: float
    grads: dict[str, np.ndarray]
    state_grad_norms: np.ndarray
    recurrent_contributions: np.ndarray


#: Activations :func:`numpy_bptt` knows: ``name -> (f, f' written with f's output)``.
NUMPY_ACTIVATIONS = {
    "tanh": (np.tanh, lambda a: 1.0 - a ** 2),
    "linear": (lambda z: z, np.ones_like),
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(a.dtype)),
}


def numpy_bptt(x: np.ndarray, y: np.ndarray, weights: dict[str, np.ndarray],
               activation: str = "tanh") -> BPTTResult:
    """Forward pass and backpropagation through time of ``SimpleRNN -> Dense(1)``.

    ``a_t = f(x_t W_ax + a_{t-1} W_aa + b)`` with ``a_0 = 0``, prediction
    ``y_hat = a_T w + c``, loss ``mean_i (y_hat_i - y_i)^2``. The backward pass walks from
    ``t = T`` to 1, carrying ``delta_t = d loss / d a_t`` and adding each step's term to the
    weight gradients (the same weights are used at every step).

    Args:
        x: ``(batch, timesteps, features)`` float.
        y: ``(batch, 1)`` float targets.
        weights: as returned by :func:`simple_rnn_weights`.
        activation: ``f``: ``"tanh"`` (Keras' default), ``"linear"`` or ``"relu"``.

    Returns:
        A :class:`BPTTResult`, in float64.
    """
    if activation not in NUMPY_ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(NUMPY_ACTIVATIONS)}, "
                         f"not {activation!r}")
    f, f_prime = NUMPY_ACTIVATIONS[activation]
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    if x.ndim != 3:
        raise ValueError(f"x must be (batch, timesteps, features), got shape {x.shape}")
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    if w["kernel"].shape[0] != x.shape[2]:
        raise ValueError(f"x has {x.shape[2]} features but kernel expects {w['kernel'].shape[0]}")
    batch, timesteps, _ = x.shape
    units = w["recurrent_kernel"].shape[0]
    states = np.zeros((timesteps + 1, batch, units))  # states[t + 1] = a_t, states[0] = a_0
    for t in range(timesteps):
        states[t + 1] = f(x[:, t] @ w["kernel"] + states[t] @ w["recurrent_kernel"] + w["bias"])
    y_hat = states[-1] @ w["dense_kernel"] + w["dense_bias"]
    loss = float(np.mean((y_hat - y) ** 2))

    d_y_hat = 2.0 * (y_hat - y) / y_hat.size
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    grads["dense_kernel"] = states[-1].T @ d_y_hat
    grads["dense_bias"] = d_y_hat.sum(axis=0)
    delta = d_y_hat @ w["dense_kernel"].T  # d loss / d a_T
    state_norms = np.zeros(timesteps)
    contributions = np.zeros(timesteps)
    for t in reversed(range(timesteps)):
        state_norms[t] = np.linalg.norm(delta * batch, axis=1).mean()
        d_pre = delta * f_prime(states[t + 1])  # through the activation
        step_recurrent = states[t].T @ d_pre
        contributions[t] = np.linalg.norm(step_recurrent)
        grads["recurrent_kernel"] += step_recurrent
        grads["kernel"] += x[:, t].T @ d_pre
        grads["bias"] += d_pre.sum(axis=0)
        delta = d_pre @ w["recurrent_kernel"].T  # d loss / d a_{t-1}
    return BPTTResult(loss, grads, state_norms, contributions)


def tape_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """``tf.GradientTape`` gradients of the batch-mean squared error of a SimpleRNN regressor.

    Same keys as :func:`simple_rnn_weights`, so they compare one to one with
    :func:`numpy_bptt`.
    """
    rnn = recurrent_layer_of(model)
    dense = [lay for lay in model.layers if isinstance(lay, keras.layers.Dense)][0]
    variables = {"kernel": rnn.cell.kernel, "recurrent_kernel": rnn.cell.recurrent_kernel,
                 "bias": rnn.cell.bias, "dense_kernel": dense.kernel, "dense_bias": dense.bias}
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    y = tf.convert_to_tensor(y, dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=False) - y))
    grads = tape.gradient(loss, [v.value for v in variables.values()])
    return {k: g.numpy() for k, g in zip(variables, grads, strict=True)}


# ---------------------------------------------------------------------------------------
# Gradient norms through time
# ---------------------------------------------------------------------------------------

def _loss_function(loss: str | Callable | None) -> Callable:
    if loss is None:
        return keras.losses.mean_squared_error
    if isinstance(loss, str):
        try:
            return keras.losses.get(loss)
        except ValueError:
            raise ValueError(f"unknown loss {loss!r}; pass a Keras loss name such as 'mse' or "
                             "'binary_crossentropy', or a callable(y_true, y_pred)") from None
    if callable(loss):
        return loss
    raise ValueError(f"loss must be None, a Keras loss name or a callable, not {type(loss)}")


def _summed_loss(loss_fn: Callable, y: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Sum of per-example losses, so d/dx_i is example i's own gradient."""
    values = loss_fn(y, y_pred)
    if len(values.shape) == 0:  # a reduced (batch-mean) loss: undo the mean
        return values * tf.cast(tf.shape(y_pred)[0], values.dtype)
    return tf.reduce_sum(values)


def _check_sequences(x, y) -> tuple[tf.Tensor, tf.Tensor]:
    x = np.asarray(x)
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be float (batch, timesteps, features), got {x.dtype} {x.shape}; "
                         "for token ids measure dLoss/dh_t with state_gradient_norms instead")
    if len(np.asarray(y)) != len(x):
        raise ValueError(f"x has {len(x)} sequences but y has {len(np.asarray(y))}; "
                         "pass one target per sequence")
    return tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)


def _per_step_norms(grads: tf.Tensor) -> np.ndarray:
    """``(batch, timesteps, width)`` -> mean over the batch of per-example L2 norms, ``(T,)``."""
    return tf.reduce_mean(tf.norm(grads, axis=-1), axis=0).numpy().astype(np.float64)


def timestep_gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray,
                            loss: str | Callable | None = None, wrt: str = "inputs"
                            ) -> np.ndarray:
    """Norm of the loss gradient for every time step of a batch.

    For ``wrt="inputs"`` this is ``||d loss_i / d x_{i,t}||_2`` (norm over features), where
    ``loss_i`` is example ``i``'s own loss, averaged over the batch: the *mean of the
    per-example norms*, so the numbers do not depend on the batch size. Works for any
    Keras model that takes one float input ``(batch, timesteps, features)`` (cuDNN layers,
    stacks, bidirectional wrappers included).

    ``wrt="states"`` returns ``||d loss_i / d h_{i,t}||`` for the hidden state of the model's
    single recurrent layer instead (see :func:`state_gradient_norms`).

    Args:
        model: a Keras model.
        x: ``(batch, timesteps, features)`` float inputs.
        y: targets, ``(batch, ...)`` as the model's output.
        loss: a Keras loss name, or ``callable(y_true, y_pred)`` returning per-example
            losses ``(batch,)``; a scalar return is treated as a batch mean. Default MSE.
        wrt: ``"inputs"`` or ``"states"``.

    Returns:
        ``(timesteps,)`` float64 array; entry ``t`` is the gradient norm at step ``t``, so
        ``norms[0] / norms[-1]`` measures how much gradient reaches the first step.
    """
    if wrt == "states":
        return state_gradient_norms(model, x, y, loss=loss)
    if wrt != "inputs":
        raise ValueError(f"wrt must be 'inputs' or 'states', not {wrt!r}")
    loss_fn = _loss_function(loss)
    x, y = _check_sequences(x, y)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = _summed_loss(loss_fn, y, model(x, training=False))
    return _per_step_norms(tape.gradient(total, x))


def state_gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray,
                         loss: str | Callable | None = None,
                         layer: str | keras.layers.Layer | None = None) -> np.ndarray:
    """Norm of ``d loss / d h_t`` for the hidden state of the model's recurrent layer.

    The layer's cell is unrolled step by step in Python and a zero tensor ``e_t`` is added
    to each output ``h_t``, which is also the state carried to step ``t + 1``; the
    gradient with respect to ``e_t`` is the total derivative of the loss with respect to
    ``h_t`` (through all later steps). The model must be a linear stack: layers before the
    recurrent layer, the recurrent layer (SimpleRNN, GRU or LSTM, not Bidirectional, no
    masking), layers after it. The unrolled pass gives the same output as ``model(x)``.

    Args:
        model: a Keras model (e.g. :func:`recurrent_regressor`, or an Embedding model).
        x: ``(batch, timesteps, ...)`` inputs of the model (float features or int ids).
        y: targets as the model's output.
        loss: as in :func:`timestep_gradient_norms`.
        layer: name or instance of the recurrent layer when the model has several.

    Returns:
        ``(timesteps,)`` float64, mean over the batch of per-example ``||d loss_i / d h_t||``.
    """
    loss_fn = _loss_function(loss)
    rnn = recurrent_layer_of(model, layer)
    if getattr(rnn, "go_backwards", False) or getattr(rnn, "return_state", False):
        raise ValueError(f"{rnn.name!r}: go_backwards/return_state layers are not supported")
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be (batch, timesteps, ...), got shape {x.shape}")
    if len(np.asarray(y)) != len(x):
        raise ValueError(f"x has {len(x)} sequences but y has {len(np.asarray(y))}; "
                         "pass one target per sequence")
    layers = [lay for lay in model.layers if not isinstance(lay, keras.layers.InputLayer)]
    index = layers.index(rnn)
    x = tf.convert_to_tensor(x)
    y = tf.convert_to_tensor(y, tf.float32)
    batch, timesteps = x.shape[0], x.shape[1]
    cell = rnn.cell
    perturbations = [tf.zeros((batch, cell.units)) for _ in range(timesteps)]
    with tf.GradientTape() as tape:
        tape.watch(perturbations)
        hidden = x
        for lay in layers[:index]:
            hidden = lay(hidden, training=False)
        states = cell.get_initial_state(batch_size=batch)
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        outputs = []
        for t in range(timesteps):
            out, new_states = cell(hidden[:, t], states, training=False)
            out = out + perturbations[t]
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            states = [out] + new_states[1:]
            outputs.append(out)
        hidden = tf.stack(outputs, axis=1) if rnn.return_sequences else outputs[-1]
        for lay in layers[index + 1:]:
            hidden = lay(hidden, training=False)
        total = _summed_loss(loss_fn, y, hidden)
    grads = tape.gradient(total, perturbations)
    return _per_step_norms(tf.stack(grads, axis=1))


def early_to_late_ratio(norms: np.ndarray) -> float:
    """``norms[0] / norms[-1]``: below 1 the gradient vanishes backward, above 1 it explodes."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1 or len(norms) < 2:
        raise ValueError(f"need a (timesteps,) array with timesteps >= 2, got shape {norms.shape}")
    return float(norms[0] / norms[-1])


def open_gates(model: keras.Model, bias: float = 5.0) -> float:
    """Set the bias of the gate that keeps the old state, so the gate starts (nearly) open.

    LSTM: the forget gate ``f = sigmoid(... + bias)``; GRU: the update gate ``z`` in
    ``h_t = z * h_{t-1} + (1 - z) * h~_t``. With ``bias = 5`` the gate is about 0.993, so
    the state (and the gradient along it) passes ~0.993 of itself per step. Training on a
    long-lag task pushes gates this way; Keras' ``unit_forget_bias=True`` starts the LSTM
    at bias 1 (gate 0.73). A SimpleRNN has no gate and raises ``ValueError``.

    Returns:
        The resulting gate value ``sigmoid(bias)`` (inputs and state at zero).
    """
    rnn = recurrent_layer_of(model)
    cell = rnn.cell
    values = np.array(cell.bias.numpy()).copy()
    units = cell.units
    if isinstance(rnn, keras.layers.LSTM):
        values[units:2 * units] = bias  # gate order i, f, c, o
    elif isinstance(rnn, keras.layers.GRU):
        if values.ndim == 2:  # reset_after: (input bias, recurrent bias)
            values[0, :units] = bias
            values[1, :units] = 0.0
        else:
            values[:units] = bias  # gate order z, r, h
    else:
        raise ValueError(f"{rnn.name!r} has no gate to open; open_gates needs an LSTM or GRU")
    cell.bias.assign(values)
    return float(1.0 / (1.0 + np.exp(-bias)))


def compare_cells(cells: Sequence[str], x: np.ndarray, y: np.ndarray, units: int = 32,
                  seeds: Sequence[int] = (0,), wrt: str = "inputs",
                  gate_bias: float | None = None) -> dict[str, np.ndarray]:
    """Gradient norms through time of freshly initialised models, one per cell.

    Args:
        cells: names such as ``("simple_rnn", "gru", "lstm")``.
        x, y: a batch, as for :func:`timestep_gradient_norms`.
        units: recurrent units.
        seeds: weight seeds; the result is the geometric mean over them.
        wrt: ``"inputs"`` or ``"states"``.
        gate_bias: when set, gated cells start with :func:`open_gates` ``(bias=gate_bias)``.

    Returns:
        ``{cell: (timesteps,) norms}``. Norms that underflow float32 (exactly 0) are
        floored at ``1e-38`` so the geometric mean and log plots stay finite.
    """
    result = {}
    for cell in cells:
        logs = []
        for seed in seeds:
            model = recurrent_regressor(cell, units=units, features=np.shape(x)[-1], seed=seed)
            if gate_bias is not None and cell != "simple_rnn":
                open_gates(model, gate_bias)
            norms = timestep_gradient_norms(model, x, y, wrt=wrt)
            logs.append(np.log(np.maximum(norms, FLOOR)))
        result[cell] = np.exp(np.mean(logs, axis=0))
    return result


# ---------------------------------------------------------------------------------------
# Clipping
# ---------------------------------------------------------------------------------------

def _dense(gradient) -> tf.Tensor:
    """Dense tensor from a gradient (``IndexedSlices`` from Embedding layers are summed)."""
    return tf.convert_to_tensor(gradient)


def global_norm(grads: Sequence) -> float:
    """``sqrt(sum_k ||g_k||^2)`` over a list of gradients (``None`` skipped)."""
    squares = [tf.reduce_sum(tf.square(tf.cast(_dense(g), tf.float64))) for g in grads
               if g is not None]
    return float(tf.sqrt(tf.add_n(squares))) if squares else 0.0


def clip_by_global_norm(grads: Sequence, max_norm: float) -> tuple[list[tf.Tensor], float]:
    """Scale all gradients by ``min(1, max_norm / global_norm)``; what ``global_clipnorm`` does.

    A re-implementation of ``tf.clip_by_global_norm`` for teaching (the unit tests check
    they agree). The direction of the concatenated gradient does not change.

    Returns:
        ``(clipped gradients, global norm before clipping)``.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    dense = [_dense(g) for g in grads]
    norm = global_norm(dense)
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return [g * tf.cast(scale, g.dtype) for g in dense], norm


def clip_by_value(grads: Sequence, value: float) -> list[tf.Tensor]:
    """Clamp every gradient entry to ``[-value, value]``; what ``clipvalue`` does."""
    if not value > 0:
        raise ValueError(f"value must be > 0, got {value}")
    return [tf.clip_by_value(_dense(g), -value, value) for g in grads]


def cosine_similarity(grads_a: Sequence, grads_b: Sequence) -> float:
    """Cosine of the angle between two gradient lists, each flattened into one vector."""
    if len(grads_a) != len(grads_b):
        raise ValueError(f"gradient lists differ in length: {len(grads_a)} vs {len(grads_b)}")
    a = np.concatenate([np.ravel(_dense(g).numpy()) for g in grads_a]).astype(np.float64)
    b = np.concatenate([np.ravel(_dense(g).numpy()) for g in grads_b]).astype(np.float64)
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    if denominator == 0:
        raise ValueError("cosine similarity of a zero gradient is undefined")
    return float(a @ b / denominator)


def model_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray,
                    loss: str | Callable | None = None) -> list[tf.Tensor]:
    """Gradients of the batch-mean loss with respect to ``model.trainable_weights``."""
    loss_fn = _loss_function(loss)
    with tf.GradientTape() as tape:
        values = loss_fn(tf.convert_to_tensor(y, tf.float32), model(x, training=False))
        total = tf.reduce_mean(values)
    return tape.gradient(total, [w.value for w in model.trainable_weights])


# ---------------------------------------------------------------------------------------
# A callback that logs gradient norms during fit
# ---------------------------------------------------------------------------------------

class GradientNormLogger(keras.callbacks.Callback):
    """Record the global gradient norm of every training step of ``model.fit``.

    The callback wraps the model's optimizer so that each ``apply_gradients`` call also
    stores ``||g||`` (the norm *before* any ``clipnorm``/``global_clipnorm``/``clipvalue``
    the optimizer applies) in a variable, and reads it after each batch. Embedding
    gradients (``IndexedSlices``) are converted to dense tensors first, so repeated token
    ids are summed as in the true gradient. The wrapper is removed when training ends.

    Attributes:
        step_norms: list of floats, one per optimizer step (all epochs, in order).
        epoch_norms: list of floats, mean step norm of each epoch.
        epoch_max_norms: list of floats, largest step norm of each epoch.
        layer_norms: ``{variable path: [norm per step]}`` when ``per_variable=True``.

    Example:
        >>> logger = GradientNormLogger()
        >>> model.fit(x, y, epochs=3, verbose=0, callbacks=[logger])  # doctest: +SKIP
        >>> max(logger.step_norms)  # doctest: +SKIP
    """

    def __init__(self, per_variable: bool = False) -> None:
        super().__init__()
        self.per_variable = per_variable
        self.step_norms: list[float] = []
        self.epoch_norms: list[float] = []
        self.epoch_max_norms: list[float] = []
        self.layer_norms: dict[str, list[float]] = {}
        self._epoch_start = 0
        self._norm = None
        self._variable_norms = None
        self._original_apply = None

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if optimizer is None:
            raise ValueError("compile the model with an optimizer before fit")
        self._norm = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        paths = [w.path for w in self.model.trainable_weights]
        self._variable_norms = tf.Variable(tf.zeros(len(paths)), trainable=False)
        self.layer_norms = {path: self.layer_norms.get(path, []) for path in paths}
        self._original_apply = optimizer.apply_gradients
        logger = self

        def apply_gradients(grads_and_vars, *args, **kwargs):
            grads_and_vars = list(grads_and_vars)
            norms = tf.stack([tf.norm(tf.cast(_dense(g), tf.float32)) if g is not None
                              else tf.constant(0.0) for g, _ in grads_and_vars])
            logger._norm.assign(tf.norm(norms))
            if logger.per_variable and len(grads_and_vars) == len(paths):
                logger._variable_norms.assign(norms)
            return logger._original_apply(grads_and_vars, *args, **kwargs)

        optimizer.apply_gradients = apply_gradients
        self.model.make_train_function(force=True)  # trace again with the wrapper

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = len(self.step_norms)

    def on_train_batch_end(self, batch, logs=None):
        self.step_norms.append(float(self._norm.numpy()))
        if self.per_variable:
            for path, value in zip(self.layer_norms, self._variable_norms.numpy(), strict=True):
                self.layer_norms[path].append(float(value))

    def on_epoch_end(self, epoch, logs=None):
        norms = self.step_norms[self._epoch_start:]
        if norms:
            self.epoch_norms.append(float(np.mean(norms)))
            self.epoch_max_norms.append(float(np.max(norms)))

    def on_train_end(self, logs=None):
        optimizer = self.model.optimizer
        if self._original_apply is not None and "apply_gradients" in vars(optimizer):
            del optimizer.apply_gradients  # back to the class method
        self._original_apply = None
        self.model.make_train_function(force=True)


# ---------------------------------------------------------------------------------------
# Training with and without clipping
# ---------------------------------------------------------------------------------------

class StopOnNonFinite(keras.callbacks.Callback):
    """Stop ``fit`` silently at the first NaN/inf loss (``TerminateOnNaN`` prints a line).

    Attributes:
        stopped_at: index of the batch (counted over all epochs) that produced it, or None.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stopped_at: int | None = None
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.stopped_at = self._seen - 1
            self.model.stop_training = True


@dataclass
class TrainingRun:
    """Outcome of :func:`fit_regressor`.

    Attributes:
        label: description of the run (e.g. ``"no clipping"``).
        losses: training loss per epoch (shorter than asked when training stopped on NaN).
        step_norms: global gradient norm per step, before clipping.
        diverged: True when the loss became NaN/inf or ended above 10x its first value.
    """

    label: str
    losses: list[float]
    step_norms: list[float]
    diverged: bool

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")


def fit_regressor(model: keras.Model, x: np.ndarray, y: np.ndarray, *, epochs: int,
                  learning_rate: float, batch_size: int = 32, label: str = "",
                  **clipping) -> TrainingRun:
    """Train with SGD (optionally clipped) and MSE, logging gradient norms per step.

    A NaN/inf loss stops training at once (:class:`StopOnNonFinite`) instead of crashing
    anything; the run is then marked ``diverged``.

    Args:
        model: e.g. :func:`recurrent_regressor`.
        x: ``(batch, timesteps, features)``; y: ``(batch, 1)``.
        epochs: passes over the data.
        learning_rate: SGD step size.
        batch_size: sequences per step.
        label: name of the run in plots.
        **clipping: optimizer clipping arguments: ``clipnorm``, ``global_clipnorm`` or
            ``clipvalue``.

    Returns:
        A :class:`TrainingRun`.
    """
    unknown = set(clipping) - {"clipnorm", "global_clipnorm", "clipvalue"}
    if unknown:
        raise ValueError(f"unknown clipping arguments {sorted(unknown)}; use clipnorm, "
                         "global_clipnorm or clipvalue")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate, **clipping),
                  loss="mse")
    logger = GradientNormLogger()
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=False,
                        callbacks=[logger, StopOnNonFinite()])
    losses = [float(v) for v in history.history.get("loss", [])]
    finite = bool(losses) and all(np.isfinite(losses)) and all(np.isfinite(logger.step_norms))
    diverged = not finite or losses[-1] > 10 * losses[0]
    return TrainingRun(label or (", ".join(f"{k}={v}" for k, v in clipping.items())
                                 or "no clipping"),
                       losses, logger.step_norms, diverged)


# ---------------------------------------------------------------------------------------
# The chapter's experiments, one call each
# ---------------------------------------------------------------------------------------

def singular_value_sweep(sigmas: Sequence[float], x: np.ndarray, y: np.ndarray,
                         activations: Sequence[str] = ("tanh", "linear"), units: int = 32,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """``||dLoss/dh_1|| / ||dLoss/dh_T||`` of a SimpleRNN whose ``W_aa`` is ``sigma`` times
    an orthogonal matrix, for every ``sigma`` and activation.

    The norms come from :func:`numpy_bptt` (float64, fast), which equals
    :func:`state_gradient_norms` on the Keras model (checked in the unit tests).

    Returns:
        ``{activation: (len(sigmas),) ratios}``; NaN where the forward pass overflowed.
    """
    result = {}
    for activation in activations:
        model = recurrent_regressor("simple_rnn", units=units, features=np.shape(x)[-1],
                                    activation=activation, seed=seed)
        ratios = []
        for sigma in sigmas:
            set_recurrent_spectrum(model.get_layer("simple_rnn"), sigma, seed=seed)
            with np.errstate(over="ignore", invalid="ignore"):
                norms = numpy_bptt(x, y, simple_rnn_weights(model), activation).state_grad_norms
            finite = np.all(np.isfinite(norms)) and norms[-1] > 0
            ratios.append(early_to_late_ratio(norms) if finite else np.nan)
        result[activation] = np.asarray(ratios)
    return result


#: Activation and recurrent initialiser of the curves of :func:`initialisation_curves`.
INITIALISATIONS = {
    "tanh, orthogonal (Keras default)": ("tanh", "orthogonal"),
    "tanh, glorot_uniform": ("tanh", "glorot_uniform"),
    "relu, orthogonal": ("relu", "orthogonal"),
    "relu, identity (IRNN)": ("relu", "identity"),
}


def initialisation_curves(x: np.ndarray, y: np.ndarray, units: int = 32, seed: int = 0
                          ) -> dict[str, np.ndarray]:
    """``||dLoss/dh_t||`` per step of untrained SimpleRNNs with the activations and recurrent
    initialisers of :data:`INITIALISATIONS`: ``{label: (timesteps,) norms}`` (computed by
    :func:`numpy_bptt` on each model's weights)."""
    curves = {}
    for label, (activation, initializer) in INITIALISATIONS.items():
        if initializer == "glorot_uniform":
            initializer = keras.initializers.GlorotUniform(seed=seed + 1)
        elif initializer == "orthogonal":
            initializer = keras.initializers.Orthogonal(seed=seed + 1)
        model = recurrent_regressor("simple_rnn", units=units, features=np.shape(x)[-1],
                                    activation=activation, recurrent_initializer=initializer,
                                    seed=seed)
        curves[label] = numpy_bptt(x, y, simple_rnn_weights(model), activation).state_grad_norms
    return curves


def clipping_experiment(config: Settings | None = None, learning_rate: float = 0.05,
                        runs: Sequence[dict] = ({}, {"global_clipnorm": 1.0},
                                                {"clipvalue": 0.1}),
                        seed: int = 0) -> list[TrainingRun]:
    """Train the same IRNN (ReLU, identity ``W_aa``) on the adding problem with each of
    ``runs``' clipping settings and plain SGD.

    The IRNN of Le et al. (2015) keeps its gradient through time, which also lets a large
    gradient through: at ``learning_rate=0.05`` the unclipped run blows up in its first steps.

    Args:
        config: sizes (:func:`settings` by default): ``train_examples``,
            ``train_timesteps``, ``train_epochs``, ``units``, ``batch_size``.
        learning_rate: SGD step size.
        runs: one dict of optimizer clipping arguments per run (``{}`` = no clipping).
        seed: seed of the data and the weights (every run starts from the same weights).

    Returns:
        One :class:`TrainingRun` per entry of ``runs``.
    """
    config = config or settings()
    x, y = adding_problem_batch(config.train_examples, config.train_timesteps, seed=seed + 1)
    results = []
    for clipping in runs:
        model = recurrent_regressor("simple_rnn", units=config.units, features=2,
                                    activation="relu", recurrent_initializer="identity",
                                    seed=seed)
        results.append(fit_regressor(model, x, y, epochs=config.train_epochs,
                                     learning_rate=learning_rate,
                                     batch_size=config.batch_size, **clipping))
    return results


def adding_problem_batch(n: int, timesteps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``rnncourse.data.adding_problem`` (imported lazily): ``x (n, T, 2)``, ``y (n, 1)``."""
    from rnncourse.data import adding_problem

    return adding_problem(n, timesteps, seed=seed)


def review_ids(texts: Sequence[str], num_words: int = 5000, maxlen: int = 40
               ) -> np.ndarray:
    """Space-tokenised texts -> ``(len(texts), maxlen)`` int32 ids, for a quick Embedding model.

    Id 0 is padding, 1 is a word outside the ``num_words - 2`` most frequent ones (the
    vocabulary is :class:`rnncourse.embeddings.Vocabulary`); sequences are cut (at the end)
    or padded (at the end) with ``keras.utils.pad_sequences``.
    """
    from rnncourse.embeddings import Vocabulary

    if num_words < 3:
        raise ValueError(f"num_words must be >= 3 (padding, OOV, one word), got {num_words}")
    tokens = [text.split() for text in texts]
    vocabulary = Vocabulary.from_tokens(tokens, max_size=num_words)
    return keras.utils.pad_sequences(vocabulary.encode_batch(tokens), maxlen=maxlen,
                                      padding="post", truncating="post").astype(np.int32)

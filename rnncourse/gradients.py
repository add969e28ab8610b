"""Gradients of recurrent networks: BPTT by hand, gradient norms through time, clipping.

The tools of the chapter *RNN gradients* (``book/01_rnn_gradients.ipynb``):

* :func:`numpy_bptt` - backpropagation through time for ``SimpleRNN(tanh) -> Dense``
  written in NumPy, checked against ``tf.GradientTape`` by :func:`tape_gradients`.
* :func:`timestep_gradient_norms` - ``||dLoss/dx_t||`` for every input step of any Keras
  model; :func:`state_gradient_norms` - ``||dLoss/dh_t||`` for the hidden state of the
  model's recurrent layer (SimpleRNN, GRU or LSTM); :func:`early_to_late_ratio`.
* :func:`set_recurrent_spectrum`, :func:`largest_singular_value`, :func:`spectral_radius`,
  :func:`open_gates`, :func:`compare_cells` - recurrent matrices with a chosen spectrum,
  gates that start open, gradient curves of freshly initialised cells. Models come from
  :func:`rnncourse.models.sequence_regressor`.
* :func:`pascanu_regularizer` - the vanishing-gradient regulariser Omega of Pascanu et
  al. (2013) for a SimpleRNN; :class:`PascanuRegularized` - ``fit`` with ``+ alpha * Omega``.
* :func:`clip_by_global_norm`, :func:`clip_by_value`, :func:`global_norm`,
  :func:`cosine_similarity`, :func:`model_gradients` - what the optimizers'
  ``global_clipnorm`` and ``clipvalue`` do, on real gradients.
* :class:`GradientNormModel` - ``GradientNormModel.wrap(model)`` shares ``model``'s weights
  and records the global gradient norm of every optimizer update of ``fit`` (Embedding
  layers, gradient accumulation and ``steps_per_execution`` included), public Keras API
  only; :class:`StopOnNonFinite` - stop ``fit`` quietly at the first NaN/inf loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, models
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = [
    "FLOOR", "recurrent_layer_of", "recurrent_kernel", "set_recurrent_spectrum",
    "largest_singular_value", "spectral_radius", "simple_rnn_weights", "BPTTResult",
    "NUMPY_ACTIVATIONS", "numpy_bptt", "tape_gradients", "timestep_gradient_norms",
    "state_gradient_norms", "early_to_late_ratio", "open_gates", "compare_cells",
    "global_norm", "clip_by_global_norm", "clip_by_value", "cosine_similarity",
    "model_gradients", "GradientNormModel", "StopOnNonFinite", "TF_DERIVATIVES",
    "pascanu_regularizer", "PascanuRegularized",
]

#: Smallest norm reported by :func:`compare_cells` (float32 underflows below ~1e-38).
FLOOR = 1e-38


# ---------------------------------------------------------------------------------------
# Recurrent matrices with a chosen spectrum
# ---------------------------------------------------------------------------------------

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
        _checks.fail("model" if layer is None else "layer", "needs exactly one recurrent layer "
                     f"(not Bidirectional; pick one with layer=name), found {names}")
    return candidates[0]


def recurrent_kernel(layer: keras.layers.Layer) -> np.ndarray:
    """The recurrent matrix ``W_aa`` of a recurrent layer, ``(units, gates * units)``."""
    cell = getattr(layer, "cell", layer)
    _checks.fail_if(not hasattr(cell, "recurrent_kernel"), "layer", "is no built RNN")
    return np.array(cell.recurrent_kernel.numpy())


@_checks.arguments(radius=_checks.number, seed=_checks.natural)
def set_recurrent_spectrum(layer: keras.layers.Layer, radius: float, seed: int = 0) -> np.ndarray:
    """Set a SimpleRNN's recurrent matrix to ``radius`` times a random orthogonal matrix.

    Every singular value, and so the spectral radius, of the new matrix equals ``radius``:
    below 1 the linearised recurrence contracts, above 1 it expands.

    Returns:
        The new ``(units, units)`` matrix.
    """
    matrix = recurrent_kernel(layer)
    _checks.fail_if(matrix.shape[0] != matrix.shape[1], "layer", "has no square recurrent matrix")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal(matrix.shape))
    q = q * np.sign(np.diag(r))
    new = (radius * q).astype(np.float32)
    getattr(layer, "cell", layer).recurrent_kernel.assign(new)
    return new


def largest_singular_value(matrix: np.ndarray) -> float:
    """Largest singular value ``sigma_1`` of a 2-D matrix (its spectral norm)."""
    matrix = _checks.array(matrix, "matrix", ndim=2, kinds="iuf", finite=True).astype(float)
    return float(np.linalg.norm(matrix, ord=2))


def spectral_radius(matrix: np.ndarray) -> float:
    """Largest absolute eigenvalue of a square matrix (``<= sigma_1`` always)."""
    matrix = _checks.array(matrix, "matrix", ndim=2, kinds="iuf", finite=True).astype(float)
    _checks.fail_if(matrix.shape[0] != matrix.shape[1], "matrix", "must be square")
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
    dense = [lay for lay in model.layers if isinstance(lay, keras.layers.Dense)]
    if not isinstance(rnn, keras.layers.SimpleRNN) or rnn.return_sequences or len(dense) != 1:
        _checks.fail("model", "must be SimpleRNN -> Dense, as sequence_regressor('simple_rnn')")
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
    f, f_prime = NUMPY_ACTIVATIONS[_checks.choice(activation, "activation", NUMPY_ACTIVATIONS)]
    missing = {"kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias"} - set(weights)
    _checks.fail_if(missing, "weights", lambda: f"lacks {sorted(missing)}")
    x = _checks.array(x, "x", ndim=3, kinds="iuf").astype(np.float64)
    y = _checks.array(y, "y", kinds="iuf").astype(np.float64)  # (batch, 1)
    y = _same_count(x, y).reshape(len(x), -1)
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
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
        return keras.losses.get(loss)  # Keras 3.15: "Could not interpret loss identifier"
    if callable(loss):
        return loss
    _checks.fail("loss", f"must be None, a loss name or a callable, not {type(loss)}", TypeError)


def _summed_loss(loss_fn: Callable, y: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Sum of per-example losses, so d/dx_i is example i's own gradient."""
    values = loss_fn(y, y_pred)
    if len(values.shape) == 0:  # a reduced (batch-mean) loss: undo the mean
        return values * tf.cast(tf.shape(y_pred)[0], values.dtype)
    return tf.reduce_sum(values)


def _same_count(x: np.ndarray, y) -> np.ndarray:
    """``y`` as an array with one target per sequence of ``x``."""
    y = _checks.array(y, "y")
    _checks.fail_if(y.ndim == 0 or len(y) != len(x), "y", "needs one target per sequence of x")
    return y


def _per_step_norms(grads: tf.Tensor) -> np.ndarray:
    """``(batch, timesteps, width)`` -> mean over the batch of per-example L2 norms, ``(T,)``.

    In float64: a float32 gradient of 1e-20 has a square (1e-40) below float32's range, so
    a float32 norm would be off by orders of magnitude or 0.
    """
    return np.linalg.norm(np.asarray(grads, dtype=np.float64), axis=-1).mean(axis=0)


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
    if _checks.choice(wrt, "wrt", ("inputs", "states")) == "states":
        return state_gradient_norms(model, x, y, loss=loss)
    loss_fn = _loss_function(loss)
    x = _checks.array(x, "x", ndim=3, kinds="f")  # token ids: use state_gradient_norms
    x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(_same_count(x, y), tf.float32)
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
        model: a Keras model (e.g. :func:`rnncourse.models.sequence_regressor`, or an
            Embedding model).
        x: ``(batch, timesteps, ...)`` inputs of the model (float features or int ids).
        y: targets as the model's output.
        loss: as in :func:`timestep_gradient_norms`.
        layer: name or instance of the recurrent layer when the model has several.

    Returns:
        ``(timesteps,)`` float64, mean over the batch of per-example ``||d loss_i / d h_t||``.
    """
    loss_fn = _loss_function(loss)
    rnn = recurrent_layer_of(model, layer)
    _checks.fail_if(rnn.go_backwards or rnn.return_state, "layer", "goes backwards, returns state")
    x = _checks.array(x, "x", kinds="iuf")
    _checks.fail_if(x.ndim < 2, "x", f"must be (batch, timesteps, ...), got shape {x.shape}")
    y = _same_count(x, y)
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
    norms = _checks.array(norms, "norms", ndim=1, kinds="iuf").astype(np.float64)
    if len(norms) < 2 or not (np.isfinite(norms) & (norms >= 0)).all() or norms[-1] == 0:
        _checks.fail("norms", f"must be >= 2 finite norms >= 0, the last > 0; got {norms}")
    return float(norms[0] / norms[-1])


@_checks.arguments(bias=_checks.real)
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
        _checks.fail("model", f"{rnn.name!r} has no gate to open: use an LSTM or GRU")
    cell.bias.assign(values)
    return float(1.0 / (1.0 + np.exp(-bias)))


@_checks.arguments(cells=_checks.strings, seeds=lambda v, a: _checks.ids(v, a, ndim=1).tolist(),
                   gate_bias=_checks.optional(_checks.real))
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
            model = models.sequence_regressor(cell, units=units, features=np.shape(x)[-1],
                                              seed=seed)
            if gate_bias is not None and cell != "simple_rnn":
                open_gates(model, gate_bias)
            norms = timestep_gradient_norms(model, x, y, wrt=wrt)
            logs.append(np.log(np.maximum(norms, FLOOR)))
        result[cell] = np.exp(np.mean(logs, axis=0))
    return result


# ---------------------------------------------------------------------------------------
# Pascanu's regulariser: keep the norm of the back-propagated error, step by step
# ---------------------------------------------------------------------------------------

#: ``f'`` of a SimpleRNN activation written with its output ``a`` (TensorFlow twin of
#: :data:`NUMPY_ACTIVATIONS`), used by :func:`pascanu_regularizer`.
TF_DERIVATIVES = {
    "tanh": lambda a: 1.0 - tf.square(a),
    "linear": tf.ones_like,
    "relu": lambda a: tf.cast(a > 0, a.dtype),
}


@_checks.arguments(model=keras.Model)
def _regularizable_rnn(model, layer=None) -> tuple[keras.layers.SimpleRNN, str]:
    """The SimpleRNN of ``model`` and its activation's name, or a ValueError saying why not.

    A gated cell's Jacobian goes through its gates, which the regulariser leaves out.
    """
    rnn = recurrent_layer_of(model, layer)
    name = keras.activations.serialize(rnn.cell.activation)
    name = name if isinstance(name, str) else str(name)
    if not isinstance(rnn, keras.layers.SimpleRNN) or name not in TF_DERIVATIVES or (
            rnn.cell.dropout or rnn.cell.recurrent_dropout or rnn.go_backwards or rnn.return_state):
        _checks.fail("model", "needs a tanh/linear/relu SimpleRNN without dropout, go_backwards")
    return rnn, name


def _safe_norm(vectors: tf.Tensor) -> tf.Tensor:
    """L2 norm over the last axis whose gradient is 0 (not NaN) at the zero vector."""
    squares = tf.reduce_sum(tf.square(vectors), axis=-1)
    positive = squares > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squares, 1.0)), 0.0)


def pascanu_regularizer(model: keras.Model, x, y, loss: str | Callable | None = None,
                        layer: str | keras.layers.Layer | None = None) -> tf.Tensor:
    """The vanishing-gradient regulariser of Pascanu, Mikolov and Bengio (2013, sec. 3.3).

    With ``a_t = f(x_t W_ax + a_{t-1} W_aa + b)`` the states of the model's SimpleRNN and
    ``delta_t = dE/da_t`` the error back-propagated to step ``t`` (through all later steps)::

        Omega = sum_{k=1}^{T-1} ( ||delta_{k+1} da_{k+1}/da_k|| / ||delta_{k+1}|| - 1 )^2,

    where ``delta_{k+1} da_{k+1}/da_k = (delta_{k+1} * f'(a_{k+1})) W_aa^T`` is the error
    passed one step back. As in the paper (its eq. 10 and the authors' code), the states
    ``a_k`` and the errors ``delta_k`` are held constant (``tf.stop_gradient``) and Omega's
    gradient reaches the recurrent matrix ``W_aa`` only: each term pushes ``W_aa`` to keep
    the norm of that step's error *along the error's direction*. ``W_ax``, the bias and
    the other layers get no gradient from Omega. Omega is 0 when every step passes the
    error on with its norm unchanged (a linear RNN with an orthogonal ``W_aa``). In value,
    for a loss on the last state, each ratio is ``||delta_k|| / ||delta_{k+1}||``: Omega is
    0 exactly when the gradient norm is the same at every step.

    TensorFlow ops only (GPU, ``tf.function`` and ``train_step`` alike); the time loop is
    unrolled in Python, so the number of timesteps must be static.

    Args:
        model: a Keras model with one SimpleRNN layer (tanh, linear or relu; no dropout),
            e.g. :func:`rnncourse.models.sequence_regressor`; layers before and after it
            are applied as in ``model(x)``.
        x: ``(batch, timesteps, features)`` inputs (``timesteps >= 2``).
        y: ``(batch, ...)`` targets, as the model's output.
        loss: as in :func:`timestep_gradient_norms` (default MSE); its scale does not
            matter, the ratios do not depend on it.
        layer: name or instance of the SimpleRNN when the model has several recurrent
            layers.

    Returns:
        Scalar float32 tensor: the mean over the batch of each example's Omega (``T - 1``
        terms; a term whose error ``delta_{k+1}`` is exactly zero counts 0).
    """
    rnn, activation = _regularizable_rnn(model, layer)
    loss_fn = _loss_function(loss)
    x = tf.convert_to_tensor(x)
    if x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    y = tf.cast(tf.convert_to_tensor(y), tf.float32)
    if x.shape.rank is None or x.shape.rank < 2 or x.shape[1] is None or x.shape[1] < 2:
        _checks.fail("x", f"must be (batch, timesteps >= 2, ...), static, got {x.shape}")
    cell = rnn.cell
    kernel, recurrent = tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(
        cell.recurrent_kernel)
    layers = [lay for lay in model.layers if not isinstance(lay, keras.layers.InputLayer)]
    index = layers.index(rnn)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        hidden = x
        for lay in layers[:index]:
            hidden = lay(hidden, training=False)
        driven = tf.matmul(hidden, kernel)  # (batch, T, units): x_t W_ax of every step
        if cell.bias is not None:
            driven = driven + tf.convert_to_tensor(cell.bias)
        state = tf.zeros_like(driven[:, 0])
        states = []
        for t in range(x.shape[1]):
            state = cell.activation(driven[:, t] + tf.matmul(state, recurrent))
            tape.watch(state)  # d total / d state: the total derivative delta_t
            states.append(state)
        output = tf.stack(states, axis=1) if rnn.return_sequences else states[-1]
        for lay in layers[index + 1:]:
            output = lay(output, training=False)
        total = _summed_loss(loss_fn, y, output)
    # held constant: the errors delta_{k+1} and the states a_{k+1}, (batch, T - 1, units)
    deltas = tf.stop_gradient(tf.stack(tape.gradient(total, states), axis=1)[:, 1:])
    after = tf.stop_gradient(tf.stack(states[1:], axis=1))
    passed = tf.matmul(deltas * TF_DERIVATIVES[activation](after), recurrent,
                       transpose_b=True)  # delta_{k+1} da_{k+1}/da_k
    denominator = _safe_norm(deltas)
    live = denominator > 0
    ratio = _safe_norm(passed) / tf.where(live, denominator, 1.0)
    terms = tf.where(live, tf.square(ratio - 1.0), 0.0)
    return tf.reduce_mean(tf.reduce_sum(terms, axis=1))


class PascanuRegularized(keras.Model):
    """Train a SimpleRNN model on its compiled loss plus ``alpha`` times Omega.

    Wraps ``model`` and shares its weights: ``fit`` minimises
    ``loss(y, model(x)) + alpha * pascanu_regularizer(model, x, y)`` (the ``loss`` it logs
    is this sum); ``evaluate`` and ``predict`` see the compiled loss and ``model(x)`` alone.
    It overrides only ``compute_loss``, so optimizers, clipping and callbacks work as for any
    Keras model.

    Example:
        >>> trainer = PascanuRegularized(models.sequence_regressor("simple_rnn"), alpha=1.0)
        >>> trainer.compile(optimizer=keras.optimizers.SGD(0.05, global_clipnorm=1.0),
        ...                 loss="mse")
        >>> trainer.fit(x, y, epochs=3, verbose=0)  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, alpha: float = 1.0,
                 layer: str | keras.layers.Layer | None = None, **kwargs) -> None:
        rnn, _ = _regularizable_rnn(model, layer)
        alpha = _checks.number(alpha, "alpha", low=0.0, low_inclusive=True)  # 0: loss alone
        super().__init__(name=kwargs.pop("name", f"{model.name}_pascanu"), **kwargs)
        self.regularized = model
        self.alpha = float(alpha)
        self._rnn_name = rnn.name

    def call(self, inputs, training=False):
        return self.regularized(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss, plus ``alpha * pascanu_regularizer(...)`` while training.

        ``x`` ``(batch, timesteps, features)`` and ``y`` are the batch ``fit`` passes;
        ``evaluate`` and ``predict`` (``training=False``) see the task loss alone.
        """
        task = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not training or self.alpha == 0:
            return task
        omega = pascanu_regularizer(self.regularized, x, y, loss=self.loss,
                                    layer=self._rnn_name)
        return task + self.alpha * omega


# ---------------------------------------------------------------------------------------
# Clipping
# ---------------------------------------------------------------------------------------

def _dense(gradient) -> tf.Tensor:
    """Dense float tensor from a gradient (``IndexedSlices`` from Embedding layers are summed;
    integers as float32, so that scaling or clipping them does not truncate)."""
    gradient = tf.convert_to_tensor(gradient)
    return gradient if gradient.dtype.is_floating else tf.cast(gradient, tf.float32)


def _gradient_list(grads, argument: str) -> list:
    """A list of gradients, one per variable (a lone tensor would be read row by row)."""
    if isinstance(grads, str) or not isinstance(grads, Sequence):  # no tensor is a Sequence
        _checks.fail(argument, "must be a list of gradients: wrap one as [tensor]", TypeError)
    return list(grads)


@_checks.arguments(grads=_gradient_list)
def global_norm(grads: Sequence) -> float:
    """``sqrt(sum_k ||g_k||^2)`` over a list of gradients of any shapes (``None`` skipped)."""
    squares = [tf.reduce_sum(tf.square(tf.cast(_dense(g), tf.float64))) for g in grads
               if g is not None]
    return float(tf.sqrt(tf.add_n(squares))) if squares else 0.0


@_checks.arguments(grads=_gradient_list, max_norm=_checks.number)
def clip_by_global_norm(grads: Sequence, max_norm: float) -> tuple[list[tf.Tensor], float]:
    """Scale all gradients by ``min(1, max_norm / global_norm)``; what ``global_clipnorm`` does.

    A re-implementation of ``tf.clip_by_global_norm`` for teaching (the unit tests check
    they agree). The direction of the concatenated gradient does not change.

    Returns:
        ``(clipped gradients, global norm before clipping)``.
    """
    dense = [None if g is None else _dense(g) for g in grads]  # None: a variable without one
    norm = global_norm(dense)
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return [None if g is None else g * tf.cast(scale, g.dtype) for g in dense], norm


@_checks.arguments(grads=_gradient_list, value=_checks.number)
def clip_by_value(grads: Sequence, value: float) -> list[tf.Tensor]:
    """Clamp every gradient entry to ``[-value, value]``; what ``clipvalue`` does."""
    return [tf.clip_by_value(_dense(g), -value, value) for g in grads]


@_checks.arguments(grads_a=_gradient_list, grads_b=_gradient_list)
def cosine_similarity(grads_a: Sequence, grads_b: Sequence) -> float:
    """Cosine of the angle between two gradient lists, each flattened into one vector."""
    _checks.fail_if(len(grads_a) != len(grads_b), "grads_b", "must be as long as grads_a")
    a = np.concatenate([np.ravel(_dense(g).numpy()) for g in grads_a]).astype(np.float64)
    b = np.concatenate([np.ravel(_dense(g).numpy()) for g in grads_b]).astype(np.float64)
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    _checks.fail_if(denominator == 0, "grads_b" if np.any(a) else "grads_a", "is zero: no cosine")
    return float(a @ b / denominator)


def model_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray,
                    loss: str | Callable | None = None) -> list[tf.Tensor]:
    """Gradients of the batch-mean loss with respect to ``model.trainable_weights``.

    Raises:
        ValueError: ``x`` and ``y`` hold different numbers of examples, or an unknown loss.
    """
    _checks.fail_if(len(x) != len(y), "y", "needs one target per example of x")
    loss_fn = _loss_function(loss)
    with tf.GradientTape() as tape:
        values = loss_fn(tf.convert_to_tensor(y, tf.float32), model(x, training=False))
        total = tf.reduce_mean(values)
    return tape.gradient(total, [w.value for w in model.trainable_weights])


# ---------------------------------------------------------------------------------------
# A model that logs the gradient norm of every optimizer update
# ---------------------------------------------------------------------------------------

class GradientNormModel(keras.Model):
    """A functional ``keras.Model`` whose ``fit`` records the global gradient norm of every
    optimizer update.

    Its :meth:`train_step` is Keras' own (forward pass, compiled loss, gradients,
    ``optimizer.apply``, metrics) written with public Keras 3.15 API, plus one thing: it
    takes ``||g||``, the global norm of the gradient *before* any ``clipnorm`` /
    ``global_clipnorm`` / ``clipvalue`` of the optimizer, and keeps it when the optimizer
    really updated the weights. Gradients of an ``Embedding`` layer (``IndexedSlices``) are
    made dense first, so repeated token ids are summed as in the true gradient.

    * With ``gradient_accumulation_steps=k`` the optimizer updates once every ``k`` batches
      with the mean of their gradients; the model records one norm per update, the norm of
      that mean (it sums the batches' gradients in its own variables, as the optimizer
      does), and nothing for the batches in between.
    * With ``compile(steps_per_execution=n)`` Keras runs ``n`` steps per call of the train
      function; every step's norm is kept, not only the last one's.

    Build one from any functional or ``Sequential`` model with :meth:`wrap`, which shares
    the model's layers and weights. One device only (under ``tf.distribute`` each replica
    would see its own part of the gradient). With a ``LossScaleOptimizer`` (mixed
    precision) the norm is that of the scaled gradient.

    Attributes:
        step_norms: list of floats, one per optimizer update (all ``fit`` calls, in order).
        epoch_norms: list of floats, mean step norm of each epoch.
        epoch_max_norms: list of floats, largest step norm of each epoch.
        layer_norms: ``{variable path: [norm per update]}`` when ``per_variable=True``.

    Example:
        >>> model = GradientNormModel.wrap(models.sequence_regressor("simple_rnn"))
        >>> model.compile(optimizer=keras.optimizers.SGD(0.05, global_clipnorm=1.0),
        ...               loss="mse")
        >>> model.fit(x, y, epochs=3, verbose=0)  # doctest: +SKIP
        >>> max(model.step_norms)  # doctest: +SKIP
    """

    @_checks.arguments(per_variable=(bool, np.bool_))
    def __init__(self, *args, per_variable: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.per_variable = per_variable
        self.step_norms: list[float] = []
        self.epoch_norms: list[float] = []
        self.epoch_max_norms: list[float] = []
        self.layer_norms: dict[str, list[float]] = {}
        self._log_key = None

    @classmethod
    @_checks.arguments(model=keras.Model)
    def wrap(cls, model: keras.Model, per_variable: bool = False) -> GradientNormModel:
        """A :class:`GradientNormModel` with ``model``'s inputs, outputs, layers and weights.

        Args:
            model: a functional or ``Sequential`` model built on ``keras.Input`` (e.g. any
                builder of :mod:`rnncourse.models`); training the wrapper trains it.
            per_variable: also record each variable's own gradient norm (``layer_norms``).
        """
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):
            inputs = outputs = None
        _checks.fail_if(not inputs or not outputs, "model", "has no keras.Input")
        return cls(inputs=inputs[0] if len(inputs) == 1 else inputs,
                   outputs=outputs[0] if len(outputs) == 1 else outputs,
                   per_variable=per_variable, name=f"{model.name}_norms")

    def train_step(self, data):
        """One training step: Keras' own, plus the norm of the gradient of each update."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        # dense gradients, before the optimizer clips them (IndexedSlices rows are summed)
        dense = [tf.zeros(v.shape, tf.float32) if g is None
                 else tf.cast(tf.convert_to_tensor(g), tf.float32)
                 for g, v in zip(grads, variables, strict=True)]
        updates_before = tf.identity(self.optimizer.iterations)
        self.optimizer.apply(grads, variables)
        updated = tf.identity(self.optimizer.iterations) > updates_before
        self._record(dense, updated)
        for metric in self.metrics:
            if metric.name == "loss":  # Keras' loss tracker, weighted by the batch size
                batch = tf.shape(tf.nest.flatten(x)[0])[0]
                metric.update_state(loss, sample_weight=batch)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _record(self, grads: list[tf.Tensor], updated: tf.Tensor) -> None:
        """Append ``||g||`` (of the accumulated mean under accumulation) when ``updated``."""
        steps = self.optimizer.gradient_accumulation_steps
        if steps:  # the optimizer updates with (g_1 + ... + g_k) / k
            totals = [total + g for total, g in zip(self._sums, grads, strict=True)]
            grads = [total / steps for total in totals]
            for total, variable in zip(totals, self._sums, strict=True):
                variable.assign(tf.where(updated, tf.zeros_like(total), total))
        per_variable = tf.stack([tf.norm(g) for g in grads])
        norm = tf.norm(per_variable)
        keep = tf.cast(updated, tf.int32)  # append 1 row when updated, 0 rows otherwise
        self._norm_log.assign(tf.concat([self._norm_log, tf.reshape(norm, [1])[:keep]], 0))
        self._variable_log.assign(tf.concat([self._variable_log, per_variable[None][:keep]],
                                            0))

    def _prepare_logs(self) -> None:
        """(Re)create the logging variables when the optimizer or the variables changed."""
        _checks.fail_if(self.optimizer is None, "model", "needs compile(optimizer=...) before fit")
        variables = self.trainable_variables
        key = (id(self.optimizer), tuple(v.path for v in variables))
        if key == self._log_key:
            return
        self._log_key = key
        self._norm_log = tf.Variable(tf.zeros([0]), shape=tf.TensorShape([None]),
                                     trainable=False)
        self._variable_log = tf.Variable(tf.zeros([0, len(variables)]), trainable=False,
                                         shape=tf.TensorShape([None, len(variables)]))
        self._sums = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False)
                      for v in variables] if self.optimizer.gradient_accumulation_steps else []
        for v in variables:
            self.layer_norms.setdefault(v.path, [])
        self.make_train_function(force=True)

    def collect_step_norms(self) -> int:
        """Move the norms the train function logged into the Python lists; how many."""
        norms = self._norm_log.numpy()
        self.step_norms.extend(float(n) for n in norms)
        if self.per_variable:
            paths = [path for path in self._log_key[1]]
            for row in self._variable_log.numpy():
                for path, value in zip(paths, row, strict=True):
                    self.layer_norms[path].append(float(value))
        self._norm_log.assign(tf.zeros([0]))
        self._variable_log.assign(tf.zeros([0, len(self._log_key[1])]))
        return len(norms)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, with a callback that collects the logged norms."""
        bound = inspect.signature(super().fit).bind(*args, **kwargs)
        callbacks = bound.arguments.get("callbacks") or []
        bound.arguments["callbacks"] = [_NormCollector(), *callbacks]  # collected first
        self._prepare_logs()
        return super().fit(*bound.args, **bound.kwargs)


class _NormCollector(keras.callbacks.Callback):
    """Collects a :class:`GradientNormModel`'s norms after each call of the train function
    (one call runs ``steps_per_execution`` steps) and sums up each epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = len(self.model.step_norms)

    def on_train_batch_end(self, batch, logs=None):
        self.model.collect_step_norms()

    def on_epoch_end(self, epoch, logs=None):
        self.model.collect_step_norms()
        norms = self.model.step_norms[self._start:]
        if norms:
            self.model.epoch_norms.append(float(np.mean(norms)))
            self.model.epoch_max_norms.append(float(np.max(norms)))


# ---------------------------------------------------------------------------------------
# Stopping at the first NaN
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

r"""minGRU, the recurrence of Feng et al. (2024), "Were RNNs All We Needed?", as a Keras layer.

minGRU drops the previous state from the gates of a GRU, so every gate of every step is a
function of the input alone and can be computed for all steps at once:

.. math::
    z_t = \sigma(x_t W_z + b_z), \qquad \tilde h_t = g(x_t W_h + b_h), \qquad
    h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

with the paper's :math:`g(x) = x + 1/2` for :math:`x \ge 0` and :math:`\sigma(x)`
otherwise, which keeps :math:`\tilde h_t > 0` so that its logarithm exists. The
recurrence :math:`h_t = a_t h_{t-1} + b_t` with :math:`a_t = 1 - z_t` and
:math:`b_t = z_t \tilde h_t` is linear in :math:`h`, so it unrolls to

.. math::
    h_t = A_t \Big(h_0 + \sum_{k \le t} b_k / A_k\Big), \qquad A_t = \prod_{j \le t} a_j,

and in log space (the paper's Listing, after Heinsen 2023):
:math:`\log h_t = \log A_t + \operatorname{logcumsumexp}_{k \le t}(\log b_k - \log A_k)`:
a cumulative sum and a cumulative log-sum-exp over time, both parallel scans.

:class:`MinGRU` computes it in one of these forms, chosen by ``mode`` (:data:`MODES`):

* ``"sequential"``: a loop over time (``keras.ops.scan``), :math:`T` steps one after the
  other, as an LSTM or GRU must run; :meth:`MinGRU.step` is one step of it, for
  generation with a carried state.
* ``"parallel"``: a log-space parallel scan, :math:`O(\log T)` steps deep, which is
  what lets minGRU train like a Transformer (all positions at once) and generate like an
  RNN (a constant-size state). Its elements are the steps :math:`(\log a_t, \log b_t)`,
  combined with ``logaddexp`` (:func:`log_space_scan`, ``method="pairs"``), in Hillis
  and Steele's scan (``ceil(log2 T)`` rounds of elementwise work over the sequence).
* ``"parallel_cumsum"``: the paper's Listing as written, a cumulative sum and a
  cumulative log-sum-exp.

Why two parallel forms: in the Listing, :math:`\log A_t` and the log-sum-exp are both
large (:math:`|\log A_t|` grows by about :math:`x_t W_z` per step while :math:`z_t \to 1`)
and their sum cancels, so the float32 relative error of :math:`h_t` grows like
:math:`\epsilon\,|\log A_t|`. Measured against :func:`reference` (float64) on random
``(4, T, 8)`` inputs and 16 units, at ``T = 2048`` it is about ``3e-4`` (of the largest
state) for inputs :math:`\sim N(0, 1)` and ``1e-3`` with pre-activations of
:math:`\pm 30`, where the pair scan and the loop stay below ``1e-6``
(``tests/test_mingru.py`` measures both).
:func:`reference` is the recurrence in float64 NumPy, for checking every form.
"""

from __future__ import annotations

import numpy as np

from rnncourse import _checks
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
from keras import ops  # noqa: E402

__all__ = ["MinGRU", "MODES", "g", "log_g", "log_space_scan", "reference"]

MODES = ("sequential", "parallel", "parallel_cumsum")
"""The forms of :class:`MinGRU`: a loop over time, the log-space pair scan, the paper's
Listing (cumulative sum and log-sum-exp)."""


LOG_ZERO = -1e30
"""Stands for :math:`\\log 0` where a masked step adds nothing: ``exp`` of it is 0, and,
unlike ``-inf``, ``logaddexp`` of two of them has a finite gradient."""


def g(x):
    r"""The paper's activation: :math:`x + 1/2` for :math:`x \ge 0`, :math:`\sigma(x)` below.

    Continuous at 0 (both give 1/2), positive everywhere, and linear for large inputs.
    Any shape in, the same shape out.
    """
    return ops.where(x >= 0, x + 0.5, ops.sigmoid(x))


def log_g(x):
    r""":math:`\log g(x)`, computed without forming :math:`g(x)`: :math:`\log(x + 1/2)`
    for :math:`x \ge 0`, :math:`-\operatorname{softplus}(-x)` below (exact for very
    negative ``x``, where :math:`\sigma(x)` underflows)."""
    return ops.where(x >= 0, ops.log(ops.relu(x) + 0.5), -ops.softplus(-x))


def _log_pairs(left, right):
    """Two steps ``h -> a h + b`` in log space, ``left`` first: ``a = a1 a2``,
    ``b = a2 b1 + b2``."""
    (log_a1, log_b1), (log_a2, log_b2) = left, right
    return log_a1 + log_a2, ops.logaddexp(log_a2 + log_b1, log_b2)


def log_space_scan(log_a, log_b, method: str = "pairs"):
    r"""The states :math:`h_t = a_t h_{t-1} + b_t` from :math:`h_0 = 0`, in log space.

    Args:
        log_a: :math:`\log a_t`, shape ``(batch, timesteps, units)``.
        log_b: :math:`\log b_t`, the same shape; :data:`LOG_ZERO` for :math:`b_t = 0`
            (``-inf`` gives NaN gradients).
        method: ``"pairs"``: an associative scan whose elements are the steps
            :math:`(\log a, \log b)`, combined as
            :math:`(\log a_1 + \log a_2,\ \operatorname{logaddexp}(\log a_2 + \log b_1,
            \log b_2))`; every partial result is the log of a real state, so nothing
            cancels. ``"cumsum"``: the paper's Listing, a cumulative sum and a cumulative
            log-sum-exp, whose float32 error grows with :math:`|\log A_t|` (see the
            module docstring).

    Returns:
        ``(log_h, log_a_star)``: :math:`\log h_t` and
        :math:`\log A_t = \sum_{j \le t} \log a_j` for ``t = 1..T``, each
        ``(batch, timesteps, units)``; :math:`A_t` multiplies an initial state.
    """
    method = _checks.choice(method, "method", ("pairs", "cumsum"))
    if method == "pairs":
        log_a_star, log_h = _scan(_log_pairs, (log_a, log_b), (0.0, LOG_ZERO))
        return log_h, log_a_star
    log_a_star = ops.cumsum(log_a, axis=1)
    (log_h,) = _scan(lambda left, right: (ops.logaddexp(left[0], right[0]),),
                     (log_b - log_a_star,), (LOG_ZERO,))
    return log_a_star + log_h, log_a_star


def _scan(combine, elements, identity):
    """Inclusive scan of ``combine`` over axis 1, ``ceil(log2 T)`` rounds deep.

    Hillis and Steele's scan: in round ``r`` every position combines with the one
    ``2^r`` steps before it (``identity`` before the start). ``keras.ops.while_loop``
    keeps it one graph for any ``T``, known or not. Each element: ``(batch, T, units)``.
    """
    shape = ops.shape(elements[0])

    def shifted(x, value, offset):
        before = ops.full((shape[0], offset, shape[2]), value, dtype=x.dtype)
        return ops.reshape(ops.concatenate([before, x[:, :shape[1] - offset]], axis=1),
                           shape)

    def one_round(offset, values):
        earlier = tuple(shifted(x, v, offset) for x, v in zip(values, identity, strict=True))
        return offset * 2, tuple(ops.reshape(x, shape) for x in combine(earlier, values))

    offset = ops.convert_to_tensor(1, "int32")
    _, result = ops.while_loop(lambda offset, _: offset < shape[1], one_round,
                               (offset, tuple(elements)))
    return result


@keras.saving.register_keras_serializable(package="rnncourse")
class MinGRU(keras.layers.Layer):
    r"""minGRU layer (Feng et al. 2024): gates from the input only, so time runs in parallel.

    Weights: ``kernel (input_dim, 2 units)`` holding ``[W_z | W_h]`` and
    ``bias (2 units,)`` holding ``[b_z | b_h]``: ``2 units (input_dim + 1)`` parameters
    (no recurrent matrix: about a third of a GRU's when ``input_dim == units``). Under a
    mixed-precision policy the scan runs in float32 and the states come back in the
    layer's compute dtype.

    Args:
        units: size of the state ``h_t``.
        mode: ``"parallel"`` (the log-space pair scan), ``"sequential"`` (a loop over
            time; the two agree to float32 precision) or ``"parallel_cumsum"`` (the
            paper's Listing; less precise on long sequences, see the module docstring).
        return_sequences: return every state ``(batch, timesteps, units)`` instead of the
            last ``(batch, units)``.
        return_state: also return the last state ``(batch, units)``, to carry into the next
            call as ``initial_state``.
        kernel_initializer, bias_initializer: Keras initializers of the two weights.

    Calling it, ``layer(inputs, initial_state=None, mask=None)``:

    * ``inputs``: ``(batch, timesteps, input_dim)``;
    * ``initial_state``: ``(batch, units)``, any real values; zeros when omitted;
    * ``mask``: ``(batch, timesteps)`` booleans (from ``Embedding(mask_zero=True)`` or
      ``Masking``). A masked step keeps the state: its output repeats the previous state
      (as Keras 3.15's ``LSTM`` and ``GRU`` do by default, ``zero_output_for_mask=False``)
      and the last state is that of the last real step. Any mask works; padding at the
      end (post-padding) is the book's convention.

    Returns:
        ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``;
        with ``return_state`` a list ``[output, last_state]``.
    """

    @_checks.arguments(units=_checks.count, mode=MODES)  # and the two flags: bools
    def __init__(self, units: int, *, mode: str = "parallel", return_sequences: bool = False,
                 return_state: bool = False,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.mode = units, mode
        self.return_sequences, self.return_state = return_sequences, return_state
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if input_shape[-1] is None:
            _checks.fail("inputs", "the last dimension (features) must be known; give "
                                   "keras.Input(shape=(timesteps, features))")
        self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(2 * self.units,),
                                    initializer=self.bias_initializer, name="bias")

    def _gates(self, inputs):
        """Pre-activations ``k`` (update gate) and ``c`` (candidate), ``(..., units)`` each."""
        projected = ops.matmul(inputs, self.kernel) + self.bias
        return projected[..., :self.units], projected[..., self.units:]

    def step(self, x_t, h):
        r"""One step: ``x_t (batch, input_dim)``, ``h (batch, units)`` -> the new state.

        :math:`h_t = \sigma(-k) h + \sigma(k) g(c)` with ``[k | c] = x_t kernel + bias``
        (:math:`1 - \sigma(k)` written :math:`\sigma(-k)`, exact when :math:`z \to 1`).
        Build the layer first (call it once, or :meth:`build`).
        """
        k, c = self._gates(x_t)
        return ops.sigmoid(-k) * h + ops.sigmoid(k) * g(c)

    def _sequential(self, k, c, h0, mask):
        def one_step(h, values):
            k_t, c_t, keep_t = values
            h_new = ops.sigmoid(-k_t) * h + ops.sigmoid(k_t) * g(c_t)
            h_new = ops.where(keep_t, h_new, h)
            return h_new, h_new

        _, states = ops.scan(one_step, h0, (ops.moveaxis(k, 1, 0), ops.moveaxis(c, 1, 0),
                                            ops.moveaxis(mask, 1, 0)))
        return ops.moveaxis(states, 0, 1)

    def _parallel(self, k, c, h0, mask):
        dtype = k.dtype
        k, c, h0 = (ops.cast(v, "float32") for v in (k, c, h0))  # LOG_ZERO needs float32
        log_a = ops.where(mask, -ops.softplus(k), 0.0)  # log(1 - z); 0 keeps the state
        log_b = ops.where(mask, -ops.softplus(-k) + log_g(c), LOG_ZERO)  # log(z g(c))
        method = "cumsum" if self.mode == "parallel_cumsum" else "pairs"
        log_h, log_a_star = log_space_scan(log_a, log_b, method=method)
        states = ops.exp(log_h) + ops.exp(log_a_star) * ops.expand_dims(h0, 1)
        # the scan loses the static shape in graphs
        return ops.cast(ops.reshape(states, ops.shape(k)), dtype)

    def call(self, inputs, initial_state=None, mask=None):
        k, c = self._gates(inputs)
        h0 = ops.zeros_like(k[:, 0]) if initial_state is None \
            else ops.cast(initial_state, k.dtype)
        mask = ops.ones_like(k[..., :1], dtype="bool") if mask is None \
            else ops.expand_dims(ops.cast(mask, "bool"), -1)
        run = self._sequential if self.mode == "sequential" else self._parallel
        states = run(k, c, h0, mask)
        output = states if self.return_sequences else states[:, -1]
        return [output, states[:, -1]] if self.return_state else output

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences or mask is None:
            return [None, None] if self.return_state else None
        return [mask, None] if self.return_state else mask

    def compute_output_shape(self, input_shape):
        last = (input_shape[0], self.units)
        output = (*input_shape[:2], self.units) if self.return_sequences else last
        return [output, last] if self.return_state else output

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "mode": self.mode,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


def reference(inputs, kernel, bias, initial_state=None, mask=None) -> np.ndarray:
    """The minGRU recurrence in float64 NumPy, one step at a time: the states ``h_1..h_T``.

    Args:
        inputs: ``(batch, timesteps, input_dim)``.
        kernel: ``(input_dim, 2 units)``, ``[W_z | W_h]`` as in :class:`MinGRU`.
        bias: ``(2 units,)``.
        initial_state: ``(batch, units)``; zeros when omitted.
        mask: ``(batch, timesteps)`` booleans; a masked step keeps the state.

    Returns:
        ``(batch, timesteps, units)`` float64.
    """
    x = _checks.array(inputs, "inputs", ndim=3).astype(np.float64)
    kernel = _checks.array(kernel, "kernel", ndim=2).astype(np.float64)
    bias = _checks.array(bias, "bias", ndim=1).astype(np.float64)
    units = bias.shape[0] // 2
    h = np.zeros((x.shape[0], units)) if initial_state is None \
        else _checks.array(initial_state, "initial_state", ndim=2).astype(np.float64)
    keep = np.ones(x.shape[:2], bool) if mask is None \
        else _checks.array(mask, "mask", ndim=2).astype(bool)
    states = np.empty((*x.shape[:2], units))
    for t in range(x.shape[1]):
        pre = x[:, t] @ kernel + bias
        k, c = pre[:, :units], pre[:, units:]
        candidate = np.where(c >= 0, c + 0.5, 1 / (1 + np.exp(-c)))
        new = h / (1 + np.exp(k)) + candidate / (1 + np.exp(-k))
        h = np.where(keep[:, t:t + 1], new, h)
        states[:, t] = h
    return states

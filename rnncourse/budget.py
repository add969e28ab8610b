r"""Comparing models at an equal budget: parameter matching, multiply-adds, state memory.

Two models are compared fairly when they hold about the same number of parameters
(:func:`match_units` picks the width that does), and their costs are compared as functions
of the context length (:func:`layer_cost`, :func:`cost_curve`, :func:`crossover`).

The cost counter counts from layer shapes, so it is exact and machine-independent. It
counts **multiply-adds (MACs) of matrix products** per token; the elementwise work (gate
nonlinearities, softmax, layer norms) grows like the width, not its square, and is left
out; so is minGRU's parallel scan, about ``10 n log2 L`` elementwise operations per token
(:mod:`rnncourse.mingru`), which on a CPU can cost more than its matrix products.
Conventions, for one layer of width ``n = units`` on inputs of width ``d = input_dim``:

* ``lstm`` (Keras ``LSTM``): ``4 (n (d + n) + n)`` parameters, ``4 n (d + n)`` MACs per
  token, a state of ``2 n`` values (``h`` and ``c``);
* ``gru`` (Keras ``GRU``): ``3 (n (d + n) + 2 n)`` parameters, ``3 n (d + n)`` MACs,
  ``n`` values;
* ``mingru`` (:class:`rnncourse.mingru.MinGRU`): ``2 n (d + 1)`` parameters, ``2 n d``
  MACs (no recurrent matrix), ``n`` values;
* ``transformer`` (``MultiHeadAttention`` and a feed-forward block, width ``n``,
  feed-forward width ``f``): ``4 n^2 + 2 n f + 2 n L`` MACs per token at context ``L``,
  a key/value cache of ``2 n L`` values (details in :func:`layer_cost`).

(GRU with Keras' default ``reset_after=True``, which has a second bias.) A training step
costs about three forward passes per token (the backward pass computes one product for
the gradient of the inputs and one for the weights: Kaplan et al. 2020's ``6N`` FLOPs per
token for ``N`` parameters, i.e. ``3N`` MACs). A generated token costs one forward step;
the recurrent layers carry a state of fixed size, the Transformer a key/value cache that
grows with the context ``L``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncourse import _checks

__all__ = ["KINDS", "Match", "match_units", "Cost", "layer_cost",
           "cost_curve", "crossover"]

KINDS = ("lstm", "gru", "mingru", "transformer")
"""The contenders the cost counter knows."""


@dataclass(frozen=True)
class Match:
    """The width :func:`match_units` picked and the parameter count it gives."""

    units: int
    parameters: int
    target: int

    @property
    def relative_error(self) -> float:
        """``(parameters - target) / target``."""
        return (self.parameters - self.target) / self.target

    def __str__(self) -> str:
        return (f"units={self.units}: {self.parameters:,} parameters "
                f"({self.relative_error:+.1%} of {self.target:,})")


def _parameters(model: Any) -> int:
    """Parameters of a built Keras model or layer (``count_params()``), or an int as is."""
    if isinstance(model, numbers.Integral) and not isinstance(model, (bool, np.bool_)):
        return int(model)
    if not callable(getattr(model, "count_params", None)):
        _checks.fail("build", f"returned a {type(model).__name__}, not a model", TypeError)
    return int(model.count_params())


def match_units(build: Callable[[int], Any], target_params: int, *, tolerance: float = 0.10,
                multiple_of: int = 1, max_units: int = 8192) -> Match:
    """The width whose model holds the number of parameters closest to ``target_params``.

    Args:
        build: ``build(units)`` returns a built Keras model or layer (one built on
            ``keras.Input``, or called once), or its parameter count as an int. The count
            must not fall as ``units`` grows.
        target_params: the budget.
        tolerance: the largest relative miss accepted (0.10: within +-10%).
        multiple_of: search only multiples of this (e.g. the number of attention heads).
        max_units: the largest width tried.

    Returns:
        :class:`Match` with ``units``, ``parameters`` and ``target``; ``str()`` of it is a
        line to print.

    Raises:
        ValueError: no width in ``multiple_of..max_units`` is within ``tolerance``
            (the closest is named).

    A binary search: about ``log2(max_units / multiple_of)`` calls of ``build``.
    """
    target, step, top = (_checks.count(value, name) for name, value in (
        ("target_params", target_params), ("multiple_of", multiple_of), ("max_units", max_units)))
    tolerance, top = _checks.number(tolerance, "tolerance"), max(top // step, 1)
    counts: dict[int, int] = {}

    def params(i: int) -> int:
        if i not in counts:
            counts[i] = _parameters(build(i * step))
        return counts[i]

    low, high = 1, top  # the first multiple whose count reaches the target
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if params(middle) < target else (low, middle)
    best = min({max(low - 1, 1), low}, key=lambda i: (abs(params(i) - target), i))
    match = Match(best * step, params(best), target)
    if abs(match.relative_error) > tolerance:
        _checks.fail("target_params", f"none within {tolerance:.0%}; closest: {match}")
    return match


@dataclass(frozen=True)
class Cost:
    """What one model costs at one context length (per token, matrix products only).

    Attributes:
        kind: one of :data:`KINDS`.
        context: the context length ``L`` (training sequence length, or tokens already
            generated).
        parameters: trainable parameters.
        forward_macs: multiply-adds per token of a forward pass over sequences of length
            ``L`` (training or scoring).
        train_macs: per token of a training step: ``3 * forward_macs``.
        generate_macs: per generated token with ``L`` tokens before it (RNN: one step;
            Transformer: one step against the key/value cache).
        state_bytes: what generation keeps between tokens: the recurrent state, or the
            key/value cache of ``L`` positions.
    """

    kind: str
    context: int
    parameters: int
    forward_macs: int
    train_macs: int
    generate_macs: int
    state_bytes: int


def _transformer_block(d: int, n: int, f: int, context: int) -> tuple[int, int, int]:
    """``(parameters, MACs per token before attention, MACs per attended position)``."""
    projection = (d * n + n, d * n) if d != n else (0, 0)
    attention = 4 * n * n + 4 * n  # query, key, value, output Dense layers with biases
    feed_forward = 2 * n * f + f + n
    norms = 4 * n  # two LayerNormalization layers, gamma and beta
    positions = context * n  # learned position embeddings, one row per position
    parameters = projection[0] + attention + feed_forward + norms + positions
    return parameters, projection[1] + 4 * n * n + 2 * n * f, 2 * n


def layer_cost(kind: str, context: int, *, input_dim: int, units: int, layers: int = 1,
               heads: int = 1, ffn_units: int | None = None, outputs: int = 0,
               bytes_per_value: int = 4) -> Cost:
    r"""Parameters, multiply-adds per token and generation state of a stack of layers.

    Args:
        kind: ``"lstm"``, ``"gru"``, ``"mingru"`` or ``"transformer"``.
        context: the context length ``L``.
        input_dim: ``d``, features per step into the first layer.
        units: ``n``, the width of every layer (the Transformer's model width).
        layers: layers stacked; the first sees ``d`` features, the others ``n``.
        heads: Transformer only: attention heads; ``units`` must divide by it (each head
            has ``n / heads`` dimensions, so the count does not depend on it).
        ffn_units: Transformer only: ``f``, the feed-forward width (default ``4 n``).
        outputs: a ``Dense(outputs)`` head on the last layer (0: none).
        bytes_per_value: 4 for float32, 2 for float16/bfloat16.

    The Transformer layer counted is the one built from Keras layers: a ``Dense(n)``
    input projection when ``d != n`` (on the first layer; ``d n + n`` parameters), learned
    position embeddings (``L n``, one row per position up to the context, at the input
    only),
    ``MultiHeadAttention(heads, key_dim=n / heads)`` (query, key, value and output
    ``Dense``: ``4 n^2 + 4 n``), two ``LayerNormalization`` (``4 n``) and a feed-forward
    ``Dense(f, relu) -> Dense(n)`` (``2 n f + f + n``). Per token it multiplies
    ``4 n^2 + 2 n f`` (+ ``d n`` for the projection) and, for attention, ``2 n L``: the
    scores :math:`q K^\top` and the weighted sum of ``V`` over ``L`` positions (Keras
    computes the whole ``L x L`` score matrix and masks it, so a causal mask saves
    nothing). Generating one token with ``L`` cached positions multiplies the same
    ``4 n^2 + 2 n f + 2 n L``, and the cache holds ``K`` and ``V``: ``2 n L`` values per
    layer. The recurrent formulas are in the module docstring.
    """
    kind = _checks.choice(kind, "kind", KINDS)
    given = {"context": context, "input_dim": input_dim, "units": units, "layers": layers,
             "heads": heads, "ffn_units": 1 if ffn_units is None else ffn_units,
             "outputs": outputs, "bytes_per_value": bytes_per_value}
    context, d, n, layers, heads, f, outputs, size = (
        _checks.count(value, name, 0 if name == "outputs" else 1) for name, value in given.items())
    f = 4 * n if ffn_units is None else f
    if kind == "transformer" and n % heads:
        _checks.fail("heads", f"units ({n}) must divide by heads ({heads})")
    parameters = forward = generate = state = 0
    for layer, width in enumerate([d] + [n] * (layers - 1)):
        if kind == "transformer":  # position embeddings once, at the input
            p, per_token, per_position = _transformer_block(width, n, f,
                                                            0 if layer else context)
            parameters, state = parameters + p, state + 2 * n * context
            forward += per_token + per_position * context
            generate += per_token + per_position * context
            continue
        gates = {"lstm": 4, "gru": 3, "mingru": 2}[kind]
        recurrent = 0 if kind == "mingru" else n
        macs = gates * n * (width + recurrent)
        parameters += macs + gates * n * (2 if kind == "gru" else 1)
        forward, generate = forward + macs, generate + macs
        state += 2 * n if kind == "lstm" else n
    parameters += (n + 1) * outputs
    forward, generate = forward + n * outputs, generate + n * outputs
    return Cost(kind, context, parameters, forward, 3 * forward, generate, state * size)


def cost_curve(kind: str, contexts: Sequence[int], **shape) -> list[Cost]:
    """:func:`layer_cost` at each context length in ``contexts`` (e.g. 128 to 8,192).

    ``shape`` holds the keyword arguments of :func:`layer_cost` (``input_dim``, ``units``,
    ...). Read a column with ``[c.generate_macs for c in curve]``.
    """
    return [layer_cost(kind, context, **shape) for context in contexts]


def crossover(x: Sequence[float], a: Sequence[float], b: Sequence[float]) -> float | None:
    """The first ``x`` where curve ``a`` meets curve ``b``, interpolated linearly.

    Args:
        x: increasing positions, shape ``(points,)`` (e.g. context lengths).
        a, b: the two curves at ``x``, shape ``(points,)`` each.

    Returns:
        The ``x`` where ``a - b`` first reaches 0 or changes sign (exact where both curves
        are straight lines between the points, as the costs of :func:`layer_cost` are in
        the context), or ``None`` when one curve stays above the other over all of ``x``.
    """
    x, a, b = (_checks.array(v, name, ndim=1, kinds="iuf").astype(float)
               for v, name in ((x, "x"), (a, "a"), (b, "b")))
    wrong = [name for name, v in (("x", x), ("a", a), ("b", b)) if len(v) != len(x)
             or not np.isfinite(v).all()] + ["x"] * (len(x) < 2 or bool(np.any(np.diff(x) <= 0)))
    if wrong:
        _checks.fail(wrong[0], "need 2+ increasing x, one finite a and b per x")
    gap = a - b
    for i in range(len(x)):
        if gap[i] == 0:
            return float(x[i])
        if i and np.sign(gap[i]) != np.sign(gap[i - 1]):
            return float(x[i - 1] + (x[i] - x[i - 1]) * gap[i - 1] / (gap[i - 1] - gap[i]))
    return None

"""Training steps/s and generated tokens/s of LSTM, GRU, minGRU and a Transformer decoder.

Run: ``python benchmarks/rnn_vs_attention.py`` (about 2-3 minutes on two CPU cores);
``--lengths 64 256 1024 4096``, ``--budget``, ``--batch``, ``--repeats``, ``--tokens`` for
larger runs. Every contender is one layer on ``--features`` inputs, its width chosen by
:func:`rnncourse.budget.match_units` so that all hold about ``--budget`` parameters
(the Transformer's learned position table apart: it grows with the longest length):

* ``lstm``, ``gru``: Keras' layers (cuDNN on a GPU); generation steps their ``cell``;
* ``mingru``: :class:`rnncourse.mingru.MinGRU`, trained with the parallel scan
  (``mingru-loop``: the same layer with ``mode="sequential"``); generation steps
  :meth:`~rnncourse.mingru.MinGRU.step`;
* ``transformer``: one pre-norm decoder block (attention written out with ``Dense``
  layers so that generation can keep a key/value cache), causal mask in training.

A training step is forward + backward + an Adam update on a ``(batch, length, features)``
batch, compiled with ``tf.function``. Generation produces ``--tokens`` tokens one at a
time after a context of ``length`` tokens (the Transformer attends over its cache of them;
a recurrent layer carries a state whose size does not depend on ``length``). Each number is
the median over ``--repeats`` timings, the contenders interleaved repeat by repeat, with the
range (min-max) beside it. The counts these timings should follow are
:func:`rnncourse.budget.layer_cost`'s; wall-clock ratios depend on the machine and its load,
so the book quotes them as measured here and asserts none.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rnncourse import budget, devices, mingru
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402


class Decoder(keras.layers.Layer):
    """One pre-norm Transformer decoder block with learned positions and a key/value cache.

    Parameters as :func:`rnncourse.budget.layer_cost` counts them for ``"transformer"``
    (``heads`` heads of ``units / heads`` dimensions, feed-forward ``4 units``).
    """

    def __init__(self, units: int, heads: int, max_length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.heads, self.max_length = units, heads, max_length
        dense = keras.layers.Dense
        self.project = dense(units)
        self.q, self.k, self.v, self.o = (dense(units) for _ in range(4))
        self.norm1, self.norm2 = keras.layers.LayerNormalization(), \
            keras.layers.LayerNormalization()
        self.ff1, self.ff2 = dense(4 * units, activation="relu"), dense(units)

    def build(self, input_shape) -> None:
        self.positions = self.add_weight(shape=(self.max_length, self.units),
                                         initializer="random_normal", name="positions")

    def _heads(self, x):  # (batch, T, units) -> (batch, heads, T, units / heads)
        shape = ops.shape(x)
        return ops.transpose(ops.reshape(x, (shape[0], shape[1], self.heads, -1)), (0, 2, 1, 3))

    def _attend(self, q, k, v, allowed):
        scores = ops.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(self.units // self.heads)
        weights = ops.softmax(ops.where(allowed, scores, -1e9), axis=-1)
        out = ops.transpose(ops.einsum("bhqk,bhkd->bhqd", weights, v), (0, 2, 1, 3))
        return self.o(ops.reshape(out, (ops.shape(out)[0], -1, self.units)))

    def _feed_forward(self, x):
        return x + self.ff2(self.ff1(self.norm2(x)))

    def call(self, inputs):
        """Training: ``(batch, T, features)`` -> ``(batch, T, units)``, causal."""
        steps = ops.shape(inputs)[1]
        x = self.project(inputs) + self.positions[:steps]
        h = self.norm1(x)
        causal = ops.tril(ops.ones((steps, steps), "bool"))
        x = x + self._attend(self._heads(self.q(h)), self._heads(self.k(h)),
                             self._heads(self.v(h)), causal)
        return self._feed_forward(x)

    def step(self, x_t, cache_k, cache_v, position):
        """One token ``(batch, features)`` at ``position``; the caches are
        ``(batch, heads, length, units / heads)``, filled below ``position``: the token
        attends over ``length`` cached positions (masked beyond ``position``)."""
        x = self.project(x_t[:, None]) + self.positions[position][None, None]
        h = self.norm1(x)
        k, v = self._heads(self.k(h)), self._heads(self.v(h))
        start = (0, 0, position, 0)
        cache_k = ops.slice_update(cache_k, start, k)
        cache_v = ops.slice_update(cache_v, start, v)
        allowed = ops.arange(ops.shape(cache_k)[2])[None, None, None, :] <= position
        x = x + self._attend(self._heads(self.q(h)), cache_k, cache_v, allowed)
        return self._feed_forward(x)[:, 0], cache_k, cache_v


def build(kind: str, units: int, features: int, max_length: int, heads: int):
    """The contender's layer, built on ``(None, None, features)``."""
    layer = {"lstm": lambda: keras.layers.LSTM(units, return_sequences=True),
             "gru": lambda: keras.layers.GRU(units, return_sequences=True),
             "mingru": lambda: mingru.MinGRU(units, return_sequences=True),
             "mingru-loop": lambda: mingru.MinGRU(units, mode="sequential",
                                                  return_sequences=True),
             "transformer": lambda: Decoder(units, heads, max_length)}[kind]()
    layer(np.zeros((1, 2, features), "float32"))
    return layer


def widths(budget_params: int, features: int, heads: int) -> dict[str, int]:
    """Each contender's width at the parameter budget (``match_units``), the Transformer's
    counted without its position table (one row per position up to the longest length
    benchmarked: at 1,056 rows it would be most of a small budget)."""
    found = {}
    for kind in ("lstm", "gru", "mingru", "transformer"):
        match = budget.match_units(
            lambda n, kind=kind: budget.layer_cost(kind, 1, input_dim=features, units=n,
                                                   heads=heads).parameters - n * (
                kind == "transformer"),
            budget_params, multiple_of=heads if kind == "transformer" else 1)
        found[kind] = match.units
    found["mingru-loop"] = found["mingru"]
    return found


def train_timer(layer, batch: int, length: int, features: int):
    optimizer = keras.optimizers.Adam(1e-3)
    x = tf.random.normal((batch, length, features), seed=1)

    @tf.function(autograph=False)  # the loops are keras.ops loops already
    def train_step():
        with tf.GradientTape() as tape:
            loss = ops.mean(layer(x) ** 2)
        optimizer.apply(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights)
        return loss

    return train_step


def generate_timer(kind: str, layer, batch: int, length: int, features: int, tokens: int):
    """A compiled function generating ``tokens`` steps after a context of ``length``."""
    x = tf.random.normal((batch, tokens, features), seed=2)
    if kind == "transformer":
        shape = (batch, layer.heads, length + tokens, layer.units // layer.heads)
        cache = tf.random.normal(shape, seed=3), tf.random.normal(shape, seed=4)

        @tf.function(autograph=False)  # the loops are keras.ops loops already
        def generate():
            def body(t, carry):
                out, k, v = layer.step(x[:, t], *carry[1:], length + t)
                return out, k, v
            return ops.fori_loop(0, tokens, body, (ops.zeros((batch, layer.units)), *cache))[0]
        return generate
    units = layer.units

    if kind.startswith("mingru"):
        def one(x_t, state):
            h = layer.step(x_t, state[0])
            return h, [h]
    else:
        def one(x_t, state):
            return layer.cell(x_t, state)
    size = 2 if kind == "lstm" else 1

    @tf.function(autograph=False)  # the loops are keras.ops loops already
    def generate():
        def body(t, state):
            return one(x[:, t], list(state))[1]
        state = [ops.zeros((batch, units)) for _ in range(size)]
        return ops.fori_loop(0, tokens, lambda t, s: tuple(body(t, s)), tuple(state))[0]
    return generate


def timed(function) -> float:
    start = time.perf_counter()
    result = function()
    float(ops.sum(result))  # wait for the device
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--budget", type=int, default=20_000, help="parameters per layer")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32, help="tokens generated per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", nargs="+",
                        default=["lstm", "gru", "mingru", "mingru-loop", "transformer"])
    args = parser.parse_args(argv)
    max_length = max(args.lengths) + args.tokens
    units = widths(args.budget, args.features, args.heads)
    visible = devices.gpus()
    print(f"device: {', '.join(visible) if visible else 'CPU only'}; batch {args.batch}, "
          f"{args.features} input features, budget {args.budget:,} parameters; median "
          f"[min-max] of {args.repeats} interleaved repeats")
    layers = {}
    for kind in args.kinds:
        layers[kind] = build(kind, units[kind], args.features, max_length, args.heads)
        print(f"  {kind:12s} units {units[kind]:5d}, {layers[kind].count_params():,} parameters"
              + (f" ({max_length} x {units[kind]} of them positions)"
                 if kind == "transformer" else ""))
    for what in ("train", "generate"):
        unit = "training steps/s" if what == "train" else "generated tokens/s"
        print(f"\n{unit} (after a context of L tokens)" if what == "generate" else f"\n{unit}")
        print(f"{'':12s}" + "".join(f"{'L = ' + str(L):>24s}" for L in args.lengths))
        rows = {kind: [] for kind in args.kinds}
        for length in args.lengths:
            functions = {
                kind: train_timer(layers[kind], args.batch, length, args.features)
                if what == "train" else
                generate_timer(kind, layers[kind], args.batch, length, args.features,
                               args.tokens)
                for kind in args.kinds}
            for function in functions.values():
                timed(function)  # trace and compile
            times = {kind: [] for kind in args.kinds}
            for _ in range(args.repeats):
                for kind, function in functions.items():
                    times[kind].append(timed(function))
            for kind in args.kinds:
                per = np.array(times[kind]) / (args.tokens if what == "generate" else 1)
                rate = 1 / per
                rows[kind].append(f"{np.median(rate):9.1f} [{rate.min():.1f}-{rate.max():.1f}]")
        for kind in args.kinds:
            print(f"{kind:12s}" + "".join(f"{cell:>24s}" for cell in rows[kind]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

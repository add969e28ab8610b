"""Seconds per training step of Keras LSTM/GRU layers: fused cuDNN kernel vs generic loop.

Run: ``python benchmarks/cudnn_speed.py`` (``--units``, ``--batch``, ``--timesteps``,
``--features``, ``--repeats`` to change the shape). On a GPU it times each layer with
``use_cudnn="auto"`` (cuDNN) and ``use_cudnn=False`` (generic ``tf.while_loop``), the two
interleaved repeat by repeat, and prints the medians and their ratio. On a CPU-only
machine it says that no GPU is visible and times the generic CPU kernels only.

Chapter 2 (``book/02_gru_lstm.ipynb``) points here instead of timing in the notebook: a
wall-clock ratio depends on the machine and its load, so the book asserts none.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from rnncourse import devices, models
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import tensorflow as tf  # noqa: E402


@dataclass(frozen=True)
class KernelTiming:
    """Median seconds of one training step (forward + backward) for one layer setting."""

    cell: str
    kernel: str
    seconds: float


def step_timer(cell: str = "lstm", units: int = 128, batch: int = 64, timesteps: int = 100,
               features: int = 32, use_cudnn="auto"):
    """A function that runs one compiled forward+backward step and returns its seconds.

    The first call traces and compiles; time the calls after it. Returns
    ``(timer, kernel)`` where ``kernel`` is ``"cudnn"`` when a GPU is visible and the layer
    is eligible (:func:`rnncourse.devices.cudnn_eligibility`), else ``"generic"``.
    """
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell must be 'lstm' or 'gru' (cuDNN has no SimpleRNN), not {cell!r}")
    layer = models.CELLS[cell](units, use_cudnn=use_cudnn)
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

    kernel = "generic"
    if use_cudnn is not False and devices.gpus():
        kernel = "cudnn" if devices.cudnn_eligibility(layer)[0] else "generic"
    return timed, kernel


def kernel_speed(cell: str = "lstm", repeats: int = 5, use_cudnn="auto",
                 **shape) -> KernelTiming:
    """Median seconds of one forward+backward step over ``repeats`` (after a warm-up step)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    timer, kernel = step_timer(cell, use_cudnn=use_cudnn, **shape)
    timer()
    return KernelTiming(cell, kernel, float(np.median([timer() for _ in range(repeats)])))


def cudnn_speedup(cell: str = "lstm", repeats: int = 5, **shape) -> float | None:
    """Generic-kernel time divided by cuDNN time, interleaved repeats; None without a GPU."""
    if not devices.gpus():
        return None
    generic, _ = step_timer(cell, use_cudnn=False, **shape)
    fused, _ = step_timer(cell, use_cudnn="auto", **shape)
    generic(), fused()
    pairs = [(generic(), fused()) for _ in range(repeats)]
    return float(np.median([g for g, _ in pairs]) / np.median([f for _, f in pairs]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    shape = dict(units=args.units, batch=args.batch, timesteps=args.timesteps,
                 features=args.features)
    visible = devices.gpus()
    print(f"layer shape: batch {args.batch}, timesteps {args.timesteps}, "
          f"features {args.features}, units {args.units}; median of {args.repeats} steps")
    if not visible:
        print("no GPU visible: cuDNN cannot run here; timing the generic CPU kernels only")
        for cell in ("lstm", "gru"):
            generic = kernel_speed(cell, repeats=args.repeats, use_cudnn=False, **shape)
            print(f"{cell.upper():5s} generic (CPU) {1000 * generic.seconds:9.2f} ms/step")
        return 0
    print(f"GPU: {', '.join(visible)}")
    print(f"{'layer':5s} {'generic':>12s} {'cuDNN':>12s} {'ratio':>8s}")
    for cell in ("lstm", "gru"):
        generic = kernel_speed(cell, repeats=args.repeats, use_cudnn=False, **shape)
        fused = kernel_speed(cell, repeats=args.repeats, use_cudnn="auto", **shape)
        ratio = cudnn_speedup(cell, repeats=args.repeats, **shape)
        print(f"{cell.upper():5s} {1000 * generic.seconds:9.2f} ms {1000 * fused.seconds:9.2f} ms "
              f"{ratio:7.1f}x  (auto ran: {fused.kernel}; ratio from interleaved repeats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

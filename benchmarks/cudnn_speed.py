"""Seconds per training step of Keras LSTM/GRU layers: fused cuDNN kernel vs generic loop.

Run: ``python benchmarks/cudnn_speed.py`` (``--units``, ``--batch``, ``--timesteps`` to
change the shape). On a GPU it times each layer with ``use_cudnn="auto"`` (cuDNN) and
``use_cudnn=False`` (generic ``tf.while_loop``) and prints the ratio. On a CPU-only
machine it says that no GPU is visible and times the generic CPU kernels only.
"""

from __future__ import annotations

import argparse
import sys

from rnncourse import cells, devices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    shape = dict(units=args.units, batch=args.batch, timesteps=args.timesteps,
                 features=args.features, repeats=args.repeats)
    visible = devices.gpus()
    print(f"layer shape: batch {args.batch}, timesteps {args.timesteps}, "
          f"features {args.features}, units {args.units}; median of {args.repeats} steps")
    if not visible:
        print("no GPU visible: cuDNN cannot run here; timing the generic CPU kernels only")
        for cell in ("lstm", "gru"):
            generic = cells.kernel_speed(cell, use_cudnn=False, **shape)
            print(f"{cell.upper():5s} generic (CPU) {1000 * generic.seconds:9.2f} ms/step")
        return 0
    print(f"GPU: {', '.join(visible)}")
    print(f"{'layer':5s} {'generic':>12s} {'cuDNN':>12s} {'ratio':>8s}")
    for cell in ("lstm", "gru"):
        generic = cells.kernel_speed(cell, use_cudnn=False, **shape)
        fused = cells.kernel_speed(cell, use_cudnn="auto", **shape)
        print(f"{cell.upper():5s} {1000 * generic.seconds:9.2f} ms {1000 * fused.seconds:9.2f} ms "
              f"{generic.seconds / fused.seconds:7.1f}x  (auto ran: {fused.kernel})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: one epoch of the BiLSTM tagger on the WNUT-16 tweets, two ways, in one run.

* the per-example loop (``model.fit`` on one tweet at a time, :func:`training.fit_per_example`),
  timed on a subset of the training tweets and extrapolated linearly to all of them;
* ``fit(batch_size=32, shuffle=True)`` (:func:`training.fit_minibatches`) on all of them.

Both time their second epoch, so one-off graph tracing is excluded from both.

    python benchmarks/training_loops.py [--subset 200] [--units 64]
"""

from __future__ import annotations

import argparse
import time

from rnncourse import config, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=200,
                        help="tweets the per-example loop runs on (then extrapolated)")
    parser.add_argument("--units", type=int, default=64, help="LSTM units per direction")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    config.set_seed(0)
    data = training.prepare_tweets()
    x, y = data.x[data.train], data.y[data.train]
    n = len(x)

    def model():
        return training.build_tagger(len(data.vocab), len(data.tag_names), units=args.units,
                                     embeddings=data.embeddings, seed=0)

    start = time.perf_counter()
    loop = training.fit_per_example(model(), x[:args.subset], y[:args.subset], epochs=2)
    loop_epoch = training.per_epoch_seconds(loop, n)
    loop_wall = time.perf_counter() - start

    start = time.perf_counter()
    batches = training.fit_minibatches(model(), x, y, epochs=2, batch_size=args.batch_size)
    batch_epoch = training.per_epoch_seconds(batches, n)
    batch_wall = time.perf_counter() - start

    print(f"BiLSTM({args.units}) tagger, {n} training tweets x {x.shape[1]} steps, "
          f"vocabulary {len(data.vocab)}, scale={config.scale()}")
    print(f"{'path':<44}{'s / epoch':>12}{'wall (2 epochs)':>18}")
    print(f"{'fit() per example (extrapolated from ' + str(args.subset) + ')':<44}"
          f"{loop_epoch:>12.2f}{loop_wall:>18.1f}")
    print(f"{'fit(batch_size=' + str(args.batch_size) + ', shuffle=True)':<44}"
          f"{batch_epoch:>12.2f}{batch_wall:>18.1f}")
    print(f"ratio (per-example / mini-batch): {loop_epoch / batch_epoch:.1f}x  (target >= 40x)")


if __name__ == "__main__":
    main()

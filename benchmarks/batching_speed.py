"""Epoch time of one LSTM classifier on the 1,500 full movie reviews, by batching strategy.

Pad-to-global-max vs pad-per-batch vs bucketed (``rnncourse.batching``), same model, same
examples, same (optional) length cap. Prints padded fractions, padded timesteps and epoch
times side by side, with ratios to pad-to-global-max. Run from the repository root:

    python benchmarks/batching_speed.py [--limit N] [--maxlen T] [--repeats R]
"""

from __future__ import annotations

import argparse

import rnncourse  # noqa: F401
from rnncourse import batching, config, devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="reviews to use (default: all)")
    parser.add_argument("--maxlen", type=int, default=None, help="length cap for all strategies")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    config.set_seed(0)
    sequences, labels = batching.load_review_ids("reviews", max_words=20000, limit=args.limit)
    lengths = batching.lengths_of(sequences)
    print(f"device: {devices.describe()}")
    print(f"{len(sequences)} reviews, mean {lengths.mean():.0f} tokens, max {lengths.max()}, "
          f"cap {args.maxlen}, batch {args.batch_size}, LSTM({args.units})")
    results = batching.epoch_times(sequences, labels, args.batch_size, args.units, args.units,
                                   maxlen=args.maxlen, repeats=args.repeats)
    base = results["global_max"]
    print(f"{'strategy':<12}{'batches':>8}{'padded':>9}{'timesteps':>11}{'epoch s':>10}"
          f"{'speed-up':>10}{'timestep ratio':>16}")
    for name, row in results.items():
        print(f"{name:<12}{row['batches']:>8.0f}{row['padded']:>9.1%}{row['timesteps']:>11.0f}"
              f"{row['seconds']:>10.2f}{base['seconds'] / row['seconds']:>9.2f}x"
              f"{base['timesteps'] / row['timesteps']:>15.2f}x")


if __name__ == "__main__":
    main()

"""Epoch time of one LSTM classifier on the full movie reviews, by batching strategy.

Pad-to-global-max vs pad-per-batch vs bucketed (``rnncourse.batching.padded_dataset``), same
model, same examples, same (optional) length cap. Repeats are interleaved (one epoch of each
strategy per round), so a burst of load on a shared machine hits every strategy alike; the
table gives the median epoch time with its range, the padded timesteps and cells (counted,
load-independent), and the speed-up over pad-to-global-max as the median of the per-round
ratios, with their range. The chapter quotes this script's output as a benchmark figure;
its notebook asserts only the counted quantities. Run from the repository root:

    python benchmarks/batching_speed.py [--limit N] [--maxlen T] [--repeats R] [--units U]

The training loop lives here, not in the chapter module: the chapter shows the counts, and
quotes this script's output in its prose.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

import rnncourse  # noqa: F401
from rnncourse import batching, config, devices, models
from rnncourse.chapters import ch04_batching as ch04

config.quiet_tensorflow()


@dataclass(frozen=True)
class EpochTimes:
    """Wall time of one training epoch per batching strategy (interleaved repeats).

    Attributes:
        seconds: ``{strategy: (epoch seconds per repeat, ...)}``.
        counts: ``{strategy: PaddingCount}`` of the strategy's batches (load-independent).
    """

    seconds: dict[str, tuple[float, ...]]
    counts: dict[str, batching.PaddingCount] = field(default_factory=dict)

    def median(self, strategy: str) -> float:
        return statistics.median(self.seconds[strategy])

    def ratio(self, strategy: str, base: str = "global_max") -> tuple[float, float, float]:
        """``(median, min, max)`` of ``base / strategy`` over the repeats (paired)."""
        ratios = [b / s for b, s in zip(self.seconds[base], self.seconds[strategy],
                                        strict=True)]
        return statistics.median(ratios), min(ratios), max(ratios)


def epoch_times(sequences: Sequence, labels, batch_size: int = 32, units: int = 16,
                embedding_dim: int = 16, strategies: Sequence[str] = batching.STRATEGIES,
                maxlen: int | None = None, seed: int = 0, repeats: int = 3) -> EpochTimes:
    """Time one training epoch of the same classifier under each batching strategy.

    One :func:`rnncourse.models.sequence_classifier` (``None`` timesteps) trains on every
    strategy's dataset: one batch each first (so tracing is not timed), then ``repeats``
    rounds of one full epoch per strategy, interleaved so that a burst of load on a shared
    machine hits all strategies alike.
    """
    arrays = batching.validate_sequences(sequences, labels)
    labels = np.asarray(labels, dtype="float32")
    vocab = int(max(a.max() for a in arrays)) + 1
    model = models.sequence_classifier(vocab, embedding_dim=embedding_dim, units=units,
                                       seed=seed)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    datasets = {strategy: batching.padded_dataset(arrays, labels, batch_size, strategy,
                                                  seed=seed, maxlen=maxlen)
                for strategy in strategies}
    counts = {strategy: batching.count_padding(ds) for strategy, ds in datasets.items()}
    for ds in datasets.values():
        model.fit(ds.take(1), epochs=1, verbose=0, shuffle=False)
    seconds: dict[str, list[float]] = {strategy: [] for strategy in strategies}
    for _ in range(repeats):
        for strategy, ds in datasets.items():
            start = time.perf_counter()
            model.fit(ds, epochs=1, verbose=0, shuffle=False)
            seconds[strategy].append(time.perf_counter() - start)
    return EpochTimes({k: tuple(v) for k, v in seconds.items()}, counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="reviews to use (default: all)")
    parser.add_argument("--maxlen", type=int, default=None, help="length cap for all strategies")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    config.set_seed()
    sequences, labels = ch04.review_ids("reviews", max_words=20000, limit=args.limit,
                                        seed=config.seed(0))
    lengths = [len(s) for s in sequences]
    env, gpus = devices.describe(), devices.gpus()
    print(f"TensorFlow {env.tensorflow}, Keras {env.keras}; device: "
          f"{gpus[0] if gpus else 'CPU'}; {os.cpu_count()} CPU cores visible; "
          f"{platform.processor() or platform.machine()}; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{len(sequences)} reviews, mean {sum(lengths) / len(lengths):.0f} tokens, "
          f"max {max(lengths)}, cap {args.maxlen}, batch {args.batch_size}, LSTM({args.units}), "
          f"{args.repeats} interleaved rounds")
    result = epoch_times(sequences, labels, args.batch_size, args.units, args.units,
                              maxlen=args.maxlen, seed=config.seed(0), repeats=args.repeats)
    print(f"{'strategy':<12}{'batches':>8}{'padded':>9}{'timesteps':>11}{'cells':>11}"
          f"{'epoch s (median, range)':>28}{'speed-up (median, range)':>28}"
          f"{'timestep ratio':>16}")
    base = result.counts["global_max"]
    for name, count in result.counts.items():
        times = result.seconds[name]
        ratio, low, high = result.ratio(name)
        print(f"{name:<12}{count.batches:>8}{count.padded:>9.1%}{count.timesteps:>11}"
              f"{count.positions:>11}{result.median(name):>12.2f} ({min(times):6.2f}-"
              f"{max(times):6.2f}){ratio:>12.2f}x ({low:4.2f}-{high:4.2f}){'':>2}"
              f"{base.timesteps / count.timesteps:>13.2f}x")
    print("load average after:", ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

"""Benchmark of the TBPTT chapter: memory of one training pass vs L, and throughput.

Prints, in one run:

* peak tensor memory of one training pass over ``(batch, L)`` sequences for L = 200 and
  L = 2,000 at window 25, full BPTT vs TBPTT (target: TBPTT within 1.2x, full BPTT >= 5x),
  measured twice: eagerly on one thread (what the notebook asserts on: the same count on
  every run) and with the compiled ``tf.function`` steps, repeated, whose peak depends on
  the order TensorFlow happens to run independent ops in (the spread is printed);
* characters per second of the explicit-state loop (:class:`rnncourse.tbptt.TBPTTTrainer`)
  vs the stateful-layer ``fit`` at the same batch and window (target: within 1.5x).

Memory is TensorFlow's allocator peak (GPU when present, else CPU with the BFC allocator),
measured in a fresh child process per configuration. Usage:
``python benchmarks/tbptt_memory.py [--quick] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnncourse import config, devices, models, tbptt
from rnncourse.chapters import ch05_tbptt as ch05


def throughput(batch_size: int, window: int, length: int, sequences: int, units: int,
               vocab: int = 64, embedding_dim: int = 32, repeats: int = 3) -> dict[str, float]:
    """Characters per second of one epoch for both trainers: best of ``repeats`` epochs,
    alternating the two (after a warm-up epoch each), so a busy machine hurts both alike."""
    import keras

    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (sequences, length + 1)).astype(np.int32)
    x, y = ids[:, :-1], ids[:, 1:]
    chars = sequences * length
    stateful = models.char_lm(vocab, units, embedding_dim, batch_size=batch_size,
                              timesteps=window, stateful=True)
    stateful.compile(keras.optimizers.Adam(1e-3, clipnorm=1.0), tbptt.sequence_loss())
    layout = tbptt.stateful_batches(x, y, window, batch_size)
    model = models.state_char_lm(vocab, units, embedding_dim)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.Adam(1e-3, clipnorm=1.0), window)
    runs = {"stateful_fit": lambda: tbptt.fit_stateful(stateful, layout, epochs=1),
            "explicit_loop": lambda: trainer.fit(x, y, batch_size, epochs=1)}
    best = dict.fromkeys(runs, 0.0)
    for run in runs.values():
        run()  # warm-up: tracing
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = max(best[name], chars / (time.perf_counter() - start))
    return best


def memory_table(lengths, batch: int, units: int, window: int, eager: bool,
                 repeats: int) -> None:
    mode = "eager, one thread" if eager else "compiled tf.function"
    results = [ch05.measure_memory(lengths, window=window, batch_size=batch, units=units,
                                   eager=eager) for _ in range(repeats)]
    print(f"\npeak tensor memory of one training pass (MiB), {mode}, {repeats} run(s)")
    print(f"{'L':>6} {'full BPTT':>18} {'TBPTT':>14} {'estimate full':>14}")
    for i, length in enumerate(lengths):
        full = [r.full_bptt[i] / 2**20 for r in results]
        trunc = [r.tbptt[i] / 2**20 for r in results]
        print(f"{length:>6} {min(full):>8.1f}-{max(full):<8.1f} {min(trunc):>6.2f}-"
              f"{max(trunc):<6.2f} {results[0].estimate[i] / 2**20:>14.1f}")
    tb = [r.tbptt[-1] / r.tbptt[0] for r in results]
    full = [r.full_bptt[-1] / r.full_bptt[0] for r in results]
    every = [x / 2**20 for r in results for x in r.tbptt]
    print(f"ratio L={lengths[-1]} / L={lengths[0]}: full BPTT {min(full):.2f}-{max(full):.2f}x "
          f"(target >= 5), TBPTT {min(tb):.2f}-{max(tb):.2f}x (target <= 1.2); TBPTT peaks "
          f"over all runs and lengths {min(every):.2f}-{max(every):.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and data")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the compiled pass")
    args = parser.parse_args()
    config.set_seed(0)
    batch, units, window = (16, 64, 25) if args.quick else (32, 128, 25)
    env = dict(devices.describe().rows())
    print(f"TensorFlow {env['TensorFlow']}, GPUs: {env['GPUs visible']}")
    print(f"model: Embedding(64, 32) -> LSTM({units}) -> Dense(64); batch {batch}, "
          f"window {window}")

    lengths = (200, 2000)
    memory_table(lengths, batch, units, window, eager=True, repeats=1)
    memory_table(lengths, batch, units, window, eager=False, repeats=args.repeats)

    length, sequences = (200, 64) if args.quick else (200, 256)
    cps = throughput(batch, window, length, sequences, units)
    print("\nthroughput, best of 3 epochs after a warm-up (characters / second)")
    for name, value in cps.items():
        print(f"{name:>14}: {value:>10.0f}")
    ratio = max(cps.values()) / min(cps.values())
    print(f"faster / slower: {ratio:.2f}x (target <= 1.5)")

    reader = ch05.activation_bytes(125_973, 25, 512, 200, 60)
    per_40 = ch05.activation_bytes(40, 25, 512, 200, 60)
    print(f"\nreader's case, LSTM(512), window 25: batch 125,973 needs ~{reader / 2**30:.1f} GiB "
          f"of activations per window; batch 40 needs ~{per_40 / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

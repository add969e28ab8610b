"""Benchmark of the TBPTT chapter: memory of one training pass vs L, and throughput.

Prints, in one run:

* peak tensor memory of one training pass over ``(batch, L)`` sequences for L = 200 and
  L = 2,000 at window 25, full BPTT vs TBPTT (target: TBPTT within 1.2x, full BPTT >= 5x);
* characters per second of the explicit-state loop (:class:`rnncourse.tbptt.TBPTTTrainer`)
  vs the stateful-layer ``fit`` at the same batch and window (target: within 1.5x).

Memory is TensorFlow's allocator peak (GPU when present, else CPU with the BFC allocator,
measured in a child process). Usage: ``python benchmarks/tbptt_memory.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnncourse import config, devices, tbptt


def throughput(batch_size: int, window: int, length: int, sequences: int, units: int,
               vocab: int = 64, embedding_dim: int = 32, repeats: int = 3) -> dict[str, float]:
    """Characters per second of one epoch for both trainers: best of ``repeats`` epochs,
    alternating the two (after a warm-up epoch each), so a busy machine hurts both alike."""
    import keras

    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (sequences, length + 1)).astype(np.int32)
    x, y = ids[:, :-1], ids[:, 1:]
    chars = sequences * length
    stateful = tbptt.compile_char_lm(tbptt.char_lm(vocab, units, embedding_dim,
                                                   batch_size=batch_size, window=window,
                                                   stateful=True))
    layout = tbptt.stateful_batches(x, y, window, batch_size)
    model = tbptt.state_model(vocab, units, embedding_dim)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and data")
    args = parser.parse_args()
    config.set_seed(0)
    batch, units, window = (16, 64, 25) if args.quick else (32, 128, 25)
    env = dict(devices.describe().rows())
    print(f"TensorFlow {env['TensorFlow']}, GPUs: {env['GPUs visible']}")
    print(f"model: Embedding(64, 32) -> LSTM({units}) -> Dense(64); batch {batch}, "
          f"window {window}")

    lengths = (200, 2000)
    mem = tbptt.measure_memory(lengths, window=window, batch_size=batch, units=units)
    print("\npeak tensor memory of one training pass (MiB)")
    print(f"{'L':>6} {'full BPTT':>10} {'TBPTT':>8} {'estimate full':>14}")
    for i, length in enumerate(lengths):
        est = tbptt.lstm_activation_bytes(batch, length, units, 32, 64)
        print(f"{length:>6} {mem['full_bptt'][i] / 2**20:>10.1f} {mem['tbptt'][i] / 2**20:>8.2f}"
              f" {est / 2**20:>14.1f}")
    full_ratio = mem["full_bptt"][1] / mem["full_bptt"][0]
    tb_ratio = mem["tbptt"][1] / mem["tbptt"][0]
    print(f"ratio L=2000 / L=200: full BPTT {full_ratio:.2f}x (target >= 5), "
          f"TBPTT {tb_ratio:.2f}x (target <= 1.2)")

    length, sequences = (200, 64) if args.quick else (200, 256)
    cps = throughput(batch, window, length, sequences, units)
    print("\nthroughput, best of 3 epochs after a warm-up (characters / second)")
    for name, value in cps.items():
        print(f"{name:>14}: {value:>10.0f}")
    ratio = max(cps.values()) / min(cps.values())
    print(f"faster / slower: {ratio:.2f}x (target <= 1.5)")

    reader = tbptt.lstm_activation_bytes(125_973, 25, 512, 200, 60)
    per_40 = tbptt.lstm_activation_bytes(40, 25, 512, 200, 60)
    print(f"\nreader's case, LSTM(512), window 25: batch 125,973 needs ~{reader / 2**30:.1f} GiB "
          f"of activations per window; batch 40 needs ~{per_40 / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

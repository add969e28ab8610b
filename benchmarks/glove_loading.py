"""Benchmark: loading GloVe vectors for a 20k-word vocabulary, three ways, in one run.

On the full ``glove.6B.50d.txt`` (400,000 lines, 171 MB) it times and measures the peak
memory growth of

* the dictionary loop of many tutorials (all 400,000 vectors in a ``dict``),
* ``rnncourse.glove.read_glove(path, vocabulary=words, cache=False)`` (streaming),
* ``read_glove(path, vocabulary=words)`` once its binary cache exists (second load; the
  cache lives under ``rnncourse.config.cache_dir() / "glove-cache"``),

for 15,000 frequent words plus 5,000 rare ones spread over the file, and prints the
ratios side by side. Time is the median of ``--repeats`` interleaved runs (the loaders
alternate), printed with the range of the runs;
memory is the ``tracemalloc`` peak of a separate run (NumPy reports its buffers to it).

Usage::

    python benchmarks/glove_loading.py [--repeats 5] [--gpu-lstm]

``--gpu-lstm`` also times an LSTM training step with and without ``recurrent_dropout``
(which disables cuDNN), useful on a GPU machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import numpy as np

from rnncourse import data, glove
from rnncourse.chapters.ch03_embeddings import dictionary_loader


def vocabulary_words(path) -> list[str]:
    words = glove.read_glove(path).words  # all words; builds the cache when missing
    rare = words[15_000::(len(words) - 15_000) // 5_000][:5_000]
    return words[:15_000] + rare


def dictionary_way(path, words):
    table = dictionary_loader(path)
    return {w: table[w] for w in words if w in table}


def streaming_way(path, words):
    return glove.read_glove(path, vocabulary=words, cache=False, lowercase=False)


def cached_way(path, words):
    return glove.read_glove(path, vocabulary=words, cache=True, lowercase=False)


def peak_mib(fn, *args) -> float:
    gc.collect()
    tracemalloc.start()
    result = fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak / 2**20


def lstm_step_times(steps: int = 30) -> dict[str, float]:
    from rnncourse.config import quiet_tensorflow

    quiet_tensorflow()
    import keras

    x = np.random.default_rng(0).integers(1, 5000, size=(64, 100)).astype("int32")
    y = np.random.default_rng(1).integers(0, 2, size=(64, 1)).astype("float32")
    out = {}
    for name, kw in {"dropout after LSTM": {}, "recurrent_dropout=0.2":
                     {"recurrent_dropout": 0.2}}.items():
        keras.utils.set_random_seed(0)
        inputs = keras.Input(shape=(None,), dtype="int32")
        h = keras.layers.Embedding(5000, 50, mask_zero=True)(inputs)
        h = keras.layers.LSTM(128, **kw)(h)
        h = keras.layers.Dropout(0.2)(h) if not kw else h
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
        model.compile("adam", "binary_crossentropy")
        model.train_on_batch(x, y)  # build and trace
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        out[name] = (time.perf_counter() - start) / steps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gpu-lstm", action="store_true")
    args = parser.parse_args()

    path = data.glove_path(50)
    words = vocabulary_words(path)  # also builds the cache if it is missing
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB); vocabulary: {len(words):,} "
          "words (15,000 frequent + 5,000 rare)")
    ways = {"dictionary loop": dictionary_way, "read_glove streaming": streaming_way,
            "read_glove cached": cached_way}
    times = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, fn in ways.items():
            gc.collect()
            start = time.perf_counter()
            result = fn(path, words)
            times[name].append(time.perf_counter() - start)
            del result
    median = {name: statistics.median(ts) for name, ts in times.items()}
    memory = {name: peak_mib(fn, path, words) for name, fn in ways.items()}

    reference = dictionary_way(path, words)
    streamed, cached = streaming_way(path, words), cached_way(path, words)
    same = (set(streamed.words) == set(reference) and streamed.words == cached.words
            and np.array_equal(streamed.vectors, cached.vectors)
            and all(np.array_equal(reference[w], v)
                    for w, v in zip(streamed.words, streamed.vectors, strict=True)))

    base_t, base_m = median["dictionary loop"], memory["dictionary loop"]
    print(f"\n{'method':<22}{'median time':>12}{'range':>17}{'speed-up':>10}{'peak mem':>12}"
          f"{'mem ratio':>11}")
    for name in ways:
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}s"
        print(f"{name:<22}{median[name]:>11.3f}s{spread:>17}{base_t / median[name]:>9.1f}x"
              f"{memory[name]:>9.1f} MiB{memory[name] / base_m:>10.2f}")
    print("\nall runs (s): " + "; ".join(f"{n}: {', '.join(f'{t:.2f}' for t in ts)}"
                                       for n, ts in times.items()))
    print(f"identical float32 rows for {len(streamed):,} words: {same}")
    print(f"targets: streaming >= 8x faster: {base_t / median['read_glove streaming'] >= 8}; "
          f"streaming peak <= half: {memory['read_glove streaming'] <= base_m / 2}; "
          f"cached < 0.2 s: {median['read_glove cached'] < 0.2}")

    if args.gpu_lstm:
        from rnncourse import devices

        steps = lstm_step_times()
        print(f"\nLSTM(128) training step, batch 64 x 100 tokens, on "
              f"{devices.gpus() or 'CPU'}:")
        for name, seconds in steps.items():
            print(f"  {name:<22}{seconds * 1000:8.1f} ms")
        ratio = steps["recurrent_dropout=0.2"] / steps["dropout after LSTM"]
        print(f"  recurrent_dropout costs {ratio:.1f}x per step")


if __name__ == "__main__":
    main()

"""Benchmark: reading a GloVe text file, the simplest alternatives against read_glove, in one run.

On the full ``glove.6B.50d.txt`` (400,000 lines, 171 MB), two tasks:

* **20k of 400k**: the vectors of a 20,000-word vocabulary (15,000 frequent words plus
  5,000 rare ones spread over the file);
* **all 400k**: every word.

Each task is done by

* the filter-first loop a practitioner writes in eight lines (split off the word, keep the
  line only if the word is wanted, then parse it; for all words it parses every line),
* ``pyarrow.csv.read_csv`` (space-delimited, no quoting, float32 columns), then the wanted
  rows,
* gensim's ``KeyedVectors.load_word2vec_format(no_header=True)``, if gensim is installed
  (it is not a dependency of the book; the script says when it is missing),
* ``rnncourse.glove.read_glove(path, vocabulary, cache=False)``: the parse,
* ``read_glove(path, vocabulary)`` once its binary copy exists (a repeated load).

Each repeat runs every loader once, in turn (interleaved, so a busy spell hits them all);
the table gives the median and the range. The script also checks that every loader returns
exactly the rows of the loop, which parses with ``np.asarray(fields, dtype="float32")``.

Usage::

    python benchmarks/glove_loading.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import numpy as np
import pyarrow as pa
from pyarrow import csv

from rnncourse import data, glove


def filter_first_loop(path, wanted):
    words, rows = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, rest = line.split(" ", 1)
            if wanted is None or word in wanted:
                words.append(word)
                rows.append(np.asarray(rest.split(), dtype=np.float32))
    return words, np.stack(rows)


def pyarrow_csv(path, wanted, dim=50):
    names = [f"f{i}" for i in range(dim + 1)]
    table = csv.read_csv(path, csv.ReadOptions(column_names=names),
                         csv.ParseOptions(delimiter=" ", quote_char=False),
                         csv.ConvertOptions(column_types={"f0": pa.string()} | dict.fromkeys(
                             names[1:], pa.float32())))
    words = table["f0"].to_pylist()
    vectors = np.column_stack([table[n].to_numpy() for n in names[1:]])
    if wanted is None:
        return words, vectors
    rows = [i for i, w in enumerate(words) if w in wanted]
    return [words[i] for i in rows], vectors[rows]


def gensim_loader(path, wanted):
    from gensim.models import KeyedVectors

    vectors = KeyedVectors.load_word2vec_format(path, no_header=True)
    words = [w for w in vectors.index_to_key if wanted is None or w in wanted]
    return words, vectors[words]


def read_glove(path, wanted):
    g = glove.read_glove(path, wanted, cache=False, lowercase=False)
    return g.words, g.vectors


def read_glove_cached(path, wanted):
    g = glove.read_glove(path, wanted, lowercase=False)
    assert g.from_cache
    return g.words, g.vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("RNNCOURSE_PROGRESS", "0")

    path = data.glove_path(50)
    glove.read_glove(path)  # builds the binary copy when it is missing (untimed)
    every, _ = filter_first_loop(path, None)
    vocabulary = set(every[:15_000] + every[15_000::(len(every) - 15_000) // 5_000][:5_000])
    ways = {"filter-first loop": filter_first_loop, "pyarrow.csv": pyarrow_csv}
    try:
        import gensim  # noqa: F401

        ways["gensim no_header=True"] = gensim_loader
    except ImportError:
        print("gensim is not installed (not a dependency of the book, and not installable "
              "here): its load_word2vec_format(no_header=True) is not timed")
    ways |= {"read_glove(cache=False)": read_glove, "read_glove, cached": read_glove_cached}
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB, {len(every):,} words), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    for task, wanted in {"20k of 400k": vocabulary, "all 400k": None}.items():
        reference = filter_first_loop(path, wanted)
        times = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():
                gc.collect()
                start = time.perf_counter()
                words, vectors = fn(path, wanted)
                times[name].append(time.perf_counter() - start)
                assert words == reference[0] and np.array_equal(vectors, reference[1]), name
                del words, vectors
        fastest = min(statistics.median(t) for n, t in times.items() if "read_glove" not in n)
        print(f"\n{task} ({len(reference[0]):,} rows, identical float32 rows from every "
              f"loader), {args.repeats} interleaved repeats:")
        print(f"  {'loader':<26}{'median':>9}{'range':>17}{'vs fastest alternative':>25}")
        for name, ts in times.items():
            median = statistics.median(ts)
            print(f"  {name:<26}{median:>8.3f}s{f'{min(ts):.3f}-{max(ts):.3f}s':>17}"
                  f"{fastest / median:>24.2f}x")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (a busy machine stretches "
          "every time; compare rows of one run)")


if __name__ == "__main__":
    main()

"""Benchmark: reading a GloVe text file, read_glove against the simplest alternatives, one run.

On the full ``glove.6B.50d.txt`` (400,000 lines, 171 MB), two tasks:

* **20k of 400k**: the vectors of a 20,000-word vocabulary (15,000 frequent words plus
  5,000 rare ones spread over the file);
* **all 400k**: every word.

Each task is done by

* the filter-first loop a practitioner writes in eight lines (split off the word, keep the
  line only if the word is wanted, then parse it; for all words it parses every line),
* ``pyarrow.csv.read_csv`` (space-delimited, no quoting, float32 columns), then the wanted
  rows,
* gensim's ``KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)``, then
  the wanted rows, if gensim imports (it is not a dependency of the book; install it apart,
  e.g. ``pip install --target /tmp/gensim_site gensim`` and ``PYTHONPATH=/tmp/gensim_site``),
* ``rnncourse.glove.read_glove(path, vocabulary)``,
* for the cache decision only: ``np.load`` of a binary copy (the words and a ``.npy``
  written once, untimed), then the wanted rows: the most a binary cache could save.

Each repeat runs every loader once, in turn (interleaved, so a busy spell hits them all);
the table gives the median and the range, and each loader's speed relative to the fastest
of the three alternatives (loop, pyarrow, gensim). Every loader must return the same words
and bit-identical float32 rows as gensim (the filter-first loop when gensim is missing).

Usage::

    python benchmarks/glove_loading.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

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

    keyed = KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
    if wanted is None:
        return keyed.index_to_key, keyed.vectors
    words = [w for w in keyed.index_to_key if w in wanted]
    return words, keyed[words]


def read_glove(path, wanted):
    g = glove.read_glove(path, wanted, lowercase=False)
    return g.words, g.vectors


def binary_copy(folder: Path):
    """The loader of a binary copy in ``folder`` (what a cache would answer from)."""

    def load(path, wanted):
        words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")
        vectors = np.load(folder / "vectors.npy")
        if wanted is None:
            return words, vectors
        rows = [i for i, w in enumerate(words) if w in wanted]
        return [words[i] for i in rows], vectors[rows]

    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("RNNCOURSE_PROGRESS", "0")

    path = data.glove_path(50)
    every, vectors = filter_first_loop(path, None)
    vocabulary = set(every[:15_000] + every[15_000::(len(every) - 15_000) // 5_000][:5_000])
    ways = {"filter-first loop": filter_first_loop, "pyarrow.csv": pyarrow_csv}
    try:
        import gensim  # noqa: F401  (imported here: not a dependency of the book)

        ways["gensim no_header=True"] = gensim_loader
        oracle = gensim_loader
    except ImportError:
        print("gensim does not import here (it is not a dependency of the book): its "
              "load_word2vec_format(no_header=True) is not timed; rows checked against the loop")
        oracle = filter_first_loop
    alternatives = list(ways)
    folder = Path(tempfile.mkdtemp(prefix="glove-copy-"))
    (folder / "words.txt").write_text("\n".join(every), encoding="utf-8")
    np.save(folder / "vectors.npy", vectors)
    del vectors
    ways |= {"read_glove": read_glove, "binary copy (np.load)": binary_copy(folder)}
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB, {len(every):,} words), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    whole = oracle(path, None)  # the reference rows, selected for a vocabulary
    for task, wanted in {"20k of 400k": vocabulary, "all 400k": None}.items():
        rows = [i for i, w in enumerate(whole[0]) if wanted is None or w in wanted]
        reference = [whole[0][i] for i in rows], whole[1][rows]
        times = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():
                gc.collect()
                start = time.perf_counter()
                words, vectors = fn(path, wanted)
                times[name].append(time.perf_counter() - start)
                assert list(words) == list(reference[0]), name
                assert np.array_equal(vectors, reference[1]), name
                del words, vectors
        fastest = min(statistics.median(times[n]) for n in alternatives)
        print(f"\n{task} ({len(reference[0]):,} rows, the same words and float32 rows as "
              f"{'gensim' if oracle is gensim_loader else 'the loop'} from every loader), "
              f"{args.repeats} interleaved repeats:")
        print(f"  {'loader':<24}{'median':>9}{'range':>17}{'speed vs fastest alternative':>31}")
        for name, ts in times.items():
            median = statistics.median(ts)
            print(f"  {name:<24}{median:>8.3f}s{f'{min(ts):.3f}-{max(ts):.3f}s':>17}"
                  f"{fastest / median:>30.2f}x")
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (a busy machine stretches "
          "every time; compare rows of one run)")


if __name__ == "__main__":
    main()

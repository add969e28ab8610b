"""Benchmark: training steps per second of the chapter-7 tagger, one process vs two workers.

Runs chapter 7's worker script (``tagger_worker.py``, the ``%%writefile`` cells of
``book/07_scaling_out.ipynb``, written into a temporary folder) on the same global batches
three ways, each in fresh processes: one replica (``single``), ``MirroredStrategy`` over
two logical CPUs of one process (``mirrored``), and ``MultiWorkerMirroredStrategy`` with two
local worker processes (``multi_worker``). Steps/s are taken from the epochs after the
first (graph tracing excluded), median over ``--repeats`` interleaved runs, and printed with
the machine's core count: two workers on a machine with two cores share those cores, so this
measures the cost of the all-reduce, not a speed-up. The chapter quotes the output as a
benchmark figure and never asserts wall-clock time.

    python benchmarks/multi_worker.py [--tweets 400] [--epochs 4] [--units 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
from pathlib import Path

from rnncourse import distributed, process
from rnncourse.chapters import ch07_scaling as ch07

TARGET = "tagger_worker:train_tagger"
BOOK = Path(__file__).resolve().parents[1] / "book" / "07_scaling_out.ipynb"


def write_worker_script(folder: str) -> None:
    """The worker script as chapter 7's page writes it, into ``folder``."""
    cells = json.loads(BOOK.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    parts = [src.split("\n", 1)[1] for src in sources if src.startswith("%%writefile")]
    Path(folder, "tagger_worker.py").write_text("\n".join(parts) + "\n", encoding="utf-8")


def steps_per_second(report: dict) -> float:
    """Steps/s over the epochs after the first (the first one traces the graphs)."""
    later = report["epoch_seconds"][1:] or report["epoch_seconds"]
    return report["steps_per_epoch"] * len(later) / sum(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--corpus", default="wnut16", choices=["wnut16", "synthetic"])
    args = parser.parse_args()

    setup = ch07.settings()
    setup = dataclasses.replace(
        setup, sizes=ch07.Sizes(tweets=args.tweets, epochs=args.epochs, units=args.units),
        recipe=dataclasses.replace(setup.recipe, corpus=args.corpus))
    rates: dict[str, list[float]] = {kind: [] for kind in ch07.KINDS}
    with tempfile.TemporaryDirectory() as out:
        write_worker_script(out)
        root = str(Path(__file__).resolve().parents[1])
        env = {"CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": os.pathsep.join([out, root])}
        for _ in range(args.repeats):
            for kind in ch07.KINDS:
                kwargs = {**ch07.worker_kwargs(out, setup), "kind": kind}
                if kind == "multi_worker":
                    reports = distributed.run_workers(TARGET, kwargs, workers=2, env=env,
                                                      timeout=setup.recipe.worker_timeout)
                else:
                    reports = [process.run_fresh(TARGET, kwargs, env=env,
                                                 timeout=setup.recipe.worker_timeout)]
                rates[kind].append(steps_per_second(reports[0]))
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(f"tagger: {args.tweets} tweets, {args.units} units, global batch "
          f"{setup.recipe.batch_size}; {cores} cores ({usable} usable); "
          f"median of {args.repeats} runs, epochs 2..{args.epochs}")
    base = statistics.median(rates["single"])
    for kind in ch07.KINDS:
        rate = statistics.median(rates[kind])
        print(f"  {kind:<13} {rate:7.2f} steps/s  ({rate / base:4.2f} x one process)")


if __name__ == "__main__":
    main()

"""``make robustness``: every notebook for several values of the seed knob, in one table.

Runs each notebook under nbval (as ``make notebooks`` does) once per ``RNNCOURSE_SEED`` value
and prints a notebook x seed table of pass/fail with run times, then the min / median / max
of every headline number the chapters recorded with :func:`rnncourse.chapters.headline`.
Exit code 1 when any run failed.

    python tests/robustness.py --scale ci --seeds 0 1 2 3 4
    python tests/robustness.py book/05_tbptt.ipynb --scale full --seeds 0 1 2
    python tests/robustness.py --seeds $(seq 0 19) --jobs 2   # two runs at a time
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBVAL = ["-o", "norecursedirs=_build .* .venv", "--nbval-lax", "--nbval-current-env",
         "-p", "no:cacheprovider", "-q"]


def run(notebook: Path, seed: int, scale: str, headlines: Path,
        timeout: float) -> tuple[bool, float, str]:
    env = dict(os.environ, RNNCOURSE_SEED=str(seed), RNNCOURSE_SCALE=scale,
               RNNCOURSE_PROGRESS="0", RNNCOURSE_HEADLINES=str(headlines))
    env.pop("RNNCOURSE_EXECUTED_DIR", None)
    env.pop("RNNCOURSE_NOTEBOOK_TIMES", None)  # the intro's times are those of `make notebooks`
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", *NBVAL, str(notebook)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=timeout)
        ok, tail = done.returncode == 0, (done.stdout + done.stderr)[-1500:]
    except subprocess.TimeoutExpired:
        ok, tail = False, f"timed out after {timeout:.0f} s"
    return ok, time.perf_counter() - start, tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=("ci", "full"), default="ci")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--jobs", type=int, default=1, help="notebook runs at a time")
    parser.add_argument("--headlines", type=Path,
                        help="also write every run's headline numbers here (JSON lines)")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "book").glob("*.ipynb")))
    args = parser.parse_args(argv)
    results: dict[tuple[str, int], tuple[bool, float]] = {}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        headlines = Path(tmp) / "headlines.jsonl"
        headlines.touch()
        runs = [(notebook, seed) for notebook in args.notebooks for seed in args.seeds]

        def one(item: tuple[Path, int]) -> None:
            notebook, seed = item
            ok, seconds, tail = run(notebook.resolve(), seed, args.scale, headlines,
                                    args.timeout)
            results[(notebook.name, seed)] = (ok, seconds)
            print(f"{notebook.name} seed {seed}: {'pass' if ok else 'FAIL'} "
                  f"({seconds:.0f} s)", flush=True)
            if not ok:
                failures.append((notebook.name, seed, tail))

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            list(pool.map(one, runs))
        recorded = headlines.read_text()
        records = [json.loads(line) for line in recorded.splitlines() if line]
        if args.headlines:
            args.headlines.write_text(recorded)
    names = list(dict.fromkeys(n.name for n in args.notebooks))
    print(f"\nscale {args.scale}: notebook x RNNCOURSE_SEED (pass/FAIL, seconds)")
    print(f"{'notebook':<36}" + "".join(f"{s:>12}" for s in args.seeds))
    for name in names:
        cells = [results[(name, s)] for s in args.seeds]
        print(f"{name:<36}" + "".join(f"{('pass' if ok else 'FAIL') + f' {t:.0f}s':>12}"
                                      for ok, t in cells))
    passed = sum(ok for ok, _ in results.values())
    print(f"{passed}/{len(results)} runs passed")
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for record in records:
        for key, value in record.items():
            if key not in ("chapter", "scale", "seed"):
                values[(record["chapter"], key)].append(value)
    if values:
        print(f"\nheadline numbers over seeds {args.seeds} (n, min, median, max)")
        for (chapter, key), vals in sorted(values.items()):
            print(f"  {chapter:<6} {key:<40} n={len(vals)}  {min(vals):.4g}  "
                  f"{statistics.median(vals):.4g}  {max(vals):.4g}")
    for name, seed, tail in failures:
        print(f"\n--- {name}, seed {seed} failed:\n{tail}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

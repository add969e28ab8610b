"""Command line: ``python -m rnncourse doctor`` and ``python -m rnncourse fetch [all|NAME ...]``.

* ``doctor`` checks, one line each, the settings (``RNNCOURSE_SCALE``, ``RNNCOURSE_SEED``),
  the cache directory, TensorFlow (imported in a fresh process, so even a crash while it
  loads is reported), the GPU, and every corpus (each extracted file against its manifest).
  Each check prints ``ok`` or ``PROBLEM`` with the fix. Exit code 0 when every check is ok,
  1 otherwise; never a traceback.
* ``fetch`` downloads and verifies corpora (all of them by default) into the cache, with
  progress bars, so the book runs offline afterwards. Exit code 1 with a one-line reason
  when something cannot be fetched.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

from rnncourse import config, data
from rnncourse.process import FreshProcessError, run_fresh

Check = tuple[str, bool, str]  # (what, ok, detail or fix)


def environment_rows() -> list[list[str]]:
    """``devices.describe()`` as rows; run in a fresh process by :func:`doctor`."""
    from rnncourse import devices

    return [list(row) for row in devices.describe().rows()]


def _exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "did not finish"
    code = -returncode if returncode < 0 else returncode - 128
    try:
        name = signal.Signals(code).name if 0 < code < 64 else None
    except ValueError:
        name = None
    return f"exit {returncode}" + (f" ({name}: the process crashed)" if name else "")


def _check(name: str, probe: Callable[[], str]) -> Check:
    try:
        return name, True, probe()
    except Exception as error:  # noqa: BLE001 - doctor reports every failure as a line
        return name, False, str(error).strip().splitlines()[0] if str(error).strip() \
            else type(error).__name__


def _checks() -> tuple[list[Check], list[list[str]] | None]:
    checks: list[Check] = [
        _check("scale", lambda: f"{config.scale()} (RNNCOURSE_SCALE)"),
        _check("seed", lambda: f"{config.base_seed()} (RNNCOURSE_SEED)"),
    ]
    cache = _check("cache", lambda: str(config.cache_dir()))
    checks.append(cache)
    rows = None
    try:
        rows = run_fresh("rnncourse.__main__:environment_rows", timeout=300)
        values = dict(rows)
        checks.append(("tensorflow", True,
                       f"TensorFlow {values['TensorFlow']}, Keras {values['Keras']}"))
        gpus = values["GPUs visible"]
        checks.append(("gpu", True, gpus if not gpus.startswith("none") else
                       "none: the book runs on the CPU (for a GPU: pip install -e \".[gpu]\" "
                       "on Linux with an NVIDIA driver)"))
    except FreshProcessError as error:
        returncode = getattr(error, "returncode", None)
        lines = [line for line in str(error).splitlines()[1:] if line.strip()]
        detail = lines[-1] if lines else "no error message"
        checks.append(("tensorflow", False,
                       f"importing TensorFlow failed ({_exit_reason(returncode)}): {detail}. "
                       "Fix: reinstall it in this environment (pip install -e .), with a "
                       "build for this CPU and Python"))
    if cache[1]:
        for name in data.REGISTRY:
            problems = data.verify(name)
            checks.append((f"corpus {name}", not problems,
                           "cached, every file complete" if not problems else
                           f"{problems[0]}. Fix: python -m rnncourse fetch {name}"))
        glove = config.cache_dir() / "glove" / "glove.6B.50d.txt"
        complete = data._glove_text_complete(glove)
        checks.append(("glove 50d text", complete, "written" if complete else
                       "missing or cut. Fix: python -m rnncourse fetch glove-6b-50d"))
    return checks, rows


def doctor() -> int:
    """Print every check; return 0 when all are ok, 1 otherwise."""
    checks, rows = _checks()
    print("rnncourse doctor")
    if rows:
        width = max(len(item) for item, _ in rows)
        for item, value in rows:
            print(f"  {item:<{width}}  {value}")
        print()
    width = max(len(name) for name, _, _ in checks)
    for name, ok, detail in checks:
        print(f"  {'ok     ' if ok else 'PROBLEM'}  {name:<{width}}  {detail}")
    failed = [name for name, ok, _ in checks if not ok]
    if failed:
        print(f"\n{len(failed)} problem(s): {', '.join(failed)}. Fix them as shown above.")
        return 1
    print("\nEverything is in place: the book runs offline.")
    return 0


def fetch(names: list[str]) -> int:
    """Fetch ``names`` (every corpus for ``[]`` or ``["all"]``); print where each went."""
    every = not names or names == ["all"]
    wanted = list(data.REGISTRY) if every else names
    unknown = [name for name in wanted if name not in data.REGISTRY]
    if unknown:
        print(f"error: unknown corpus {', '.join(unknown)}; choose from: all, "
              f"{', '.join(data.REGISTRY)}", file=sys.stderr)
        return 2
    try:
        paths = data.fetch_all() if every else {name: data.fetch(name) for name in wanted}
        if not every and "glove-6b-50d" in wanted:
            paths["glove.6B.50d.txt"] = data.glove_path(50)
    except (data.DataUnavailableError, data.ChecksumError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnncourse", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check settings, cache, TensorFlow, GPU and corpora")
    fetch_parser = commands.add_parser("fetch", help="download corpora into the cache")
    fetch_parser.add_argument("names", nargs="*", metavar="NAME",
                              help=f"all (default) or some of: {', '.join(data.REGISTRY)}")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return doctor()
    return fetch(args.names)


if __name__ == "__main__":
    sys.exit(main())

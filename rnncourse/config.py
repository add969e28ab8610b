"""Settings shared by every chapter: scale, seeds, cache directory, quiet TensorFlow.

The book runs at two scales from one set of notebooks:

* ``full`` (the default): the sizes the website shows.
* ``ci``: data and epochs shrunk so each notebook runs in about a minute on two
  CPU cores. ``make test`` sets ``RNNCOURSE_SCALE=ci``.

Sizes are chosen with :func:`by_scale`, never with ``if`` chains in notebook cells.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

SCALES = ("ci", "full")
DEFAULT_SEED = 1234

T = TypeVar("T")


def scale() -> str:
    """Return the current scale, ``"ci"`` or ``"full"``, read from ``RNNCOURSE_SCALE``.

    An unset or empty variable means ``"full"``. Any other value raises ``ValueError``.
    """
    value = os.environ.get("RNNCOURSE_SCALE", "").strip().lower() or "full"
    if value not in SCALES:
        raise ValueError(
            f"RNNCOURSE_SCALE={os.environ['RNNCOURSE_SCALE']!r} is not a scale; "
            f"use one of {', '.join(SCALES)} (e.g. `export RNNCOURSE_SCALE=ci`), "
            "or unset it for the full scale."
        )
    return value


def by_scale(*, ci: T, full: T) -> T:
    """Pick a size for the current scale: ``by_scale(ci=2, full=20)`` epochs."""
    return ci if scale() == "ci" else full


def set_seed(seed: int = DEFAULT_SEED) -> int:
    """Seed Python's ``random``, NumPy and TensorFlow/Keras; return the seed.

    Keras' ``keras.utils.set_random_seed`` seeds all three backends' generators
    (Python, NumPy, TensorFlow) at once. Call it at the top of every experiment so
    weights, shuffling and dropout masks repeat from run to run.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    return seed


def cache_dir() -> Path:
    """Directory for downloaded archives and extracted corpora (created on demand).

    ``RNNCOURSE_CACHE`` wins; otherwise ``$XDG_CACHE_HOME/rnncourse`` or
    ``~/.cache/rnncourse``.
    """
    env = os.environ.get("RNNCOURSE_CACHE", "").strip()
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
        path = Path(base).expanduser() / "rnncourse"
    path.mkdir(parents=True, exist_ok=True)
    return path


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up log lines, and lower its log levels.

    TensorFlow prints oneDNN and CUDA-probe notices through C++ logging before any
    setting can silence them, so the import runs with file descriptor 2 pointed at
    ``/dev/null`` (exceptions still propagate). Idempotent and cheap after the first call.
    Every ``rnncourse`` module that needs TensorFlow calls it before importing it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with _stderr_to_devnull():
            import tensorflow  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 (and ``sys.stderr``'s own descriptor, which differs inside
    a Jupyter kernel) at ``/dev/null`` for the duration of the block."""
    descriptors = {2}
    try:
        descriptors.add(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # a stream without a real descriptor
        pass
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in descriptors}
    try:
        with open(os.devnull, "w") as devnull:
            for fd in descriptors:
                os.dup2(devnull.fileno(), fd)
            yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)

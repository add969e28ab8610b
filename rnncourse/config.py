"""Settings shared by every chapter: scale, seeds, cache directory, TensorFlow import.

The book runs at two scales from one set of notebooks:

* ``full`` (the default): the sizes the website shows.
* ``ci``: data and epochs shrunk so each notebook runs in about a minute on two
  CPU cores. ``make test`` sets ``RNNCOURSE_SCALE=ci``.

The scale changes sizes only (examples, epochs, units, repeats, seeds), never the recipe.

Every experiment derives its seeds from one knob, ``RNNCOURSE_SEED`` (default 0), through
:func:`seed` and :func:`seeds`; ``make robustness`` runs the notebooks for several values.

Importing this module (or any of ``rnncourse``) changes no user setting: no environment
variable, no logger level, no global random state. :func:`quiet_tensorflow` imports
TensorFlow with its known start-up notices filtered out; anything else it prints (a
CUDA or cuDNN load error, say) still reaches standard error.
"""

from __future__ import annotations

import os
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import TypeVar

from rnncourse import _checks

__all__ = ["SCALES", "scale", "by_scale", "base_seed", "seed", "seeds", "set_seed",
           "cache_dir", "quiet_tensorflow", "is_startup_noise"]

SCALES = ("ci", "full")
SEED_STRIDE = 1000
"""Seeds of two values of ``RNNCOURSE_SEED`` never overlap: ``seed(k) = 1000 * base + k``."""

T = TypeVar("T")


def scale() -> str:
    """Return the current scale, ``"ci"`` or ``"full"``, read from ``RNNCOURSE_SCALE``.

    An unset or empty variable means ``"full"``. Any other value raises ``ValueError``.
    """
    value = os.environ.get("RNNCOURSE_SCALE", "").strip().lower() or "full"
    if value not in SCALES:
        _checks.fail("RNNCOURSE_SCALE", f"RNNCOURSE_SCALE={os.environ['RNNCOURSE_SCALE']!r} "
                     f"is not a scale; use one of {', '.join(SCALES)}, or unset it for full")
    return value


def by_scale(*, ci: T, full: T) -> T:
    """Pick a size for the current scale: ``by_scale(ci=2, full=20)`` epochs."""
    return ci if scale() == "ci" else full


def base_seed() -> int:
    """The seed knob ``RNNCOURSE_SEED`` (default 0): an int from 0 to 4294966, so that every
    :func:`seed` stays below 2**32, the bound of NumPy's seeds."""
    raw = os.environ.get("RNNCOURSE_SEED", "").strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 2**32 // SEED_STRIDE - 1:
        _checks.fail("RNNCOURSE_SEED", f"{raw!r} is not a non-negative integer <= 4294966")
    return int(raw)


def seed(offset: int = 0) -> int:
    """The experiment seed number ``offset`` under the current knob.

    ``seed(k) == 1000 * RNNCOURSE_SEED + k``: a chapter uses ``seed(0)``, ``seed(1)``, ...
    for its separate random choices (data split, weights, ...), and every one of them
    changes when the knob does.
    """
    offset = _checks.count(offset, "offset", 0, maximum=SEED_STRIDE - 1)
    return SEED_STRIDE * base_seed() + offset


def seeds(count: int, offset: int = 0) -> tuple[int, ...]:
    """``count`` consecutive experiment seeds starting at ``seed(offset)``."""
    offset = _checks.count(offset, "offset", 0, maximum=SEED_STRIDE - 1)
    count = _checks.count(count, "count", maximum=SEED_STRIDE - offset)
    return tuple(seed(offset + i) for i in range(count))


def set_seed(value: int | None = None) -> int:
    """Seed Python's ``random``, NumPy and TensorFlow/Keras; return the seed.

    ``None`` uses :func:`seed` ``()`` (the knob). ``keras.utils.set_random_seed`` seeds
    Python, NumPy and the backend at once. Call it at the top of an experiment, never at
    import time, so weights, shuffling and dropout masks repeat from run to run.
    """
    # NumPy's global generator takes seeds below 2**32 only.
    value = seed() if value is None else _checks.count(value, "seed", 0, maximum=2**32 - 1)
    random.seed(value)
    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(value)
    return value


def cache_dir() -> Path:
    """Directory for downloaded archives and extracted corpora (created on demand).

    ``RNNCOURSE_CACHE`` wins; otherwise ``$XDG_CACHE_HOME/rnncourse`` or
    ``~/.cache/rnncourse``. A path that cannot be created (or is a file) raises
    ``OSError`` naming it and the variable that fixes it.
    """
    env = os.environ.get("RNNCOURSE_CACHE", "").strip()
    if env:
        path = _checks.path(env, "RNNCOURSE_CACHE")
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
        path = Path(base).expanduser() / "rnncourse"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the cache directory {path} ({err.strerror}); set "
                      "RNNCOURSE_CACHE to a writable directory") from None
    return path


# TensorFlow's start-up notices (TF 2.16-2.21, CPU and GPU builds): printed by C++ logging
# while `import tensorflow` runs, before any Python setting can lower them. Everything else
# printed during the import (e.g. "Could not load dynamic library 'libcudnn.so.9'") passes.
_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|Could not find cuda drivers on your machine, GPU will not be used"
    r"|Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def is_startup_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known start-up notices (hidden at import)."""
    return bool(_STARTUP_NOISE.search(line))


def quiet_tensorflow() -> None:
    """Import TensorFlow with its known start-up notices removed; check Keras' backend.

    While ``import tensorflow`` runs, file descriptor 2 goes to a temporary file; the lines
    that :func:`is_startup_noise` recognises are dropped and every other line is written
    back to standard error. No environment variable or logger level is changed.
    Idempotent and free after the first call.

    Raises:
        ImportError: Keras is set to another backend (``KERAS_BACKEND`` or
            ``~/.keras/keras.json``); ``rnncourse`` needs TensorFlow's.
    """
    if "keras" not in sys.modules:
        _check_backend(_configured_backend())
    if "tensorflow" not in sys.modules:
        _import_filtered("tensorflow")
    import keras

    _check_backend(keras.backend.backend())


def _configured_backend() -> str:
    """The backend Keras will pick: ``KERAS_BACKEND``, else ``keras.json``, else tensorflow."""
    env = os.environ.get("KERAS_BACKEND", "").strip()
    if env:
        return env
    home = os.environ.get("KERAS_HOME", "").strip() or os.path.join(
        os.path.expanduser("~"), ".keras")
    try:
        import json

        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _check_backend(backend: str) -> None:
    if backend != "tensorflow":
        raise ImportError(f"rnncourse needs Keras' TensorFlow backend, not {backend!r}: set "
                          "KERAS_BACKEND=tensorflow (or edit ~/.keras/keras.json)")


def _import_filtered(module: str) -> None:
    """Import ``module`` with fd 2 captured, then replay the lines that are not noise."""
    streams = [sys.stderr, sys.__stderr__]
    for stream in streams:
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            __import__(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if line and not is_startup_noise(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()

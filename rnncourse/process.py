"""Run one function in a fresh Python process: the one place the package does so.

Some measurements need a process of their own: TensorFlow fixes its devices and its
allocator when it starts (logical CPUs for ``MirroredStrategy``; the counting BFC allocator
for memory), and a peak measured in a process that already ran other work depends on that
work. :func:`run_fresh` starts ``python -m rnncourse.process``, which imports the target by
its dotted name, calls it with JSON keyword arguments and prints the JSON result.

    >>> run_fresh("rnncourse.text:split_indices", {"n": 4}, timeout=60)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnncourse import _checks

__all__ = ["run_fresh", "FreshProcessError", "child_command", "child_environment",
           "read_result"]

_MARKER = "@@rnncourse-result@@"


class FreshProcessError(RuntimeError):
    """The child process failed or timed out; the message holds the end of its stderr.

    Attributes:
        returncode: the child's exit status (negative: killed by that signal), or ``None``
            when it timed out.
    """

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


@_checks.arguments(target=str, timeout=_checks.number)
def run_fresh(target: str, kwargs: Mapping[str, Any] | None = None, *,
              env: Mapping[str, str] | None = None, timeout: float = 600.0) -> Any:
    """Call ``target`` (``"package.module:function"``) in a new Python process.

    Args:
        target: dotted module path and function name, separated by a colon.
        kwargs: JSON-serialisable keyword arguments.
        env: extra environment variables for the child (e.g.
            ``{"TF_CPU_ALLOCATOR_USE_BFC": "true"}``), set before it imports TensorFlow.
        timeout: seconds before the child is killed and :class:`FreshProcessError` raised.

    Returns:
        The function's return value, through JSON (tuples come back as lists).

    Raises:
        ValueError: a ``target`` that is not ``"module:function"``, or ``timeout <= 0``.
        TypeError: a ``target`` that is not a string, a ``timeout`` that is not a number,
            ``kwargs`` that JSON cannot encode.
        FreshProcessError: the child failed or timed out.
    """
    # Checked here: in the child, a mistake would surface as a traceback in its stderr.
    _checks.fail_if(str(target).count(":") != 1, "target", "must be 'module:function'")
    try:
        payload = json.dumps(dict(kwargs or {}))
    except TypeError as err:
        _checks.fail("kwargs", f"for {target} must be JSON-serialisable: {err}", TypeError)
    try:
        done = subprocess.run(child_command(target, payload), env=child_environment(env),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise FreshProcessError(f"{target} did not finish within {timeout:.0f} s") from err
    found, result = read_result(done.stdout)
    if done.returncode or not found:
        raise FreshProcessError(f"{target} failed (exit {done.returncode}):\n"
                                + done.stderr[-3000:], done.returncode)
    return result


def child_command(target: str, payload: str) -> list[str]:
    """The command line of a child that calls ``target`` with the JSON ``payload``."""
    return [sys.executable, "-m", "rnncourse.process", target, payload]


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child, plus ``env``.

    The child must import this very copy of rnncourse (a source checkout need not be
    installed), so its parent directory goes first on the child's ``PYTHONPATH``.
    """
    root = str(Path(__file__).resolve().parents[1])
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    child_env.update(env or {})
    return child_env


def read_result(stdout: str) -> tuple[bool, Any]:
    """``(True, value)`` for the last result a child printed on ``stdout``, else
    ``(False, None)`` (it failed or was stopped before returning)."""
    results = [line for line in stdout.splitlines() if line.startswith(_MARKER)]
    if not results:
        return False, None
    return True, json.loads(results[-1][len(_MARKER):])


def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m rnncourse.process module:function '<json kwargs>'",
              file=sys.stderr)
        return 2
    module_name, function_name = argv[0].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**json.loads(argv[1]))
    print(_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

"""rnncourse.process: one function in a fresh Python process (also the workers' entry)."""

import json
import os
from pathlib import Path

import pytest

from rnncourse import process


def test_run_fresh_returns_the_value_through_json():
    assert process.run_fresh("json:dumps", {"obj": [1, (2, 3)]}, timeout=60) == "[1, [2, 3]]"


def test_the_child_sees_extra_environment():
    value = process.run_fresh("os:getenv", {"key": "RNNCOURSE_PROBE"},
                              env={"RNNCOURSE_PROBE": "yes"}, timeout=60)
    assert value == "yes"


def test_a_failing_child_raises_with_its_stderr_and_exit_status():
    with pytest.raises(process.FreshProcessError, match="JSONDecodeError") as err:
        process.run_fresh("json:loads", {"s": "{"}, timeout=60)
    assert err.value.returncode == 1


def test_a_child_past_its_timeout_is_stopped():
    with pytest.raises(process.FreshProcessError, match="did not finish within 1 s") as err:
        process.run_fresh("subprocess:run", {"args": ["sleep", "30"]}, timeout=1)
    assert err.value.returncode is None


@pytest.mark.parametrize("target, kwargs, timeout, error, argument", [
    ("json.dumps", {}, 60, ValueError, "target"),
    ("json:dumps:x", {}, 60, ValueError, "target"),
    (None, {}, 60, TypeError, "target"),
    ("json:dumps", {"obj": {1, 2}}, 60, TypeError, "kwargs"),
    ("json:dumps", {}, 0, ValueError, "timeout"),
    ("json:dumps", {}, "60", TypeError, "timeout"),
])
def test_bad_arguments_are_refused_before_a_child_starts(target, kwargs, timeout, error,
                                                         argument):
    with pytest.raises(error) as info:
        process.run_fresh(target, kwargs, timeout=timeout)
    assert info.value.argument == argument


@pytest.mark.parametrize("stdout, expected", [
    ("", (False, None)),
    ("noise\n", (False, None)),
    (f"{process._MARKER}{json.dumps({'a': 1})}\n", (True, {"a": 1})),
    (f"{process._MARKER}1\nnoise\n{process._MARKER}null\n", (True, None)),
])
def test_read_result_takes_the_last_result_line(stdout, expected):
    assert process.read_result(stdout) == expected


def test_child_environment_puts_this_copy_first_and_adds_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = process.child_environment({"X_PROBE": "1"})
    first, rest = env["PYTHONPATH"].split(os.pathsep, 1)
    assert rest == "/elsewhere"
    assert Path(first, "rnncourse", "process.py").resolve() == Path(process.__file__).resolve()
    assert env["X_PROBE"] == "1"

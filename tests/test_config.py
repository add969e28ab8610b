import random

import numpy as np
import pytest

from rnncourse import config


def test_scale_defaults_to_full(monkeypatch):
    monkeypatch.delenv("RNNCOURSE_SCALE", raising=False)
    assert config.scale() == "full"
    monkeypatch.setenv("RNNCOURSE_SCALE", "")
    assert config.scale() == "full"


@pytest.mark.parametrize("value, expected", [("ci", "ci"), ("CI", "ci"), (" full ", "full")])
def test_scale_reads_environment(monkeypatch, value, expected):
    monkeypatch.setenv("RNNCOURSE_SCALE", value)
    assert config.scale() == expected


def test_bad_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "huge")
    with pytest.raises(ValueError, match=r"'huge' is not a scale; use one of ci, full"):
        config.scale()


def test_by_scale_picks_the_current_size(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    assert config.by_scale(ci=2, full=20) == 2
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    assert config.by_scale(ci=2, full=20) == 20


def test_set_seed_repeats_python_numpy_and_keras():
    import keras

    def draws():
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
        return (random.random(), np.random.rand(), layer.kernel.numpy().copy())

    config.set_seed(7)
    first = draws()
    config.set_seed(7)
    second = draws()
    config.set_seed(8)
    third = draws()
    assert first[0] == second[0] and first[1] == second[1]
    np.testing.assert_array_equal(first[2], second[2])
    assert first[0] != third[0] and not np.array_equal(first[2], third[2])


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        config.set_seed(bad)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("RNNCOURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "rnncourse"


def test_quiet_tensorflow_prints_nothing():
    import subprocess
    import sys

    code = "from rnncourse.config import quiet_tensorflow; quiet_tensorflow(); import keras"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == "", result.stderr[:500]

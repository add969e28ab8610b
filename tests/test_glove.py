"""Tests of rnncourse.glove: the reader against a plain float32 parse, its cache, OOV rows,
coverage and similarity."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnncourse import glove as E
from rnncourse.text import Vocabulary

ROWS = {
    "the": [0.1, 0.2, 0.3],
    "cat": [1.0, 0.0, -1.0],
    "dog": [0.9, 0.1, -0.9],
    "king": [0.5, 0.9, 0.1],
    "queen": [0.5, 0.1, 0.9],
    "man": [0.2, 0.9, 0.0],
    "woman": [0.2, 0.0, 0.9],
}


def write(path, text: str | bytes):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def glove_text(rows=ROWS) -> str:
    return "".join(f"{w} {' '.join(repr(v) for v in vec)}\n" for w, vec in rows.items())


def plain_parse(path, encoding="utf-8", lines=None) -> dict[str, np.ndarray]:
    """The straightforward reader every result is compared with (first occurrence wins)."""
    table = {}
    with open(path, encoding=encoding) as f:
        for n, line in enumerate(f):
            if n == lines:
                break
            if line.strip():
                word, *values = line.split()
                table.setdefault(word, np.asarray(values, dtype=np.float32))
    return table


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """A private cache directory: read_glove's copies go there, not to the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RNNCOURSE_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def real_path():
    """The book's glove.6B.50d.txt in the user's cache (module scope: before cache_dir)."""
    from rnncourse import data

    return data.glove_path(50)


@pytest.fixture
def small(tmp_path):
    return write(tmp_path / "small.txt", glove_text())


def random_file(path, n=300, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = {f"w{i}": rng.normal(size=dim).round(5).tolist() for i in range(n)}
    return write(path, glove_text(rows)), list(rows)


@pytest.mark.parametrize("cache", [False, True])
def test_reader_equals_a_plain_float32_parse(tmp_path, monkeypatch, cache):
    path, words = random_file(tmp_path / "r.txt")
    monkeypatch.setattr(E, "_CHUNK", 500)  # many blocks: lines cut at block borders
    reference = plain_parse(path)
    for _ in range(2):  # with a cache: parsed and written, then read from the copy
        glove = E.read_glove(path, cache=cache)
        assert glove.words == words and glove.vectors.dtype == np.float32
        np.testing.assert_array_equal(glove.vectors, np.stack(list(reference.values())))
    assert glove.from_cache == cache
    wanted = ["w7", "w299", "absent", "w7", "W12"]
    kept = E.read_glove(path, vocabulary=wanted, cache=cache)
    assert kept.words == ["w7", "w12", "w299"]  # file order, looked up lower-cased
    np.testing.assert_array_equal(kept.vectors, np.stack([reference[w] for w in kept.words]))
    assert E.read_glove(path, vocabulary=wanted, lowercase=False, cache=cache).words == [
        "w7", "w299"]
    assert E.read_glove(path, max_words=5, cache=cache).words == words[:5]
    assert E.read_glove(path, ["w3", "w9"], max_words=5, cache=cache).words == ["w3"]


def test_real_file_rows_equal_a_plain_parse(real_path):
    path = real_path
    reference = plain_parse(path, lines=30_000)
    glove = E.read_glove(path, max_words=30_000, cache=False)
    assert glove.words == list(reference)
    np.testing.assert_array_equal(glove.vectors, np.stack(list(reference.values())))
    wanted = list(reference)[::97]
    kept = E.read_glove(path, vocabulary=wanted, max_words=30_000, cache=False)
    np.testing.assert_array_equal(kept.vectors, np.stack([reference[w] for w in wanted]))


def test_header_bom_blank_lines_crlf_trailing_spaces_duplicates(tmp_path):
    text = "\ufeff7 3\r\n\r\n" + glove_text().replace("\n", " \r\n") + "\r\ncat 9 9 9\r\n"
    path = write(tmp_path / "w2v.txt", text)
    for vocabulary in (None, ["the", "cat", "woman"]):
        glove = E.read_glove(path, vocabulary, cache=False)
        assert glove.words == [w for w in ROWS if vocabulary is None or w in vocabulary]
        np.testing.assert_array_equal(glove["cat"], np.float32(ROWS["cat"]))  # first wins
    assert E.read_glove(path, max_words=2, cache=False).words == ["the", "cat"]


def test_words_with_spaces_are_read_line_by_line(tmp_path):
    path = write(tmp_path / "sp.txt", glove_text() + ". . . 1 2 3\nat home 4 5 6\n")
    glove = E.read_glove(path, cache=False)
    np.testing.assert_array_equal(glove[". . ."], [1, 2, 3])
    np.testing.assert_array_equal(glove["at home"], [4, 5, 6])
    assert E.read_glove(path, ["at home", "cat"], cache=False).words == ["cat", "at home"]


@pytest.mark.parametrize("bad_line, line, fragment", [
    ("bird 1 2", 8, "expected a word and 3 numbers"),
    ("bird 1 2 3 4", 8, "expected a word and 3 numbers"),
    ("bird 1 x 3", 8, "could not convert"),
    ("bird 1  3", 8, "could not convert"),
])
@pytest.mark.parametrize("vocabulary", [None, ["bird", "cat"]])
def test_a_malformed_line_names_file_and_line(tmp_path, bad_line, line, fragment, vocabulary):
    path = write(tmp_path / "bad.txt", glove_text() + bad_line + "\nfish 1 2 3\n")
    with pytest.raises(ValueError, match=rf"bad\.txt:{line}: {fragment}"):
        E.read_glove(path, vocabulary, cache=False)


@pytest.mark.parametrize("vocabulary", [None, ["café", "cat"]])
def test_another_encoding_is_named_or_read(tmp_path, vocabulary):
    path = write(tmp_path / "cp.txt", (glove_text() + "café 1 2 3\n").encode("cp1252"))
    with pytest.raises(ValueError, match=r"cp\.txt, line 8: .* not utf-8.*encoding='cp1252'"
                       ) as info:
        E.read_glove(path, vocabulary, cache=False)
    assert info.value.argument == "encoding"
    for cache in (False, True, True):
        glove = E.read_glove(path, vocabulary, encoding="cp1252", cache=cache)
        assert "café" in glove and "cat" in glove
        np.testing.assert_array_equal(glove["café"], [1, 2, 3])
    assert glove.from_cache


def test_cache_is_one_checksummed_file_rebuilt_when_corrupted(small, cache_dir):
    first = E.read_glove(small)
    file = E.cache_file(small)
    assert not first.from_cache and file.is_file()
    assert file.parent == cache_dir / "glove-cache" and sorted(os.listdir(file.parent)) == [
        file.name]
    assert E.read_glove(small).from_cache
    data = bytearray(file.read_bytes())
    data[-5] ^= 0xFF  # flip bits of a stored float
    file.write_bytes(bytes(data))
    again = E.read_glove(small)
    assert not again.from_cache, "a corrupted copy was served"
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert E.read_glove(small).from_cache  # rebuilt
    file.write_bytes(file.read_bytes()[:-7])  # cut short
    assert not E.read_glove(small).from_cache


def test_cache_follows_the_source(small):
    E.read_glove(small)
    stat = small.stat()
    write(small, glove_text().replace("0.1 0.2 0.3", "0.5 0.2 0.3"))  # same size
    os.utime(small, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same modification time
    again = E.read_glove(small)
    assert not again.from_cache
    np.testing.assert_allclose(again["the"], [0.5, 0.2, 0.3])
    write(small, glove_text() + "owl 7 7 7\n")
    assert "owl" in E.read_glove(small) and E.read_glove(small).from_cache


def test_an_unusable_cache_folder_only_costs_a_parse(small, cache_dir, monkeypatch):
    monkeypatch.setattr(E.os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError()))
    assert E.read_glove(small, ["dog"]).words == ["dog"]
    assert not list((cache_dir / "glove-cache").iterdir())  # no half-written file
    monkeypatch.setenv("RNNCOURSE_CACHE", str(small))  # a file: cache_dir() raises
    assert E.read_glove(small, ["cat"]).words == ["cat"]


def test_long_reads_show_a_progress_bar(tmp_path, monkeypatch, capsys):
    path, _ = random_file(tmp_path / "long.txt")
    monkeypatch.setattr(E, "_CHUNK", 1000)
    monkeypatch.setenv("RNNCOURSE_PROGRESS", "1")
    E.read_glove(path, cache=False)
    assert "read long.txt" in capsys.readouterr().err


# ----------------------------------------------------------------------------- matrix
def test_embedding_matrix_rows_and_coverage(small):
    glove = E.read_glove(small, cache=False)
    vocab = Vocabulary.from_tokens([["The", "cat", "cat", "zorp", "dog", "zorp", "zorp"]])
    matrix, report = E.embedding_matrix(vocab, glove)
    assert matrix.shape == (len(vocab), 3) and matrix.dtype == np.float32
    assert not matrix[0].any()
    np.testing.assert_array_equal(matrix[vocab.index("The")], glove["the"])
    np.testing.assert_array_equal(matrix[vocab.index("cat")], glove["cat"])
    assert matrix[vocab.index("zorp")].any()
    assert (report.found_types, report.total_types) == (3, 4)
    assert (report.found_tokens, report.total_tokens) == (4, 7)
    assert report.type_coverage == 0.75 and report.token_coverage == pytest.approx(4 / 7)
    assert report.missing == [("zorp", 3)]
    assert "zorp (3)" in str(report) and "75.0%" in str(report)
    zeros, _ = E.embedding_matrix(vocab, glove, oov="zeros")
    assert not zeros[vocab.index("zorp")].any() and not zeros[1].any()
    assert E.embedding_matrix(vocab, glove, lowercase=False)[1].found_types == 2
    assert E.coverage(vocab, glove, top=0).missing == []


def test_oov_vectors_are_deterministic_per_word(small):
    glove = E.read_glove(small, cache=False)
    a = Vocabulary.from_tokens([["zorp", "blick", "cat"]])
    b = Vocabulary.from_tokens([["blick", "blick", "zorp"]])
    ma, _ = E.embedding_matrix(a, glove, seed=3)
    mb, _ = E.embedding_matrix(b, glove, seed=3)
    for word in ("zorp", "blick"):
        np.testing.assert_array_equal(ma[a.index(word)], mb[b.index(word)])
    other, _ = E.embedding_matrix(a, glove, seed=4)
    assert not np.allclose(other[a.index("zorp")], ma[a.index("zorp")])
    assert E.word_seed("zorp", 3) == E.word_seed("zorp", 3) != E.word_seed("zorp", 4)


def test_truncated_normal_matches_keras_truncation():
    import keras

    mean, std = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    draws = np.stack([E.truncated_normal(f"w{i}", mean, std) for i in range(4000)])
    z = (draws - mean) / std
    assert np.abs(z).max() <= 2.0 + 1e-6
    reference = keras.initializers.TruncatedNormal(mean=0.0, stddev=1.0, seed=0)((20000,))
    np.testing.assert_allclose(z.std(axis=0), np.std(np.asarray(reference)), atol=0.03)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.05)


# ----------------------------------------------------------------------------- similarity
def test_nearest_and_analogy_exclude_query_words(small):
    glove = E.read_glove(small, cache=False)
    assert E.nearest(glove, "cat", k=1)[0][0] == "dog"
    assert "cat" not in [w for w, _ in E.nearest(glove, "cat", k=10)]
    assert len(E.nearest(glove, "cat", k=10)) == 6
    best = E.analogy(glove, "man", "king", "woman", k=2)
    assert best[0][0] == "queen" and {"man", "king", "woman"}.isdisjoint(w for w, _ in best)
    assert best[0][1] >= best[1][1]
    with pytest.raises(KeyError, match="zorp"):
        E.analogy(glove, "man", "king", "zorp")
    assert E.projection_2d(glove, ["cat", "dog", "king"]).shape == (3, 2)


def test_analogy_on_real_glove(real_path):
    words = ["man", "king", "woman", "queen", "prince", "paris", "france", "rome", "italy",
             "berlin", "germany", "throne", "monarch", "frog", "toad", "the", "of"]
    glove = E.read_glove(real_path, vocabulary=words, cache=False)
    assert E.analogy(glove, "man", "king", "woman")[0][0] == "queen"
    assert E.analogy(glove, "france", "paris", "italy")[0][0] == "rome"
    assert E.nearest(glove, "frog", k=1)[0][0] == "toad"

"""Tests of rnncourse.glove: reader edge cases, binary cache, OOV vectors, similarity."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from rnncourse import glove as E
from rnncourse.chapters.ch03_embeddings import dictionary_loader
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
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(data)
    return path


def glove_text(rows=ROWS) -> str:
    return "".join(f"{w} {' '.join(repr(v) for v in vec)}\n" for w, vec in rows.items())


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private cache directory: read_glove's caches go there, not to the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RNNCOURSE_CACHE", str(folder))
    monkeypatch.setattr(E, "_UNWRITABLE", set())
    return folder


@pytest.fixture
def small(tmp_path, cache_dir):
    return write(tmp_path / "small.txt", glove_text())


def test_reader_matches_dictionary_loader(small):
    glove = E.read_glove(small, cache=False)
    reference = dictionary_loader(small)
    assert glove.words == list(reference) and glove.dim == 3
    assert glove.vectors.dtype == np.float32 and glove.vectors.shape == (7, 3)
    for word, vec in reference.items():
        np.testing.assert_array_equal(glove[word], vec)


def test_word2vec_header_blank_lines_and_crlf(tmp_path):
    text = "7 3\r\n\r\n" + glove_text().replace("\n", "\r\n") + "\r\n"
    glove = E.read_glove(write(tmp_path / "w2v.txt", text), cache=False)
    assert glove.header == (7, 3)
    assert glove.blank_lines == 2
    assert glove.words == list(ROWS)
    np.testing.assert_allclose(glove["woman"], ROWS["woman"])


def test_tokens_with_spaces_keep_the_last_dim_fields(tmp_path):
    text = glove_text() + ". . . 1 2 3\nat home 4 5 6\n"
    glove = E.read_glove(write(tmp_path / "sp.txt", text), cache=False)
    np.testing.assert_array_equal(glove[". . ."], [1, 2, 3])
    np.testing.assert_array_equal(glove["at home"], [4, 5, 6])
    kept = E.read_glove(tmp_path / "sp.txt", vocabulary=["at home", "cat"], cache=False)
    assert kept.words == ["cat", "at home"]


def test_duplicates_first_wins_and_are_counted(tmp_path):
    text = glove_text() + "cat 9 9 9\n"
    glove = E.read_glove(write(tmp_path / "dup.txt", text), cache=False)
    assert glove.duplicates == 1 and len(glove) == 7
    np.testing.assert_array_equal(glove["cat"], ROWS["cat"])


def test_non_utf8_bytes_keep_distinct_words_and_are_reported(tmp_path, cache_dir):
    data = glove_text().encode() + b"caf\xe9 1 2 3\ncaf\xe8 4 5 6\n"
    path = write(tmp_path / "latin.txt", data)
    for cache in (False, True, True):  # parsed, cache written, cache read
        glove = E.read_glove(path, cache=cache)
        assert glove.decode_errors == 2 and glove.duplicates == 0 and len(glove) == 9
        assert glove.undecodable == ["caf\udce9", "caf\udce8"]
        np.testing.assert_array_equal(glove["caf\udce8"], [4, 5, 6])
        assert glove.words[-1].encode("utf-8", "surrogateescape") == b"caf\xe8"
    assert glove.from_cache
    kept = E.read_glove(path, vocabulary=["caf\udce9"])
    assert kept.words == ["caf\udce9"]


def test_byte_order_mark_is_dropped(tmp_path, cache_dir):
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + glove_text().encode())
    for cache in (False, True):
        glove = E.read_glove(path, cache=cache)
        assert glove.words[0] == "the" and "\ufeffthe" not in glove
        assert E.read_glove(path, vocabulary=["the"], cache=cache).words == ["the"]


def test_vocabulary_case_matches_embedding_matrix(small):
    for cache in (False, True):
        kept = E.read_glove(small, vocabulary=["The", "CAT"], cache=cache)
        assert kept.words == ["the", "cat"]
        assert E.read_glove(small, vocabulary=["The", "CAT"], cache=cache,
                            lowercase=False).words == []
    vocab = Vocabulary.from_tokens([["The", "CAT"]])
    matrix, report = E.embedding_matrix(vocab, E.read_glove(small, vocabulary=vocab))
    assert report.found_types == 2
    np.testing.assert_array_equal(matrix[vocab.index("CAT")], ROWS["cat"])


def test_wrong_float_count_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", glove_text() + "bird 1 2\nfish 1 2 3\n")
    with pytest.raises(ValueError, match=r"bad\.txt:8: expected a word and 3 floats"):
        E.read_glove(path, cache=False)
    glove = E.read_glove(path, on_error="skip", cache=False)
    assert glove.skipped == [8] and "fish" in glove and "bird" not in glove
    too_many = write(tmp_path / "many.txt", glove_text() + "bird 1 2 3 4\n")
    with pytest.raises(ValueError, match=r"many\.txt:8: .*found 4 numbers"):
        E.read_glove(too_many, cache=False)
    not_number = write(tmp_path / "nan.txt", "cat 1 2 3\ndog 1 x 3\n")
    with pytest.raises(ValueError, match=r"nan\.txt:2: b'x' is not a number"):
        E.read_glove(not_number, cache=False)
    with pytest.raises(ValueError, match="on_error"):
        E.read_glove(path, on_error="ignore")


def test_vocabulary_filter_keeps_only_requested_rows(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    # long words sharing their first and last 8 bytes stress the fingerprint filter
    words = [f"word{i}" for i in range(300)] + [f"prefix__{i:03d}__suffix" for i in range(50)]
    rows = {w: rng.normal(size=4).round(4).tolist() for w in words}
    path = write(tmp_path / "many.txt", glove_text(rows))
    monkeypatch.setattr(E, "_BLOCK_BYTES", 512)  # many blocks: lines cut at block borders
    full = E.read_glove(path, cache=False)
    wanted = ["word7", "prefix__010__suffix", "word299", "absent", "word7"]
    kept = E.read_glove(path, vocabulary=wanted, cache=False)
    assert kept.words == ["word7", "word299", "prefix__010__suffix"]  # file order
    np.testing.assert_array_equal(kept.vectors, full.vectors[[7, 299, 310]])
    first = E.read_glove(path, max_words=5, cache=False)
    assert first.words == words[:5]
    bad = write(tmp_path / "late.txt", glove_text(rows) + "late 1 2\n")
    with pytest.raises(ValueError, match=r"late\.txt:351:"):
        E.read_glove(bad, cache=False)
    assert E.read_glove(bad, vocabulary=["word1"], cache=False).words == ["word1"]


def test_binary_cache_second_load_and_staleness(small, cache_dir):
    first = E.read_glove(small)
    files = E.cache_files(small)
    assert not first.from_cache and all(p.exists() for p in files)
    assert all(p.parent == cache_dir / E.CACHE_FOLDER for p in files)
    assert sorted(p.name for p in small.parent.iterdir()) == ["cache", "small.txt"]
    second = E.read_glove(small)
    assert second.from_cache and second.words == first.words
    np.testing.assert_array_equal(second.vectors, first.vectors)
    kept = E.read_glove(small, vocabulary=["queen", "cat", "nope", "a-word-longer-than-any"])
    assert kept.from_cache and kept.words == ["cat", "queen"]
    np.testing.assert_array_equal(kept.vectors, first.vectors[[1, 4]])
    write(small, glove_text() + "owl 7 7 7\n")
    os.utime(small, ns=(1, 1))  # new size and mtime: a new cache, the old one removed
    third = E.read_glove(small)
    assert not third.from_cache and "owl" in third
    assert not any(p.exists() for p in files)
    assert len(list((cache_dir / E.CACHE_FOLDER).glob("*.json"))) == 1


def test_cache_detects_changed_content_with_same_size_and_mtime(small):
    E.read_glove(small)
    stat = small.stat()
    write(small, glove_text().replace("0.1 0.2 0.3", "0.5 0.2 0.3"))  # same size
    os.utime(small, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert small.stat().st_size == stat.st_size
    again = E.read_glove(small)
    assert not again.from_cache
    np.testing.assert_allclose(again["the"], [0.5, 0.2, 0.3])


def test_two_files_of_one_name_get_two_caches(tmp_path, cache_dir):
    a = write((tmp_path / "a").mkdir() or tmp_path / "a" / "v.txt", "cat 1 2 3\n")
    b = write((tmp_path / "b").mkdir() or tmp_path / "b" / "v.txt", "cat 4 5 6\n")
    assert E.cache_files(a) != E.cache_files(b)
    E.read_glove(a), E.read_glove(b)
    np.testing.assert_array_equal(E.read_glove(a)["cat"], [1, 2, 3])
    np.testing.assert_array_equal(E.read_glove(b)["cat"], [4, 5, 6])


def test_unwritable_cache_reads_once_and_never_crashes(tmp_path, small, cache_dir,
                                                       monkeypatch):
    (cache_dir / E.CACHE_FOLDER).mkdir(parents=True)
    calls = []
    parse = E._parse
    monkeypatch.setattr(E, "_parse", lambda *a: calls.append(a[1]) or parse(*a))
    monkeypatch.setattr(E, "_write_cache", lambda glove, folder: False)
    kept = E.read_glove(small, vocabulary=["cat", "dog"])
    assert kept.words == ["cat", "dog"] and len(calls) == 1  # one parse, filtered in memory
    assert E.read_glove(small, vocabulary=["cat"]).words == ["cat"]
    assert calls[1:] == [{"cat"}]  # the folder is known unwritable: a filtered read only
    assert not list((cache_dir / E.CACHE_FOLDER).iterdir())


def test_failed_cache_write_leaves_nothing_behind(small, cache_dir, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(E.os, "replace", refuse)
    assert E.read_glove(small, vocabulary=["dog"]).words == ["dog"]
    assert not list((cache_dir / E.CACHE_FOLDER).iterdir())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
def test_read_only_folders_do_not_crash(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = write(folder / "v.txt", glove_text())
    cache = tmp_path / "cache"
    (cache / E.CACHE_FOLDER).mkdir(parents=True)
    monkeypatch.setenv("RNNCOURSE_CACHE", str(cache))
    monkeypatch.setattr(E, "_UNWRITABLE", set())
    folder.chmod(0o555)
    (cache / E.CACHE_FOLDER).chmod(0o555)
    try:
        assert len(E.read_glove(path)) == 7
        assert E.read_glove(path, vocabulary=["dog"]).words == ["dog"]
    finally:
        folder.chmod(0o755)
        (cache / E.CACHE_FOLDER).chmod(0o755)
    monkeypatch.setenv("RNNCOURSE_CACHE", str(path))  # a file: cache_dir() raises
    assert E.read_glove(path, vocabulary=["cat"]).words == ["cat"]


@pytest.mark.parametrize("call, error, fragment", [
    (lambda p: E.read_glove(p, on_error="ignore"), ValueError, "on_error must be"),
    (lambda p: E.read_glove(p, vocabulary="cat"), TypeError, "not one string"),
    (lambda p: E.read_glove(p, vocabulary=["cat", 3]), TypeError, "must hold words as str"),
    (lambda p: E.read_glove(p, dim=0), ValueError, "dim must be a positive int"),
    (lambda p: E.read_glove(p, max_words=-1), ValueError, "max_words must be"),
    (lambda p: E.read_glove(p.parent / "nope.txt"), FileNotFoundError, "glove_path(50)"),
    (lambda p: E.read_glove(p.parent), IsADirectoryError, "is a folder"),
    (lambda p: E.read_glove(123), TypeError, "path must be a str"),
    (lambda p: E.cache_files(p.parent / "nope.txt"), FileNotFoundError, "no file at"),
    (lambda p: E.embedding_matrix(Vocabulary.from_tokens([["cat"]]),
                                  E.read_glove(p, vocabulary=["zzz"])),
     ValueError, "holds no vectors"),
    (lambda p: E.embedding_matrix(Vocabulary.from_tokens([["cat"]]), E.read_glove(p),
                                  oov="random"), ValueError, "oov must be"),
    (lambda p: E.embedding_matrix(["cat"], E.read_glove(p)), TypeError, "Vocabulary"),
    (lambda p: E.embedding_matrix(Vocabulary.from_tokens([["cat"]]), {"cat": [1, 2, 3]}),
     TypeError, "GloveVectors"),
    (lambda p: E.nearest(E.read_glove(p), "zorp"), KeyError, "zorp"),
    (lambda p: E.nearest(E.read_glove(p), "cat", k=0), ValueError, "k must be"),
    (lambda p: E.projection_2d(E.read_glove(p), ["cat"]), ValueError, "at least 2 words"),
    (lambda p: E.truncated_normal("w", np.zeros(3), np.ones(2)), ValueError, "same shape"),
    (lambda p: E.truncated_normal("w", np.zeros(3), -np.ones(3)), ValueError, "std"),
    (lambda p: E.word_seed(3), TypeError, "word must be a str"),
])
def test_bad_input_gets_a_clear_error(small, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call(small)


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
    assert report.found_types == 3 and report.total_types == 4
    assert report.found_tokens == 4 and report.total_tokens == 7
    assert report.type_coverage == 0.75 and report.token_coverage == pytest.approx(4 / 7)
    assert report.missing == [("zorp", 3)]
    assert "zorp (3)" in str(report) and "75.0%" in str(report)
    zeros, _ = E.embedding_matrix(vocab, glove, oov="zeros")
    assert not zeros[vocab.index("zorp")].any() and not zeros[1].any()
    _, cased = E.embedding_matrix(vocab, glove, lowercase=False)
    assert cased.found_types == 2
    with pytest.raises(ValueError, match="oov must be"):
        E.embedding_matrix(vocab, glove, oov="random")


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
    assert [w for w, _ in E.nearest(glove, "cat", k=10)] != [] and \
        "cat" not in [w for w, _ in E.nearest(glove, "cat", k=10)]
    best = E.analogy(glove, "man", "king", "woman", k=2)
    assert best[0][0] == "queen" and {"man", "king", "woman"}.isdisjoint(w for w, _ in best)
    assert best[0][1] >= best[1][1]
    with pytest.raises(KeyError, match="zorp"):
        E.analogy(glove, "man", "king", "zorp")


def test_analogy_on_real_glove():
    from rnncourse import data

    words = ["man", "king", "woman", "queen", "prince", "paris", "france", "rome", "italy",
             "berlin", "germany", "throne", "monarch", "frog", "toad", "the", "of"]
    glove = E.read_glove(data.glove_path(50), vocabulary=words, cache=False)
    assert E.analogy(glove, "man", "king", "woman")[0][0] == "queen"
    assert E.analogy(glove, "france", "paris", "italy")[0][0] == "rome"
    assert E.nearest(glove, "frog", k=1)[0][0] == "toad"

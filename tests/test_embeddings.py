"""Tests of rnncourse.embeddings: the embedding matrix, OOV rows, coverage, similarity."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import embeddings as E
from rnncourse.glove import read_glove
from rnncourse.text import Vocabulary


@pytest.fixture
def small(tmp_path):
    from test_glove import glove_text

    path = tmp_path / "small.txt"
    path.write_text(glove_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real_path():
    from rnncourse import data

    return data.glove_path(50)


def test_embedding_matrix_rows_and_coverage(small):
    glove = read_glove(small)
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
    glove = read_glove(small)
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
    glove = read_glove(small)
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
    glove = read_glove(real_path, vocabulary=words)
    assert E.analogy(glove, "man", "king", "woman")[0][0] == "queen"
    assert E.analogy(glove, "france", "paris", "italy")[0][0] == "rome"
    assert E.nearest(glove, "frog", k=1)[0][0] == "toad"

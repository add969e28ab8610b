"""Tests of rnncourse.embeddings: reader edge cases, vocabulary, OOV vectors, similarity."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnncourse import embeddings as E

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
def small(tmp_path):
    return write(tmp_path / "small.txt", glove_text())


# ----------------------------------------------------------------------------- vocabulary
def test_vocabulary_orders_by_frequency_with_first_seen_ties():
    vocab = E.Vocabulary.from_tokens([["b", "a", "c", "a"], ["c", "d", "a"]])
    assert vocab.words == ["<pad>", "<oov>", "a", "c", "b", "d"]
    assert (vocab.PAD, vocab.OOV) == (0, 1)
    assert vocab.counts["a"] == 3 and vocab.counts["d"] == 1
    assert vocab.encode(["a", "zzz", "d"]) == [2, 1, 5]
    assert vocab.index("zzz") == E.Vocabulary.OOV
    assert vocab.encode_batch([["c"], []]) == [[3], []]


def test_vocabulary_max_size_min_count_lower():
    tokens = [["A", "a", "b", "b", "b", "c"]]
    vocab = E.Vocabulary.from_tokens(tokens, lower=True)
    assert vocab.words[2:] == ["b", "a", "c"] and vocab.index("A") == 3
    assert E.Vocabulary.from_tokens(tokens, max_size=3).words == ["<pad>", "<oov>", "b"]
    assert E.Vocabulary.from_tokens(tokens, min_count=2).words == ["<pad>", "<oov>", "b"]
    with pytest.raises(ValueError, match="split it first"):
        E.Vocabulary.from_tokens(["a sentence"])
    with pytest.raises(ValueError, match="max_size"):
        E.Vocabulary.from_tokens(tokens, max_size=1)


def test_vocabulary_matches_keras_text_vectorization():
    import keras

    texts = ["the cat sat", "the cat ran", "the dog"]  # no frequency ties among kept words
    vocab = E.Vocabulary.from_tokens([t.split() for t in texts], max_size=4)
    layer = keras.layers.TextVectorization(max_tokens=4, standardize=None,
                                           split="whitespace")
    layer.adapt(texts)
    assert vocab.words[2:] == layer.get_vocabulary()[2:]
    ids = np.asarray(layer(["the dog cat zebra"]))[0]
    assert vocab.encode("the dog cat zebra".split()) == ids.tolist()


# ----------------------------------------------------------------------------- reader
def test_reader_matches_dictionary_loader(small):
    glove = E.read_glove(small, cache=False)
    reference = E.dictionary_loader(small)
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


def test_non_utf8_bytes_are_replaced_and_counted(tmp_path):
    data = glove_text().encode() + b"caf\xe9 1 2 3\n"
    glove = E.read_glove(write(tmp_path / "latin.txt", data), cache=False)
    assert glove.decode_errors == 1
    assert "caf\ufffd" in glove


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


def test_binary_cache_second_load_and_staleness(small):
    first = E.read_glove(small)
    assert not first.from_cache and all(p.exists() for p in E.cache_files(small))
    second = E.read_glove(small)
    assert second.from_cache and second.words == first.words
    np.testing.assert_array_equal(second.vectors, first.vectors)
    kept = E.read_glove(small, vocabulary=["queen", "cat", "nope"])
    assert kept.from_cache and kept.words == ["cat", "queen"]
    np.testing.assert_array_equal(kept.vectors, first.vectors[[1, 4]])
    write(small, glove_text() + "owl 7 7 7\n")
    os.utime(small, ns=(1, 1))  # new size and mtime: the cache must not be used
    third = E.read_glove(small)
    assert not third.from_cache and "owl" in third


def test_cache_in_read_only_folder_is_skipped(tmp_path, small, monkeypatch):
    monkeypatch.setattr(E, "_write_cache", lambda glove: False)
    glove = E.read_glove(small)
    assert len(glove) == 7 and not any(p.exists() for p in E.cache_files(small))


# ----------------------------------------------------------------------------- matrix
def test_embedding_matrix_rows_and_coverage(small):
    glove = E.read_glove(small, cache=False)
    vocab = E.Vocabulary.from_tokens([["The", "cat", "cat", "zorp", "dog", "zorp", "zorp"]])
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
    a = E.Vocabulary.from_tokens([["zorp", "blick", "cat"]])
    b = E.Vocabulary.from_tokens([["blick", "blick", "zorp"]])
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
    glove = E.read_glove(data.load_glove(50), vocabulary=words, cache=False)
    assert E.analogy(glove, "man", "king", "woman")[0][0] == "queen"
    assert E.analogy(glove, "france", "paris", "italy")[0][0] == "rome"
    assert E.nearest(glove, "frog", k=1)[0][0] == "toad"


# ----------------------------------------------------------------------------- misc
def test_one_hot_vs_dense_arithmetic():
    sizes = E.one_hot_vs_dense_bytes(vocab_size=20_000, dim=50, batch_size=32, timesteps=100)
    assert sizes["one_hot"] == 32 * 100 * 20_000 * 4
    assert sizes["one_hot"] // sizes["dense_batch"] == 400


def test_plots_have_data(small):
    from rnncourse import plots
    from rnncourse.plots import embeddings as P

    glove = E.read_glove(small, cache=False)
    vocab = E.Vocabulary.from_tokens([["cat", "zorp"]])
    _, report = E.embedding_matrix(vocab, glove)
    oov = np.stack([E.truncated_normal(f"w{i}", glove.mean, glove.std) for i in range(50)])
    history = {"val_accuracy": [0.5, 0.6]}
    figures = [P.plot_projection(glove, {"animals": ["cat", "dog"], "royals": ["king", "queen"]}),
               P.plot_coverage({"a": report, "b": report}),
               P.plot_oov_vectors(glove, oov, oov * 0),
               P.plot_learning_curves({"glove": [history, history], "random": [history]}),
               P.plot_load_times({"dict": 3.0, "reader": 0.3})]
    for fig in figures:
        assert plots.has_data(fig) and fig._suptitle is not None


def test_sentiment_pipeline_smoke(small):
    texts = ["the cat", "the dog zorp", "king queen", "man woman"] * 4
    labels = np.array([1, 0, 1, 0] * 4, dtype=np.int32)
    settings = E.SentimentSettings(seeds=(0,), epochs=1, units=4, batch_size=8)
    data = E.sentiment_data(texts, labels, small, settings)
    assert data["x_train"].shape == (13, settings.max_len) and data["x_val"].shape[0] == 3
    results = E.compare_initialisations(data, settings, variants=("glove", "glove_frozen"))
    assert set(results) == {"glove", "glove_frozen"} and len(results["glove"][0]["loss"]) == 1
    acc = E.best_val_accuracy(results)
    assert all(0.0 <= v <= 1.0 for v in acc.values())
    with pytest.raises(ValueError, match="variant"):
        E.sentiment_model("bogus", data["matrix"], settings)

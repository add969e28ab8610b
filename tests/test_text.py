"""Tests of rnncourse.text: vocabularies, reserved ids, padding, tags and the one split."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnncourse import text as T
from rnncourse.text import Vocabulary


# ----------------------------------------------------------------------------- vocabulary
def test_vocabulary_orders_by_frequency_with_first_seen_ties():
    vocab = Vocabulary.from_tokens([["b", "a", "c", "a"], ["c", "d", "a"]])
    assert vocab.words == ["<pad>", "<oov>", "a", "c", "b", "d"]
    assert (vocab.PAD, vocab.OOV) == (0, 1)
    assert vocab.counts["a"] == 3 and vocab.counts["d"] == 1
    assert vocab.encode(["a", "zzz", "d"]) == [2, 1, 5]
    assert vocab.index("zzz") == Vocabulary.OOV
    assert vocab.encode_batch([["c"], []]) == [[3], []]


def test_vocabulary_max_size_min_count_lower():
    tokens = [["A", "a", "b", "b", "b", "c"]]
    vocab = Vocabulary.from_tokens(tokens, lower=True)
    assert vocab.words[2:] == ["b", "a", "c"] and vocab.index("A") == 3
    assert Vocabulary.from_tokens(tokens, max_size=3).words == ["<pad>", "<oov>", "b"]
    assert Vocabulary.from_tokens(tokens, min_count=2).words == ["<pad>", "<oov>", "b"]
    with pytest.raises(ValueError, match="split it first"):
        Vocabulary.from_tokens(["a sentence"])
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.from_tokens(tokens, max_size=1)


def test_vocabulary_matches_keras_text_vectorization():

    texts = ["the cat sat", "the cat ran", "the dog"]  # no frequency ties among kept words
    vocab = Vocabulary.from_tokens([t.split() for t in texts], max_size=4)
    layer = keras.layers.TextVectorization(max_tokens=4, standardize=None,
                                           split="whitespace")
    layer.adapt(texts)
    assert vocab.words[2:] == layer.get_vocabulary()[2:]
    ids = np.asarray(layer(["the dog cat zebra"]))[0]
    assert vocab.encode("the dog cat zebra".split()) == ids.tolist()


# ----------------------------------------------------------------------------- reader
def test_vocabulary_ids_agree_with_keras_string_lookup():
    """The reserved ids match StringLookup(mask_token='<pad>', num_oov_indices=1)."""
    vocab = Vocabulary.from_tokens([["b", "a", "a"]])
    lookup = keras.layers.StringLookup(vocabulary=vocab.words[2:], mask_token=T.PAD_TOKEN,
                                       num_oov_indices=1, oov_token=T.OOV_TOKEN)
    tokens = ["a", "zzz", "b", "<pad>"]
    assert np.asarray(lookup(tokens)).tolist() == vocab.encode(tokens)
    assert lookup.get_vocabulary() == vocab.words


def test_mapping_is_the_word_view():
    vocab = Vocabulary.from_tokens([["x", "y", "x"]])
    assert vocab.mapping() == {"x": 2, "y": 3}


@pytest.mark.parametrize("ids, maxlen, truncating, expected", [
    ([[2, 3], [4]], None, None, [[2, 3], [4, 0]]),
    ([[2, 3], [4]], 3, None, [[2, 3, 0], [4, 0, 0]]),
    ([[2, 3, 5], [4]], 2, "post", [[2, 3], [4, 0]]),
    ([[2, 3, 5], [4]], 2, "pre", [[3, 5], [4, 0]]),
    (np.array([[2, 3], [4, 5]], dtype=np.uint8), None, None, [[2, 3], [4, 5]]),
    ([[np.int64(2), np.int64(3)]], None, None, [[2, 3]]),
])
def test_pad_post_pads_with_zero(ids, maxlen, truncating, expected):
    out = T.pad(ids, maxlen, truncating=truncating)
    assert out.dtype == np.int32 and out.tolist() == expected


@pytest.mark.parametrize("call, error, message", [
    (lambda: T.pad([[2, 3, 5]], 2), ValueError, "maxlen"),
    (lambda: T.pad([]), ValueError, "sequences"),
    (lambda: T.pad([[2, 0, 0]]), ValueError, "sequences"),
    (lambda: T.pad([[1.6, 2.7]]), TypeError, "sequences"),
    (lambda: Vocabulary(["a", "b"]), ValueError, "starts with '<pad>'"),
    (lambda: Vocabulary(["<pad>", "<oov>", "a", "a"]), ValueError, "unique"),
    (lambda: Vocabulary.from_tokens([["a"]]).encode("a b"), ValueError, "not a string"),
    (lambda: Vocabulary.from_tokens([["a"]]).encode_batch("a b"), ValueError, "not a string"),
    (lambda: Vocabulary.from_tokens([["a"]], min_count=0), ValueError, "min_count"),
    (lambda: T.char_vocabulary(""), ValueError, "text is empty"),
    (lambda: T.char_vocabulary(["a"]), TypeError, "must be a str"),
    (lambda: T.char_vocabulary("ab").encode("abc"), ValueError, "'c' is not in the vocabulary"),
    (lambda: T.char_vocabulary("ab").decode([0, 2]), ValueError, r"ids must be in 0\.\.1"),
    (lambda: T.tag_vocabulary([]), ValueError, "no tags found"),
    (lambda: T.tag_vocabulary("O O"), ValueError, "not a string"),
    (lambda: T.split_indices(1), ValueError, "n must be an int >= 2"),
    (lambda: T.split_indices(10, 1.0), ValueError, r"validation_fraction must be in \(0, 1\)"),
    (lambda: T.split_indices(10.0), ValueError, "n must be an int"),
])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_char_vocabulary_round_trip():
    vocab = T.char_vocabulary("hello")
    assert vocab.chars == "ehlo" and vocab.decode(vocab.encode("hole")) == "hole"


def test_tag_vocabulary_puts_outside_first_and_groups_types():
    names = T.tag_vocabulary([["B-per", "O", "I-per"], ["B-loc"]])
    assert names == ["O", "B-loc", "B-per", "I-per"]


@pytest.mark.parametrize("tokens, tags, message", [
    ([["a"]], [["O"], ["O"]], "1 sentences but 2 tag lists"),
    ([[]], [[]], "sentence 0 is empty"),
    ([["a", "b"]], [["O"]], "2 tokens but 1 tags"),
    ([["a"]], [["B-x"]], r"tags \['B-x'\] missing"),
])
def test_encode_tagging_refuses_inconsistent_input(tokens, tags, message):
    vocab = Vocabulary.from_tokens([["a", "b"]])
    with pytest.raises(ValueError, match=message):
        T.encode_tagging(tokens, tags, vocab, ["O"])


def test_encode_tagging_pads_tokens_and_tags_alike():
    vocab = Vocabulary.from_tokens([["a", "b"]])
    x, y = T.encode_tagging([["a", "b"], ["zzz"]], [["B-x", "O"], ["O"]], vocab, ["O", "B-x"])
    assert x.tolist() == [[2, 3], [1, 0]] and y.tolist() == [[1, 0], [0, 0]]


@pytest.mark.parametrize("n, fraction", [(2, 0.5), (10, 0.2), (7, 0.01), (5, 0.99)])
def test_split_partitions_and_is_seeded(n, fraction):
    train, val = T.split_indices(n, fraction, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))
    assert len(val) >= 1 and len(train) >= 1
    again = T.split_indices(n, fraction, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again, strict=True))


def test_unshuffled_split_holds_out_the_end():
    train, val = T.split_indices(10, 0.2, shuffle=False)
    assert train.tolist() == list(range(8)) and val.tolist() == [8, 9]

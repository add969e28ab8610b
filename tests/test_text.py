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


def test_vocabulary_max_size_min_count_lowercase():
    tokens = [["A", "a", "b", "b", "b", "c"]]
    vocab = Vocabulary.from_tokens(tokens, lowercase=True)
    assert vocab.words[2:] == ["b", "a", "c"] and vocab.index("A") == 3
    assert Vocabulary.from_tokens(tokens, max_size=3).words == ["<pad>", "<oov>", "b"]
    assert Vocabulary.from_tokens(tokens, min_count=2).words == ["<pad>", "<oov>", "b"]
    with pytest.raises(TypeError, match="split it first"):
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


@pytest.mark.parametrize("call, error, argument", [
    (lambda: T.pad([[2, 3, 5]], 2), ValueError, "maxlen"),
    (lambda: T.pad([]), ValueError, "sequences"),
    (lambda: T.pad([[2, 0, 0]]), ValueError, "sequences"),
    (lambda: T.pad([[1.6, 2.7]]), TypeError, "sequences"),
    (lambda: Vocabulary(["a", "b"]), ValueError, "words"),
    (lambda: Vocabulary(["<pad>", "<oov>", "a", "a"]), ValueError, "words"),
    (lambda: Vocabulary.from_tokens([["a"]]).encode("a b"), TypeError, "tokens"),
    (lambda: Vocabulary.from_tokens([["a"]]).encode_batch("a b"), TypeError, "token_lists"),
    (lambda: Vocabulary.from_tokens([["a"]], min_count=0), ValueError, "min_count"),
    (lambda: T.char_vocabulary(""), ValueError, "text"),
    (lambda: T.char_vocabulary(["a"]), TypeError, "text"),
    (lambda: T.char_vocabulary("ab").encode("abc"), ValueError, "text"),
    (lambda: T.char_vocabulary("ab").decode([0, 2]), ValueError, "ids"),
    (lambda: T.tag_vocabulary("O O"), TypeError, "tag_lists"),
    (lambda: T.split_indices(1), ValueError, "n"),
    (lambda: T.split_indices(10, 1.0), ValueError, "validation_fraction"),
    (lambda: T.split_indices(10.0), TypeError, "n"),
    (lambda: T.tokenize(b"bytes"), TypeError, "s"),
])
def test_bad_input_gets_a_clear_error(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument


def test_char_vocabulary_round_trip():
    vocab = T.char_vocabulary("hello")
    assert vocab.chars == "ehlo" and vocab.decode(vocab.encode("hole")) == "hole"


def test_tag_vocabulary_puts_outside_first_and_groups_types():
    names = T.tag_vocabulary([["B-per", "O", "I-per"], ["B-loc"]])
    assert names == ["O", "B-loc", "B-per", "I-per"]
    assert T.tag_vocabulary([]) == T.tag_vocabulary([[]]) == ["O"]  # no tag: "O" alone


@pytest.mark.parametrize("tokens, tags, error, argument", [
    ([["a"]], [["O"], ["O"]], ValueError, "tag_lists"),
    ([[]], [[]], ValueError, "token_lists"),
    ([["a", "b"]], [["O"]], ValueError, "tag_lists"),
    ([["a"]], [["B-x"]], ValueError, "tag_names"),
    (["ab"], [["O", "O"]], TypeError, "token_lists"),  # a string, not split into characters
    ([["a", "b"]], ["OO"], TypeError, "tag_lists"),
])
def test_encode_tagging_refuses_inconsistent_input(tokens, tags, error, argument):
    vocab = Vocabulary.from_tokens([["a", "b"]])
    with pytest.raises(error) as info:
        T.encode_tagging(tokens, tags, vocab, ["O"])
    assert info.value.argument == argument


def test_encode_tagging_pads_tokens_and_tags_alike():
    vocab = Vocabulary.from_tokens([["a", "b"]])
    x, y = T.encode_tagging([["a", "b"], ["zzz"]], [["B-x", "O"], ["O"]], vocab, ["O", "B-x"])
    assert x.tolist() == [[2, 3], [1, 0]] and y.tolist() == [[1, 0], [0, 0]]


def test_unpadded_tagging_goes_into_bucketing_unchanged():
    from rnncourse import batching

    vocab = Vocabulary.from_tokens([["a", "b", "c"]])
    tokens = [["a", "b", "c"], ["c"], ["b", "a"]] * 4
    tags = [["B-x", "O", "I-x"], ["O"], ["B-x", "I-x"]] * 4
    names = T.tag_vocabulary(tags)
    x, y = T.encode_tagging(tokens, tags, vocab, names, padded=False)
    px, py = T.encode_tagging(tokens, tags, vocab, names)
    assert [len(s) for s in x] == [len(s) for s in y] == [3, 1, 2] * 4
    assert all(np.array_equal(p[:len(s)], s) for p, s in zip(px, x, strict=True))
    assert all(np.array_equal(p[:len(s)], s) for p, s in zip(py, y, strict=True))
    for bx, by in batching.bucketed_dataset(x, y, batch_size=4, seed=0).as_numpy_iterator():
        assert bx.shape == by.shape and not by[bx == T.PAD].any()  # padding reads as "O"
    cut = T.encode_tagging(tokens, tags, vocab, names, maxlen=2, truncate=True, padded=False)
    assert max(map(len, cut[0])) == 2 and max(map(len, cut[1])) == 2
    with pytest.raises(ValueError):
        T.encode_tagging(tokens, tags, vocab, names, maxlen=2, padded=False)


# ----------------------------------------------------------------------------- your files
def test_tokenize_splits_punctuation_and_clitics():
    assert T.tokenize("It's great, isn't it? Co-writer/director!", lowercase=True) == [
        "it", "'s", "great", ",", "is", "n't", "it", "?", "co-writer", "/", "director", "!"]
    assert T.tokenize("The END.") == ["The", "END", "."]
    assert T.tokenize("") == []


def test_vocabulary_save_load_round_trip(tmp_path):
    vocab = Vocabulary.from_tokens([["Café", "b", "b"], ["ünï", "B"]], lowercase=True,
                                   max_size=4)
    again = Vocabulary.load(vocab.save(tmp_path / "vocab.json"))
    assert (again.words, again.counts, again.lowercase) == (
        vocab.words, vocab.counts, vocab.lowercase)
    assert again.encode(["CAFÉ", "b", "zz"]) == vocab.encode(["CAFÉ", "b", "zz"])
    with pytest.raises(ValueError, match="not a vocabulary"):
        Vocabulary.load((tmp_path / "x.json").write_text("[1]") and tmp_path / "x.json")


def test_read_labelled_by_name_by_position_and_delimiter(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b'\xef\xbb\xbfid,label,text\n1,pos,"good, really"\n\n2,neg,"bad\nfilm"\n')
    assert T.read_labelled(path) == (["good, really", "bad\nfilm"], ["pos", "neg"])
    tsv = tmp_path / "r.tsv"
    tsv.write_text("1\tgreat fun\n0\tdull\n", encoding="utf-8")
    assert T.read_labelled(tsv, text_column=1, label_column=0) == (
        ["great fun", "dull"], ["1", "0"])
    with pytest.raises(ValueError, match=r"r\.tsv:1: no column 1.*delimiter=','"):
        T.read_labelled(tsv, 1, 0, delimiter=",")


def test_read_labelled_names_the_line_and_the_encoding(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("text,label\nnice,1\ncafé,0\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"r\.csv, line 3: .*encoding='cp1252'") as info:
        T.read_labelled(path)
    assert info.value.argument == "encoding"
    assert T.read_labelled(path, encoding="cp1252") == (["nice", "café"], ["1", "0"])


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

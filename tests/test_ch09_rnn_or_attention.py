"""Chapter 9's data: the character task keeps chapter 5's split (the end of the text held
out, consecutive sequences), the tagging task is post-padded with a GloVe row per word."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import text
from rnncourse.chapters import ch09_rnn_or_attention as ch09


@pytest.fixture(scope="module")
def chars():
    return ch09.char_task(ch09.settings())


def test_char_task_holds_out_the_end_of_the_text(chars):
    s = ch09.settings()
    assert chars.x_train.shape[1] == chars.x_val.shape[1] == s.char_length
    # next-character targets: target t is input t + 1, and sequences continue each other
    assert np.array_equal(chars.y_train[:, :-1], chars.x_train[:, 1:])
    assert np.array_equal(chars.y_train[:-1, -1], chars.x_train[1:, 0])
    assert chars.y_train[-1, -1] == chars.x_val[0, 0]  # validation continues the text
    assert 0 < len(chars.x_val) < len(chars.x_train)
    assert 0 < chars.unigram_bits < np.log2(chars.vocab_size)


def test_tag_task_is_post_padded_with_a_vector_per_word():
    tags = ch09.tag_task(ch09.settings())
    for x, y in ((tags.x_train, tags.y_train), (tags.x_val, tags.y_val)):
        real = x != text.PAD
        # post-padding: once a row's padding starts, it never stops
        assert not (np.diff(real.astype(int), axis=1) > 0).any()
        assert (y[~real] == 0).all()
    assert tags.matrix.shape[0] > tags.x_train.max()
    assert np.isfinite(tags.matrix).all() and not tags.matrix[text.PAD].any()
    assert tags.tag_names[0] == "O"

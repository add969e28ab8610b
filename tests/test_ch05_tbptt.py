"""Tests of the chapter-5 experiments (rnncourse.chapters.ch05_tbptt) and its figures."""

from __future__ import annotations

import dataclasses

import numpy as np

from rnncourse import tbptt
from rnncourse.chapters import ch05_tbptt as ch05
from rnncourse.plots import has_data
from rnncourse.plots import tbptt as tbptt_plots


def test_recipe_is_shared_and_sizes_shrink():
    ci, full = ch05.SIZES["ci"], ch05.SIZES["full"]
    assert ci.characters < full.characters and ci.units <= full.units
    assert all(n % ch05.RECIPE.window == 0 for n in ci.memory_lengths + full.memory_lengths)


def test_activation_bytes_grow_linearly():
    one = ch05.activation_bytes(32, 25, 128, 32, 64)
    assert ch05.activation_bytes(32, 1000, 128, 32, 64) == 40 * one
    assert one == 32 * 25 * (32 + 11 * 128 + 128) * 4


def test_memory_is_flat_for_tbptt_and_grows_for_full_bptt():
    # a fresh process, eager and single-threaded: the counts do not depend on the load
    result = ch05.measure_memory((25, 100), window=25, batch_size=4, units=16, vocab_size=11,
                                 embedding_dim=4)
    assert result.growth_tbptt < 1.2, result
    assert result.growth_full > 2.0, result
    assert result.estimate[1] == 4 * result.estimate[0]


def test_char_data_on_a_small_text():
    s = ch05.settings()
    sizes = dataclasses.replace(s.sizes, plays=1, characters=6_000, sequence_length=50)
    chars = ch05.char_data(type(s)(s.scale, s.seed, sizes, s.recipe))
    assert chars.x_train.shape[1] == 50 and len(chars.x_val) >= 1
    np.testing.assert_array_equal(chars.x_train[:, 1:], chars.y_train[:, :-1])
    np.testing.assert_array_equal(chars.x_val[0, 0], chars.y_train[-1, -1])  # the end held out
    assert chars.characters == 6_000
    assert 0 < chars.unigram_bits < np.log2(len(chars.vocab))


def test_figures_have_data():
    x = np.random.default_rng(0).integers(0, 11, (5, 9))
    assert has_data(tbptt_plots.plot_window_layout(tbptt.stateful_batches(x, x, 4, 2)))
    mem = ch05.MemoryResult((50, 100), (2e6, 4e6), (1e6, 1e6), (2e6, 4e6), 25, 4, 8)
    assert has_data(tbptt_plots.plot_memory(mem))
    assert has_data(tbptt_plots.plot_bits_per_char({"a": [3.0, 2.5], "b": [3.1, 2.4]},
                                                   {"a": 2.6, "b": 2.5}, 3.3))

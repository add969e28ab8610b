"""Tests of the chapter-5 module (rnncourse.chapters.ch05_tbptt) and its figures."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import tbptt
from rnncourse.chapters import ch05_tbptt as ch05
from rnncourse.plots import has_data
from rnncourse.plots import tbptt as tbptt_plots


def test_recipe_is_shared_and_sizes_shrink():
    ci, full = ch05.SIZES["ci"], ch05.SIZES["full"]
    assert ci.characters < full.characters and ci.units <= full.units
    assert ci.plays <= full.plays <= len(ch05.PLAYS)
    assert all(n % ch05.RECIPE.window == 0 for n in ci.memory_lengths + full.memory_lengths)
    # the explicit loop of the page walks whole windows
    assert ci.sequence_length % ch05.RECIPE.window == full.sequence_length % ch05.RECIPE.window == 0


def test_activation_bytes_grow_linearly():
    one = ch05.activation_bytes(32, 25, 128, 32, 64)
    assert ch05.activation_bytes(32, 1000, 128, 32, 64) == 40 * one
    assert one == 32 * 25 * (32 + 11 * 128 + 128) * 4


def test_memory_is_flat_for_tbptt_and_grows_for_full_bptt():
    # a fresh process, eager and single-threaded: the counts do not depend on the load
    result = ch05.measure_memory((25, 100), window=25, batch_size=4, units=16, vocab_size=11,
                                 embedding_dim=4)
    assert result.lengths == (25, 100) and result.window == 25
    assert max(result.tbptt) / min(result.tbptt) < 1.2, result
    assert result.full_bptt[1] / result.full_bptt[0] > 2.0, result
    assert result.estimate[1] == 4 * result.estimate[0]


@pytest.mark.parametrize("lengths, error", [((), ValueError), ((25, 0), ValueError),
                                            ((25.5,), TypeError)])
def test_memory_refuses_bad_lengths_before_starting_a_process(lengths, error):
    with pytest.raises(error) as caught:
        ch05.measure_memory(lengths)
    assert caught.value.argument == "lengths"


def test_figures_have_data():
    x = np.random.default_rng(0).integers(0, 11, (5, 9))
    assert has_data(tbptt_plots.plot_window_layout(tbptt.stateful_batches(x, x, 4, 2)))
    mem = ch05.MemoryResult((50, 100), (2e6, 4e6), (1e6, 1e6), (2e6, 4e6), 25)
    assert has_data(tbptt_plots.plot_memory(mem))
    assert has_data(tbptt_plots.plot_bits_per_char({"a": [3.0, 2.5], "b": [3.1, 2.4]},
                                                   {"a": 2.6, "b": 2.5}, 3.3))

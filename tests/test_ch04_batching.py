"""Tests of the chapter-4 experiments (rnncourse.chapters.ch04_batching) on tiny sizes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from rnncourse import batching, config
from rnncourse.chapters import ch04_batching as ch04


def _sequences(n=24, seed=0, low=1, high=6):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 20, size=rng.integers(low, high)).astype("int32") for _ in range(n)]


def test_recipe_is_shared_and_sizes_shrink():
    assert ch04.SIZES["ci"].sentences < ch04.SIZES["full"].sentences
    assert ch04.RECIPE.strategies == batching.STRATEGIES


@pytest.mark.parametrize("kind, padding, features", [
    ("lstm", "pre", "ids"), ("gru", "post", "ids"), ("bi_lstm", "post", "floats"),
])
def test_mask_is_exact_and_no_mask_is_not(kind, padding, features):
    masked = ch04.mask_exactness(kind, padding, True, features, units=4)
    assert max(masked.values()) < 1e-5, masked
    unmasked = ch04.mask_exactness(kind, padding, False, features, units=4)
    assert max(unmasked.values()) > 1e-3, unmasked


def test_mask_exactness_result_summary():
    result = ch04.MaskExactness({("a", "mask"): {"outputs": 0.0, "states": 1e-7},
                                 ("a", "no mask"): {"outputs": 0.3, "states": 0.1},
                                 ("b", "no mask"): {"outputs": 0.01, "states": 0.02}})
    assert result.worst_masked == 1e-7 and result.best_unmasked == 0.02


def test_padded_steps_repeat_or_stay_zero_and_bidirectional_gives_zeros():
    after = ch04.padded_step_outputs("post", "gru")
    before = ch04.padded_step_outputs("pre", "gru")
    np.testing.assert_array_equal(after[2:], np.repeat(after[1:2], 3, axis=0))
    np.testing.assert_array_equal(before[:3], 0.0)
    np.testing.assert_allclose(before[3:], after[:2], atol=1e-6)
    np.testing.assert_array_equal(ch04.padded_step_outputs("post", zero_output_for_mask=True)[2:],
                                  0.0)
    both = ch04.padded_step_outputs("post", "bi_gru")
    assert both.shape == (5, 8) and (both[2:] == 0).all() and np.abs(both[:2]).max() > 0
    np.testing.assert_array_equal(ch04.all_padding_row_output("bi_lstm"), 0.0)
    with pytest.raises(ValueError, match="kind must be"):
        ch04.padded_step_outputs("post", "simple_rnn")


def test_mask_propagation_table():
    table = ch04.mask_propagation()
    assert table["TimeDistributed(Dense)"]["keeps_mask"]
    assert not table["Lambda(lambda x: 2 * x)"]["keeps_mask"]
    assert table["custom Layer, supports_masking=True"]["keeps_mask"]


def test_batching_benchmark_times_every_strategy_and_counts_its_batches():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "batching_speed.py"
    spec = importlib.util.spec_from_file_location("batching_speed", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    sequences = _sequences(16, high=30)
    times = bench.epoch_times(sequences, np.arange(16) % 2, batch_size=4, units=4,
                              embedding_dim=4, strategies=("global_max", "bucketed"),
                              repeats=2)
    assert set(times.seconds) == {"global_max", "bucketed"}
    assert all(len(v) == 2 and min(v) > 0 for v in times.seconds.values())
    assert times.counts["global_max"].timesteps >= times.counts["bucketed"].timesteps
    assert times.ratio("bucketed")[1] <= times.ratio("bucketed")[0] <= times.ratio("bucketed")[2]


def test_tagging_batch_repeats_each_label_over_the_padded_steps():
    x, y = ch04.sentiment_tagging_batch([[3, 4, 5], [6]], np.array([1, 0]), n=2)
    np.testing.assert_array_equal(x, [[3, 4, 5], [6, 0, 0]])
    np.testing.assert_array_equal(y, [[1, 1, 1], [0, 0, 0]])


def test_review_ids_encode_with_the_shared_vocabulary(monkeypatch, tmp_path):
    from rnncourse.chapters import ch04_batching

    monkeypatch.setattr(ch04_batching, "load_movie_reviews", lambda kind: (
        ["a b a", "c a", "b b d e"], np.array([1, 0, 1], "int32")))
    ids, labels = ch04.review_ids("sentences", max_words=4, seed=config.seed(0))
    assert len(ids) == 3 and sorted(labels.tolist()) == [0, 1, 1]
    assert all(a.dtype == np.int32 and a.min() >= 1 and a.max() < 4 for a in ids)

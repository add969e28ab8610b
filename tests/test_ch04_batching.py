"""Tests of chapter 4's module (rnncourse.chapters.ch04_batching) and its benchmark, tiny sizes.

The masking probes run on the chapter's page, where nbval checks their claims."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from rnncourse import batching, config
from rnncourse.chapters import ch04_batching as ch04


def _sequences(n=24, seed=0, low=1, high=6):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 20, size=rng.integers(low, high)).astype("int32") for _ in range(n)]


def test_recipe_is_shared_and_sizes_shrink():
    assert ch04.SIZES["ci"].sentences < ch04.SIZES["full"].sentences
    assert ch04.RECIPE.strategies == batching.STRATEGIES


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


def test_review_ids_encode_with_the_shared_vocabulary(monkeypatch, tmp_path):
    from rnncourse.chapters import ch04_batching

    monkeypatch.setattr(ch04_batching, "load_movie_reviews", lambda kind: (
        ["a b a", "c a", "b b d e"], np.array([1, 0, 1], "int32")))
    ids, labels = ch04.review_ids("sentences", max_words=4, seed=config.seed(0))
    assert len(ids) == 3 and sorted(labels.tolist()) == [0, 1, 1]
    assert all(a.dtype == np.int32 and a.min() >= 1 and a.max() < 4 for a in ids)

"""Tests of the chapter-5 experiments (rnncourse.chapters.ch05_tbptt) and its figures."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import config, models, tbptt
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


def test_compile_char_lm_reports_nats_per_real_step():
    config.set_seed(0)
    model = ch05.compile_char_lm(models.char_lm(11, 8, 4))
    x = np.random.default_rng(0).integers(0, 11, (2, 6)).astype(np.int32)
    weight = np.ones((2, 6), np.float32)
    weight[:, 3:] = 0.0  # padding: must not dilute the mean
    padded = model.evaluate(x, x, sample_weight=weight, verbose=0)
    real = model.evaluate(x[:, :3], x[:, :3], verbose=0)
    assert padded == pytest.approx(real, rel=1e-5)


def test_language_models_on_a_small_text(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_PROGRESS", "0")
    s = ch05.settings()
    sizes = ch05.Sizes(plays=1, characters=6_000, sequence_length=50, units=16, epochs=1,
                       sample_characters=10, memory_lengths=(25,), memory_units=8,
                       memory_sequences=2)
    setup = type(s)(s.scale, s.seed, sizes, s.recipe)
    chars = ch05.char_data(setup)
    assert chars.x_train.shape[1] == 50 and len(chars.x_val) >= 1
    stateful = ch05.run_stateful(chars, setup)
    explicit = ch05.run_explicit(chars, setup)
    for run in (stateful, explicit):
        assert len(run.train_bits) == 1 and np.isfinite(run.validation_bits)
    generator = tbptt.inference_model(stateful.model)
    assert len(tbptt.generate(generator, chars.vocab, "A", 5)) == 5
    assert has_data(tbptt_plots.plot_bits_per_char([stateful, explicit], chars.unigram_bits))


def test_figures_have_data():
    x = np.random.default_rng(0).integers(0, 11, (5, 9))
    assert has_data(tbptt_plots.plot_window_layout(tbptt.stateful_batches(x, x, 4, 2)))
    mem = ch05.MemoryResult((50, 100), (2e6, 4e6), (1e6, 1e6), (2e6, 4e6), 25, 4, 8)
    assert has_data(tbptt_plots.plot_memory(mem))

"""Chapter 2's module: the contract's scales and the constant predictor's error.

Everything else the chapter runs (the adding-problem runs, the probes of Keras layers, the
dropout experiment) is on its page, and nbval runs it there.
"""

import pytest

from rnncourse import data
from rnncourse.chapters import ch02_gru_lstm as ch02


def test_full_scale_has_the_longer_sequences(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    ci = ch02.settings()
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    full = ch02.settings()
    assert full.sizes.timesteps == 100 and ci.sizes.timesteps < full.sizes.timesteps


def test_constant_predictor_error_matches_a_large_sample_of_the_adding_problem():
    # the page's 4-standard-error tolerance rests on the variance 7/180 of (y - 1)**2
    _, y = data.adding_problem(200_000, 4, seed=0)
    squared = (y[:, 0] - 1.0) ** 2
    assert squared.mean() == pytest.approx(ch02.BASELINE_MSE, abs=2e-3)
    assert squared.var() == pytest.approx(ch02.SQUARED_ERROR_VARIANCE, rel=0.02)

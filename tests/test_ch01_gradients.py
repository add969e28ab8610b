"""rnncourse.chapters.ch01_gradients: the chapter's sizes (its measurements are on its page)."""

import dataclasses

import pytest

from rnncourse.chapters import ch01_gradients as ch01


def test_settings_scale_sizes_not_recipe(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    ci = ch01.settings()
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    full = ch01.settings()
    # the trainings are the CI scale's, whose claims hold over 20 seeds; the full scale
    # averages over more weight draws and trains the review demo longer
    assert ci.train_epochs <= full.train_epochs and ci.weight_seeds < full.weight_seeds
    assert ci.review_epochs < full.review_epochs
    assert ci.timesteps == full.timesteps == 100  # the chapter's claims are about T = 100
    assert ci.recipe is full.recipe
    with pytest.raises(dataclasses.FrozenInstanceError):
        ci.recipe.learning_rate = 1.0


def test_sweep_holds_the_singular_values_the_page_asserts_on():
    # the page asserts on sigma_1 < 1, <= 1, and on the draws that grew at 1.1, 1.5 and 2
    sigmas = ch01.RECIPE.sigmas
    assert list(sigmas) == sorted(sigmas) and len(set(sigmas)) == len(sigmas)
    assert {0.9, 1.0, 1.1, 1.5, 2.0} <= set(sigmas) and min(sigmas) < 1

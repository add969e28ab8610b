"""rnncourse.chapters.ch01_gradients: the chapter's experiments on tiny sizes."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest

from rnncourse import config, gradients, models, plots
from rnncourse.chapters import ch01_gradients as ch01
from rnncourse.plots import gradients as gradient_plots

TINY = ch01.Sizes(timesteps=12, units=4, probe_examples=6, weight_seeds=2, train_examples=64,
                  train_timesteps=30, train_epochs=2, review_sentences=40, review_epochs=1)


@pytest.fixture(scope="module")
def setup():
    return dataclasses.replace(ch01.settings(), sizes=TINY)


@pytest.fixture(scope="module")
def batch(setup):
    return ch01.probe_batch(setup)


def test_settings_scale_sizes_not_recipe(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    ci = ch01.settings()
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    full = ch01.settings()
    assert ci.recipe == full.recipe
    assert ci.train_epochs < full.train_epochs and ci.weight_seeds < full.weight_seeds
    assert ci.timesteps == full.timesteps == 100  # the chapter's claims are about T = 100


def test_seeds_follow_the_knob(monkeypatch, setup):
    monkeypatch.setenv("RNNCOURSE_SEED", "0")
    x0, _ = ch01.probe_batch(setup)
    monkeypatch.setenv("RNNCOURSE_SEED", "2")
    x2, _ = ch01.probe_batch(setup)
    assert x0.shape == (6, 12, 2) and not np.array_equal(x0, x2)
    assert ch01._weight_seeds(setup) == (2010, 2011)


def test_spectrum_curves_obey_the_bounds(batch, setup):
    x, y = batch
    curves = ch01.run_spectrum_curves(x, y, setup)
    assert isinstance(curves, ch01.GradientCurves) and set(curves.norms) == set(ch01.SPECTRA)
    assert all(v.shape == (2, 12) for v in curves.norms.values())
    assert np.all(curves.ratios("tanh, sigma_1 = 0.9") <= 0.9 ** 11)
    np.testing.assert_allclose(curves.ratios("linear, sigma_1 = 1.1"), 1.1 ** 11, rtol=1e-3)
    table = curves.ratio_table()
    assert len(table) == 3 and table[0]["draws"] == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        curves.wrt = "inputs"


def test_singular_value_sweep_equals_keras_norms(batch, setup):
    x, y = batch
    sweep = ch01.run_singular_value_sweep(x, y, dataclasses.replace(
        setup, recipe=dataclasses.replace(setup.recipe, sigmas=(0.5, 1.5))))
    assert sweep.sigmas == (0.5, 1.5) and sweep.ratios["tanh"].shape == (2, 2)
    # the first draw at sigma 1.5, recomputed on the Keras model
    seed = ch01._weight_seeds(setup)[0]
    model = models.sequence_regressor("simple_rnn", 4, 2, activation="linear", seed=seed)
    gradients.set_recurrent_spectrum(model.get_layer("simple_rnn"), 1.5, seed=seed + 1)
    keras_ratio = gradients.early_to_late_ratio(gradients.state_gradient_norms(model, x, y))
    assert sweep.ratios["linear"][0, 1] == pytest.approx(keras_ratio, rel=1e-4)
    assert sweep.largest("linear", 0.5) <= 0.5 ** 11 and sweep.smallest("linear", 1.5) > 1


def test_initialisations_and_cells(batch, setup):
    x, y = batch
    inits = ch01.run_initialisations(x, y, setup)
    assert set(inits.norms) == set(ch01.INITIALISATIONS)
    irnn = inits.ratios("relu, identity (IRNN)")
    assert np.all((0.1 < irnn) & (irnn < 10))
    cells = ch01.run_cells(x, y, setup, cells=("simple_rnn", "lstm"))
    opened = ch01.run_cells(x, y, setup, cells=("lstm",), gate_bias=5.0)
    assert set(cells.norms) == {"simple_rnn (default init)", "lstm (default init)"}
    assert cells.wrt == "inputs"
    assert opened.geometric_mean("lstm (gate open)") > cells.geometric_mean("lstm (default init)")


def test_clipping_runs_and_divergence(setup):
    # the explosion needs the chapter's width: an IRNN of 4 units stays tame at lr 0.05
    result = ch01.run_clipping(dataclasses.replace(
        setup, sizes=dataclasses.replace(TINY, units=ch01.SIZES["ci"].units)))
    assert isinstance(result, ch01.ClippingResult) and len(result.runs) == 3
    none, clipped, by_value = result.runs
    assert [r.label for r in result.runs] == ["no clipping", "global_clipnorm=1", "clipvalue=0.1"]
    assert none.diverged and not none.finite  # the IRNN at lr 0.05 blows up
    assert np.isnan(none.end_loss)  # no final weights to evaluate
    assert clipped.finite and not clipped.diverged and np.isfinite(clipped.end_loss)
    assert len(clipped.losses) == 2 and len(clipped.step_norms) == 2 * 64 // 32
    assert result.run("global_clipnorm=1") is clipped
    assert 0.1 < result.mean_predictor_loss < 0.3
    with pytest.raises(KeyError, match="no run labelled"):
        result.run("clipnorm=3")
    fig = gradient_plots.plot_training_runs(result)
    assert plots.has_data(fig)
    plt.close(fig)


def test_fit_regressor_labels_and_rejects_unknown_clipping():
    x = np.zeros((8, 5, 2), "float32")
    y = np.zeros((8, 1), "float32")
    model = models.sequence_regressor("simple_rnn", units=2, seed=0)
    run = ch01.fit_regressor(model, x, y, epochs=1, learning_rate=0.01, batch_size=4,
                             global_clipnorm=0.4406740903)
    assert run.label == "global_clipnorm=0.44" and run.finite and len(run.step_norms) == 2
    with pytest.raises(ValueError, match="unknown clipping"):
        ch01.fit_regressor(model, x, y, epochs=1, learning_rate=0.1, clip=1.0)


def test_review_batch(setup):
    reviews = ch01.review_batch(setup)
    assert reviews.ids.shape == (40, setup.review_maxlen) and reviews.ids.dtype == np.int32
    assert reviews.targets.shape == (40, 1) and set(np.unique(reviews.targets)) <= {0.0, 1.0}
    assert reviews.ids.max() < len(reviews.vocabulary) <= setup.review_vocabulary
    assert config.seed(5) >= 0


def test_print_table(capsys):
    ch01.print_table([{"a": "1", "bb": 2}, {"a": "333", "bb": 4}])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["a", "bb"] and len(lines) == 3
    with pytest.raises(ValueError, match="no rows"):
        ch01.print_table([])


def test_regularizer_runs_share_initial_weights_and_data(setup):
    result = ch01.run_regularizer(setup)
    before, without, regularized = ch01.REGULARIZER_RUNS
    assert isinstance(result, ch01.RegularizerResult) and result.alpha == setup.omega_alpha
    assert set(result.curves.norms) == set(ch01.REGULARIZER_RUNS)
    assert all(v.shape == (2, 12) for v in result.curves.norms.values())
    assert set(result.end_losses) == {without, regularized}
    assert all(np.all(np.isfinite(v)) for v in result.end_losses.values())
    np.testing.assert_allclose(result.log_ratio_gain(),
                               result.log_ratios(regularized) - result.log_ratios(without))
    # 4 SGD steps with Omega in the loss lower Omega below the plain run's, draw by draw
    assert np.all(result.omegas[regularized] < result.omegas[without])
    assert len(result.table()) == 2 and result.loss_change().shape == (2,)
    # the untrained draws are the chapter's weight draws
    x, y = ch01.probe_batch(setup)
    fresh = models.sequence_regressor("simple_rnn", 4, 2, seed=ch01._weight_seeds(setup)[0])
    np.testing.assert_allclose(result.curves.norms[before][0],
                               gradients.state_gradient_norms(fresh, x, y), rtol=1e-4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alpha = 0.0

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
    assert ci.train_epochs < full.train_epochs and ci.weight_seeds < full.weight_seeds
    assert ci.timesteps == full.timesteps == 100  # the chapter's claims are about T = 100


def test_seeds_follow_the_knob(monkeypatch, setup):
    monkeypatch.setenv("RNNCOURSE_SEED", "0")
    x0, _ = ch01.probe_batch(setup)
    monkeypatch.setenv("RNNCOURSE_SEED", "2")
    x2, _ = ch01.probe_batch(setup)
    assert x0.shape == (6, 12, 2) and not np.array_equal(x0, x2)
    assert ch01.weight_seeds(setup) == (2010, 2011)


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
    seed = ch01.weight_seeds(setup)[0]
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


def test_clipping_data_and_training_run(setup):
    x, y = ch01.clipping_data(setup)
    assert x.shape == (64, 30, 2) and y.shape == (64, 1)
    np.testing.assert_array_equal(x, ch01.clipping_data(setup)[0])  # the same every call
    assert 0.1 < float(np.mean((y - y.mean()) ** 2)) < 0.3  # the adding problem: ~1/6
    exploded = ch01.TrainingRun("no clipping", (2.0, float("nan")), (300.0, float("inf")),
                                diverged=True)
    kept = ch01.TrainingRun("global_clipnorm=1", (2.0, 0.2), (300.0, 0.5), diverged=False,
                            end_loss=0.19)
    assert not exploded.finite and np.isnan(exploded.end_loss) and kept.finite
    assert kept.final_loss == 0.2
    fig = gradient_plots.plot_training_runs([exploded, kept], loss_baseline=1 / 6)
    assert plots.has_data(fig)
    plt.close(fig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        kept.label = "other"


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


def test_regularizer_result_tables_and_differences():
    before, without, regularized = ch01.REGULARIZER_RUNS
    flat, falling = np.ones((2, 5)), np.array([[1e-3, 1e-2, 0.1, 0.5, 1.0]] * 2)
    result = ch01.RegularizerResult(
        ch01.GradientCurves({before: falling, without: falling / [[10, 1, 1, 1, 1]],
                             regularized: flat}),
        {without: np.array([0.2, 0.18]), regularized: np.array([0.19, 0.18])},
        {label: np.array([1.0, 2.0]) for label in ch01.REGULARIZER_RUNS}, 1.0, 1 / 6)
    np.testing.assert_allclose(result.log_ratios(before), [-3, -3])
    np.testing.assert_allclose(result.log_ratio_gain(), [4, 4])  # -4 -> 0
    np.testing.assert_allclose(result.loss_change(), [-0.01, 0.0], atol=1e-12)
    table = result.table()
    assert len(table) == 2 and table[0]["reg."] == "0.00" and table[0]["plain"] == "-4.00"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alpha = 0.0

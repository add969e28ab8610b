"""Chapter 2's experiment module: contract, the baseline's sampling error, tiny runs, probes."""

import dataclasses
import math

import numpy as np
import pytest

from rnncourse import data
from rnncourse.chapters import ch02_gru_lstm as ch02


def _tiny(**sizes):
    setup = ch02.settings()
    values = dict(timesteps=6, train_examples=64, test_examples=32, epochs=2, units=4,
                  probe_examples=16, overfit_epochs=2, overfit_repeats=2, overfit_units=3)
    values.update(sizes)
    return dataclasses.replace(setup, sizes=ch02.Sizes(**values))


def test_scales_share_the_recipe_and_differ_in_sizes(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    ci = ch02.settings()
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    full = ch02.settings()
    assert ci.recipe == full.recipe == ch02.RECIPE
    assert full.sizes.timesteps == 100 and ci.sizes.timesteps < full.sizes.timesteps


def test_constant_mse_tolerance_is_four_standard_errors_of_the_sampled_baseline():
    # the formula's variance 7/180 matches a large sample of the adding problem's targets
    _, y = data.adding_problem(200_000, 4, seed=0)
    squared = (y[:, 0] - 1.0) ** 2
    assert squared.mean() == pytest.approx(ch02.BASELINE_MSE, abs=2e-3)
    assert squared.var() == pytest.approx(ch02.SQUARED_ERROR_VARIANCE, rel=0.02)
    assert ch02.constant_mse_tolerance(1000) == pytest.approx(4 * math.sqrt(7 / 180 / 1000))
    assert ch02.constant_mse_tolerance(500, standard_errors=2) == pytest.approx(
        2 * math.sqrt(7 / 180 / 500))


@pytest.mark.parametrize("call,fragment", [
    (lambda: ch02.constant_mse_tolerance(0), "examples must be a positive int"),
    (lambda: ch02.constant_mse_tolerance(10, standard_errors=0), "standard_errors must be > 0"),
])
def test_constant_mse_tolerance_refuses_bad_input(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_train_adding_records_mse_gradients_and_steps():
    setup = _tiny()
    run = ch02.train_adding("lstm", setup)
    assert run.steps_per_epoch == ch02.steps(setup, 1) == 2
    assert 1 <= len(run.test_mse) <= 2 and all(np.isfinite(run.test_mse))
    assert len(run.gradient_norms) == run.steps
    assert run.initial_norms.shape == run.trained_norms.shape == (6,)
    assert run.learned == (run.final_mse < run.target)
    assert run.steps_to_learn == (run.steps if run.learned else math.inf)
    assert run.mse_after(10**6) == run.final_mse and run.mse_after(0) == run.test_mse[0]
    assert np.all(run.initial_norms > 0) and np.isfinite(run.initial_ratio)


def test_training_stops_once_below_the_target():
    setup = _tiny(epochs=3)
    setup = dataclasses.replace(setup, recipe=dataclasses.replace(setup.recipe,
                                                                  target_fraction=100.0))
    run = ch02.train_adding("gru", setup)
    assert len(run.test_mse) == 1 and run.learned and run.steps_to_learn == run.steps


def test_run_adding_returns_every_cell_and_the_baseline():
    result = ch02.run_adding(_tiny(epochs=1), cells=("simple_rnn", "gru"))
    assert set(result.runs) == {"simple_rnn", "gru"} and result.budget == 2
    assert result.tolerance == pytest.approx(ch02.constant_mse_tolerance(32))
    assert abs(result.constant_mse - ch02.BASELINE_MSE) < 0.2


def test_eligibility_table_marks_exactly_the_safe_settings():
    table = ch02.eligibility_table()
    eligible = {label for label, ok, reason in table if ok and not reason}
    assert eligible == {"LSTM(64)", "LSTM(64, dropout=0.2)", "LSTM(64, go_backwards=True)",
                        "Bidirectional(LSTM(64))", "GRU(64)"}
    assert all(reason for _, ok, reason in table if not ok)


def test_usage_shapes_and_dropout_act_only_in_training():
    shapes = ch02.usage_shapes(batch=2, timesteps=3, features=4, units=5)
    assert shapes["return_sequences"] == (2, 3, 5) and shapes["bidirectional"] == (2, 10)
    drop = ch02.dropout_difference(rate=0.5)
    assert drop["dropout, inference"] < 1e-6 and drop["recurrent_dropout, inference"] < 1e-6
    assert drop["dropout, training"] > 1e-3 and drop["recurrent_dropout, training"] > 1e-3


def _sentences(n_train=24, n_val=16, vocab=20, width=6, dim=8):
    """Tiny right-padded id sequences and a random table, in place of the real sentences."""
    rng = np.random.default_rng(0)

    def ids(n):
        x = rng.integers(2, vocab, size=(n, width)).astype("int32")
        lengths = rng.integers(2, width + 1, size=n)
        x[np.arange(width)[None, :] >= lengths[:, None]] = 0
        return x

    matrix = rng.normal(size=(vocab, dim)).astype("float32")
    matrix[0] = 0.0
    return ch02.SentenceData(ids(n_train), rng.integers(0, 2, n_train).astype("float32"),
                             ids(n_val), rng.integers(0, 2, n_val).astype("float32"),
                             matrix, split_seed=0)


def test_overfit_model_sets_each_kind_of_dropout_and_freezes_the_table():
    matrix = _sentences().matrix
    layers = {v: ch02.overfit_model(v, matrix, _tiny(), seed=1) for v in ch02.REGULARISERS}
    lstm = {v: m.get_layer("lstm") for v, m in layers.items()}
    assert (lstm["none"].dropout, lstm["none"].recurrent_dropout) == (0.0, 0.0)
    assert (lstm["dropout"].dropout, lstm["dropout"].recurrent_dropout) == (0.5, 0.0)
    assert (lstm["recurrent_dropout"].dropout, lstm["recurrent_dropout"].recurrent_dropout) == (
        0.0, 0.5)
    assert not layers["none"].get_layer("embedding").trainable
    for v in ch02.REGULARISERS:  # same seed, same initial weights in every variant
        for a, b in zip(lstm[v].get_weights(), lstm["none"].get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="variant must be one of"):
        ch02.overfit_model("dropconnect", matrix, _tiny())


def test_run_overfitting_records_curves_per_seed_and_dropout_changes_them(monkeypatch):
    sentences = _sentences()
    result = ch02.run_overfitting(_tiny(), sentences, variants=("none", "dropout"))
    assert result.variants == ("none", "dropout") and len(result.seeds) == 2
    assert result.cudnn == {"none": True, "dropout": True}
    assert (result.train_sentences, result.val_sentences) == (24, 16)
    for curves in (result.train_loss, result.val_loss, result.val_accuracy):
        assert all(c.shape == (2, 2) and np.all(np.isfinite(c)) for c in curves.values())
    assert result.gap("none").shape == result.best_val_loss("dropout").shape == (2,)
    np.testing.assert_allclose(result.gap("dropout"), result.val_loss["dropout"][:, -1]
                               - result.train_loss["dropout"][:, -1])
    mean, spread = result.paired("none", "dropout")
    assert np.isfinite(mean) and spread >= 0
    assert not np.allclose(result.train_loss["none"], result.train_loss["dropout"])
    # the second seed's run, restarted from fresh weights, equals a fresh model's run
    second = result.seeds[1]
    monkeypatch.setattr(ch02.config, "seeds", lambda count, offset=0: (second,))
    alone = ch02.run_overfitting(_tiny(), sentences, variants=("dropout",))
    np.testing.assert_allclose(alone.val_loss["dropout"][0], result.val_loss["dropout"][1],
                               rtol=1e-5)


def test_zero_dropout_rate_reproduces_the_plain_run():
    setup = _tiny(overfit_repeats=1)
    setup = dataclasses.replace(setup, recipe=dataclasses.replace(setup.recipe,
                                                                  dropout_rate=0.0))
    result = ch02.run_overfitting(setup, _sentences())
    assert result.cudnn == {"none": True, "dropout": True, "recurrent_dropout": True}
    for variant in ("dropout", "recurrent_dropout"):
        np.testing.assert_allclose(result.train_loss[variant], result.train_loss["none"],
                                   rtol=1e-5)
        np.testing.assert_allclose(result.val_loss[variant], result.val_loss["none"],
                                   rtol=1e-5)

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


def _adding_run(cell, mse, steps_per_epoch=10):
    norms = np.ones(4)
    return ch02.AddingRun(cell, steps_per_epoch, tuple(mse), target=0.05, gradient_norms=(),
                          initial_norms=norms, trained_norms=norms, parameters=7)


@pytest.mark.parametrize("simple_mse, expected", [
    ((0.2, 0.16, 0.04), "learned the lag after 30 steps, 1.5 times as many"),
    ((0.2, 0.16, 0.15, 0.15), "did not learn the lag within 40 steps (test MSE 0.150)"),
])
def test_adding_tables_and_report_read_the_runs(simple_mse, expected):
    runs = {"simple_rnn": _adding_run("simple_rnn", simple_mse),
            "gru": _adding_run("gru", (0.1, 0.04)), "lstm": _adding_run("lstm", (0.04,))}
    result = ch02.AddingResult(timesteps=4, budget=40, runs=runs, constant_mse=0.16,
                               tolerance=0.01)
    rows = result.rows()
    assert [r["cell"] for r in rows] == ["simple_rnn", "gru", "lstm"]
    assert rows[1]["Adam steps to MSE < 1/30"] == "20"
    setup = ch02.settings()
    row = result.recipe_row(setup)
    assert row["budget (steps)"] == 40 and row["gru steps"] == "20"
    assert row["simple_rnn steps"] == ("30" if runs["simple_rnn"].learned else "-")
    report = result.report().splitlines()
    # when both gated cells had learned (20 steps), the SimpleRNN was at its epoch-2 MSE
    assert report[0].startswith("after 20 steps") and "MSE 0.160 (96% of" in report[0]
    assert report[1].endswith(expected)


def test_overfit_rows_and_comparisons_are_the_paired_differences():
    val = {"none": np.array([[0.6, 0.9], [0.6, 0.8]]), "dropout": np.array([[0.6, 0.7]] * 2),
           "recurrent_dropout": np.array([[0.6, 0.8], [0.6, 0.75]])}
    train = {v: np.full((2, 2), 0.5) for v in val}
    result = ch02.OverfitResult(tuple(val), (10, 11), 0.5, train, val,
                                {v: np.full((2, 2), 0.6) for v in val},
                                {"none": True, "dropout": True, "recurrent_dropout": False},
                                24, 16)
    rows = result.rows()
    assert len(rows) == 6 and rows[0]["seed"] == "10" and rows[4]["cuDNN"] == "**no**"
    assert rows[1]["gap at the end"] == pytest.approx(0.3)
    comparisons = result.comparisons()
    assert list(comparisons) == [f"{label}, {a} - {b}" for label, _, a, b in ch02.COMPARISONS]
    for label, measure, a, b in ch02.COMPARISONS:
        assert comparisons[f"{label}, {a} - {b}"] == result.paired(a, b, measure)
    assert comparisons["gap, none - dropout"][0] == pytest.approx(0.15)
    assert result.mean_gap() == pytest.approx({"none": 0.35, "dropout": 0.2,
                                               "recurrent_dropout": 0.275})
    report = result.report(epochs=2).splitlines()
    assert report[0].startswith("p = 0.5, 24 training and 16 validation sentences, 2 epochs")
    assert report[2] == "gap, none - dropout: +0.150 ± 0.071 (+2.1 sd)"
    # every run's best validation loss is 0.6: a difference without spread, said so
    assert report[5] == ("best validation loss, none - dropout: +0.000 ± 0.000 "
                         "(no spread over seeds)")

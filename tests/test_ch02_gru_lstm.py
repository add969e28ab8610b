"""Chapter 2's experiment module: contract, the baseline's sampling error, tiny runs, probes."""

import math

import numpy as np
import pytest

from rnncourse import data
from rnncourse.chapters import ch02_gru_lstm as ch02


def test_full_scale_has_the_longer_sequences(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    ci = ch02.settings()
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    full = ch02.settings()
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


@pytest.mark.parametrize("call,error,argument", [
    (lambda: ch02.constant_mse_tolerance(0), ValueError, "examples"),
    (lambda: ch02.constant_mse_tolerance(2.5), TypeError, "examples"),
    (lambda: ch02.constant_mse_tolerance(10, standard_errors=0), ValueError, "standard_errors"),
])
def test_constant_mse_tolerance_refuses_bad_input(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument


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


def _adding_run(cell, mse, every=10):
    norms = np.ones(4)
    return ch02.AddingRun(cell, every, tuple(mse), target=0.05, gradient_norms=(),
                          initial_norms=norms, trained_norms=norms, parameters=7)


def test_adding_run_counts_steps_at_its_measurement_resolution():
    run = _adding_run("gru", (0.2, 0.1, 0.04), every=10)
    assert run.steps == 30 and run.learned and run.steps_to_learn == 30
    assert run.mse_after(25) == 0.1 and run.mse_after(0) == 0.2 and run.mse_after(999) == 0.04
    late = _adding_run("simple_rnn", (0.2, 0.16), every=10)
    assert not late.learned and late.steps_to_learn == math.inf and late.steps == 20


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

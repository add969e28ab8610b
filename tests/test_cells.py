"""Scratch cells equal Keras' cells; parameter counts; adding-problem helpers; figures."""

import numpy as np
import pytest

from rnncourse import cells, plots
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("gru", True),
                                              ("gru", False), ("lstm", True)])
def test_scratch_cell_equals_keras(cell, reset_after):
    result = cells.compare_with_keras(cell, units=6, features=4, batch=5, timesteps=9,
                                      reset_after=reset_after, seed=3)
    assert result.outputs < 1e-5, result
    assert result.states < 1e-5, result
    assert result.gradients < 1e-5, result


def test_scratch_layer_matches_keras_without_mask_and_backwards():
    layer = keras.layers.LSTM(5, return_sequences=True, go_backwards=True)
    x = np.random.default_rng(0).normal(size=(3, 7, 4)).astype(np.float32)
    expected = layer(x).numpy()
    scratch = cells.from_keras(layer)
    np.testing.assert_allclose(scratch(x).numpy(), expected, atol=1e-5)


def test_fresh_lstm_cell_has_unit_forget_bias():
    layer = keras.layers.RNN(cells.LSTMCell(3))
    layer.build((None, None, 2))
    reference = keras.layers.LSTM(3)
    reference.build((None, None, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), reference.cell.bias.numpy())
    np.testing.assert_array_equal(layer.cell.bias.numpy(),
                                  np.r_[np.zeros(3), np.ones(3), np.zeros(6)])


def test_padded_steps_do_not_change_the_state():
    x, mask = cells.random_padded_batch(4, 6, 3, seed=1)
    layer = keras.layers.RNN(cells.GRUCell(5), return_state=True)
    _, state = layer(x, mask=mask)
    # the same sequences, cut to their own lengths, one at a time
    for row in range(4):
        length = int(mask[row].sum())
        _, alone = layer(x[row:row + 1, :length])
        np.testing.assert_allclose(state[row].numpy(), alone[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("cell,kwargs", [("simple_rnn", {}), ("gru", {}),
                                         ("gru", {"reset_after": False}), ("lstm", {})])
@pytest.mark.parametrize("input_dim,units", [(1, 1), (7, 13)])
def test_parameter_count_matches_keras(cell, kwargs, input_dim, units):
    layer = cells.KERAS_LAYERS[cell](units, **kwargs)
    layer.build((None, None, input_dim))
    assert cells.parameter_count(cell, input_dim, units, **kwargs) == layer.count_params()


def test_parameter_count_formulas_from_the_chapter():
    assert cells.parameter_count("lstm", 2, 64) == 4 * (64 * (2 + 64) + 64)
    assert cells.parameter_count("gru", 2, 64) == 3 * (64 * (2 + 64) + 2 * 64)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="cell must be one of"):
        cells.parameter_count("rnn", 2, 3)
    with pytest.raises(ValueError, match="units must be a positive int"):
        cells.LSTMCell(0)
    with pytest.raises(ValueError, match="expected a keras.layers.SimpleRNN"):
        cells.from_keras(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="activation='tanh'"):
        cells.from_keras(keras.layers.LSTM(3, activation="relu"), input_dim=2)
    with pytest.raises(ValueError, match="not built"):
        cells.from_keras(keras.layers.GRU(3))
    a = keras.layers.GRU(3, reset_after=True)
    a.build((None, None, 2))
    b = keras.layers.RNN(cells.GRUCell(3, reset_after=False))
    b.build((None, None, 2))
    with pytest.raises(ValueError, match="reset_after"):
        cells.copy_weights(a, b)
    with pytest.raises(ValueError, match="built first"):
        cells.copy_weights(a, keras.layers.LSTM(3))
    with pytest.raises(ValueError, match="'lstm' or 'gru'"):
        cells.kernel_speed("simple_rnn")


def test_random_padded_batch_is_right_padded_and_zero_after_length():
    x, mask = cells.random_padded_batch(8, 5, 2, seed=0)
    lengths = mask.sum(axis=1)
    assert lengths.min() >= 1 and lengths.max() == 5
    np.testing.assert_array_equal(mask, np.arange(5)[None, :] < lengths[:, None])
    assert np.all(x[~mask] == 0)


def test_adding_model_shapes_and_clipping():
    model = cells.adding_model("gru", units=4, timesteps=6, clipnorm=1.0)
    assert model.output_shape == (None, 1)
    assert model.optimizer.clipnorm == 1.0
    with pytest.raises(ValueError, match="cell must be one of"):
        cells.adding_model("rnn", 4)


def test_train_adding_records_one_mse_per_epoch_and_gradient_norms():
    settings = cells.Settings(timesteps=6, n_train=64, n_test=32, epochs=2, batch_size=32,
                              units=4, learning_rate=1e-2)
    assert settings.steps == 4
    result = cells.train_adding("lstm", settings, seed=0, log_gradients=True)
    assert len(result.test_mse) == 2 and all(np.isfinite(result.test_mse))
    assert len(result.gradient_norms) == settings.steps
    # the recorded MSE is the model's test MSE
    from rnncourse.data import adding_problem

    x_test, y_test = adding_problem(32, 6, seed=1)
    mse = float(np.mean((result.model.predict(x_test, verbose=0) - y_test) ** 2))
    assert result.final_mse == pytest.approx(mse, rel=1e-4)


def test_settings_differ_by_scale(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    ci = cells.Settings.current()
    monkeypatch.setenv("RNNCOURSE_SCALE", "full")
    full = cells.Settings.current()
    assert full.timesteps == 100 and ci.timesteps < full.timesteps


def test_kernel_speed_times_a_step():
    timing = cells.kernel_speed("gru", units=4, batch=2, timesteps=5, features=3, repeats=2)
    assert timing.seconds > 0 and timing.kernel in ("generic", "cudnn")
    if not tf.config.list_logical_devices("GPU"):
        assert timing.kernel == "generic"


def test_figures_have_data():
    from rnncourse.plots import cells as cell_plots

    curves = {"lstm": [0.15, 0.01], "gru": [0.12, 0.005], "simple_rnn": [0.17, 0.16]}
    figures = [
        cell_plots.plot_learning_curves(curves, cells.BASELINE_MSE, timesteps=20),
        cell_plots.plot_gradient_through_time({"lstm": np.linspace(1, 2, 5)}),
        cell_plots.plot_gradient_norms({"lstm": [1.0, 3.0, 0.5]}),
        cell_plots.plot_kernel_speed({"generic": 0.01, "cuDNN": 0.001}),
    ]
    for fig in figures:
        assert plots.has_data(fig)
        assert fig.axes[0].get_ylabel() and fig._suptitle is not None
    with pytest.raises(ValueError, match="empty"):
        cell_plots.plot_learning_curves({}, 1 / 6, 20)


def test_cudnn_speedup_is_none_without_gpu():
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible")
    assert cells.cudnn_speedup("lstm", units=4, batch=2, timesteps=3, features=2) is None


def test_eligibility_table_marks_exactly_the_safe_settings():
    table = cells.eligibility_table()
    eligible = {label for label, ok, reason in table if ok and not reason}
    assert eligible == {"LSTM(64)", "LSTM(64, dropout=0.2)", "LSTM(64, go_backwards=True)",
                        "Bidirectional(LSTM(64))", "GRU(64)"}
    assert all(reason for _, ok, reason in table if not ok)


def test_usage_shapes_and_dropout_act_only_in_training():
    shapes = cells.usage_shapes(batch=2, timesteps=3, features=4, units=5)
    assert shapes["return_sequences"] == (2, 3, 5) and shapes["bidirectional"] == (2, 10)
    drop = cells.dropout_difference(rate=0.5)
    assert drop["dropout, inference"] < 1e-6 and drop["recurrent_dropout, inference"] < 1e-6
    assert drop["dropout, training"] > 1e-3 and drop["recurrent_dropout, training"] > 1e-3

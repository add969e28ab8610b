"""Scratch cells equal Keras' cells; weight loading; parameter counts; figures."""

import numpy as np
import pytest

from rnncourse import cells, models, plots
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402


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


def test_from_keras_keeps_zero_output_for_mask_and_unroll():
    # Before the fix from_keras dropped zero_output_for_mask: the twin repeated the last
    # real output at padded steps where the Keras layer returned zeros.
    layer = keras.layers.GRU(4, return_sequences=True, zero_output_for_mask=True, unroll=True)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    expected = layer(x, mask=mask).numpy()
    scratch = cells.from_keras(layer)
    assert scratch.zero_output_for_mask and scratch.unroll
    got = scratch(x, mask=mask).numpy()
    np.testing.assert_array_equal(got[1, 2:], 0.0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_from_keras_keeps_stateful_with_its_batch_size_and_state():
    # Before the fix the twin of a stateful layer was not stateful: it restarted from zeros.
    layer = keras.layers.LSTM(3, stateful=True)
    x = np.random.default_rng(2).normal(size=(2, 4, 3)).astype(np.float32)
    layer(x)  # builds with batch 2 and leaves a non-zero state
    scratch = cells.from_keras(layer)
    assert scratch.stateful
    for a, b in zip(scratch.states, layer.states, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy())
    np.testing.assert_allclose(scratch(x).numpy(), layer(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(scratch(x).numpy(), layer(x).numpy(), atol=1e-5)


def test_from_keras_refuses_an_unbuilt_stateful_layer():
    with pytest.raises(ValueError) as info:
        cells.from_keras(keras.layers.GRU(3, stateful=True), input_dim=2)
    assert info.value.argument == "layer" and "batch_shape" in str(info.value)


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
    layer = models.CELLS[cell](units, **kwargs)
    layer.build((None, None, input_dim))
    assert cells.parameter_count(cell, input_dim, units, **kwargs) == layer.count_params()


def test_parameter_count_formulas_from_the_chapter():
    assert cells.parameter_count("lstm", 2, 64) == 4 * (64 * (2 + 64) + 64)
    assert cells.parameter_count("gru", 2, 64) == 3 * (64 * (2 + 64) + 2 * 64)


def _built(layer, input_dim=2):
    layer.build((None, None, input_dim))
    return layer


# Bad input is tested in test_bad_input.py.


def test_load_keras_weights_copies_every_weight_and_returns_the_scratch_layer():
    source = _built(keras.layers.LSTM(4), input_dim=3)
    scratch = _built(keras.layers.RNN(cells.LSTMCell(4)), input_dim=3)
    assert cells.load_keras_weights(source, scratch) is scratch
    for a, b in zip(source.get_weights(), scratch.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_scratch_registry_matches_the_model_registry():
    assert set(cells.SCRATCH_CELLS) == set(models.CELLS)
    assert set(cells.__all__) <= set(dir(cells))


def test_random_padded_batch_is_right_padded_and_zero_after_length():
    x, mask = cells.random_padded_batch(8, 5, 2, seed=0)
    lengths = mask.sum(axis=1)
    assert lengths.min() >= 1 and lengths.max() == 5
    np.testing.assert_array_equal(mask, np.arange(5)[None, :] < lengths[:, None])
    assert np.all(x[~mask] == 0)


def test_figures_have_data():
    from rnncourse.plots import cells as cell_plots

    curves = {"lstm": [0.15, 0.01], "gru": [0.12, 0.005], "simple_rnn": [0.17, 0.16]}
    figures = [
        cell_plots.plot_learning_curves(curves, 1 / 6, timesteps=20, every=94,
                                        target=1 / 30),
        cell_plots.plot_gradient_through_time({"lstm": np.linspace(1, 2, 5)},
                                              initial={"lstm": np.linspace(0.1, 2, 5)}),
        cell_plots.plot_gradient_norms({"lstm": [1.0, 3.0, 0.5]}),
    ]
    for fig in figures:
        assert plots.has_data(fig)
        assert fig.axes[0].get_ylabel() and fig._suptitle is not None
    with pytest.raises(ValueError, match="empty"):
        cell_plots.plot_learning_curves({}, 1 / 6, 20)

"""cuDNN eligibility: every rule, checked against the path Keras actually takes.

No GPU is needed. The fixture ``cudnn_probe`` makes Keras' TensorFlow backend believe a GPU
is visible and replaces the two functions that launch the fused kernel (``_cudnn_lstm``,
``_cudnn_gru``) by a spy that records the call and then reports "no cuDNN op here", the
error Keras itself turns into a fall-back to the generic loop. So a layer that *would* run
on cuDNN calls the spy, and a layer that would not never reaches it.
"""

import importlib

import numpy as np
import pytest

from rnncourse import devices
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

X = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)


@pytest.fixture
def cudnn_probe(monkeypatch):
    calls = []

    def spy(inputs, *args, **kwargs):
        calls.append(inputs.shape)
        mask = args[5] if len(args) == 9 else args[4]  # lstm has one more state argument
        if mask is not None:
            tf_rnn._assert_valid_mask(mask)  # the check the real cuDNN path makes
        raise tf.errors.NotFoundError(None, None, "spy: no cuDNN kernel on this machine")

    monkeypatch.setattr(tf_rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(tf_rnn, "_cudnn_lstm", spy)
    monkeypatch.setattr(tf_rnn, "_cudnn_gru", spy)
    return calls


def takes_cudnn_path(layer, calls, x=X, mask=None) -> bool:
    before = len(calls)
    layer(x, mask=mask, training=True)
    return len(calls) > before


LSTM_CASES = [
    ({}, True, None),
    ({"activation": "relu"}, False, "activation='relu'"),
    ({"activation": lambda v: tf.tanh(v)}, False, "activation="),
    ({"recurrent_activation": "hard_sigmoid"}, False, "recurrent_activation"),
    ({"recurrent_dropout": 0.2}, False, "recurrent_dropout=0.2"),
    ({"unroll": True}, False, "unroll=True"),
    ({"use_bias": False}, False, "use_bias=False"),
    ({"use_cudnn": False}, False, "use_cudnn=False"),
    ({"dropout": 0.3}, True, None),
    ({"go_backwards": True, "return_sequences": True}, True, None),
    ({"activation": keras.activations.tanh, "recurrent_activation": "sigmoid"}, True, None),
]
GRU_CASES = LSTM_CASES + [({"reset_after": False}, False, "reset_after=False")]


RULE_CASES = ([(keras.layers.LSTM, *case) for case in LSTM_CASES]
              + [(keras.layers.GRU, *case) for case in GRU_CASES])


@pytest.mark.parametrize("layer_class,kwargs,eligible,reason", RULE_CASES)
def test_rules_match_the_path_keras_takes(cudnn_probe, layer_class, kwargs, eligible, reason):
    layer = layer_class(4, **kwargs)
    ok, reasons = devices.cudnn_eligibility(layer)
    assert ok is eligible and takes_cudnn_path(layer, cudnn_probe) is eligible
    if reason:
        assert len(reasons) == 1 and reason in reasons[0], reasons
    else:
        assert reasons == []


def test_every_broken_rule_is_named(cudnn_probe):
    layer = keras.layers.LSTM(4, activation="relu", recurrent_dropout=0.1, unroll=True,
                              use_bias=False)
    ok, reasons = devices.cudnn_eligibility(layer)
    assert not ok and len(reasons) == 4
    assert not takes_cudnn_path(layer, cudnn_probe)


def test_the_questioners_lstm_is_not_eligible():
    layer = keras.layers.LSTM(512, activation="relu", return_sequences=True)
    ok, reasons = devices.cudnn_eligibility(layer)
    assert not ok and reasons == ["activation='relu': only 'tanh' runs on cuDNN"]


def test_generic_rnn_wrapper_and_simple_rnn_never_use_cudnn(cudnn_probe):
    for layer in (keras.layers.RNN(keras.layers.LSTMCell(4)), keras.layers.SimpleRNN(4),
                  keras.layers.RNN(keras.layers.GRUCell(4))):
        ok, reasons = devices.cudnn_eligibility(layer)
        assert not ok and "has no cuDNN kernel" in reasons[0]
        assert not takes_cudnn_path(layer, cudnn_probe)


def test_bidirectional_checks_both_directions(cudnn_probe):
    good = keras.layers.Bidirectional(keras.layers.LSTM(4))
    assert devices.cudnn_eligibility(good) == (True, [])
    assert takes_cudnn_path(good, cudnn_probe)
    bad = keras.layers.Bidirectional(keras.layers.GRU(4, recurrent_dropout=0.5))
    ok, reasons = devices.cudnn_eligibility(bad)
    assert not ok and len(reasons) == 1 and "recurrent_dropout" in reasons[0]


RIGHT = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
LEFT = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
HOLE = np.array([[1, 0, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
EMPTY = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize("mask", [RIGHT, LEFT, HOLE, EMPTY])
def test_mask_rule_matches_keras_check(mask):
    right_padded, has_empty_row = devices.mask_layout(mask)
    assert right_padded == bool(tf_rnn._is_sequence_right_padded(tf.constant(mask)))
    assert has_empty_row == bool(tf_rnn._has_fully_masked_sequence(tf.constant(mask)))
    ok, reasons = devices.cudnn_eligibility(keras.layers.LSTM(4), mask=mask)
    assert ok == (right_padded and not has_empty_row)
    assert len(reasons) == (not right_padded) + has_empty_row


@pytest.mark.parametrize("mask", [LEFT, HOLE, EMPTY])
def test_bad_mask_stops_a_compiled_cudnn_step(cudnn_probe, mask):
    layer = keras.layers.LSTM(4)
    # eager: Keras catches the failed check and falls back to the generic loop
    assert layer(X, mask=mask).shape == (2, 4)
    # compiled (model.fit, tf.function): the check is part of the graph and fails the step
    step = tf.function(lambda x, m: layer(x, mask=m))
    with pytest.raises(tf.errors.InvalidArgumentError, match="right-padded"):
        step(X, mask)
    assert step(X, RIGHT).shape == (2, 4)


def test_use_cudnn_true_without_gpu_fails_loudly():
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="use_cudnn=True was specified"):
        keras.layers.LSTM(4, use_cudnn=True)(X)


def test_will_use_cudnn_needs_a_gpu():
    assert devices.will_use_cudnn(keras.layers.LSTM(4)) == bool(devices.gpus())


@pytest.mark.parametrize("call, error, argument", [
    (lambda: devices.cudnn_eligibility("lstm"), TypeError, "layer"),
    (lambda: devices.cudnn_eligibility(keras.layers.LSTM(4), mask=np.ones(3, bool)),
     ValueError, "mask"),
    (lambda: devices.mask_layout([[True, False], [True]]), ValueError, "mask"),
    (lambda: devices.mask_layout([["a", "b"]]), TypeError, "mask"),
])
def test_bad_arguments(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument


@pytest.mark.parametrize("mask", [[[1, 1, 0], [1, 0, 0]], np.array([[True, True, False],
                                                                   [True, False, False]]),
                                  tf.constant([[1, 1, 0], [1, 0, 0]])])
def test_mask_layout_takes_lists_arrays_and_tensors(mask):
    assert devices.mask_layout(mask) == (True, False)

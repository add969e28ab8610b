"""Tests of rnncourse.tbptt: window layout, stateful equivalence, explicit-state TBPTT."""

import keras
import numpy as np
import pytest

from rnncourse import config, tbptt
from rnncourse.plots import has_data
from rnncourse.plots import tbptt as tbptt_plots

VOCAB, UNITS, EMB = 11, 8, 4


def random_ids(n, length, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB, (n, length)).astype(np.int32)


@pytest.mark.parametrize("n, length, window, batch", [
    (13, 20, 6, 4),        # nothing divides: filler rows and a padded last window
    (127, 1000, 25, 40),   # the reader's shape, scaled: prime N, 40 windows of 25
    (1, 1, 1, 1),          # tiny
    (7, 5, 9, 7),          # window longer than the sequence
    (12, 24, 6, 4),        # everything divides: no filler, no padding
])
def test_layout_reconstructs_every_sequence(n, length, window, batch):
    x = random_ids(n, length)
    y = random_ids(n, length, seed=1)
    b = tbptt.stateful_batches(x, y, window, batch)
    assert b.reset_every == -(-length // window)
    assert b.num_batches % b.reset_every == 0
    assert b.inputs.shape == (b.num_batches * batch, window)
    np.testing.assert_array_equal(b.unstack(b.inputs), x)
    np.testing.assert_array_equal(b.unstack(b.targets), y)
    np.testing.assert_array_equal(b.unstack(b.sample_weight), np.ones((n, length)))
    assert b.sample_weight.sum() == n * length  # zero exactly on filler and padding
    assert b.num_filler == (-n) % batch


def test_layout_rows_continue_across_batches_and_features():
    n, length, window, batch = 5, 10, 4, 2
    x = np.arange(n * length * 3, dtype=np.float32).reshape(n, length, 3)
    b = tbptt.stateful_batches(x, x[..., 0], window, batch)
    k = b.reset_every
    rows = b.inputs.reshape(b.num_batches, batch, window, 3)
    for j in range(b.num_batches - 1):
        if (j + 1) % k:  # same group: row i of batch j+1 continues row i of batch j
            for i in range(batch):
                seq = (j // k) * batch + i
                if seq < n and (j % k + 1) * window < length:
                    np.testing.assert_array_equal(rows[j + 1, i, 0],
                                                  x[seq, (j % k + 1) * window])
    weights = b.sample_weight.reshape(b.num_batches, batch, window)
    assert weights[-k:, 1].sum() == 0  # sequence 5 is filler
    assert weights[k - 1, 0].tolist() == [1, 1, 0, 0]  # last window: 2 real steps


def test_layout_errors_say_what_to_do():
    x = random_ids(4, 10)
    with pytest.raises(ValueError, match="must agree"):
        tbptt.stateful_batches(x, x[:, :9], 5, 2)
    with pytest.raises(ValueError, match=">= 1"):
        tbptt.stateful_batches(x, x, 0, 2)
    with pytest.raises(ValueError, match="stack your sequences"):
        tbptt.stateful_batches(np.zeros((0, 3)), np.zeros((0, 3)), 2, 2)
    with pytest.raises(ValueError, match="batch_size"):
        tbptt.char_lm(VOCAB, stateful=True)
    with pytest.raises(ValueError, match="multiple of window"):
        tbptt.TBPTTTrainer(tbptt.state_model(VOCAB, UNITS, EMB), keras.optimizers.SGD(), 4, 6)


def test_char_sequences_and_vocabulary():
    vocab = tbptt.char_vocabulary("to be or not")
    ids = vocab.encode("to be or not to be")
    assert vocab.decode(ids) == "to be or not to be"
    x, y = tbptt.char_sequences(ids, 5)
    assert x.shape == (3, 5)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x[1:, 0], y[:-1, -1])  # sequence i+1 continues sequence i
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("Z")
    assert tbptt.unigram_entropy_bits(np.array([0, 1, 0, 1]), 3) == pytest.approx(1.0)


def test_stateful_windows_equal_full_sequences():
    config.set_seed(0)
    x = random_ids(7, 20)
    b = tbptt.stateful_batches(x, x, 6, 3)
    stateful = tbptt.char_lm(VOCAB, UNITS, EMB, batch_size=3, window=6, stateful=True)
    plain = tbptt.copy_weights(stateful, tbptt.char_lm(VOCAB, UNITS, EMB))
    full = plain.predict(x, verbose=0)
    np.testing.assert_allclose(tbptt.predict_stateful(stateful, b), full, atol=1e-5)
    # forgetting the reset lets the state of one group leak into the next
    leaked = tbptt.predict_stateful(stateful, b, reset=False)
    assert np.abs(leaked - full).max() > 1e-3
    # and a batch-1 generator with the same weights reproduces sequence 0 step by step
    gen = tbptt.inference_model(stateful)
    tbptt.reset_states(gen)
    steps = np.concatenate([gen(x[:1, t:t + 1]) for t in range(20)], axis=1)
    np.testing.assert_allclose(steps[0], full[0], atol=1e-5)


def test_fit_stateful_resets_on_the_period_and_learns():
    config.set_seed(0)
    x = np.tile(np.arange(10, dtype=np.int32) % VOCAB, (5, 2))  # predictable sequences
    b = tbptt.stateful_batches(x[:, :-1], x[:, 1:], 4, 2)
    model = tbptt.compile_char_lm(tbptt.char_lm(VOCAB, UNITS, EMB, batch_size=2, window=4,
                                                stateful=True), 0.05)
    history = tbptt.fit_stateful(model, b, epochs=3)
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.raises(ValueError, match="batch_size"):
        tbptt.fit_stateful(model, tbptt.stateful_batches(x, x, 4, 3))


def test_explicit_loop_one_window_equals_full_bptt():
    config.set_seed(1)
    model = tbptt.state_model(VOCAB, UNITS, EMB)
    x, y = random_ids(3, 12), random_ids(3, 12, seed=2)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=12)
    (grads,) = trainer.gradients(x, y)
    for g, ref in zip(grads, tbptt.full_bptt_gradients(model, x, y), strict=True):
        np.testing.assert_allclose(g, ref, atol=1e-5)


def test_explicit_loop_depth_reaches_back_over_earlier_windows():
    config.set_seed(2)
    model = tbptt.state_model(VOCAB, UNITS, EMB)
    x, y = random_ids(2, 12), random_ids(2, 12, seed=3)
    # BPTT(h=12; h'=4): the last update's gradient is full BPTT of the last window's loss
    deep = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=4, depth=12)
    ref = tbptt.full_bptt_gradients(model, x, y, last=4)
    for g, r in zip(deep.gradients(x, y)[-1], ref, strict=True):
        np.testing.assert_allclose(g, r, atol=1e-5)
    # plain TBPTT(4) cuts the gradient at the window: it differs from the reference
    short = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=4)
    lstm_kernel = [i for i, v in enumerate(model.trainable_variables) if "recurrent" in v.path]
    i = lstm_kernel[0]
    assert np.abs(short.gradients(x, y)[-1][i] - ref[i]).max() > 1e-6


def test_explicit_windows_forward_equals_full_run():
    config.set_seed(3)
    model = tbptt.state_model(VOCAB, UNITS, EMB)
    x = random_ids(4, 15)
    full, (h, c) = tbptt.run_windows(model, x, 15)
    windowed, (h2, c2) = tbptt.run_windows(model, x, 4)
    np.testing.assert_allclose(windowed, full, atol=1e-5)
    np.testing.assert_allclose(h2, h, atol=1e-5)
    np.testing.assert_allclose(c2, c, atol=1e-5)


def test_trainer_fit_lowers_bits_per_char():
    config.set_seed(4)
    x = np.tile(np.arange(8, dtype=np.int32), (8, 3))
    model = tbptt.state_model(VOCAB, UNITS, EMB)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.Adam(0.05), window=4)
    before = tbptt.bits_per_char(model, x[:, :-1][:, :20], x[:, 1:][:, :20], window=5)
    history = trainer.fit(x[:, :20], x[:, 1:21], batch_size=4, epochs=3)
    after = tbptt.bits_per_char(model, x[:, :20], x[:, 1:21], window=5)
    assert after < before and history[-1] < history[0]
    with pytest.raises(ValueError, match="multiple of window"):
        trainer.train_on_sequences(x[:, :7], x[:, 1:8])


def test_generate_and_its_errors():
    config.set_seed(5)
    vocab = tbptt.char_vocabulary("abcdefghij ")
    trained = tbptt.char_lm(len(vocab), UNITS, EMB, batch_size=4, window=5, stateful=True)
    gen = tbptt.inference_model(trained)
    text = tbptt.generate(gen, vocab, "abc", 12, seed=1)
    assert len(text) == 12 and set(text) <= set(vocab.chars)
    assert tbptt.generate(gen, vocab, "abc", 12, seed=1) == text  # state reset each call
    with pytest.raises(ValueError, match="batch-1"):
        tbptt.generate(trained, vocab, "abc", 3)
    with pytest.raises(ValueError, match="prompt"):
        tbptt.generate(gen, vocab, "", 3)


def test_cudnn_eligibility_matches_keras():
    from keras.src.backend.tensorflow.rnn import _do_lstm_arguments_support_cudnn

    for kwargs in ({}, {"activation": "relu"}, {"recurrent_activation": "hard_sigmoid"},
                   {"use_bias": False}, {"unroll": True}):
        layer = keras.layers.LSTM(4, **kwargs)
        ours = tbptt.cudnn_eligible(layer)
        cell = layer.cell
        assert ours == _do_lstm_arguments_support_cudnn(
            cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias), kwargs
    assert not tbptt.cudnn_eligible(keras.layers.LSTM(4, recurrent_dropout=0.1))


def test_activation_bytes_grow_linearly():
    one = tbptt.lstm_activation_bytes(32, 25, 128, 32, 64)
    assert tbptt.lstm_activation_bytes(32, 1000, 128, 32, 64) == 40 * one
    assert one == 32 * 25 * (32 + 11 * 128 + 128) * 4


def test_figures_have_data():
    x = random_ids(5, 9)
    fig = tbptt_plots.plot_window_layout(tbptt.stateful_batches(x, x, 4, 2))
    assert has_data(fig)
    mem = {"lengths": [50, 100], "full_bptt": [2e6, 4e6], "tbptt": [1e6, 1e6]}
    assert has_data(tbptt_plots.plot_memory(mem, estimate=[2e6, 4e6]))
    assert has_data(tbptt_plots.plot_bits_per_char({"stateful": [4.0, 3.0]}, 4.5,
                                                   {"stateful": 3.1}))

"""Tests of rnncourse.tbptt: window layout, stateful equivalence, explicit-state TBPTT."""

import warnings

import keras
import numpy as np
import pytest

from rnncourse import config, models, tbptt, text

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


def refused(call, error, argument):
    """``call()`` raises ``error`` about ``argument`` (its ``.argument``), whatever the words."""
    with pytest.raises(error) as info:
        call()
    assert getattr(info.value, "argument", None) == argument, info.value


def test_layout_errors_name_the_argument():
    x = random_ids(4, 10)
    refused(lambda: tbptt.stateful_batches(x, x[:, :9], 5, 2), ValueError, "targets")
    refused(lambda: tbptt.stateful_batches(x, x, 0, 2), ValueError, "window")
    empty = np.zeros((0, 3))
    refused(lambda: tbptt.stateful_batches(empty, empty, 2, 2), ValueError, "inputs")
    model = models.state_char_lm(VOCAB, UNITS, EMB)
    refused(lambda: tbptt.TBPTTTrainer(model, keras.optimizers.SGD(), 4, 6), ValueError,
            "depth")


def test_char_sequences_and_vocabulary():
    vocab = text.char_vocabulary("to be or not")
    ids = vocab.encode("to be or not to be")
    assert vocab.decode(ids) == "to be or not to be"
    x, y = tbptt.char_sequences(ids, 5)
    assert x.shape == (3, 5)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x[1:, 0], y[:-1, -1])  # sequence i+1 continues sequence i
    assert tbptt.unigram_entropy_bits(np.array([0, 1, 0, 1]), 3) == pytest.approx(1.0)


def test_stateful_windows_equal_full_sequences():
    config.set_seed(0)
    x = random_ids(7, 20)
    b = tbptt.stateful_batches(x, x, 6, 3)
    stateful = models.char_lm(VOCAB, UNITS, EMB, batch_size=3, timesteps=6, stateful=True)
    plain = models.copy_weights_by_name(stateful, models.char_lm(VOCAB, UNITS, EMB))
    full = plain.predict(x, verbose=0)
    np.testing.assert_allclose(tbptt.predict_stateful(stateful, b), full, atol=1e-5)
    # forgetting the reset lets the state of one group leak into the next
    leaked = tbptt.predict_stateful(stateful, b, reset=False)
    assert np.abs(leaked - full).max() > 1e-3
    # and a batch-1 generator with the same weights reproduces sequence 0 step by step
    gen = tbptt.convert(stateful, "inference")
    tbptt.reset_states(gen)
    steps = np.concatenate([gen(x[:1, t:t + 1]) for t in range(20)], axis=1)
    np.testing.assert_allclose(steps[0], full[0], atol=1e-5)


def test_fit_stateful_resets_on_the_period_and_learns():
    config.set_seed(0)
    x = np.tile(np.arange(10, dtype=np.int32) % VOCAB, (5, 2))  # predictable sequences
    b = tbptt.stateful_batches(x[:, :-1], x[:, 1:], 4, 2)
    model = models.char_lm(VOCAB, UNITS, EMB, batch_size=2, timesteps=4, stateful=True)
    model.compile(keras.optimizers.Adam(0.05), tbptt.sequence_loss())
    history = tbptt.fit_stateful(model, b, epochs=3)
    assert history.history["loss"][-1] < history.history["loss"][0]
    other_batch, other_window = tbptt.stateful_batches(x, x, 4, 3), tbptt.stateful_batches(
        x, x, 5, 2)
    refused(lambda: tbptt.fit_stateful(model, other_batch), ValueError, "batches")
    refused(lambda: tbptt.fit_stateful(model, other_window), ValueError, "batches")
    refused(lambda: tbptt.fit_stateful(model, b, shuffle=True), ValueError, "shuffle")


def skewed_lm(batch_size, window):
    """A stateful char LM whose logits favour id 0: targets of 0 cost little, others much."""
    model = models.char_lm(VOCAB, UNITS, EMB, batch_size=batch_size, timesteps=window,
                           stateful=True, seed=0)
    model.get_layer("logits").bias.assign(np.r_[4.0, np.zeros(VOCAB - 1)].astype("float32"))
    return model


@pytest.mark.parametrize("loss", [
    tbptt.sequence_loss(),                                          # mean over real steps
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),   # Keras' default reduction
])
def test_fit_stateful_reports_the_loss_per_real_character(loss):
    # 7 sequences in batches of 3: the last group is one real row and two fillers, and
    # L = 10 with windows of 4 pads each last window. Sequence 6 (the lone real row of the
    # last group) has cheap targets, the others dear ones: a mean of the batches' means
    # counts the nearly empty batches as much as full ones and comes out far too low.
    x = random_ids(7, 10)
    y = random_ids(7, 10, seed=1) % (VOCAB - 1) + 1
    y[6] = 0
    layout = tbptt.stateful_batches(x, y, 4, 3)
    model = skewed_lm(3, 4)
    model.compile(keras.optimizers.SGD(0.0), loss)  # learning rate 0: the weights stay
    history = tbptt.fit_stateful(model, layout, epochs=2).history
    plain = models.copy_weights_by_name(model, models.char_lm(VOCAB, UNITS, EMB))
    ce = keras.ops.sparse_categorical_crossentropy(y, plain.predict(x, verbose=0),
                                                   from_logits=True)
    per_character = float(np.mean(np.asarray(ce)))
    assert history["loss"] == pytest.approx([per_character] * 2, rel=1e-4)
    assert abs(history["batch_mean_loss"][0] - per_character) > 0.05 * per_character


def test_fit_stateful_refuses_several_steps_per_execution():
    x = random_ids(4, 8)
    model = models.char_lm(VOCAB, UNITS, EMB, batch_size=2, timesteps=4, stateful=True)
    model.compile(keras.optimizers.SGD(0.0), tbptt.sequence_loss(), steps_per_execution=2)
    layout = tbptt.stateful_batches(x, x, 4, 2)
    refused(lambda: tbptt.fit_stateful(model, layout), ValueError, "model")


def test_explicit_loop_one_window_equals_full_bptt():
    config.set_seed(1)
    model = models.state_char_lm(VOCAB, UNITS, EMB)
    x, y = random_ids(3, 12), random_ids(3, 12, seed=2)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=12)
    (grads,) = trainer.gradients(x, y)
    for g, ref in zip(grads, tbptt.full_bptt_gradients(model, x, y), strict=True):
        np.testing.assert_allclose(g, ref, atol=1e-5)


def test_explicit_loop_depth_reaches_back_over_earlier_windows():
    config.set_seed(2)
    model = models.state_char_lm(VOCAB, UNITS, EMB)
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
    model = models.state_char_lm(VOCAB, UNITS, EMB)
    x = random_ids(4, 15)
    full, (h, c) = tbptt.run_windows(model, x, 15)
    windowed, (h2, c2) = tbptt.run_windows(model, x, 4)
    np.testing.assert_allclose(windowed, full, atol=1e-5)
    np.testing.assert_allclose(h2, h, atol=1e-5)
    np.testing.assert_allclose(c2, c, atol=1e-5)


def test_trainer_fit_lowers_bits_per_char():
    config.set_seed(4)
    x = np.tile(np.arange(8, dtype=np.int32), (8, 3))
    model = models.state_char_lm(VOCAB, UNITS, EMB)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.Adam(0.05), window=4)
    before = tbptt.bits_per_char(model, x[:, :-1][:, :20], x[:, 1:][:, :20], window=5)
    history = trainer.fit(x[:, :20], x[:, 1:21], batch_size=4, epochs=3)
    after = tbptt.bits_per_char(model, x[:, :20], x[:, 1:21], window=5)
    assert after < before and history[-1] < history[0]


def test_generate_takes_every_view_and_samples_the_same():
    config.set_seed(5)
    vocab = text.char_vocabulary("abcdefghij ")
    trained = models.char_lm(len(vocab), UNITS, EMB, batch_size=4, timesteps=5, stateful=True)
    sample = tbptt.generate(tbptt.convert(trained, "inference"), vocab, "abc", 12, seed=1)
    assert len(sample) == 12 and set(sample) <= set(vocab.chars)
    for view in (trained, tbptt.convert(trained, "explicit"), tbptt.convert(trained,
                                                                             "inference")):
        assert tbptt.generate(view, vocab, "abc", 12, seed=1) == sample  # state reset
    refused(lambda: tbptt.generate(trained, vocab, "", 3), ValueError, "prompt")
    refused(lambda: tbptt.generate(trained, vocab, "abc", 3, temperature=0), ValueError,
            "temperature")


def test_convert_round_trips_give_the_same_outputs():
    config.set_seed(10)
    x = random_ids(3, 9)
    explicit = models.state_char_lm(VOCAB, UNITS, EMB, seed=3)
    reference, _ = tbptt.run_windows(explicit, x, 9)
    stateful = tbptt.convert(explicit, "stateful", batch_size=3)
    assert stateful.inputs[0].shape[0] == 3 and tbptt.reset_states(stateful) == 1
    np.testing.assert_allclose(stateful(x), reference, atol=1e-5)
    back, _ = tbptt.run_windows(tbptt.convert(stateful, "explicit"), x, 4)
    np.testing.assert_allclose(back, reference, atol=1e-5)
    generator = tbptt.convert(stateful, "inference")
    assert generator.inputs[0].shape[0] == 1
    steps = np.concatenate([generator(x[1:2, t:t + 1]) for t in range(9)], axis=1)
    np.testing.assert_allclose(steps[0], reference[1], atol=1e-5)
    plain = models.copy_weights_by_name(explicit, models.char_lm(VOCAB, UNITS, EMB))
    again, _ = tbptt.run_windows(tbptt.convert(plain, "explicit"), x, 9)
    np.testing.assert_allclose(again, reference, atol=1e-5)
    # a dropout rate survives a round trip through the explicit view when the target has one
    dropped = models.char_lm(VOCAB, UNITS, EMB, batch_size=2, stateful=True, dropout=0.3)
    assert tbptt.convert(dropped, "inference").get_layer("dropout").rate == 0.3
    # bits per character is the same number in every view, and the views are untouched
    y = random_ids(3, 9, seed=4)
    bits = [tbptt.bits_per_char(m, x, y, window=4) for m in (explicit, stateful, generator,
                                                             plain)]
    assert bits == pytest.approx([bits[0]] * 4, rel=1e-5)
    assert stateful.inputs[0].shape[0] == 3 and generator.inputs[0].shape[0] == 1


def test_convert_errors_name_the_argument():
    explicit = models.state_char_lm(VOCAB, UNITS, EMB)
    refused(lambda: tbptt.convert(explicit, "batch1"), ValueError, "to")
    refused(lambda: tbptt.convert(explicit, "stateful"), ValueError, "batch_size")
    refused(lambda: tbptt.convert(explicit, "explicit", batch_size=2), ValueError,
            "batch_size")
    refused(lambda: tbptt.convert("model", "explicit"), TypeError, "model")
    refused(lambda: tbptt.convert(gru_state_model(), "inference"), ValueError, "model")
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    refused(lambda: tbptt.convert(dense, "inference"), ValueError, "model")


# --------------------------------------------------------------------------- issue 15
def reference_nats(model, x, y):
    """Mean cross-entropy in nats over every step, from one forward pass of each sequence."""
    logits, _ = tbptt.run_windows(model, x, x.shape[1])
    ce = keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
    return float(np.mean(np.asarray(ce)))


@pytest.mark.parametrize("n, batch, length, window", [
    (7, 3, 8, 4),   # 7 = 2 * 3 + 1: the last batch is one sequence and two fillers
    (2, 3, 8, 4),   # fewer sequences than the batch
    (5, 2, 7, 4),   # and L not a multiple of the window: a padded last window
])
def test_fit_uses_every_sequence_once(n, batch, length, window):
    config.set_seed(6)
    model = models.state_char_lm(VOCAB, UNITS, EMB)
    x, y = random_ids(n, length), random_ids(n, length, seed=7)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=window)
    (nats,) = trainer.fit(x, y, batch_size=batch, epochs=1, shuffle=False)
    # learning rate 0: the epoch's loss is the plain mean over all real steps; a skipped
    # sequence, a counted filler or a counted padding step would move it
    assert np.isfinite(nats)
    assert nats == pytest.approx(reference_nats(model, x, y), rel=1e-5)
    assert trainer.train_on_sequences(x, y) == pytest.approx(nats, rel=1e-5)


def gru_state_model(units=UNITS):
    """An explicit-state model with one GRU state and no layer called "lstm"."""
    ids = keras.Input(shape=(None,), dtype="int32")
    h0 = keras.Input(shape=(units,))
    x = keras.layers.Embedding(VOCAB, EMB)(ids)
    x, h = keras.layers.GRU(units, return_sequences=True, return_state=True,
                            name="recurrent")(x, initial_state=[h0])
    return keras.Model([ids, h0], [keras.layers.Dense(VOCAB)(x), h])


@pytest.mark.parametrize("loss", [
    None,
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),  # Keras' default reduction
    lambda y, logits, sample_weight: keras.ops.sum(
        keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
        * sample_weight) / 7.0,
])
def test_trainer_takes_any_state_model_and_any_loss(loss):
    config.set_seed(7)
    model = gru_state_model()
    x, y = random_ids(3, 12), random_ids(3, 12, seed=8)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=12, loss=loss)
    (grads,) = trainer.gradients(x, y)
    for g, ref in zip(grads, tbptt.full_bptt_gradients(model, x, y, loss=loss), strict=True):
        np.testing.assert_allclose(g, ref, atol=1e-5)
    history = tbptt.TBPTTTrainer(model, keras.optimizers.Adam(0.01), window=4,
                                 loss=loss).fit(x, y, batch_size=2, epochs=2)
    assert all(np.isfinite(history))


def test_convert_and_resets_find_recurrent_layers_by_type():
    config.set_seed(8)
    trained = keras.Sequential([keras.Input(batch_shape=(4, 5), dtype="int32"),
                                keras.layers.Embedding(VOCAB, EMB),
                                keras.layers.GRU(UNITS, return_sequences=True, stateful=True,
                                                 name="recurrent"),
                                keras.layers.Dense(VOCAB)])
    x = random_ids(1, 9)
    gen = tbptt.convert(trained, "inference")
    full = tbptt.convert(trained, "stateful", batch_size=1)(x)  # 9 steps in one call
    assert tbptt.reset_states(gen) == 1
    steps = np.concatenate([gen(x[:, t:t + 1]) for t in range(9)], axis=1)
    np.testing.assert_allclose(steps, full, atol=1e-5)
    assert tbptt.reset_states(trained) == 1


def test_reset_callback_resets_on_the_period_and_fit_stateful_never_shuffles():
    config.set_seed(9)
    x = random_ids(4, 8)
    b = tbptt.stateful_batches(x, x, 4, 2)
    model = models.char_lm(VOCAB, UNITS, EMB, batch_size=2, timesteps=4, stateful=True)
    model.compile(keras.optimizers.SGD(0.0), tbptt.sequence_loss())
    callback = tbptt.ResetStateCallback(b.reset_every)
    model.fit(b.inputs, b.targets, batch_size=2, epochs=2, shuffle=False, verbose=0,
              callbacks=[callback])
    assert callback.resets == 2 * b.num_batches // b.reset_every
    refused(lambda: tbptt.fit_stateful(model, b, shuffle=True), ValueError, "shuffle")


def test_explicit_trainer_traces_a_handful_of_times():
    # updates over 1, 2, 3 and 4 windows and two batch sizes: no retracing per shape
    model = models.state_char_lm(VOCAB, UNITS, EMB)
    trainer = tbptt.TBPTTTrainer(model, keras.optimizers.SGD(0.0), window=5, depth=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.gradients(random_ids(3, 40), random_ids(3, 40))
        trainer.train_on_sequences(random_ids(2, 40), random_ids(2, 40))
        trainer.train_on_sequences(random_ids(5, 35), random_ids(5, 35))
    traces = [f.experimental_get_tracing_count() for f in trainer._functions.values()]
    assert traces == [1] * 4, traces  # one window or more, gradients only or applied


def _trainer(**kwargs):
    args = dict(model=models.state_char_lm(VOCAB, UNITS, EMB), optimizer=keras.optimizers.SGD(),
                window=4)
    return tbptt.TBPTTTrainer(**{**args, **kwargs})


@pytest.mark.parametrize("make, error, argument", [
    (lambda: _trainer(window=0), ValueError, "window"),
    (lambda: _trainer(window=4, depth=2), ValueError, "depth"),
    (lambda: _trainer(optimizer="adam"), TypeError, "optimizer"),
    (lambda: _trainer(loss="mse"), TypeError, "loss"),
    (lambda: _trainer(model=models.char_lm(VOCAB, UNITS, EMB)), ValueError, "model"),
    (lambda: _trainer().fit(random_ids(3, 8).astype(float), random_ids(3, 8), 2), TypeError,
     "inputs"),
    (lambda: _trainer().fit(random_ids(3, 8), random_ids(3, 7), 2), ValueError, "targets"),
    (lambda: _trainer().fit(random_ids(3, 8), random_ids(3, 8), 0), ValueError,
     "batch_size"),
    (lambda: _trainer().fit(random_ids(3, 8), random_ids(3, 8), 2, weights=np.ones(8)),
     ValueError, "weights"),
    (lambda: _trainer().train_on_sequences(random_ids(3, 0), random_ids(3, 0)), ValueError,
     "inputs"),
    (lambda: tbptt.fit_stateful(models.char_lm(VOCAB), None), TypeError, "batches"),
    (lambda: tbptt.ResetStateCallback(0), ValueError, "reset_every"),
    (lambda: tbptt.char_sequences(np.arange(3), 5), ValueError, "ids"),
    (lambda: tbptt.unigram_entropy_bits(np.array([0, 5]), 3), ValueError, "ids"),
])
def test_bad_inputs_name_the_argument(make, error, argument):
    refused(make, error, argument)

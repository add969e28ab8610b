"""rnncourse.gradients: BPTT by hand, gradient norms through time, clipping, norm logging."""

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from rnncourse import data, gradients, models, plots
from rnncourse.config import quiet_tensorflow
from rnncourse.plots import gradients as gradient_plots

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(scope="module")
def batch():
    return data.adding_problem(6, 12, seed=3)


@pytest.fixture(scope="module")
def simple_model(batch):
    model = models.sequence_regressor("simple_rnn", units=5, seed=7)
    model(batch[0][:1])
    return model


def test_numpy_bptt_equals_gradient_tape(batch, simple_model):
    x, y = batch
    result = gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(simple_model))
    tape = gradients.tape_gradients(simple_model, x, y)
    assert set(result.grads) == set(tape)
    for name, grad in tape.items():
        np.testing.assert_allclose(result.grads[name], grad, atol=1e-5, rtol=1e-4, err_msg=name)
    prediction = simple_model.predict(x, verbose=0)
    assert result.loss == pytest.approx(float(np.mean((prediction - y) ** 2)), rel=1e-5)
    # the recurrent gradient is the sum of the per-step terms
    assert result.recurrent_contributions.shape == (12,)
    assert np.linalg.norm(result.grads["recurrent_kernel"]) <= result.recurrent_contributions.sum()


def test_numpy_bptt_rejects_wrong_shapes(simple_model):
    weights = gradients.simple_rnn_weights(simple_model)
    with pytest.raises(ValueError, match="x: must have 3 dimension"):
        gradients.numpy_bptt(np.zeros((4, 2)), np.zeros((4, 1)), weights)
    with pytest.raises(ValueError, match="mismatch"):  # NumPy's matmul, at the call
        gradients.numpy_bptt(np.zeros((4, 5, 3)), np.zeros((4, 1)), weights)


def test_state_gradient_norms_equal_numpy_bptt(batch, simple_model):
    x, y = batch
    result = gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(simple_model))
    norms = gradients.state_gradient_norms(simple_model, x, y)
    np.testing.assert_allclose(norms, result.state_grad_norms, rtol=1e-4)
    np.testing.assert_allclose(gradients.timestep_gradient_norms(simple_model, x, y, wrt="states"),
                               norms)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_numpy_bptt_other_activations_equal_keras(batch, activation):
    x, y = batch
    model = models.sequence_regressor("simple_rnn", units=5, activation=activation,
                                          recurrent_initializer="identity", seed=4)
    result = gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(model), activation)
    np.testing.assert_allclose(result.state_grad_norms,
                               gradients.state_gradient_norms(model, x, y), rtol=1e-4)
    tape = gradients.tape_gradients(model, x, y)
    np.testing.assert_allclose(result.grads["recurrent_kernel"], tape["recurrent_kernel"],
                               atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="activation: must be one of"):
        gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(model), "gelu")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_state_gradient_at_last_step_is_the_output_gradient(batch, cell):
    """dLoss_i/dh_T = 2 (y_hat_i - y_i) w for a Dense head: checks the unrolled pass."""
    x, y = batch
    model = models.sequence_regressor(cell, units=4, seed=1)
    norms = gradients.state_gradient_norms(model, x, y)
    prediction = model.predict(x, verbose=0)
    w = np.linalg.norm(np.array(model.get_layer("output").kernel.numpy()))
    expected = np.mean(2 * np.abs(prediction - y)[:, 0] * w)
    assert norms[-1] == pytest.approx(expected, rel=1e-4)


def test_timestep_gradient_norms_is_mean_of_per_example_norms(batch):
    x, y = batch
    model = models.sequence_regressor("gru", units=4, seed=2)
    norms = gradients.timestep_gradient_norms(model, x, y)
    assert norms.shape == (12,) and norms.dtype == np.float64
    singles = []
    for i in range(len(x)):
        xi = tf.constant(x[i:i + 1])
        with tf.GradientTape() as tape:
            tape.watch(xi)
            loss = tf.reduce_sum(tf.square(model(xi) - y[i:i + 1]))
        singles.append(np.linalg.norm(tape.gradient(loss, xi).numpy()[0], axis=-1))
    np.testing.assert_allclose(norms, np.mean(singles, axis=0), rtol=1e-5)
    # a batch-mean Keras loss object gives the same numbers (the mean is undone)
    np.testing.assert_allclose(
        gradients.timestep_gradient_norms(model, x, y, loss=keras.losses.MeanSquaredError()),
        norms, rtol=1e-5)


def test_norms_through_time_do_not_underflow():
    """A 1e-20-sized float32 gradient: its square underflows float32, its norm must not."""
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(3, 4, 5)).astype("float32")
    grads[:, 0] *= np.float32(1e-20)
    norms = gradients._per_step_norms(tf.constant(grads))
    expected = np.linalg.norm(grads.astype(np.float64), axis=-1).mean(axis=0)
    np.testing.assert_allclose(norms, expected, rtol=1e-6)
    assert 1e-21 < norms[0] < 1e-19 and norms.dtype == np.float64


def test_gradient_vanishes_below_and_explodes_above_one():
    x, y = data.adding_problem(4, 40, seed=0)
    tanh = models.sequence_regressor("simple_rnn", units=8, seed=0)
    tanh(x[:1])
    matrix = gradients.set_recurrent_spectrum(tanh.get_layer("simple_rnn"), 0.7, seed=1)
    assert gradients.largest_singular_value(matrix) == pytest.approx(0.7, rel=1e-5)
    assert gradients.spectral_radius(matrix) == pytest.approx(0.7, rel=1e-5)
    assert gradients.early_to_late_ratio(gradients.state_gradient_norms(tanh, x, y)) < 0.7 ** 39
    linear = models.sequence_regressor("simple_rnn", units=8, activation="linear", seed=0)
    linear(x[:1])
    gradients.set_recurrent_spectrum(linear.get_layer("simple_rnn"), 1.2, seed=1)
    ratio = gradients.early_to_late_ratio(gradients.state_gradient_norms(linear, x, y))
    assert ratio == pytest.approx(1.2 ** 39, rel=1e-3)  # orthogonal * 1.2: exactly geometric


def test_open_gates_keeps_gradient(batch):
    x, y = data.adding_problem(4, 30, seed=0)
    default = gradients.compare_cells(["lstm"], x, y, units=4, seeds=(0,))["lstm"]
    opened = gradients.compare_cells(["lstm"], x, y, units=4, seeds=(0,), gate_bias=5.0)["lstm"]
    assert opened[0] / opened[-1] > 10 * default[0] / default[-1]
    gru = models.sequence_regressor("gru", units=3)
    assert gradients.open_gates(gru, 5.0) == pytest.approx(1 / (1 + np.exp(-5.0)))
    bias = np.array(gru.get_layer("gru").cell.bias.numpy())
    assert np.all(bias[0, :3] == 5.0) and np.all(bias[1, :3] == 0.0)


def test_bad_input_raises_clear_errors(batch, simple_model):
    x, y = batch
    with pytest.raises(ValueError, match="wrt: must be one of"):
        gradients.timestep_gradient_norms(simple_model, x, y, wrt="weights")
    with pytest.raises(ValueError, match="x: must have 3 dimension"):
        gradients.timestep_gradient_norms(simple_model, x[:, :, 0], y)
    with pytest.raises(ValueError, match="needs one target per sequence"):
        gradients.timestep_gradient_norms(simple_model, x, y[:5])
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        gradients.timestep_gradient_norms(simple_model, x, y, loss="no_such_loss")
    with pytest.raises(ValueError, match="no gate to open"):
        gradients.open_gates(simple_model)
    lstm = models.sequence_regressor("lstm", units=3)
    with pytest.raises(ValueError, match="square recurrent matrix"):
        gradients.set_recurrent_spectrum(lstm.get_layer("lstm"), 0.9)
    dense_only = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="exactly one recurrent layer"):
        gradients.state_gradient_norms(dense_only, np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="norms: must be >= 2"):
        gradients.early_to_late_ratio(np.ones(1))
    with pytest.raises(TypeError, match="x: has dtype int32"):  # token ids: state norms
        gradients.timestep_gradient_norms(simple_model, x.astype("int32"), y)


def test_clip_by_global_norm_matches_tensorflow_and_keeps_direction():
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=(3, 4)), tf.float32),
             tf.constant(rng.normal(size=(5,)) * 10, tf.float32)]
    clipped, norm = gradients.clip_by_global_norm(grads, 1.0)
    reference, reference_norm = tf.clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(float(reference_norm), rel=1e-6)
    for mine, theirs in zip(clipped, reference, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)
    assert gradients.global_norm(clipped) == pytest.approx(1.0, rel=1e-6)
    assert gradients.cosine_similarity(grads, clipped) == pytest.approx(1.0, abs=1e-6)
    by_value = gradients.clip_by_value(grads, 1.0)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in by_value) <= 1.0
    assert gradients.cosine_similarity(grads, by_value) < 0.99
    unchanged, _ = gradients.clip_by_global_norm(grads, 1e6)
    np.testing.assert_allclose(unchanged[1].numpy(), grads[1].numpy())
    with pytest.raises(ValueError, match="max_norm: must be > 0"):
        gradients.clip_by_global_norm(grads, 0.0)


@pytest.mark.parametrize("argument", ["global_clipnorm", "clipvalue"])
def test_optimizer_clipping_equals_the_teaching_version(argument):
    rng = np.random.default_rng(1)
    start = [rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32")]
    grads = [tf.constant(rng.normal(size=(4, 3)) * 5, tf.float32),
             tf.constant(rng.normal(size=(3,)) * 5, tf.float32)]
    variables = [keras.Variable(v) for v in start]
    optimizer = keras.optimizers.SGD(learning_rate=1.0, **{argument: 0.5})
    optimizer.apply_gradients(zip(grads, variables, strict=True))
    if argument == "global_clipnorm":
        expected, _ = gradients.clip_by_global_norm(grads, 0.5)
    else:
        expected = gradients.clip_by_value(grads, 0.5)
    for variable, before, step in zip(variables, start, expected, strict=True):
        np.testing.assert_allclose(np.array(variable.numpy()), before - step.numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_gradient_norm_model_on_embedding_model():
    keras.utils.set_random_seed(0)  # the layers' initial weights, whatever ran before
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 6, size=(8, 7)).astype("int32")  # few ids: many repeats
    labels = rng.integers(0, 2, size=(8, 1)).astype("float32")
    inputs = keras.Input((7,), dtype="int32")
    hidden = keras.layers.Embedding(6, 4, name="embedding")(inputs)
    hidden = keras.layers.SimpleRNN(3, name="rnn")(hidden)
    plain = keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(plain(ids) - labels))
    raw = tape.gradient(loss, [w.value for w in plain.trainable_weights])
    assert isinstance(raw[0], tf.IndexedSlices)
    expected = gradients.global_norm(raw)
    naive = float(tf.linalg.global_norm([g.values if isinstance(g, tf.IndexedSlices) else g
                                         for g in raw]))
    assert abs(naive - expected) > 1e-3 * expected  # repeated ids: IndexedSlices must be summed

    model = gradients.GradientNormModel.wrap(plain, per_variable=True)
    assert model.layers[1] is plain.layers[1]  # the wrapper shares the layers and weights
    model.compile(optimizer=keras.optimizers.SGD(0.1, global_clipnorm=1e-3), loss="mse")
    start = plain.get_weights()
    model.fit(ids, labels, batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert len(model.step_norms) == 2 and len(model.epoch_norms) == 2
    assert model.epoch_max_norms == model.epoch_norms  # one step per epoch
    assert model.step_norms[0] == pytest.approx(expected, rel=1e-4)  # before clipping
    per_variable = np.array([values[0] for values in model.layer_norms.values()])
    assert np.sqrt(np.sum(per_variable ** 2)) == pytest.approx(expected, rel=1e-4)
    assert not np.array_equal(plain.get_weights()[-1], start[-1])  # fit trained plain's weights


def test_figures_have_data(batch, simple_model):
    x, y = batch
    result = gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(simple_model))
    figures = [
        gradient_plots.plot_bptt_check(result.grads, gradients.tape_gradients(simple_model, x, y),
                                       result.recurrent_contributions),
        gradient_plots.plot_norms_through_time({"simple_rnn": result.state_grad_norms},
                                               title="t"),
        gradient_plots.plot_ratio_vs_singular_value(
            (0.5, 1.0), {"tanh": np.array([[1e-3, 1e2], [np.nan, 10.0]])}, timesteps=12),
        gradient_plots.plot_norms_through_time({"two draws": np.ones((2, 12))}, title="t"),
        gradient_plots.plot_training_runs(
            [SimpleNamespace(label="a", losses=(2.0, 1.0), step_norms=(3.0, 1.0),
                             diverged=False),
             SimpleNamespace(label="b", losses=(2.0, float("nan")), step_norms=(3.0, np.inf),
                             diverged=True)], loss_baseline=1 / 6),
        gradient_plots.plot_clipping_geometry([3.0, 0.5], [0.98, 0.16], [1.0, 0.5], 1.0),
        gradient_plots.plot_step_norms([1.0, 2.0, 3.0], steps_per_epoch=2),
    ]
    for fig in figures:
        assert plots.has_data(fig) and fig._suptitle is not None
        plt.close(fig)
    with pytest.raises(ValueError, match="curves is empty"):
        gradient_plots.plot_norms_through_time({}, title="t")
    with pytest.raises(ValueError, match="ratios is empty"):
        gradient_plots.plot_ratio_vs_singular_value((0.5, 1.0), {}, timesteps=12)


def _tiny_regression(seed=0, n=12):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 2)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


def _tape_loop_norms(model, x, y, *, batch_size, epochs, accumulate=1, **clipping):
    """Reference: train ``model`` with an explicit GradientTape loop and plain SGD(0.05),
    updating once every ``accumulate`` batches with their mean gradient; the global norm of
    every update's gradient, before clipping."""
    optimizer = keras.optimizers.SGD(0.05, **clipping)
    norms, pending = [], []
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(xb, training=True) - yb))
            pending.append(tape.gradient(loss, model.trainable_variables))
            if len(pending) == accumulate:
                mean = [tf.add_n(list(g)) / accumulate for g in zip(*pending, strict=True)]
                norms.append(gradients.global_norm(mean))
                optimizer.apply(mean, model.trainable_variables)
                pending = []
    return norms


@pytest.mark.parametrize("options", [
    {}, {"global_clipnorm": 0.05}, {"clipvalue": 0.01}, {"gradient_accumulation_steps": 2},
    {"steps_per_execution": 4}, {"steps_per_execution": 4, "gradient_accumulation_steps": 2},
], ids=["plain", "global_clipnorm", "clipvalue", "accumulate-2", "execution-4",
        "execution-4-accumulate-2"])
def test_gradient_norm_model_equals_a_gradient_tape_loop(options):
    """One norm per optimizer update, the norm of the (mean) gradient that update applies."""
    options = dict(options)
    execution = options.pop("steps_per_execution", 1)
    accumulate = options.get("gradient_accumulation_steps") or 1
    x, y = _tiny_regression(n=32)
    reference = models.sequence_regressor("simple_rnn", units=3, seed=0)
    expected = _tape_loop_norms(reference, x, y, batch_size=4, epochs=2, accumulate=accumulate,
                                **{k: v for k, v in options.items() if "clip" in k})
    model = gradients.GradientNormModel.wrap(models.sequence_regressor("simple_rnn", units=3,
                                                                       seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.05, **options), loss="mse",
                  steps_per_execution=execution)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    assert len(model.step_norms) == 2 * 8 // accumulate  # 8 batches per epoch
    np.testing.assert_allclose(model.step_norms, expected, rtol=1e-4)
    np.testing.assert_allclose(model.get_weights()[1], reference.get_weights()[1], rtol=1e-4,
                               atol=1e-6)  # the same updates
    half = len(expected) // 2
    np.testing.assert_allclose(model.epoch_norms, [np.mean(expected[:half]),
                                                   np.mean(expected[half:])], rtol=1e-4)
    assert model.epoch_max_norms == [max(model.step_norms[:half]), max(model.step_norms[half:])]
    assert len(history.history["loss"]) == 2


def test_gradient_norm_model_trains_like_keras_and_keeps_logging():
    x, y = _tiny_regression(n=16)
    histories = []
    for wrap in (False, True):
        model = models.sequence_regressor("simple_rnn", units=3, seed=0)
        model = gradients.GradientNormModel.wrap(model) if wrap else model
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        histories.append(model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False,
                                   sample_weight=np.linspace(0.5, 1.0, 16),
                                   validation_data=(x, y)).history)
    for name, values in histories[0].items():
        np.testing.assert_allclose(histories[1][name], values, rtol=1e-5, err_msg=name)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # a second fit appends
    assert len(model.step_norms) == 8 + 2 and len(model.epoch_norms) == 3
    model.compile(optimizer=keras.optimizers.SGD(0.01, gradient_accumulation_steps=2),
                  loss="mse")  # a new optimizer: fresh accumulators
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert len(model.step_norms) == 10 + 2


@pytest.mark.parametrize("call, error, argument", [
    (lambda: gradients.GradientNormModel.wrap(models.sequence_regressor(units=2),
                                              per_variable="yes"), TypeError, "per_variable"),
    (lambda: gradients.GradientNormModel.wrap(keras.layers.Dense(2)), TypeError, "model"),
    (lambda: gradients.early_to_late_ratio([1.0]), ValueError, "norms"),
    (lambda: gradients.spectral_radius(np.ones((2, 3))), ValueError, "matrix"),
    (lambda: gradients.largest_singular_value(np.ones(3)), ValueError, "matrix"),
    (lambda: gradients.clip_by_global_norm([tf.ones(2)], 0.0), ValueError, "max_norm"),
    (lambda: gradients.clip_by_value([tf.ones(2)], -1.0), ValueError, "value"),
    (lambda: gradients.clip_by_value([tf.ones(2)], True), TypeError, "value"),
    (lambda: gradients.global_norm(tf.ones(2)), TypeError, "grads"),
    (lambda: gradients.cosine_similarity([tf.ones(2)], [tf.ones(2), tf.ones(1)]), ValueError,
     "grads_b"),
    (lambda: gradients.cosine_similarity([tf.zeros(2)], [tf.ones(2)]), ValueError, "grads_a"),
    (lambda: gradients.numpy_bptt(np.zeros((2, 3, 2)), np.zeros((2, 1)), {"kernel": 1}),
     ValueError, "weights"),
    (lambda: gradients.numpy_bptt(np.zeros((2, 3, 2)), np.zeros((2, 1)), {}, "gelu"),
     ValueError, "activation"),
    (lambda: gradients.set_recurrent_spectrum(keras.layers.SimpleRNN(2), 0.9, seed=1.5),
     TypeError, "seed"),
    (lambda: gradients.timestep_gradient_norms(models.sequence_regressor(units=2),
                                               np.zeros((2, 3, 2)), np.zeros((2, 1)),
                                               loss=3), TypeError, "loss"),
])
def test_bad_input_table(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument


# ---------------------------------------------------------------------------------------
# Pascanu's regulariser
# ---------------------------------------------------------------------------------------

def _numpy_omega(x, y, weights, activation="tanh"):
    """Omega of Pascanu et al. (2013) written from scratch, one example at a time, and its
    gradient with respect to W_aa with the states and errors held constant (the paper's
    eq. 10): ``(Omega, dOmega/dW_aa)``."""
    f, f_prime = gradients.NUMPY_ACTIVATIONS[activation]
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    total, gradient = 0.0, np.zeros_like(w["recurrent_kernel"])
    for xi, yi in zip(np.asarray(x, np.float64), np.asarray(y, np.float64), strict=True):
        states = [np.zeros(len(w["bias"]))]
        for step in xi:
            states.append(f(step @ w["kernel"] + states[-1] @ w["recurrent_kernel"] + w["bias"]))
        timesteps = len(xi)
        errors = {timesteps: 2 * (states[-1] @ w["dense_kernel"] + w["dense_bias"] - yi)
                  @ w["dense_kernel"].T}
        for t in range(timesteps, 1, -1):  # dE/da_{t-1} = (dE/da_t * f'(a_t)) W_aa^T
            errors[t - 1] = (errors[t] * f_prime(states[t])) @ w["recurrent_kernel"].T
        for k in range(1, timesteps):
            local = errors[k + 1] * f_prime(states[k + 1])  # a constant row vector u
            passed = local @ w["recurrent_kernel"].T  # p_j = sum_m u_m W[j, m]
            ratio = np.linalg.norm(passed) / np.linalg.norm(errors[k + 1])
            total += (ratio - 1) ** 2
            # d||p||/dW[j, m] = p_j u_m / ||p||
            gradient += (2 * (ratio - 1) / np.linalg.norm(errors[k + 1])
                         * np.outer(passed / np.linalg.norm(passed), local))
    return total / len(x), gradient / len(x)


@pytest.mark.parametrize("activation, initializer", [("tanh", None), ("relu", "identity")])
def test_pascanu_regularizer_equals_numpy(batch, activation, initializer):
    x, y = batch
    model = models.sequence_regressor("simple_rnn", units=5, activation=activation,
                                      recurrent_initializer=initializer, seed=7)
    variables = [v.value for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        omega = gradients.pascanu_regularizer(model, x, y)
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(omega, variables), strict=True))
    expected, expected_gradient = _numpy_omega(x, y, gradients.simple_rnn_weights(model),
                                               activation)
    assert float(omega) == pytest.approx(expected, rel=1e-5, abs=1e-5) and expected > 0
    recurrent = model.get_layer("simple_rnn").cell.recurrent_kernel.path
    np.testing.assert_allclose(grads.pop(recurrent).numpy(), expected_gradient, rtol=1e-4,
                               atol=1e-6)
    assert np.abs(expected_gradient).max() > 1e-3
    # W_ax, the bias and the Dense head get nothing from Omega: states and errors are constants
    assert all(g is None or not np.any(g.numpy()) for g in grads.values()), list(grads)


def test_pascanu_regularizer_is_zero_when_every_step_keeps_the_norm(batch):
    x, y = batch
    linear = models.sequence_regressor("simple_rnn", units=5, activation="linear", seed=7)
    assert gradients.largest_singular_value(
        gradients.recurrent_kernel(linear.get_layer("simple_rnn"))) == pytest.approx(1, rel=1e-5)
    assert float(gradients.pascanu_regularizer(linear, x, y)) < 1e-8  # orthogonal W_aa
    tanh = models.sequence_regressor("simple_rnn", units=5, seed=7)
    assert float(gradients.pascanu_regularizer(tanh, x, y)) > 1e-3  # tanh' < 1 shrinks it


def test_pascanu_regularizer_gradient_is_finite(batch, simple_model):
    x, y = batch
    y = np.array(y)
    y[0] = simple_model.predict(x[:1], verbose=0)[0]  # example 0: zero error at every step
    variables = [v.value for v in simple_model.trainable_variables]
    with tf.GradientTape() as tape:
        omega = gradients.pascanu_regularizer(simple_model, x, y)
    grads = tape.gradient(omega, variables)
    assert all(g is None or np.all(np.isfinite(g.numpy())) for g in grads)
    recurrent = simple_model.get_layer("simple_rnn").cell.recurrent_kernel
    index = [v.path for v in simple_model.trainable_variables].index(recurrent.path)
    assert np.linalg.norm(grads[index].numpy()) > 0  # Omega moves W_aa


def test_pascanu_regularized_fit_minimises_loss_plus_alpha_omega(batch):
    x, y = batch
    model = models.sequence_regressor("simple_rnn", units=5, seed=7)
    omega = float(gradients.pascanu_regularizer(model, x, y))
    mse = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    trainer = gradients.PascanuRegularized(model, alpha=2.0)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    history = trainer.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(mse + 2.0 * omega, rel=1e-4)
    assert trainer.evaluate(x, y, verbose=0) == pytest.approx(mse, rel=1e-4)  # task loss only
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    trainer.fit(x, y, batch_size=len(x), epochs=3, verbose=0)
    assert float(gradients.pascanu_regularizer(model, x, y)) < omega  # shares model's weights


@pytest.mark.parametrize("call, error", [
    (lambda: gradients.PascanuRegularized(models.sequence_regressor(units=2), alpha=-1.0),
     ValueError),
    (lambda: gradients.PascanuRegularized(models.sequence_regressor(units=2), alpha=np.nan),
     ValueError),
    (lambda: gradients.PascanuRegularized(models.sequence_regressor(units=2), alpha="1"),
     TypeError),
    (lambda: gradients.PascanuRegularized(models.sequence_regressor("gru", units=2)), ValueError),
    (lambda: gradients.pascanu_regularizer(models.sequence_regressor("lstm", units=2),
                                           np.zeros((2, 3, 2)), np.zeros((2, 1))), ValueError),
    (lambda: gradients.pascanu_regularizer(keras.layers.SimpleRNN(2), np.zeros((2, 3, 2)),
                                           np.zeros((2, 1))), TypeError),
    (lambda: gradients.pascanu_regularizer(models.sequence_regressor(units=2),
                                           np.zeros((2, 1, 2)), np.zeros((2, 1))), ValueError),
], ids=["alpha-negative", "alpha-nan", "alpha-string", "model-gru", "model-lstm",
        "model-a-layer", "x-one-step"])
def test_pascanu_bad_input_table(call, error, request):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == request.node.callspec.id.split("-")[0]

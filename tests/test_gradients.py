"""rnncourse.gradients: BPTT by hand, gradient norms through time, clipping, the logger."""

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
    with pytest.raises(ValueError, match="batch, timesteps, features"):
        gradients.numpy_bptt(np.zeros((4, 2)), np.zeros((4, 1)), weights)
    with pytest.raises(ValueError, match="3 features but kernel expects 2"):
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
    with pytest.raises(ValueError, match="activation must be one of"):
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
    with pytest.raises(ValueError, match="wrt must be"):
        gradients.timestep_gradient_norms(simple_model, x, y, wrt="weights")
    with pytest.raises(ValueError, match="float .batch, timesteps, features."):
        gradients.timestep_gradient_norms(simple_model, x[:, :, 0], y)
    with pytest.raises(ValueError, match="6 sequences but y has 5"):
        gradients.timestep_gradient_norms(simple_model, x, y[:5])
    with pytest.raises(ValueError, match="unknown loss"):
        gradients.timestep_gradient_norms(simple_model, x, y, loss="no_such_loss")
    with pytest.raises(ValueError, match="no gate to open"):
        gradients.open_gates(simple_model)
    lstm = models.sequence_regressor("lstm", units=3)
    with pytest.raises(ValueError, match="square recurrent matrix"):
        gradients.set_recurrent_spectrum(lstm.get_layer("lstm"), 0.9)
    dense_only = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="exactly one recurrent layer"):
        gradients.state_gradient_norms(dense_only, np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="timesteps >= 2"):
        gradients.early_to_late_ratio(np.ones(1))


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
    with pytest.raises(ValueError, match="max_norm must be > 0"):
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


def test_gradient_norm_logger_on_embedding_model():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 6, size=(8, 7)).astype("int32")  # few ids: many repeats
    labels = rng.integers(0, 2, size=(8, 1)).astype("float32")
    inputs = keras.Input((7,), dtype="int32")
    hidden = keras.layers.Embedding(6, 4, name="embedding")(inputs)
    hidden = keras.layers.SimpleRNN(3, name="rnn")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.1, global_clipnorm=1e-3), loss="mse")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(ids) - labels))
    raw = tape.gradient(loss, [w.value for w in model.trainable_weights])
    assert isinstance(raw[0], tf.IndexedSlices)
    expected = gradients.global_norm(raw)
    naive = float(tf.linalg.global_norm([g.values if isinstance(g, tf.IndexedSlices) else g
                                         for g in raw]))
    assert abs(naive - expected) > 1e-3 * expected  # repeated ids: IndexedSlices must be summed

    logger = gradients.GradientNormLogger(per_variable=True)
    model.fit(ids, labels, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[logger])
    assert len(logger.step_norms) == 2 and len(logger.epoch_norms) == 2
    assert logger.step_norms[0] == pytest.approx(expected, rel=1e-4)  # before clipping
    per_variable = np.array([values[0] for values in logger.layer_norms.values()])
    assert np.sqrt(np.sum(per_variable ** 2)) == pytest.approx(expected, rel=1e-4)
    assert "apply_gradients" not in vars(model.optimizer)  # the wrapper is gone


def test_figures_have_data(batch, simple_model):
    x, y = batch
    result = gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(simple_model))
    figures = [
        gradient_plots.plot_bptt_check(result.grads, gradients.tape_gradients(simple_model, x, y),
                                       result.recurrent_contributions),
        gradient_plots.plot_norms_through_time({"simple_rnn": result.state_grad_norms},
                                               title="t"),
        gradient_plots.plot_ratio_vs_singular_value(
            SimpleNamespace(sigmas=(0.5, 1.0), ratios={"tanh": np.array([[1e-3, 1e2]])},
                            timesteps=12)),
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


def _tiny_regression(seed=0, n=12):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 2)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


def _batch_norm(model, x, y):
    """Norm of the batch-mean MSE gradient with the model's current weights."""
    return gradients.global_norm(gradients.model_gradients(model, x, y))


class CustomStep(keras.Model):
    """The pattern of Keras' guide 'Customizing what happens in fit()'."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x, training=True) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def test_gradient_norm_logger_with_a_custom_train_step():
    x, y = _tiny_regression()
    inputs = keras.Input((5, 2))
    outputs = keras.layers.Dense(1)(keras.layers.SimpleRNN(3, seed=0)(inputs))
    model = CustomStep(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    expected = _batch_norm(model, x[:4], y[:4])
    logger = gradients.GradientNormLogger()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[logger])
    assert len(logger.step_norms) == 3 and min(logger.step_norms) > 0
    assert logger.step_norms[0] == pytest.approx(expected, rel=1e-4)


def test_gradient_norm_logger_records_one_norm_per_accumulated_update():
    x, y = _tiny_regression(n=16)
    model = models.sequence_regressor("simple_rnn", units=3, seed=0)
    start = model.get_weights()
    # the norm of the mean gradient of batches 1-2 (= the gradient of their 8 examples)
    expected = _batch_norm(model, x[:8], y[:8])
    model.compile(optimizer=keras.optimizers.SGD(0.01, gradient_accumulation_steps=2),
                  loss="mse")
    logger = gradients.GradientNormLogger(per_variable=True)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[logger])
    assert len(logger.step_norms) == 2  # 4 batches, 2 optimizer updates
    assert logger.step_norms[0] == pytest.approx(expected, rel=1e-4)
    assert all(len(v) == 2 for v in logger.layer_norms.values())
    model.set_weights(start)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: gradients.GradientNormLogger(per_variable="yes"), TypeError, "per_variable"),
    (lambda: gradients.early_to_late_ratio([1.0]), ValueError, "timesteps >= 2"),
    (lambda: gradients.spectral_radius(np.ones((2, 3))), ValueError, "square matrix"),
    (lambda: gradients.largest_singular_value(np.ones(3)), ValueError, "2-D matrix"),
    (lambda: gradients.clip_by_global_norm([tf.ones(2)], 0.0), ValueError, "max_norm"),
    (lambda: gradients.clip_by_value([tf.ones(2)], -1.0), ValueError, "value must be > 0"),
    (lambda: gradients.global_norm(tf.ones(2)), TypeError, "list of gradients"),
    (lambda: gradients.cosine_similarity([tf.ones(2)], [tf.ones(2), tf.ones(1)]), ValueError,
     "differ in length"),
    (lambda: gradients.cosine_similarity([tf.zeros(2)], [tf.ones(2)]), ValueError,
     "zero gradient"),
    (lambda: gradients.numpy_bptt(np.zeros((2, 3, 2)), np.zeros((2, 1)), {"kernel": 1}),
     ValueError, "weights is missing"),
])
def test_bad_input_table(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


# ---------------------------------------------------------------------------------------
# Pascanu's regulariser
# ---------------------------------------------------------------------------------------

def _numpy_omega(x, y, weights, activation="tanh"):
    """Omega of Pascanu et al. (2013) written from scratch, one example at a time."""
    f, f_prime = gradients.NUMPY_ACTIVATIONS[activation]
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    total = 0.0
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
            passed = (errors[k + 1] * f_prime(states[k + 1])) @ w["recurrent_kernel"].T
            total += (np.linalg.norm(passed) / np.linalg.norm(errors[k + 1]) - 1) ** 2
    return total / len(x)


@pytest.mark.parametrize("activation, initializer", [("tanh", None), ("relu", "identity")])
def test_pascanu_regularizer_equals_numpy(batch, activation, initializer):
    x, y = batch
    model = models.sequence_regressor("simple_rnn", units=5, activation=activation,
                                      recurrent_initializer=initializer, seed=7)
    omega = float(gradients.pascanu_regularizer(model, x, y))
    expected = _numpy_omega(x, y, gradients.simple_rnn_weights(model), activation)
    assert omega == pytest.approx(expected, rel=1e-5, abs=1e-5) and expected > 0


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


@pytest.mark.parametrize("call, fragment", [
    (lambda: gradients.PascanuRegularized(models.sequence_regressor(units=2), alpha=-1.0),
     "alpha must be a finite number >= 0"),
    (lambda: gradients.PascanuRegularized(models.sequence_regressor(units=2), alpha=np.nan),
     "alpha must be a finite number >= 0"),
    (lambda: gradients.PascanuRegularized(models.sequence_regressor(units=2), alpha="1"),
     "alpha must be a finite number >= 0"),
    (lambda: gradients.PascanuRegularized(models.sequence_regressor("gru", units=2)),
     r"model: the regulariser needs a SimpleRNN layer.*sequence_regressor\('simple_rnn'\)"),
    (lambda: gradients.pascanu_regularizer(models.sequence_regressor("lstm", units=2),
                                           np.zeros((2, 3, 2)), np.zeros((2, 1))),
     "model: the regulariser needs a SimpleRNN layer"),
    (lambda: gradients.pascanu_regularizer(keras.layers.SimpleRNN(2), np.zeros((2, 3, 2)),
                                           np.zeros((2, 1))),
     "model must be a keras.Model"),
    (lambda: gradients.pascanu_regularizer(models.sequence_regressor(units=2),
                                           np.zeros((2, 1, 2)), np.zeros((2, 1))),
     "timesteps >= 2"),
])
def test_pascanu_bad_input_table(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()

"""minGRU: the parallel (log-space scan) form equals the sequential loop and a float64 NumPy
reference, in outputs and gradients, with masks and carried states; the layer trains, saves
and loads; bad arguments get clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import mingru
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

UNITS = 16


def relative(got, want) -> float:
    """Largest absolute difference over the largest magnitude of ``want``."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


def layer_with(mode: str, weights: list[np.ndarray], **kwargs) -> mingru.MinGRU:
    layer = mingru.MinGRU(UNITS, mode=mode, return_sequences=True, **kwargs)
    layer.build((None, None, weights[0].shape[0]))
    layer.set_weights(weights)
    return layer


def random_weights(input_dim: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1 / np.sqrt(input_dim), (input_dim, 2 * UNITS)).astype("float32"),
            rng.normal(0, 0.5, 2 * UNITS).astype("float32")]


def extreme_case(steps: int, seed: int = 0):
    """Gate and candidate pre-activations of +-30 (plus noise), exactly: the kernel is the
    identity, so the inputs are the pre-activations and float32 rounds nothing."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-30.0, 30.0], size=(3, steps, 2 * UNITS)) + rng.normal(0, 1, (3, steps,
                                                                                2 * UNITS))
    return x.astype("float32"), [np.eye(2 * UNITS, dtype="float32"),
                                 np.zeros(2 * UNITS, "float32")]


def normal_case(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, steps, 8)).astype("float32"), random_weights(8, seed)


CASES = [pytest.param(normal_case, steps, id=f"normal-T{steps}") for steps in (1, 7, 256, 2048)] \
    + [pytest.param(extreme_case, steps, id=f"extreme-T{steps}") for steps in (7, 2048)]


@pytest.mark.parametrize(("make", "steps"), CASES)
def test_parallel_equals_sequential_and_the_numpy_reference(make, steps):
    x, weights = make(steps)
    want = mingru.reference(x, *weights)
    got = {mode: layer_with(mode, weights)(x).numpy() for mode in ("sequential", "parallel")}
    errors = {mode: relative(value, want) for mode, value in got.items()}
    between = relative(got["parallel"], got["sequential"])
    print(f"{make.__name__} T={steps}: max |parallel - sequential| = "
          f"{np.abs(got['parallel'] - got['sequential']).max():.2e} ({between:.1e} relative); "
          f"max |sequential - numpy| = {np.abs(got['sequential'] - want).max():.2e}, "
          f"max |parallel - numpy| = {np.abs(got['parallel'] - want).max():.2e}")
    assert got["parallel"].shape == want.shape == (3, steps, UNITS)
    assert between < 1e-5 and errors["sequential"] < 1e-5 and errors["parallel"] < 1e-5, errors


def test_the_papers_listing_loses_precision_on_long_saturated_sequences():
    """What the module docstring says of ``parallel_cumsum``: fine on short sequences,
    about 1e-3 relative at T = 2048 with gates saturated (the pair scan stays < 1e-5)."""
    x, weights = extreme_case(2048)
    want = mingru.reference(x, *weights)
    listing = relative(layer_with("parallel_cumsum", weights)(x), want)
    short = relative(layer_with("parallel_cumsum", weights)(x[:, :16]), want[:, :16])
    print(f"paper's Listing, +-30 pre-activations: {short:.1e} relative at T=16, "
          f"{listing:.1e} at T=2048")
    assert short < 1e-4 and listing > 1e-4


def test_initial_state_and_post_padding_mask_match_the_reference():
    x, weights = normal_case(40, seed=1)
    rng = np.random.default_rng(1)
    h0 = rng.normal(size=(3, UNITS)).astype("float32")  # any sign: it enters linearly
    lengths = np.array([40, 25, 1])
    mask = np.arange(40)[None, :] < lengths[:, None]
    want = mingru.reference(x, *weights, initial_state=h0, mask=mask)
    for mode in mingru.MODES:
        got = layer_with(mode, weights)(x, initial_state=h0, mask=mask).numpy()
        assert relative(got, want) < 1e-5, mode
        for row, length in enumerate(lengths):  # masked steps repeat the last real state
            kept = np.repeat(got[row, length - 1:length], 40 - length, axis=0)
            assert length == 40 or relative(got[row, length:], kept) < 1e-5, mode
            alone = layer_with(mode, weights)(x[row:row + 1, :length],
                                              initial_state=h0[row:row + 1]).numpy()
            assert relative(alone[0, -1], got[row, -1]) < 1e-5, mode


def test_masked_steps_behave_as_in_keras_gru():
    """The docstring's claim: Keras 3.15's GRU (zero_output_for_mask=False by default)
    repeats the last real output at masked steps, and so does MinGRU."""
    x = np.random.default_rng(4).normal(size=(2, 6, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    for layer in (keras.layers.GRU(4, return_sequences=True),
                  mingru.MinGRU(4, return_sequences=True)):
        out = np.asarray(layer(x, mask=mask))
        np.testing.assert_allclose(out[0, 4:], out[0, [3, 3]], rtol=1e-6)  # scan rounding
        assert not np.allclose(out[1, 4], out[1, 3], rtol=1e-3)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "post-padding"])
def test_gradients_of_both_forms_agree(masked):
    x, weights = normal_case(300, seed=2)
    mask = np.arange(300)[None, :] < np.array([[300], [180], [7]])
    grads = {}
    for mode in ("sequential", "parallel"):
        layer = layer_with(mode, weights)
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            states = layer(inputs, mask=mask if masked else None)
            loss = tf.reduce_sum(states ** 2)
        grads[mode] = tape.gradient(loss, [inputs, *layer.trainable_weights])
    for name, s, p in zip(("inputs", "kernel", "bias"), grads["sequential"], grads["parallel"],
                          strict=True):
        assert np.isfinite(p.numpy()).all(), name
        print(f"gradient of {name}: {relative(p, s):.1e} relative")
        assert relative(p, s) < 1e-5, name


def test_step_by_step_generation_equals_the_whole_sequence():
    x, weights = normal_case(30, seed=3)
    whole = layer_with("parallel", weights)(x).numpy()
    layer = layer_with("sequential", weights)
    h = np.zeros((3, UNITS), "float32")
    steps = []
    for t in range(30):
        h = layer.step(x[:, t], h)
        steps.append(np.asarray(h))
    assert relative(np.stack(steps, axis=1), whole) < 1e-5
    # carrying the state across calls: two halves with return_state == one call
    halves = mingru.MinGRU(UNITS, return_state=True)
    halves.build(x.shape)
    halves.set_weights(weights)
    _, h_half = halves(x[:, :13])
    last, h_last = halves(x[:, 13:], initial_state=h_half)
    assert relative(last, whole[:, -1]) < 1e-5 and relative(h_last, whole[:, -1]) < 1e-5


def test_a_tiny_model_learns_a_toy_task():
    """Recall the value at the one marked step of 8: the update gate must open at the
    marker (z -> 1) and close elsewhere (z -> 0); predicting the mean scores var(y)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    values, marks = rng.uniform(size=(1024, 8)), np.zeros((1024, 8))
    marks[np.arange(1024), rng.integers(0, 8, 1024)] = 1.0
    x = np.stack([values, marks], axis=-1).astype("float32")
    y = (values * marks).sum(axis=1, keepdims=True).astype("float32")
    model = keras.Sequential([keras.Input((8, 2)), mingru.MinGRU(16), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0).history["loss"]
    print(f"toy task loss: {history[0]:.3f} -> {history[-1]:.4f} (variance {y.var():.3f})")
    assert history[-1] < 0.25 * y.var()


def test_save_and_load_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(20, 8, mask_zero=True)(inputs)
    hidden = mingru.MinGRU(12, mode="sequential", return_sequences=True)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3)(mingru.MinGRU(6)(hidden)))
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # registered: no custom_objects
    assert [layer.get_config()["mode"] for layer in loaded.layers
            if isinstance(layer, mingru.MinGRU)] == ["sequential", "parallel"]
    np.testing.assert_allclose(loaded(ids), model(ids), atol=1e-6)
    clone = mingru.MinGRU.from_config(mingru.MinGRU(5, return_state=True).get_config())
    assert clone.units == 5 and clone.return_state and clone.mode == "parallel"


def test_shapes_parameters_and_mask_propagation():
    layer = mingru.MinGRU(7, return_sequences=True, return_state=True)
    output, state = layer(np.zeros((2, 9, 3), "float32"))
    assert output.shape == (2, 9, 7) and state.shape == (2, 7)
    assert layer.count_params() == 2 * 7 * (3 + 1)
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    seq = mingru.MinGRU(5, return_sequences=True)(embedded)
    assert seq.shape == (None, None, 5)
    assert mingru.MinGRU(5).compute_mask(None, np.ones((1, 3), bool)) is None
    assert layer.compute_output_shape((2, 9, 3)) == [(2, 9, 7), (2, 7)]


@pytest.mark.parametrize("mode", mingru.MODES)
def test_mixed_precision_keeps_masked_steps_finite(mode):
    x, weights = normal_case(12, seed=5)
    mask = np.arange(12)[None, :] < np.array([[12], [5], [9]])
    layer = mingru.MinGRU(UNITS, mode=mode, return_sequences=True, dtype="mixed_float16")
    layer.build(x.shape)
    layer.set_weights(weights)
    with tf.GradientTape() as tape:
        out = layer(x, mask=mask)
        loss = tf.reduce_sum(tf.cast(out, "float32") ** 2)
    assert out.dtype == "float16"
    assert all(np.isfinite(g.numpy()).all() for g in tape.gradient(loss, layer.weights))
    want = mingru.reference(x, *weights, mask=mask)
    assert relative(out.numpy(), want) < 2e-3  # float16 products and outputs


def test_g_and_log_g():
    x = np.array([-100.0, -30.0, -1.0, 0.0, 0.5, 40.0], "float32")
    g = np.asarray(mingru.g(x))
    assert np.all(g[1:] > 0) and g[3] == 0.5 and g[-1] == 40.5  # g(-100) underflows to 0
    np.testing.assert_allclose(np.asarray(mingru.log_g(x))[1:], np.log(g[1:]), rtol=1e-6)
    assert np.asarray(mingru.log_g(x))[0] == pytest.approx(-100.0)  # sigma underflows, log not


# ----------------------------------------------------------------------------- bad input
def bad(error: type[BaseException], argument: str):
    return error, argument


BAD = [
    ("units-0", lambda: mingru.MinGRU(0), bad(ValueError, "units")),
    ("units-float", lambda: mingru.MinGRU(4.0), bad(TypeError, "units")),
    ("units-bool", lambda: mingru.MinGRU(True), bad(TypeError, "units")),
    ("units-negative-numpy", lambda: mingru.MinGRU(np.int8(-2)), bad(ValueError, "units")),
    ("mode-unknown", lambda: mingru.MinGRU(4, mode="scan"), bad(ValueError, "mode")),
    ("mode-bool", lambda: mingru.MinGRU(4, mode=True), bad(TypeError, "mode")),
    ("features-unknown", lambda: mingru.MinGRU(4).build((None, 5, None)),
     bad(ValueError, "inputs")),
    ("method-unknown", lambda: mingru.log_space_scan(np.zeros((1, 2, 1)), np.zeros((1, 2, 1)),
                                                     method="heinsen"),
     bad(ValueError, "method")),
    ("reference-rank-2", lambda: mingru.reference(np.zeros((2, 3)), np.zeros((3, 4)),
                                                  np.zeros(4)), bad(ValueError, "inputs")),
    ("reference-text", lambda: mingru.reference([["a"]], np.zeros((1, 4)), np.zeros(4)),
     bad(TypeError, "inputs")),
    ("reference-kernel-rank-1", lambda: mingru.reference(np.zeros((1, 2, 3)), np.zeros(3),
                                                         np.zeros(4)),
     bad(ValueError, "kernel")),
    ("reference-state-rank-3", lambda: mingru.reference(
        np.zeros((1, 2, 3)), np.zeros((3, 4)), np.zeros(4), initial_state=np.zeros((1, 1, 2))),
     bad(ValueError, "initial_state")),
    ("reference-mask-rank-1", lambda: mingru.reference(
        np.zeros((1, 2, 3)), np.zeros((3, 4)), np.zeros(4), mask=[True, False]),
     bad(ValueError, "mask")),
]


@pytest.mark.parametrize(("call", "expect"), [pytest.param(c, e, id=i) for i, c, e in BAD])
def test_bad_input(call, expect, refuses):
    refuses(call, expect)


def test_accepted_kinds():
    assert mingru.MinGRU(np.int64(3)).units == 3 and type(mingru.MinGRU(np.int16(3)).units) is int
    x, weights = normal_case(4)
    as_lists = mingru.reference(x.tolist(), weights[0].tolist(), weights[1].tolist())
    assert np.allclose(as_lists, mingru.reference(tf.constant(x), *weights))

"""Equal budgets: match_units finds widths within 10% of a parameter target for LSTM, GRU,
minGRU and a small Transformer; the cost counter agrees with hand counts and with the
parameter counts of the Keras models it describes; crossover finds where curves meet."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import budget, cells, mingru
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
from keras import ops  # noqa: E402

FEATURES, CONTEXT, HEADS = 12, 32, 2


class PositionEmbedding(keras.layers.Layer):
    """Learned positions added to the inputs: ``(batch, T, n)`` -> ``(batch, T, n)``."""

    def __init__(self, length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length = length

    def build(self, input_shape) -> None:
        self.positions = self.add_weight(shape=(self.length, input_shape[-1]),
                                         initializer="random_normal", name="positions")

    def call(self, inputs):
        return inputs + self.positions[:ops.shape(inputs)[1]]


def transformer(units: int, *, input_dim: int = FEATURES, context: int = CONTEXT,
                heads: int = HEADS, outputs: int = 0) -> keras.Model:
    """The layer budget.layer_cost counts: projection, positions, a pre-norm block."""
    inputs = keras.Input((context, input_dim))
    x = keras.layers.Dense(units)(inputs) if input_dim != units else inputs
    x = PositionEmbedding(context)(x)
    h = keras.layers.LayerNormalization()(x)
    h = keras.layers.MultiHeadAttention(heads, key_dim=units // heads)(h, h,
                                                                        use_causal_mask=True)
    x = x + h
    h = keras.layers.LayerNormalization()(x)
    h = keras.layers.Dense(units)(keras.layers.Dense(4 * units, activation="relu")(h))
    x = x + h
    if outputs:
        x = keras.layers.Dense(outputs)(x)
    return keras.Model(inputs, x)


def recurrent(kind: str, units: int, *, input_dim: int = FEATURES, layers: int = 1,
              outputs: int = 0) -> keras.Model:
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "mingru": mingru.MinGRU}[kind]
    model = keras.Sequential([keras.Input((None, input_dim))]
                             + [layer(units, return_sequences=True) for _ in range(layers)]
                             + ([keras.layers.Dense(outputs)] if outputs else []))
    return model


def test_hand_counts_for_tiny_sizes():
    # d = 2, n = 3: LSTM 4 gates x (3 x (2 + 3) + 3) = 72 parameters, 4 x 3 x 5 = 60 MACs
    lstm = budget.layer_cost("lstm", 10, input_dim=2, units=3)
    assert (lstm.parameters, lstm.forward_macs, lstm.train_macs, lstm.generate_macs,
            lstm.state_bytes) == (72, 60, 180, 60, 2 * 3 * 4)
    gru = budget.layer_cost("gru", 10, input_dim=2, units=3)
    assert (gru.parameters, gru.forward_macs, gru.state_bytes) == (3 * 15 + 2 * 9, 45, 12)
    mini = budget.layer_cost("mingru", 10, input_dim=2, units=3, bytes_per_value=2)
    assert (mini.parameters, mini.forward_macs, mini.state_bytes) == (2 * 3 * 3, 12, 6)
    # Transformer, d = n = 4, f = 16, L = 5: attention 4 x 16 + 16, norms 16, FFN
    # 2 x 64 + 16 + 4, positions 20; MACs 4 x 16 + 2 x 64 = 192 + attention 2 x 4 x 5 = 40
    t = budget.layer_cost("transformer", 5, input_dim=4, units=4, heads=2)
    assert t.parameters == 80 + 16 + 148 + 20
    assert (t.forward_macs, t.generate_macs, t.state_bytes) == (232, 232, 2 * 4 * 5 * 4)
    # two layers and a head: the second layer sees n inputs
    two = budget.layer_cost("lstm", 1, input_dim=2, units=3, layers=2, outputs=5)
    assert two.parameters == 72 + 4 * (3 * 6 + 3) + 4 * 5
    assert two.forward_macs == 60 + 4 * 3 * 6 + 3 * 5


@pytest.mark.parametrize("kind", ["lstm", "gru", "mingru"])
@pytest.mark.parametrize(("units", "layers", "outputs"), [(5, 1, 0), (16, 2, 7)])
def test_recurrent_counts_equal_the_keras_models(kind, units, layers, outputs):
    model = recurrent(kind, units, layers=layers, outputs=outputs)
    counted = budget.layer_cost(kind, 100, input_dim=FEATURES, units=units, layers=layers,
                                outputs=outputs)
    assert counted.parameters == model.count_params()
    if kind != "mingru" and layers == 1 and not outputs:
        assert counted.parameters == cells.parameter_count(kind, FEATURES, units)


@pytest.mark.parametrize(("units", "input_dim", "outputs"), [(8, FEATURES, 0), (16, 16, 5)])
def test_transformer_count_equals_the_keras_model(units, input_dim, outputs):
    model = transformer(units, input_dim=input_dim, outputs=outputs)
    counted = budget.layer_cost("transformer", CONTEXT, input_dim=input_dim, units=units,
                                heads=HEADS, outputs=outputs)
    assert counted.parameters == model.count_params()


def test_costs_grow_with_context_only_for_attention():
    contexts = [128, 512, 2048, 8192]
    shape = dict(input_dim=64, units=128)
    for kind in ("lstm", "gru", "mingru"):
        curve = budget.cost_curve(kind, contexts, **shape)
        assert len({(c.generate_macs, c.state_bytes) for c in curve}) == 1, kind
    attention = budget.cost_curve("transformer", np.array(contexts), heads=4, **shape)
    kv = [c.state_bytes for c in attention]
    assert kv == [2 * 128 * L * 4 for L in contexts]
    assert np.all(np.diff([c.generate_macs for c in attention]) > 0)


def test_crossover_of_generation_cost():
    """Per generated token an LSTM costs 4 n (d + n); a Transformer 4 n^2 + 2 n f + 2 n L
    (d = n, f = 4 n) = 12 n^2 + 2 n L: they never meet for d = n (the LSTM is cheaper at
    L = 0: 8 n^2 < 12 n^2). Against minGRU (2 n d = 2 n^2) neither. With a wide LSTM
    (n_lstm = 2 n) the LSTM costs 4 (2n)(n + 2n) = 24 n^2, equal to the Transformer's at
    L = 6 n."""
    n = 64
    contexts = [128, 256, 384, 512, 1024]
    lstm = [c.generate_macs for c in budget.cost_curve("lstm", contexts, input_dim=n,
                                                        units=2 * n)]
    attention = [c.generate_macs for c in budget.cost_curve("transformer", contexts,
                                                            input_dim=n, units=n)]
    assert budget.crossover(contexts, lstm, attention) == pytest.approx(6 * n)
    narrow = [c.generate_macs for c in budget.cost_curve("lstm", contexts, input_dim=n,
                                                          units=n)]
    assert budget.crossover(contexts, narrow, attention) is None


def test_crossover_hand_cases():
    assert budget.crossover([0, 1, 2], [0, 1, 2], [1, 1, 1]) == 1.0
    assert budget.crossover([0, 10], [0, 10], [5, 5]) == pytest.approx(5.0)
    assert budget.crossover([0, 10], [10, 0], [5, 5]) == pytest.approx(5.0)
    assert budget.crossover([1, 2, 4], [1, 1, 1], [2, 3, 4]) is None


@pytest.mark.parametrize("kind", ["lstm", "gru", "mingru", "transformer"])
def test_match_units_within_ten_percent(kind):
    target = 20_000
    build = (lambda units: transformer(units)) if kind == "transformer" \
        else (lambda units: recurrent(kind, units))
    match = budget.match_units(build, target, multiple_of=HEADS if kind == "transformer" else 1,
                               max_units=1024)
    print(f"{kind:12s} {match}")
    assert abs(match.parameters - target) <= 0.10 * target
    assert match.parameters == build(match.units).count_params()
    assert kind != "transformer" or match.units % HEADS == 0


def test_match_units_picks_the_closest_width():
    # n^2 parameters: 1000 lies between 31^2 = 961 and 32^2 = 1024; 1024 is closer
    match = budget.match_units(lambda n: n * n, 1000, tolerance=0.05)
    assert (match.units, match.parameters, match.target) == (32, 1024, 1000)
    assert match.relative_error == pytest.approx(0.024)
    assert "units=32" in str(match) and "+2.4%" in str(match)
    # 950 lies closer to 961 (the width below the first count that reaches the target)
    assert budget.match_units(lambda n: n * n, 950).units == 31
    # the counter itself as the builder: minGRU of 2 n (d + 1) parameters
    match = budget.match_units(lambda n: budget.layer_cost(
        "mingru", 1, input_dim=9, units=n).parameters, 2000)
    assert match.units == 100 and match.parameters == 2000


# ----------------------------------------------------------------------------- bad input
def bad(error: type[BaseException], argument: str):
    return error, argument


COST = dict(input_dim=4, units=8)
BAD = [
    ("kind-unknown", lambda: budget.layer_cost("rnn", 10, **COST), bad(ValueError, "kind")),
    ("kind-not-str", lambda: budget.layer_cost(1, 10, **COST), bad(TypeError, "kind")),
    ("context-0", lambda: budget.layer_cost("lstm", 0, **COST), bad(ValueError, "context")),
    ("context-float", lambda: budget.layer_cost("lstm", 128.0, **COST),
     bad(TypeError, "context")),
    ("context-bool", lambda: budget.layer_cost("lstm", True, **COST),
     bad(TypeError, "context")),
    ("units-negative", lambda: budget.layer_cost("gru", 8, input_dim=4, units=-1),
     bad(ValueError, "units")),
    ("input-dim-nan", lambda: budget.layer_cost("gru", 8, input_dim=float("nan"), units=4),
     bad(TypeError, "input_dim")),
    ("heads-do-not-divide", lambda: budget.layer_cost("transformer", 8, input_dim=4, units=6,
                                                      heads=4), bad(ValueError, "heads")),
    ("ffn-zero", lambda: budget.layer_cost("transformer", 8, ffn_units=0, **COST),
     bad(ValueError, "ffn_units")),
    ("outputs-negative", lambda: budget.layer_cost("lstm", 8, outputs=-2, **COST),
     bad(ValueError, "outputs")),
    ("bytes-zero", lambda: budget.layer_cost("lstm", 8, bytes_per_value=0, **COST),
     bad(ValueError, "bytes_per_value")),
    ("contexts-floats", lambda: budget.cost_curve("lstm", [128.0, 256.0], **COST),
     bad(TypeError, "context")),
    ("contexts-2d", lambda: budget.cost_curve("lstm", [[128, 256]], **COST),
     bad(TypeError, "context")),
    ("contexts-zero", lambda: budget.cost_curve("lstm", [0, 128], **COST),
     bad(ValueError, "context")),
    ("crossover-nan", lambda: budget.crossover([1, 2], [1, float("nan")], [2, 2]),
     bad(ValueError, "a")),
    ("crossover-length", lambda: budget.crossover([1, 2, 3], [1, 2], [2, 2, 2]),
     bad(ValueError, "a")),
    ("crossover-2d", lambda: budget.crossover([[1, 2]], [[1, 2]], [[2, 2]]),
     bad(ValueError, "x")),
    ("crossover-decreasing", lambda: budget.crossover([2, 1], [1, 2], [2, 1]),
     bad(ValueError, "x")),
    ("crossover-one-point", lambda: budget.crossover([1], [1], [2]), bad(ValueError, "x")),
    ("crossover-text", lambda: budget.crossover(["a", "b"], [1, 2], [2, 1]),
     bad(TypeError, "x")),
    ("crossover-bools", lambda: budget.crossover([1, 2], [True, False], [2, 1]),
     bad(TypeError, "a")),
    ("match-target-0", lambda: budget.match_units(lambda n: n, 0), bad(ValueError,
                                                                      "target_params")),
    ("match-target-float", lambda: budget.match_units(lambda n: n, 1e4),
     bad(TypeError, "target_params")),
    ("match-tolerance-negative", lambda: budget.match_units(lambda n: n, 10, tolerance=-0.1),
     bad(ValueError, "tolerance")),
    ("match-tolerance-nan", lambda: budget.match_units(lambda n: n, 10,
                                                       tolerance=float("nan")),
     bad(ValueError, "tolerance")),
    ("match-multiple-bool", lambda: budget.match_units(lambda n: n, 10, multiple_of=True),
     bad(TypeError, "multiple_of")),
    ("match-build-returns-str", lambda: budget.match_units(lambda n: "big", 10),
     bad(TypeError, "build")),
    ("match-unreachable", lambda: budget.match_units(lambda n: 100 * n, 150),
     bad(ValueError, "target_params")),
    ("match-too-big", lambda: budget.match_units(lambda n: n, 10_000, max_units=64),
     bad(ValueError, "target_params")),
]


@pytest.mark.parametrize(("call", "expect"), [pytest.param(c, e, id=i) for i, c, e in BAD])
def test_bad_input(call, expect, refuses):
    refuses(call, expect)


def test_accepted_kinds():
    as_numpy = budget.layer_cost("lstm", np.int64(128), input_dim=np.int32(4), units=np.int8(8))
    assert as_numpy == budget.layer_cost("lstm", 128, input_dim=4, units=8)
    assert type(as_numpy.context) is int
    assert budget.crossover(np.array([0, 10]), (0, 10), [5.0, 5.0]) == pytest.approx(5.0)
    assert budget.match_units(lambda n: np.int64(n), np.int32(40)).units == 40

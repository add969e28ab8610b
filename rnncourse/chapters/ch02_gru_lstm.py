"""Chapter 2, *GRU and LSTM*: the adding problem, gradients through time, Keras probes.

Follows the chapter contract of :mod:`rnncourse.chapters`. The library this chapter teaches
is :mod:`rnncourse.cells` (the scratch cells and their equivalence with Keras); what lives
here is the chapter's experiment and its probes of Keras behaviour:

* :func:`run_adding` trains SimpleRNN, GRU and LSTM on the adding problem
  (:func:`rnncourse.data.adding_problem`) with one recipe, each until its test MSE is
  below a target or a common budget of Adam steps runs out, and measures the gradient
  that reaches the early input steps before and after training.
* :func:`constant_mse_tolerance` is the sampling error of the constant predictor's test MSE.
* :func:`eligibility_table`, :func:`usage_shapes` and :func:`dropout_difference` probe Keras
  layers for the chapter's tables and asserts.

Wall-clock timings of the cuDNN kernel are in ``benchmarks/cudnn_speed.py``, never here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse import config, data, devices, gradients, models
from rnncourse.chapters import Settings, settings_for

config.quiet_tensorflow()

import keras  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "BASELINE_MSE",
           "constant_mse_tolerance", "steps", "adding_model", "AddingRun", "train_adding",
           "AddingResult", "run_adding", "EXAMPLE_LAYERS", "eligibility_table",
           "usage_shapes", "dropout_difference"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        timesteps: length ``T`` of the adding-problem sequences.
        train_examples: training sequences (the same for every cell).
        test_examples: test sequences (learning curves, constant-predictor check).
        epochs: the largest budget a cell gets; training stops earlier once the test MSE
            is below the recipe's target (one epoch is ``ceil(train_examples / batch)``
            Adam steps).
        units: recurrent units of every cell.
        probe_examples: test sequences on which the gradient through time is measured.
    """

    timesteps: int
    train_examples: int
    test_examples: int
    epochs: int
    units: int
    probe_examples: int


SIZES = {
    "ci": Sizes(timesteps=20, train_examples=3000, test_examples=1000, epochs=20, units=32,
                probe_examples=256),
    "full": Sizes(timesteps=100, train_examples=10_000, test_examples=2000, epochs=24,
                  units=64, probe_examples=256),
}


@dataclass(frozen=True)
class Recipe:
    """The training recipe, the same at both scales.

    Attributes:
        learning_rate: Adam's step size, for every cell.
        batch_size: sequences per Adam step.
        target_fraction: a cell has learned the lag once its test MSE is below
            ``target_fraction * BASELINE_MSE`` (1/30 for 0.2); training stops there.
        cells: the compared cells, each with the same recipe and the same largest budget.
        optimizer: the optimizer's name (``keras.optimizers.get``).
    """

    learning_rate: float = 3e-3
    batch_size: int = 32
    target_fraction: float = 0.2
    cells: tuple[str, ...] = ("simple_rnn", "gru", "lstm")
    optimizer: str = "adam"


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


def steps(setup: Settings[Sizes, Recipe], epochs: int) -> int:
    """Adam steps of ``epochs`` epochs: ``epochs * ceil(train_examples / batch_size)``."""
    return epochs * -(-setup.sizes.train_examples // setup.recipe.batch_size)


# ------------------------------------------------------------------------ the baseline

#: MSE of the best constant prediction (1.0) on the adding problem: Var(U1 + U2) = 2/12.
BASELINE_MSE = 1.0 / 6.0

#: Variance of the squared error ``(y - 1)**2`` of the constant predictor. ``y - 1`` has the
#: triangular density ``1 - |d|`` on ``[-1, 1]``, so ``E[d**4] = 1/15`` and the variance is
#: ``1/15 - (1/6)**2 = 7/180``.
SQUARED_ERROR_VARIANCE = 7.0 / 180.0


def constant_mse_tolerance(examples: int, standard_errors: float = 4.0) -> float:
    """How far the constant predictor's MSE on ``examples`` test sequences may fall from 1/6.

    The measured MSE is a mean of ``examples`` independent squared errors with variance
    :data:`SQUARED_ERROR_VARIANCE`, so its standard error is ``sqrt(7/180 / examples)``
    (0.0062 for 1,000 sequences). Returns ``standard_errors`` times that.
    """
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1:
        raise ValueError(f"examples must be a positive int, got {examples!r}")
    if not standard_errors > 0:
        raise ValueError(f"standard_errors must be > 0, got {standard_errors!r}")
    return standard_errors * math.sqrt(SQUARED_ERROR_VARIANCE / examples)


# ------------------------------------------------------------------- the adding problem

def adding_model(cell: str, setup: Settings[Sizes, Recipe] | None = None,
                 seed: int = 0) -> keras.Model:
    """:func:`rnncourse.models.sequence_regressor` compiled with the recipe's optimizer and MSE.

    ``(batch, timesteps, 2)`` values and markers -> ``cell`` -> ``Dense(1)``.
    """
    s = setup or settings()
    model = models.sequence_regressor(cell, s.sizes.units, features=2,
                                      timesteps=s.sizes.timesteps, seed=seed,
                                      name=f"adding_{cell}")
    optimizer = keras.optimizers.get({"class_name": s.recipe.optimizer,
                                      "config": {"learning_rate": s.recipe.learning_rate}})
    model.compile(optimizer=optimizer, loss="mse")
    return model


class _TestMSE(keras.callbacks.Callback):
    """Test MSE after every epoch; stops training once it is below ``target``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, target: float) -> None:
        super().__init__()
        self.x, self.y, self.target, self.values = x, y, target, []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(float(self.model.evaluate(self.x, self.y, verbose=0,
                                                     batch_size=500)))
        if self.values[-1] < self.target:
            self.model.stop_training = True


@dataclass(frozen=True)
class AddingRun:
    """One cell trained on the adding problem until it learned the lag or ran out of budget.

    Attributes:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        steps_per_epoch: Adam steps in one epoch.
        test_mse: test MSE after every epoch (training stopped after the last one).
        target: the test MSE below which the cell counts as having learned the lag.
        gradient_norms: global gradient norm of every training step (before any clipping).
        initial_norms: ``(timesteps,)`` mean ``||dL/dx_t||`` of the freshly initialised model
            on the probe sequences (:func:`rnncourse.gradients.timestep_gradient_norms`).
        trained_norms: the same after training.
        parameters: trainable parameters of the model.
    """

    cell: str
    steps_per_epoch: int
    test_mse: tuple[float, ...]
    target: float
    gradient_norms: tuple[float, ...] = field(repr=False)
    initial_norms: np.ndarray = field(repr=False)
    trained_norms: np.ndarray = field(repr=False)
    parameters: int

    @property
    def final_mse(self) -> float:
        return self.test_mse[-1]

    @property
    def steps(self) -> int:
        """Adam steps taken."""
        return len(self.test_mse) * self.steps_per_epoch

    @property
    def learned(self) -> bool:
        """Whether the test MSE got below :attr:`target` within the budget."""
        return self.final_mse < self.target

    @property
    def steps_to_learn(self) -> float:
        """Adam steps until the test MSE was below :attr:`target`; ``inf`` if it never was."""
        return float(self.steps) if self.learned else math.inf

    def mse_after(self, steps: int) -> float:
        """Test MSE at the last epoch end at or before ``steps`` Adam steps (or the last)."""
        epochs = max(1, min(len(self.test_mse), steps // self.steps_per_epoch))
        return self.test_mse[epochs - 1]

    @staticmethod
    def _early_late(norms: np.ndarray) -> float:
        half = len(norms) // 2
        return float(norms[:half].mean() / norms[half:].mean())

    @property
    def initial_ratio(self) -> float:
        """Mean gradient norm over the first half of the steps / second half, untrained."""
        return self._early_late(self.initial_norms)

    @property
    def trained_ratio(self) -> float:
        """The same ratio after training."""
        return self._early_late(self.trained_norms)


def train_adding(cell: str, setup: Settings[Sizes, Recipe] | None = None) -> AddingRun:
    """Train one cell on the adding problem until it learns the lag or the budget ends.

    Training data come from ``config.seed(0)``, test data from ``config.seed(1)`` and the
    weights from ``config.seed(2)``, so every cell sees the same sequences in the same order.
    Records the test MSE after every epoch, the gradient norm of every step, and the
    gradient through time (``||dL/dx_t||``) before and after training.

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        setup: the chapter's settings (default: :func:`settings`).
    """
    s = setup or settings()
    x, y = data.adding_problem(s.sizes.train_examples, s.sizes.timesteps, seed=config.seed(0))
    x_test, y_test = data.adding_problem(s.sizes.test_examples, s.sizes.timesteps,
                                         seed=config.seed(1))
    probe_x, probe_y = x_test[:s.sizes.probe_examples], y_test[:s.sizes.probe_examples]
    config.set_seed(config.seed(2))
    model = adding_model(cell, s, seed=config.seed(2))
    initial = gradients.timestep_gradient_norms(model, probe_x, probe_y)
    target = s.recipe.target_fraction * BASELINE_MSE
    tracker, logger = _TestMSE(x_test, y_test, target), gradients.GradientNormLogger()
    model.fit(x, y, batch_size=s.recipe.batch_size, epochs=s.sizes.epochs, verbose=0,
              callbacks=[tracker, logger])
    return AddingRun(cell=cell, steps_per_epoch=steps(s, 1), test_mse=tuple(tracker.values),
                     target=target, gradient_norms=tuple(logger.step_norms),
                     initial_norms=initial,
                     trained_norms=gradients.timestep_gradient_norms(model, probe_x, probe_y),
                     parameters=int(model.count_params()))


@dataclass(frozen=True)
class AddingResult:
    """The chapter's comparison: every cell with the same recipe and the same largest budget.

    Attributes:
        timesteps: sequence length ``T``.
        budget: the largest budget in Adam steps (``epochs`` epochs).
        runs: ``{cell: AddingRun}``.
        constant_mse: the constant predictor's MSE on the test sequences.
        tolerance: 4 standard errors of ``constant_mse`` (:func:`constant_mse_tolerance`).
    """

    timesteps: int
    budget: int
    runs: dict[str, AddingRun]
    constant_mse: float
    tolerance: float

    @property
    def steps_to_learn(self) -> dict[str, float]:
        """``{cell: Adam steps until it learned the lag}`` (``inf``: not within the budget)."""
        return {cell: run.steps_to_learn for cell, run in self.runs.items()}


def run_adding(setup: Settings[Sizes, Recipe] | None = None,
               cells: Sequence[str] | None = None) -> AddingResult:
    """The chapter's experiment: :func:`train_adding` for each cell of the recipe."""
    s = setup or settings()
    _, y_test = data.adding_problem(s.sizes.test_examples, s.sizes.timesteps,
                                    seed=config.seed(1))
    runs = {cell: train_adding(cell, s) for cell in (cells or s.recipe.cells)}
    return AddingResult(timesteps=s.sizes.timesteps, budget=steps(s, s.sizes.epochs),
                        runs=runs, constant_mse=float(((y_test - 1.0) ** 2).mean()),
                        tolerance=constant_mse_tolerance(s.sizes.test_examples))


# --------------------------------------------------------------- probes of Keras layers

#: Layer settings people write, for the chapter's eligibility table: (label, factory).
EXAMPLE_LAYERS = (
    ("LSTM(64)", lambda: keras.layers.LSTM(64)),
    ("LSTM(64, dropout=0.2)", lambda: keras.layers.LSTM(64, dropout=0.2)),
    ("LSTM(64, go_backwards=True)", lambda: keras.layers.LSTM(64, go_backwards=True)),
    ("Bidirectional(LSTM(64))", lambda: keras.layers.Bidirectional(keras.layers.LSTM(64))),
    ("LSTM(64, activation='relu')", lambda: keras.layers.LSTM(64, activation="relu")),
    ("LSTM(64, recurrent_dropout=0.2)", lambda: keras.layers.LSTM(64, recurrent_dropout=0.2)),
    ("LSTM(64, unroll=True)", lambda: keras.layers.LSTM(64, unroll=True)),
    ("LSTM(64, use_bias=False)", lambda: keras.layers.LSTM(64, use_bias=False)),
    ("LSTM(64, recurrent_activation='hard_sigmoid')",
     lambda: keras.layers.LSTM(64, recurrent_activation="hard_sigmoid")),
    ("GRU(64)", lambda: keras.layers.GRU(64)),
    ("GRU(64, reset_after=False)", lambda: keras.layers.GRU(64, reset_after=False)),
    ("RNN(LSTMCell(64))", lambda: keras.layers.RNN(keras.layers.LSTMCell(64))),
)


def eligibility_table() -> list[tuple[str, bool, str]]:
    """``(layer setting, cuDNN eligible, what rules it out)`` for :data:`EXAMPLE_LAYERS`.

    Uses :func:`rnncourse.devices.cudnn_eligibility`; the reasons column is empty for
    eligible layers.
    """
    rows = []
    for label, factory in EXAMPLE_LAYERS:
        eligible, reasons = devices.cudnn_eligibility(factory())
        rows.append((label, eligible, "; ".join(reasons)))
    return rows


def usage_shapes(batch: int = 4, timesteps: int = 7, features: int = 3,
                 units: int = 5) -> dict[str, tuple]:
    """Output shapes of the common ways to use a Keras LSTM, on a random batch.

    Keys: ``"last output"`` (default), ``"return_sequences"``, ``"return_state"`` (output,
    h, c), ``"stacked"`` (LSTM(return_sequences=True) -> LSTM), ``"bidirectional"``
    (forward and backward outputs concatenated).
    """
    x = np.random.default_rng(0).normal(size=(batch, timesteps, features)).astype("float32")
    lstm = keras.layers.LSTM
    return {
        "last output": tuple(lstm(units)(x).shape),
        "return_sequences": tuple(lstm(units, return_sequences=True)(x).shape),
        "return_state": tuple(tuple(t.shape) for t in lstm(units, return_state=True)(x)),
        "stacked": tuple(lstm(units)(lstm(units, return_sequences=True)(x)).shape),
        "bidirectional": tuple(keras.layers.Bidirectional(lstm(units))(x).shape),
    }


def dropout_difference(rate: float = 0.5) -> dict[str, float]:
    """How ``dropout`` and ``recurrent_dropout`` act: at training time only.

    Runs one LSTM layer with the given ``dropout``/``recurrent_dropout`` on a fixed batch
    with ``training=False`` and ``training=True`` and returns the largest absolute change
    of the output against the same weights without dropout: zero at inference, non-zero
    in training, for both kinds. Seeds from :func:`rnncourse.config.seed` ``(3)``.
    """
    seed = config.seed(3)
    x = np.random.default_rng(seed).normal(size=(4, 6, 3)).astype("float32")
    config.set_seed(seed)
    plain = keras.layers.LSTM(5)
    reference = plain(x).numpy()
    result = {}
    for kind in ("dropout", "recurrent_dropout"):
        layer = keras.layers.LSTM(5, **{kind: rate})
        layer.build(x.shape)
        layer.set_weights(plain.get_weights())
        result[f"{kind}, inference"] = float(np.max(np.abs(layer(x).numpy() - reference)))
        result[f"{kind}, training"] = float(np.max(np.abs(layer(x, training=True).numpy()
                                                          - reference)))
    return result

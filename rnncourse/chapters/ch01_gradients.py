"""Chapter 1, RNN gradients: data, figure data and formatting (see :mod:`rnncourse.chapters`).

The chapter's trainings (the clipped IRNN, the regulariser runs, the review classifier) are
on its page, ``book/01_rnn_gradients.ipynb``; this module holds what the page need not
show: the batches, the measurements of *untrained* models that its figures plot, and the
dataclasses its results go into. The tools live in :mod:`rnncourse.gradients`; the models
come from :func:`rnncourse.models.sequence_regressor` and
:func:`rnncourse.models.sequence_classifier`. Every run draws its seeds from
:func:`rnncourse.config.seed`, so ``RNNCOURSE_SEED`` changes data and weights alike.

Seed offsets used here: 0 the probe batch, 1 the probe model, 2 the orthogonal matrices of
:func:`rnncourse.gradients.set_recurrent_spectrum`, 3 the clipping data, 4 the clipping
model, 5 the review sentences, 6 the review classifier, 7 the exercise-1 model, and
``10 ..`` the weight draws averaged over (``Sizes.weight_seeds`` of them; also the
initial weights of the regulariser runs, which train on the clipping data, offset 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse import config, data, gradients, models, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "weight_seeds", "probe_batch",
           "GradientCurves", "run_spectrum_curves", "run_singular_value_sweep",
           "SingularValueSweep", "INITIALISATIONS", "run_initialisations", "run_cells",
           "TrainingRun", "clipping_data", "ReviewBatch", "review_batch", "SPECTRA",
           "print_table", "REGULARIZER_RUNS", "RegularizerResult"]

WEIGHT_SEED_OFFSET = 10


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        timesteps: sequence length of the gradient-through-time measurements.
        units: recurrent units of every model of the chapter.
        probe_examples: sequences in the measurement batch.
        weight_seeds: weight draws each gradient curve is averaged over.
        train_examples: adding-problem sequences of the clipping experiment.
        train_timesteps: their length.
        train_epochs: epochs of the clipping experiment.
        review_sentences: movie-review sentences of the gradient-logger demo.
        review_epochs: its epochs.
    """

    timesteps: int
    units: int
    probe_examples: int
    weight_seeds: int
    train_examples: int
    train_timesteps: int
    train_epochs: int
    review_sentences: int
    review_epochs: int


SIZES = {
    "ci": Sizes(timesteps=100, units=32, probe_examples=32, weight_seeds=5,
                train_examples=512, train_timesteps=50, train_epochs=8,
                review_sentences=640, review_epochs=2),
    "full": Sizes(timesteps=100, units=32, probe_examples=32, weight_seeds=10,
                  train_examples=2048, train_timesteps=50, train_epochs=12,
                  review_sentences=4000, review_epochs=4),
}


@dataclass(frozen=True)
class Recipe:
    """Everything else, the same at both scales.

    Attributes:
        batch_size: sequences per optimizer step.
        learning_rate: plain SGD step size of the clipping experiment.
        global_clipnorm: the norm-clipping threshold compared.
        clipvalue: the value-clipping threshold compared.
        gate_bias: bias that opens the LSTM forget / GRU update gate
            (:func:`rnncourse.gradients.open_gates`).
        sigmas: largest singular values of ``W_aa`` swept.
        review_vocabulary: words kept (ids 0 and 1 are padding and OOV).
        review_maxlen: tokens per review sentence (longer ones are cut).
        review_optimizer: optimizer of the gradient-logger demo.
        omega_alpha: weight of Pascanu et al.'s regulariser Omega in the regulariser runs.
    """

    batch_size: int = 32
    learning_rate: float = 0.05
    global_clipnorm: float = 1.0
    clipvalue: float = 0.1
    gate_bias: float = 5.0
    sigmas: tuple[float, ...] = (0.5, 0.7, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 2.0)
    review_vocabulary: int = 5000
    review_maxlen: int = 40
    review_optimizer: str = "adam"
    omega_alpha: float = 1.0


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


def weight_seeds(setup: Settings | None = None) -> tuple[int, ...]:
    """The seeds of the ``Sizes.weight_seeds`` weight draws every curve is averaged over."""
    s = setup or settings()
    return config.seeds(s.sizes.weight_seeds, offset=WEIGHT_SEED_OFFSET)


def probe_batch(setup: Settings | None = None, timesteps: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The adding-problem batch every gradient measurement uses: ``x (n, T, 2)``, ``y (n, 1)``.

    ``n`` is ``Sizes.probe_examples``, ``T`` is ``timesteps`` or ``Sizes.timesteps``.
    """
    s = setup or settings()
    return data.adding_problem(s.sizes.probe_examples, timesteps or s.sizes.timesteps,
                               seed=config.seed(0))


# ---------------------------------------------------------------------------------------
# Gradient curves over several weight draws
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradientCurves:
    """Gradient norm per time step, one row per weight draw, for each setting.

    Attributes:
        norms: ``{label: (draws, timesteps)}`` per-step norms (mean over the batch).
        wrt: ``"states"`` (``||dLoss/da_t||``) or ``"inputs"`` (``||dLoss/dx_t||``).
    """

    norms: Mapping[str, np.ndarray]
    wrt: str = "states"

    def ratios(self, label: str) -> np.ndarray:
        """``(draws,)`` first-step over last-step norm of each draw."""
        return np.array([gradients.early_to_late_ratio(np.maximum(row, gradients.FLOOR))
                         for row in self.norms[label]])

    def geometric_mean(self, label: str) -> float:
        """Geometric mean over the draws of :meth:`ratios`."""
        return float(np.exp(np.mean(np.log(self.ratios(label)))))

    def ratio_table(self) -> list[dict]:
        """One row per setting: geometric mean, smallest and largest ratio over the draws."""
        return [{"setting": label, "draws": len(self.norms[label]),
                 "first/last (geo. mean)": f"{self.geometric_mean(label):.2g}",
                 "min": f"{self.ratios(label).min():.2g}",
                 "max": f"{self.ratios(label).max():.2g}"} for label in self.norms]


def _state_norms(model: keras.Model, x: np.ndarray, y: np.ndarray, activation: str
                 ) -> np.ndarray:
    """``||dLoss/da_t||`` of a SimpleRNN regressor by NumPy BPTT (float64, fast)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return gradients.numpy_bptt(x, y, gradients.simple_rnn_weights(model),
                                    activation).state_grad_norms


#: The settings of :func:`run_spectrum_curves`: ``label -> (activation, sigma_1)``;
#: ``None`` keeps Keras' orthogonal ``W_aa`` (``sigma_1 = 1``).
SPECTRA = {
    "tanh, Keras default W_aa (orthogonal)": ("tanh", None),
    "tanh, sigma_1 = 0.9": ("tanh", 0.9),
    "linear, sigma_1 = 1.1": ("linear", 1.1),
}


def run_spectrum_curves(x: np.ndarray, y: np.ndarray, setup: Settings | None = None
                        ) -> GradientCurves:
    """``||dLoss/da_t||`` of untrained SimpleRNNs for each entry of :data:`SPECTRA`, over
    ``Sizes.weight_seeds`` weight draws (:func:`rnncourse.gradients.state_gradient_norms`)."""
    s = setup or settings()
    norms = {}
    for label, (activation, sigma) in SPECTRA.items():
        rows = []
        for seed in weight_seeds(s):
            model = models.sequence_regressor("simple_rnn", s.sizes.units, x.shape[-1],
                                              activation=activation, seed=seed)
            if sigma is not None:
                gradients.set_recurrent_spectrum(model.get_layer("simple_rnn"), sigma,
                                                 seed=seed + 1)
            rows.append(gradients.state_gradient_norms(model, x, y))
        norms[label] = np.array(rows)
    return GradientCurves(norms)


@dataclass(frozen=True)
class SingularValueSweep:
    """First/last gradient-norm ratio against ``sigma_1(W_aa)``.

    Attributes:
        sigmas: the swept largest singular values.
        ratios: ``{activation: (draws, len(sigmas))}``; NaN where the forward pass overflowed.
        timesteps: sequence length.
    """

    sigmas: tuple[float, ...]
    ratios: Mapping[str, np.ndarray]
    timesteps: int

    def largest(self, activation: str, sigma: float) -> float:
        """Largest ratio over the draws at ``sigma``."""
        return float(np.nanmax(self.ratios[activation][:, self.sigmas.index(sigma)]))

    def smallest(self, activation: str, sigma: float) -> float:
        """Smallest ratio over the draws at ``sigma``."""
        return float(np.nanmin(self.ratios[activation][:, self.sigmas.index(sigma)]))


def run_singular_value_sweep(x: np.ndarray, y: np.ndarray, setup: Settings | None = None,
                             activations: Sequence[str] = ("tanh", "linear")
                             ) -> SingularValueSweep:
    """``||dLoss/da_1|| / ||dLoss/da_T||`` of SimpleRNNs whose ``W_aa`` is ``sigma`` times a
    random orthogonal matrix, for every ``Recipe.sigmas``, activation and weight draw.

    The norms come from :func:`rnncourse.gradients.numpy_bptt` (float64), which equals
    :func:`rnncourse.gradients.state_gradient_norms` on the Keras model (unit tests).
    """
    s = setup or settings()
    sigmas = tuple(s.recipe.sigmas)
    result = {}
    for activation in activations:
        table = []
        for seed in weight_seeds(s):
            model = models.sequence_regressor("simple_rnn", s.sizes.units, x.shape[-1],
                                              activation=activation, seed=seed)
            row = []
            for sigma in sigmas:
                gradients.set_recurrent_spectrum(model.get_layer("simple_rnn"), sigma,
                                                 seed=seed + 1)
                norms = _state_norms(model, x, y, activation)
                finite = np.all(np.isfinite(norms)) and norms[-1] > 0
                row.append(gradients.early_to_late_ratio(norms) if finite else np.nan)
            table.append(row)
        result[activation] = np.array(table)
    return SingularValueSweep(sigmas, result, x.shape[1])


#: Activation and recurrent initialiser of the curves of :func:`run_initialisations`.
INITIALISATIONS = {
    "tanh, orthogonal (Keras default)": ("tanh", "orthogonal"),
    "tanh, glorot_uniform": ("tanh", "glorot_uniform"),
    "relu, orthogonal": ("relu", "orthogonal"),
    "relu, identity (IRNN)": ("relu", "identity"),
}


def run_initialisations(x: np.ndarray, y: np.ndarray, setup: Settings | None = None
                        ) -> GradientCurves:
    """``||dLoss/da_t||`` of untrained SimpleRNNs with each activation and recurrent
    initialiser of :data:`INITIALISATIONS`, over ``Sizes.weight_seeds`` weight draws
    (by :func:`rnncourse.gradients.numpy_bptt` on each model's weights)."""
    s = setup or settings()
    norms = {}
    for label, (activation, initializer) in INITIALISATIONS.items():
        rows = []
        for seed in weight_seeds(s):
            if initializer == "glorot_uniform":
                recurrent = keras.initializers.GlorotUniform(seed=seed + 1)
            elif initializer == "orthogonal":
                recurrent = keras.initializers.Orthogonal(seed=seed + 1)
            else:
                recurrent = initializer
            model = models.sequence_regressor("simple_rnn", s.sizes.units, x.shape[-1],
                                              activation=activation,
                                              recurrent_initializer=recurrent, seed=seed)
            rows.append(_state_norms(model, x, y, activation))
        norms[label] = np.array(rows)
    return GradientCurves(norms)


def run_cells(x: np.ndarray, y: np.ndarray, setup: Settings | None = None,
              cells: Sequence[str] = ("simple_rnn", "gru", "lstm"),
              gate_bias: float | None = None) -> GradientCurves:
    """``||dLoss/dx_t||`` of freshly initialised models, one per cell and weight draw
    (:func:`rnncourse.gradients.timestep_gradient_norms`); with ``gate_bias`` the gated
    cells start with :func:`rnncourse.gradients.open_gates`. Labels: ``"<cell> (default
    init)"`` or ``"<cell> (gate open)"``."""
    s = setup or settings()
    norms = {}
    for cell in cells:
        rows = []
        for seed in weight_seeds(s):
            model = models.sequence_regressor(cell, s.sizes.units, x.shape[-1], seed=seed)
            if gate_bias is not None and cell != "simple_rnn":
                gradients.open_gates(model, gate_bias)
            rows.append(gradients.timestep_gradient_norms(model, x, y))
        opened = gate_bias is not None and cell != "simple_rnn"
        norms[f"{cell} ({'gate open' if opened else 'default init'})"] = np.array(rows)
    return GradientCurves(norms, wrt="inputs")


# ---------------------------------------------------------------------------------------
# Training with and without clipping
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingRun:
    """Outcome of one training run of the chapter's clipping experiment (the page trains).

    Attributes:
        label: description of the run (e.g. ``"no clipping"``).
        losses: training loss per epoch (shorter than asked when training stopped on NaN).
        step_norms: global gradient norm per optimizer step, before clipping.
        diverged: True when the loss became NaN/inf or ended above 10x its first value.
        end_loss: loss of the trained weights on the whole training set (NaN when the run
            diverged); ``losses[-1]`` is the mean over the last epoch's steps instead.
    """

    label: str
    losses: tuple[float, ...]
    step_norms: tuple[float, ...]
    diverged: bool
    end_loss: float = float("nan")

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")

    @property
    def finite(self) -> bool:
        """No NaN/inf in any epoch's loss or any step's gradient norm."""
        return bool(self.losses) and bool(np.all(np.isfinite(self.losses))) \
            and bool(np.all(np.isfinite(self.step_norms)))


def clipping_data(setup: Settings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem the chapter trains on: ``x (train_examples, train_timesteps, 2)``,
    ``y (train_examples, 1)``, drawn with ``config.seed(3)``."""
    s = setup or settings()
    return data.adding_problem(s.sizes.train_examples, s.sizes.train_timesteps,
                               seed=config.seed(3))


# ---------------------------------------------------------------------------------------
# Pascanu's regulariser, trained with and without
# ---------------------------------------------------------------------------------------

#: Labels of :class:`RegularizerResult`: the untrained draws and the two trained runs.
REGULARIZER_RUNS = ("before training", "trained without Omega", "trained with alpha * Omega")


@dataclass(frozen=True)
class RegularizerResult:
    """The regulariser experiment's measurements (the page trains), one entry per weight draw.

    Attributes:
        curves: ``||dLoss/da_t||`` on the probe batch (``Sizes.timesteps`` steps) for each
            label of :data:`REGULARIZER_RUNS`, ``(draws, timesteps)``.
        end_losses: ``{trained label: (draws,)}`` task MSE on the training set after training.
        omegas: ``{label: (draws,)}`` :func:`rnncourse.gradients.pascanu_regularizer` on the
            probe batch.
        alpha: weight of Omega in the regularised run.
        mean_predictor_loss: MSE of predicting the mean target on the training set.
    """

    curves: GradientCurves
    end_losses: Mapping[str, np.ndarray]
    omegas: Mapping[str, np.ndarray]
    alpha: float
    mean_predictor_loss: float

    def log_ratios(self, label: str) -> np.ndarray:
        """``(draws,)`` log10 of the first-step over last-step gradient norm."""
        return np.log10(self.curves.ratios(label))

    def log_ratio_gain(self) -> np.ndarray:
        """``(draws,)`` log10 ratio with Omega minus without, draw by draw."""
        return self.log_ratios(REGULARIZER_RUNS[2]) - self.log_ratios(REGULARIZER_RUNS[1])

    def loss_change(self) -> np.ndarray:
        """``(draws,)`` end loss with Omega minus without, draw by draw."""
        return self.end_losses[REGULARIZER_RUNS[2]] - self.end_losses[REGULARIZER_RUNS[1]]

    def table(self) -> list[dict]:
        """One row per weight draw: log10 first/last of each run, end MSE, Omega
        ("plain": trained without Omega, "reg.": with it)."""
        before, without, regularized = REGULARIZER_RUNS
        rows = []
        for i in range(len(self.log_ratios(before))):
            rows.append({
                "draw": i,
                "log10 f/l: untrained": f"{self.log_ratios(before)[i]:.2f}",
                "plain": f"{self.log_ratios(without)[i]:.2f}",
                "reg.": f"{self.log_ratios(regularized)[i]:.2f}",
                "MSE plain": f"{self.end_losses[without][i]:.4f}",
                "MSE reg.": f"{self.end_losses[regularized][i]:.4f}",
                "Omega plain": f"{self.omegas[without][i]:.3g}",
                "Omega reg.": f"{self.omegas[regularized][i]:.3g}"})
        return rows


# ---------------------------------------------------------------------------------------
# The gradient-logger demo: real review sentences
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReviewBatch:
    """Movie-review sentences as padded ids, for a quick Embedding model.

    Attributes:
        ids: ``(sentences, review_maxlen)`` int32, 0 = padding, 1 = out-of-vocabulary.
        targets: ``(sentences, 1)`` float32, 1 = positive.
        vocabulary: the :class:`rnncourse.text.Vocabulary` that encoded them.
    """

    ids: np.ndarray
    targets: np.ndarray
    vocabulary: text.Vocabulary = field(repr=False)


def review_batch(setup: Settings | None = None) -> ReviewBatch:
    """``Sizes.review_sentences`` random Pang & Lee sentences, space-tokenised, encoded with
    the ``Recipe.review_vocabulary`` most frequent words and cut/padded at the end to
    ``Recipe.review_maxlen`` tokens."""
    s = setup or settings()
    texts, labels = data.load_movie_reviews("sentences")
    order = np.random.default_rng(config.seed(5)).permutation(len(texts))
    order = order[:s.sizes.review_sentences]
    tokens = [texts[i].split() for i in order]
    vocabulary = text.Vocabulary.from_tokens(tokens, max_size=s.recipe.review_vocabulary)
    ids = text.pad(vocabulary.encode_batch(tokens), maxlen=s.recipe.review_maxlen,
                   truncating="post")
    targets = np.asarray(labels)[order].astype("float32")[:, None]
    return ReviewBatch(ids, targets, vocabulary)


def print_table(rows: Sequence[Mapping[str, object]]) -> None:
    """Print ``rows`` (dicts with the same keys) as a plain-text table, columns aligned."""
    rows = list(rows)
    if not rows:
        raise ValueError("print_table got no rows")
    headers = list(rows[0])
    cells = [[str(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))

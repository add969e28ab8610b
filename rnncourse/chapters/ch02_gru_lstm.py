"""Chapter 2, *GRU and LSTM*: what the chapter measures beyond its recipes.

Follows the chapter contract of :mod:`rnncourse.chapters`. The library this chapter teaches
is :mod:`rnncourse.cells` (the scratch cells and their equivalence with Keras); the models
the chapter trains (the adding problem, the dropout experiment), their optimizers and
training loops are on its page. What lives here is what a reader need not see:

* :data:`BASELINE_MSE` and :func:`constant_mse_tolerance`: the constant predictor's MSE
  and its sampling error;
* :class:`AddingRun` and :class:`AddingResult`: one cell's run on the adding problem and
  the comparison of the cells, with the tables the page prints;
* :func:`eligibility_table`, :func:`usage_shapes` and :func:`dropout_difference`: probes of
  Keras layers for the chapter's tables and asserts;
* :func:`sentence_data` (the data of the dropout experiment) and :class:`OverfitResult`
  (its curves, paired differences and tables).

Wall-clock timings of the cuDNN kernel are in ``benchmarks/cudnn_speed.py``, never here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse import _checks, cells, config, data, devices, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.embeddings import embedding_matrix
from rnncourse.glove import read_glove

config.quiet_tensorflow()

import keras  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "BASELINE_MSE",
           "constant_mse_tolerance", "steps", "AddingRun", "AddingResult",
           "EXAMPLE_LAYERS", "eligibility_table", "usage_shapes", "dropout_difference",
           "REGULARISERS", "SentenceData", "sentence_data", "OverfitResult", "COMPARISONS",
           "keras_check_rows"]


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
        eval_steps: Adam steps between two measurements of the test MSE: the resolution of the
            steps each cell needs (an epoch is 94 steps at CI scale, 313 at full).
        probe_examples: test sequences on which the gradient through time is measured.
        overfit_epochs: epochs of every run of the dropout experiment.
        overfit_repeats: training seeds per variant of that experiment.
        overfit_units: LSTM units of its classifier.
    """

    timesteps: int
    train_examples: int
    test_examples: int
    epochs: int
    units: int
    eval_steps: int
    probe_examples: int
    overfit_epochs: int
    overfit_repeats: int
    overfit_units: int


SIZES = {
    "ci": Sizes(timesteps=20, train_examples=3000, test_examples=1000, epochs=20, units=32,
                eval_steps=10, probe_examples=256, overfit_epochs=5, overfit_repeats=3,
                overfit_units=32),
    "full": Sizes(timesteps=100, train_examples=10_000, test_examples=2000, epochs=24,
                  units=64, eval_steps=25, probe_examples=256, overfit_epochs=10, overfit_repeats=5,
                  overfit_units=32),
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
        dropout_rate: ``p`` of ``dropout=p`` and ``recurrent_dropout=p`` in the dropout
            experiment.
        regularisers: its compared variants (:data:`REGULARISERS`).
        overfit_sentences: labelled training sentences of that experiment, at both scales:
            few labels, so that the classifier over-fits (part of the question asked);
            validation uses the whole held-out share.
        overfit_timesteps: sentences are cut to their first this many tokens (51% are no
            longer): every step of the LSTM costs time on a CPU.
        overfit_learning_rate: Adam's step size there.
        overfit_batch_size: sentences per Adam step there.
        validation_fraction: share of the 4,000 sentences held out for validation.
    """

    learning_rate: float = 3e-3
    batch_size: int = 32
    target_fraction: float = 0.2
    cells: tuple[str, ...] = ("simple_rnn", "gru", "lstm")
    optimizer: str = "adam"
    dropout_rate: float = 0.5
    regularisers: tuple[str, ...] = ("none", "dropout", "recurrent_dropout")
    overfit_sentences: int = 1000
    overfit_timesteps: int = 20
    overfit_learning_rate: float = 1e-2
    overfit_batch_size: int = 64
    validation_fraction: float = 0.2


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
    examples = _checks.count(examples, "examples")
    standard_errors = _checks.number(standard_errors, "standard_errors")
    return standard_errors * math.sqrt(SQUARED_ERROR_VARIANCE / examples)


# ------------------------------------------------------------------- the adding problem

@dataclass(frozen=True)
class AddingRun:
    """One cell trained on the adding problem until it learned the lag or ran out of budget.

    Attributes:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        every: Adam steps between two measurements of the test MSE.
        test_mse: test MSE after every ``every`` Adam steps (training stopped after the
            last one).
        target: the test MSE below which the cell counts as having learned the lag.
        gradient_norms: global gradient norm of every training step (before any clipping).
        initial_norms: ``(timesteps,)`` mean ``||dL/dx_t||`` of the freshly initialised model
            on the probe sequences (:func:`rnncourse.gradients.timestep_gradient_norms`).
        trained_norms: the same after training.
        parameters: trainable parameters of the model.
    """

    cell: str
    every: int
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
        return len(self.test_mse) * self.every

    @property
    def learned(self) -> bool:
        """Whether the test MSE got below :attr:`target` within the budget."""
        return self.final_mse < self.target

    @property
    def steps_to_learn(self) -> float:
        """Adam steps until the test MSE was below :attr:`target`; ``inf`` if it never was."""
        return float(self.steps) if self.learned else math.inf

    def mse_after(self, steps: int) -> float:
        """Test MSE at the last measurement at or before ``steps`` Adam steps (or the last)."""
        points = max(1, min(len(self.test_mse), steps // self.every))
        return self.test_mse[points - 1]

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

    def rows(self) -> list[dict[str, object]]:
        """One table row per cell: parameters, steps to learn, test MSE at the end."""
        return [{"cell": c, "parameters": r.parameters,
                 "Adam steps to MSE < 1/30": f"{r.steps:,}" if r.learned
                 else f"not within {self.budget:,}",
                 "test MSE at the end": r.final_mse} for c, r in self.runs.items()]

    def recipe_row(self, setup: Settings[Sizes, Recipe]) -> dict[str, object]:
        """The recipe and each cell's steps to learn, as one table row (``-``: not learned)."""
        row = {"T": self.timesteps, "training sequences": setup.sizes.train_examples,
               "batch": setup.recipe.batch_size, "learning rate": setup.recipe.learning_rate,
               "units": setup.sizes.units, "budget (steps)": self.budget}
        row.update({f"{c} steps": f"{s:,.0f}" if s <= self.budget else "-"
                    for c, s in self.steps_to_learn.items()})
        return row

    def report(self) -> str:
        """Two lines: the SimpleRNN's MSE when both gated cells had learned, and its steps."""
        gated = max(self.steps_to_learn["gru"], self.steps_to_learn["lstm"])
        simple = self.runs["simple_rnn"]
        then = simple.mse_after(int(gated)) if math.isfinite(gated) else simple.final_mse
        first = (f"after {gated:.0f} steps both gated cells are below 1/30; the SimpleRNN "
                 f"is at MSE {then:.3f} ({then / BASELINE_MSE:.0%} of the constant "
                 "predictor)")
        second = (f"SimpleRNN: learned the lag after {simple.steps:,} steps, "
                  f"{simple.steps / gated:.1f} times as many" if simple.learned
                  else f"SimpleRNN: did not learn the lag within {self.budget:,} steps "
                  f"(test MSE {simple.final_mse:.3f})")
        return f"{first}\n{second}"


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


# ------------------------------------------------------------- dropout and over-fitting

REGULARISERS = ("none", "dropout", "recurrent_dropout")
"""The dropout experiment's variants: no dropout, ``LSTM(dropout=p)`` (inputs, keeps
cuDNN), ``LSTM(recurrent_dropout=p)`` (state fed back, rules cuDNN out)."""


@dataclass(frozen=True)
class SentenceData:
    """Movie-review sentences as padded ids, and their frozen GloVe table.

    Attributes:
        x_train, x_val: ``(n, overfit_timesteps)`` int32 ids, post-padded (right-padded).
        y_train, y_val: ``(n,)`` float32 labels (1 positive).
        matrix: ``(vocabulary, 50)`` float32 GloVe rows (seeded random rows for words GloVe
            lacks, zeros for padding): :func:`rnncourse.embeddings.embedding_matrix`.
        split_seed: seed of the train/validation split and of the kept training sentences.
    """

    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    matrix: np.ndarray = field(repr=False)
    split_seed: int


def sentence_data(setup: Settings[Sizes, Recipe] | None = None) -> SentenceData:
    """The Pang & Lee sentences (:func:`rnncourse.data.load_movie_reviews`), split and encoded.

    :func:`rnncourse.text.split_indices` (seed ``config.seed(5)``) holds out
    ``validation_fraction``; ``overfit_sentences`` of the rest, drawn with the same seed,
    are the training set. The vocabulary comes from the tokens of both (no labels), so
    validation words have GloVe vectors too.
    """
    s = setup or settings()
    r = s.recipe
    texts, labels = data.load_movie_reviews("sentences")
    split_seed = config.seed(5)
    train, val = text.split_indices(len(texts), r.validation_fraction, seed=split_seed)
    train = np.random.default_rng(split_seed).permutation(train)[:r.overfit_sentences]
    tokens = [t.split() for t in texts]
    vocab = text.Vocabulary.from_tokens([tokens[i] for i in train] + [tokens[i] for i in val])
    matrix, _ = embedding_matrix(vocab, read_glove(data.glove_path(), vocabulary=vocab.words))

    def ids(rows: np.ndarray) -> np.ndarray:
        return text.pad(vocab.encode_batch([tokens[i] for i in rows]),
                        maxlen=r.overfit_timesteps, truncating="post")

    labels = np.asarray(labels, dtype=np.float32)
    return SentenceData(ids(train), labels[train], ids(val), labels[val], matrix, split_seed)


@dataclass(frozen=True)
class OverfitResult:
    """Learning curves of every variant, trained from the same seeds on the same batches.

    Attributes:
        variants: the compared variants (keys of the curves).
        seeds: training seeds, one run per variant and seed.
        rate: ``p`` of ``dropout=p`` / ``recurrent_dropout=p``.
        train_loss: ``{variant: (repeats, epochs)}`` loss on the training sentences after
            each epoch, measured like the validation loss (inference: no dropout).
        val_loss: ``{variant: (repeats, epochs)}`` validation loss after each epoch.
        val_accuracy: ``{variant: (repeats, epochs)}`` validation accuracy after each epoch.
        cudnn: ``{variant: whether the LSTM layer is cuDNN-eligible}``
            (:func:`rnncourse.devices.cudnn_eligibility`).
        train_sentences, val_sentences: sizes of the two sets.
    """

    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    rate: float
    train_loss: dict[str, np.ndarray] = field(repr=False)
    val_loss: dict[str, np.ndarray] = field(repr=False)
    val_accuracy: dict[str, np.ndarray] = field(repr=False)
    cudnn: dict[str, bool]
    train_sentences: int
    val_sentences: int

    def gap(self, variant: str) -> np.ndarray:
        """``(repeats,)`` generalisation gap at the end: validation minus training loss."""
        return self.val_loss[variant][:, -1] - self.train_loss[variant][:, -1]

    def best_val_loss(self, variant: str) -> np.ndarray:
        """``(repeats,)`` validation loss at each run's best epoch."""
        return self.val_loss[variant].min(axis=1)

    def final(self, variant: str, measure: str = "val_loss") -> np.ndarray:
        """``(repeats,)`` a curve's value after the last epoch (``val_loss``, ...)."""
        return getattr(self, measure)[variant][:, -1]

    def paired(self, a: str, b: str, measure: str = "gap") -> tuple[float, float]:
        """Mean and standard deviation over seeds of ``measure(a) - measure(b)``.

        ``measure``: ``"gap"``, ``"best_val_loss"`` or a curve name (its last epoch). Runs
        with the same seed share initial weights and batches, so the paired difference
        removes the part of the seed noise that both variants share.
        """
        values = {v: (getattr(self, measure)(v) if measure in ("gap", "best_val_loss")
                      else self.final(v, measure)) for v in (a, b)}
        diff = values[a] - values[b]
        return float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0

    def rows(self) -> list[dict[str, object]]:
        """One table row per variant and seed: cuDNN, gap, best and last validation loss and
        last validation accuracy."""
        return [{"variant": v, "cuDNN": "yes" if self.cudnn[v] else "**no**",
                 "seed": str(seed), "gap at the end": gap, "best validation loss": best,
                 "validation loss at the end": end, "validation accuracy at the end": acc}
                for v in self.variants
                for seed, gap, best, end, acc in zip(
                    self.seeds, self.gap(v), self.best_val_loss(v), self.final(v),
                    self.final(v, "val_accuracy"), strict=True)]

    def mean_gap(self) -> dict[str, float]:
        """``{variant: gap at the end, mean over seeds}``."""
        return {v: float(self.gap(v).mean()) for v in self.variants}

    def comparisons(self) -> dict[str, tuple[float, float]]:
        """The chapter's paired differences (:meth:`paired`): ``{label: (mean, sd)}``.

        The labels read ``"<measure>, <a> - <b>"``, for :data:`COMPARISONS`' rows.
        """
        return {f"{label}, {a} - {b}": self.paired(a, b, measure)
                for label, measure, a, b in COMPARISONS}

    def report(self, epochs: int) -> str:
        """The setting, the mean gap per variant and every comparison, mean ± sd (in sds)."""
        lines = [f"p = {self.rate}, {self.train_sentences} training and "
                 f"{self.val_sentences} validation sentences, {epochs} epochs, "
                 f"seeds {self.seeds}; paired differences, mean ± sd:",
                 f"mean gap: { {v: round(g, 3) for v, g in self.mean_gap().items()} }"]
        lines += [f"{label}: {mean:+.3f} ± {sd:.3f} "
                  + (f"({mean / sd:+.1f} sd)" if sd > 0 else "(no spread over seeds)")
                  for label, (mean, sd) in self.comparisons().items()]
        return "\n".join(lines)


#: The paired differences the dropout section reports: (label, measure, a, b).
COMPARISONS = (
    ("gap", "gap", "none", "dropout"),
    ("gap", "gap", "recurrent_dropout", "dropout"),
    ("gap", "gap", "none", "recurrent_dropout"),
    ("best validation loss", "best_val_loss", "none", "dropout"),
    ("validation loss at the end", "val_loss", "none", "dropout"),
)


def keras_check_rows(checks: Sequence[cells.Equivalence]) -> list[dict[str, object]]:
    """Table rows for :func:`rnncourse.cells.compare_with_keras` results, one per check."""
    return [{"cell": c.cell, "reset_after": "-" if c.reset_after is None else c.reset_after,
             "largest output difference": c.outputs, "largest state difference": c.states,
             "largest relative gradient difference": c.gradients} for c in checks]

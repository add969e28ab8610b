"""Figures of the chapter *GRU and LSTM* (:mod:`rnncourse.cells`, chapter module
``rnncourse.chapters.ch02_gru_lstm``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnncourse.plots import COLORS, finish, new_figure

LABELS = {"simple_rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


def plot_learning_curves(test_mse: Mapping[str, Sequence[float]], baseline: float,
                         timesteps: int, every: int = 1,
                         target: float | None = None) -> Figure:
    """Test MSE against Adam steps, one line per cell, with the constant-predictor baseline.

    Args:
        test_mse: ``{cell: [mse after every, 2 * every, ... Adam steps]}`` (cells ``"lstm"``,
            ``"gru"``, ``"simple_rnn"``); a line may stop early (training stopped at the
            target).
        baseline: MSE of the best constant prediction (1/6 on the adding problem).
        timesteps: sequence length, for the title.
        every: Adam steps between two measurements (the x axis counts steps).
        target: optional MSE below which a cell counts as having learned (dotted line).
    """
    if not test_mse:
        raise ValueError("test_mse is empty: pass {cell: [mse per measurement]}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    fig, ax = new_figure()
    for cell, values in test_mse.items():
        x = every * np.arange(1, len(values) + 1)
        ax.plot(x, values, marker="o" if len(values) <= 40 else None, markersize=3,
                color=COLORS.get(cell, COLORS["other"]), label=LABELS.get(cell, cell))
    ax.axhline(baseline, color=COLORS["baseline"], linestyle="--",
               label=f"constant prediction (MSE {baseline:.3f})")
    if target is not None:
        ax.axhline(target, color=COLORS["baseline"], linestyle=":",
                   label=f"target (MSE {target:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("Adam steps (same recipe for every cell)")
    ax.set_ylabel("test MSE (log scale)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, f"Adding problem, T = {timesteps}: steps each cell needs")


def plot_gradient_through_time(norms: Mapping[str, np.ndarray],
                               initial: Mapping[str, np.ndarray] | None = None) -> Figure:
    """``||dLoss/dx_t||`` against the step ``t`` for each cell (log scale).

    Args:
        norms: ``{cell: (timesteps,) gradient norms}`` of the trained models, e.g. from
            :func:`rnncourse.gradients.timestep_gradient_norms`.
        initial: optional ``{cell: (timesteps,)}`` of the same models before training,
            drawn dashed.
    """
    if not norms:
        raise ValueError("norms is empty: pass {cell: (timesteps,) array}")
    fig, ax = new_figure()
    for cell, values in norms.items():
        values = np.asarray(values, dtype=float)
        color = COLORS.get(cell, COLORS["other"])
        ax.plot(np.arange(len(values)), values, color=color,
                label=f"{LABELS.get(cell, cell)}, trained")
        if initial is not None and cell in initial:
            start = np.asarray(initial[cell], dtype=float)
            ax.plot(np.arange(len(start)), start, color=color, linestyle="--", linewidth=1,
                    label=f"{LABELS.get(cell, cell)}, untrained")
    ax.set_yscale("log")
    ax.set_xlabel("input step t (the loss is computed after the last step)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(r"mean $\|\partial L / \partial x_t\|$ (log scale)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, "Gradient reaching each input step, before and after training")


def plot_gradient_norms(step_norms: Mapping[str, Sequence[float]]) -> Figure:
    """Global gradient norm of every training step (before clipping), one line per run.

    Args:
        step_norms: ``{label: [norm per step]}``, e.g. from
            :class:`rnncourse.gradients.GradientNormModel`.
    """
    if not step_norms:
        raise ValueError("step_norms is empty: pass {label: [norm per step]}")
    fig, ax = new_figure()
    for label, values in step_norms.items():
        ax.plot(np.arange(1, len(values) + 1), values, linewidth=0.8,
                color=COLORS.get(label, COLORS["other"]), label=LABELS.get(label, label))
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("global gradient norm (log scale)")
    ax.legend()
    return finish(fig, "Gradient norm during training")


REGULARISER_LABELS = {"none": "no dropout", "dropout": "dropout=p (inputs)",
                      "recurrent_dropout": "recurrent_dropout=p (state)"}
REGULARISER_COLORS = {"none": COLORS["simple_rnn"], "dropout": COLORS["lstm"],
                      "recurrent_dropout": COLORS["accent"]}


def plot_overfitting(train_loss: Mapping[str, np.ndarray], val_loss: Mapping[str, np.ndarray],
                     rate: float | None = None) -> Figure:
    """Training and validation loss per epoch, one panel per variant: mean and range.

    Args:
        train_loss: ``{variant: (repeats, epochs)}`` loss on the training set after each
            epoch (variants ``"none"``, ``"dropout"``, ``"recurrent_dropout"`` get their
            labels; others their name).
        val_loss: the same for the validation set.
        rate: the dropout rate ``p``, for the title.
    """
    if not val_loss or set(train_loss) != set(val_loss):
        raise ValueError("pass the same variants in train_loss and val_loss: "
                         "{variant: (repeats, epochs) array}")
    fig, axes = new_figure(ncols=len(val_loss), sharey=True, width=3.4 * len(val_loss))
    axes = np.atleast_1d(axes)
    for ax, variant in zip(axes, val_loss, strict=True):
        color = REGULARISER_COLORS.get(variant, COLORS["other"])
        for curves, style, what in ((train_loss[variant], "--", "training"),
                                    (val_loss[variant], "-", "validation")):
            curves = np.atleast_2d(np.asarray(curves, dtype=float))
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=color,
                            alpha=0.2, linewidth=0)
            ax.plot(epochs, curves.mean(axis=0), style, color=color, marker="o",
                    markersize=3, label=f"{what} (mean, range)")
        ax.set_title(REGULARISER_LABELS.get(variant, variant), fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(loc="lower left")
    axes[0].set_ylabel("binary cross-entropy")
    title = "Training vs validation loss over seeds"
    return finish(fig, title + (f", p = {rate:g}" if rate is not None else ""))

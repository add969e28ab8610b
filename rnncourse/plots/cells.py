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
                         timesteps: int, steps_per_epoch: int = 1,
                         target: float | None = None) -> Figure:
    """Test MSE against Adam steps, one line per cell, with the constant-predictor baseline.

    Args:
        test_mse: ``{cell: [mse after epoch 1, 2, ...]}`` (cells ``"lstm"``, ``"gru"``,
            ``"simple_rnn"``); a line may stop early (training stopped at the target).
        baseline: MSE of the best constant prediction (1/6 on the adding problem).
        timesteps: sequence length, for the title.
        steps_per_epoch: Adam steps per epoch (the x axis counts steps); 1 counts epochs.
        target: optional MSE below which a cell counts as having learned (dotted line).
    """
    if not test_mse:
        raise ValueError("test_mse is empty: pass {cell: [mse per epoch]}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    fig, ax = new_figure()
    for cell, values in test_mse.items():
        x = steps_per_epoch * np.arange(1, len(values) + 1)
        ax.plot(x, values, marker="o", markersize=3, color=COLORS.get(cell, COLORS["other"]),
                label=LABELS.get(cell, cell))
    ax.axhline(baseline, color=COLORS["baseline"], linestyle="--",
               label=f"constant prediction (MSE {baseline:.3f})")
    if target is not None:
        ax.axhline(target, color=COLORS["baseline"], linestyle=":",
                   label=f"target (MSE {target:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("Adam steps (same recipe for every cell)" if steps_per_epoch > 1
                  else "epoch")
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
            :class:`rnncourse.gradients.GradientNormLogger`.
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

"""Figures of the chapter *GRU and LSTM* (:mod:`rnncourse.cells`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnncourse.plots import COLORS, finish, new_figure

LABELS = {"simple_rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


def plot_learning_curves(test_mse: Mapping[str, Sequence[float]], baseline: float,
                         timesteps: int) -> Figure:
    """Test MSE after each epoch, one line per cell, with the constant-predictor baseline.

    Args:
        test_mse: ``{cell: [mse after epoch 1, 2, ...]}`` (cells ``"lstm"``, ``"gru"``,
            ``"simple_rnn"``).
        baseline: MSE of the best constant prediction (1/6 on the adding problem).
        timesteps: sequence length, for the title.
    """
    if not test_mse:
        raise ValueError("test_mse is empty: pass {cell: [mse per epoch]}")
    fig, ax = new_figure()
    for cell, values in test_mse.items():
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", color=COLORS.get(cell, COLORS["other"]),
                label=LABELS.get(cell, cell))
    ax.axhline(baseline, color=COLORS["baseline"], linestyle="--",
               label=f"constant prediction (MSE {baseline:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (same number of Adam steps for every cell)")
    ax.set_ylabel("test MSE (log scale)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower left")
    return finish(fig, f"Adding problem, T = {timesteps}: gated cells learn the long lag")


def plot_gradient_through_time(norms: Mapping[str, np.ndarray]) -> Figure:
    """``||dLoss/dx_t||`` against the step ``t`` for each trained cell (log scale).

    Args:
        norms: ``{cell: (timesteps,) gradient norms}``, e.g. from
            :func:`rnncourse.gradients.timestep_gradient_norms`.
    """
    if not norms:
        raise ValueError("norms is empty: pass {cell: (timesteps,) array}")
    fig, ax = new_figure()
    for cell, values in norms.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(len(values)), values, color=COLORS.get(cell, COLORS["other"]),
                label=LABELS.get(cell, cell))
    ax.set_yscale("log")
    ax.set_xlabel("input step t (the loss is computed after the last step)")
    ax.set_ylabel(r"mean $\|\partial L / \partial x_t\|$ (log scale)")
    ax.legend()
    return finish(fig, "Gradient reaching each input step, trained models")


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


def plot_kernel_speed(timings: Mapping[str, float]) -> Figure:
    """Bar chart of seconds per training step for each kernel/setting label."""
    if not timings:
        raise ValueError("timings is empty: pass {label: seconds per step}")
    fig, ax = new_figure()
    labels = list(timings)
    seconds = [1000 * timings[label] for label in labels]
    colors = [COLORS["highlight"] if "cudnn" in label.lower() else COLORS["baseline"]
              for label in labels]
    ax.bar(labels, seconds, color=colors)
    ax.set_ylabel("milliseconds per training step")
    ax.set_xlabel("layer setting")
    return finish(fig, "One forward + backward step")

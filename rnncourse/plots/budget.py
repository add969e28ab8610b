"""Figures for comparing models at an equal budget (:mod:`rnncourse.budget`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rnncourse.plots import finish, new_figure

__all__ = ["plot_by_length", "plot_costs"]

COLORS = {"lstm": "C0", "gru": "C2", "mingru": "C1", "transformer": "C3"}


def plot_by_length(lengths: Sequence[int], results: Mapping[str, np.ndarray], *,
                   ylabel: str, reference: float | None = None,
                   reference_label: str = "", title: str | None = None) -> Figure:
    """One line per model: its result at each length, every seed a dot, the mean a line.

    Args:
        lengths: ``(L,)`` the x values (sequence lengths), drawn on a log axis.
        results: model name -> ``(L, seeds)`` results (e.g. test MSE per lag and seed).
        ylabel: the y axis' label; drawn on a log axis.
        reference: a horizontal line (e.g. the MSE of predicting the mean), or None.
    """
    fig, ax = new_figure(width=7.0, height=3.6)
    for name, values in results.items():
        values = np.asarray(values, float)
        color = COLORS.get(name)
        for column in values.T:
            ax.plot(lengths, column, "o", color=color, alpha=0.45, markersize=4)
        ax.plot(lengths, values.mean(axis=1), "-", color=color, label=name)
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle="--", label=reference_label)
    ax.set(xscale="log", yscale="log", xlabel="sequence length (steps)", ylabel=ylabel)
    ax.set_xticks(list(lengths), [str(n) for n in lengths])
    ax.minorticks_off()
    return finish(fig, title=title, legend=ax.get_legend_handles_labels())


def plot_costs(contexts: Sequence[int], curves: Mapping[str, Sequence[object]], *,
               crossover: float | None = None, title: str | None = None) -> Figure:
    """Two panels: multiply-adds per generated token, and bytes kept between tokens.

    Args:
        contexts: ``(C,)`` context lengths.
        curves: model name -> ``C`` :class:`rnncourse.budget.Cost` (one per context).
        crossover: a context length to mark in the first panel (or None).
    """
    fig, (macs, state) = new_figure(ncols=2, width=7.0, height=3.4)
    for name, costs in curves.items():
        color = COLORS.get(name)
        macs.plot(contexts, [c.generate_macs for c in costs], "o-", color=color, label=name,
                  markersize=3)
        state.plot(contexts, [c.state_bytes for c in costs], "o-", color=color,
                   markersize=3)
    if crossover is not None:
        macs.axvline(crossover, color="0.4", linestyle=":")
    macs.set(xscale="log", yscale="log", xlabel="context (tokens)",
             ylabel="multiply-adds per token")
    state.set(xscale="log", yscale="log", xlabel="context (tokens)",
              ylabel="bytes kept between tokens")
    return finish(fig, title=title, legend=macs.get_legend_handles_labels())

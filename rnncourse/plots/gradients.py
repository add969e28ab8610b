"""Figures of the chapter *RNN gradients* (``book/01_rnn_gradients.ipynb``).

Every function takes numbers computed by :mod:`rnncourse.gradients` (arrays, dicts of
arrays, or training runs read by attribute) and returns the ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rnncourse.plots import COLORS, finish, new_figure

_CYCLE = [COLORS[k] for k in ("simple_rnn", "lstm", "gru", "accent", "highlight", "other",
                              "baseline")]


def _color(label: str, index: int) -> str:
    key = label.split()[0].lower().replace("simplernn", "simple_rnn")
    return COLORS.get(key, _CYCLE[index % len(_CYCLE)])


def plot_bptt_check(numpy_grads: Mapping[str, np.ndarray], tape_grads: Mapping[str, np.ndarray],
                    recurrent_contributions: np.ndarray | None = None) -> Figure:
    """NumPy BPTT gradients against ``tf.GradientTape``'s, entry by entry (left), and the
    norm of each time step's term in ``dLoss/dW_aa`` (right, when given)."""
    ncols = 2 if recurrent_contributions is not None else 1
    fig, axes = new_figure(ncols=ncols, width=3.9 * ncols + 0.6)
    axes = np.atleast_1d(axes)
    ax = axes[0]
    low, high = np.inf, -np.inf
    for i, name in enumerate(tape_grads):
        a = np.ravel(tape_grads[name])
        b = np.ravel(numpy_grads[name])
        ax.scatter(a, b, s=10, alpha=0.7, color=_CYCLE[i % len(_CYCLE)], label=name)
        low, high = min(low, a.min(), b.min()), max(high, a.max(), b.max())
    ax.plot([low, high], [low, high], color=COLORS["baseline"], lw=1, ls="--", label="y = x")
    ax.set_xlabel("tf.GradientTape gradient entry")
    ax.set_ylabel("NumPy BPTT gradient entry")
    ax.set_title("Same gradients, two implementations")
    ax.legend(loc="upper left")
    if recurrent_contributions is not None:
        ax = axes[1]
        steps = np.arange(1, len(recurrent_contributions) + 1)
        contributions = np.asarray(recurrent_contributions, dtype=float)
        ax.semilogy(steps, np.where(contributions > 0, contributions, np.nan),
                    color=COLORS["simple_rnn"])  # step 1's term is 0 (a_0 = 0): left out
        ax.set_xlabel("time step t")
        ax.set_ylabel("||step t's term of dLoss/dW_aa||")
        ax.set_title("Who contributes to dLoss/dW_aa")
    return finish(fig, "Backpropagation through time, by hand and by autodiff")


def _rows(norms) -> np.ndarray:
    """``(timesteps,)`` or ``(draws, timesteps)`` -> ``(draws, timesteps)`` floats."""
    rows = np.asarray(norms, dtype=float)
    return rows[None, :] if rows.ndim == 1 else rows


def _geometric_mean(rows: np.ndarray) -> np.ndarray:
    floored = np.where(np.isfinite(rows) & (rows > 0), rows, 1e-38)
    return np.exp(np.mean(np.log(floored), axis=0))


def plot_norms_through_time(curves: Mapping[str, np.ndarray], title: str,
                            ylabel: str = "||dLoss/dx_t|| (mean over batch)",
                            colors: Mapping[str, str] | None = None) -> Figure:
    """Gradient norm per time step on a log axis, one line per entry of ``curves``.

    Args:
        curves: ``{label: norms}``, ``norms`` either ``(timesteps,)`` (e.g. from
            :func:`rnncourse.gradients.timestep_gradient_norms`) or ``(draws, timesteps)``
            for several weight draws: the line is then their geometric mean and a band
            spans the smallest to the largest draw.
        title: figure title.
        ylabel: what the norm is of.
        colors: optional ``{label: colour}``.

    The legend (below the axes, off the data) gives each curve's first/last ratio.
    """
    if not curves:
        raise ValueError("curves is empty; pass {label: norms}")
    fig, ax = new_figure(width=7.2, height=4.0 + 0.25 * len(curves))
    used: list[str] = []
    for i, (label, norms) in enumerate(curves.items()):
        rows = _rows(norms)
        mean = _geometric_mean(rows)
        steps = np.arange(1, rows.shape[1] + 1)
        color = (colors or {}).get(label, _color(label, i))
        style = ["-", "--", ":", "-."][used.count(color) % 4]  # same colour again: new dashes
        used.append(color)
        # norms that underflowed float32 (exactly 0) count as 1e-38, as in the ratio tables
        floored = np.maximum(rows, 1e-38)
        ratios = floored[:, 0] / floored[:, -1]
        if len(rows) > 1:
            spread = f"geo. mean {np.exp(np.mean(np.log(ratios))):.2g}, " \
                     f"{len(rows)} draws {ratios.min():.2g} to {ratios.max():.2g}"
            low, high = np.min(rows, axis=0), np.max(rows, axis=0)
            ax.fill_between(steps, np.where(low > 1e-37, low, np.nan),
                            np.where(high > 1e-37, high, np.nan), color=color, alpha=0.15,
                            lw=0)
        else:
            spread = f"{ratios[0]:.2g}"
        # below 1e-37 the float32 gradient has underflowed: leave a gap instead of a cliff
        ax.semilogy(steps, np.where(mean > 1e-37, mean, np.nan), color=color, ls=style,
                    label=f"{label}  (first/last: {spread})")
    ax.set_xlabel("time step t (the loss is computed after the last step)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    return finish(fig, title)


def plot_ratio_vs_singular_value(sigmas: Sequence[float], ratios: Mapping[str, np.ndarray],
                                 timesteps: int) -> Figure:
    """``||g_1|| / ||g_T||`` against the largest singular value of ``W_aa``, per activation.

    Args:
        sigmas: the swept largest singular values ``sigma_1``.
        ratios: ``{activation: (draws, len(sigmas))}`` first-step over last-step norms; NaN
            (a forward pass that overflowed) is left out.
        timesteps: ``T``, the sequence length.

    The line is the geometric mean over the weight draws, the markers each draw. The
    vertical line marks ``sigma_1 = 1``, Pascanu et al.'s bound for tanh/linear (derivative
    at most 1): strictly below it the gradient must vanish; only above it can it explode.
    """
    sigmas = np.asarray(sigmas, dtype=float)
    if not ratios:
        raise ValueError("ratios is empty; pass {activation: (draws, len(sigmas)) ratios}")
    fig, ax = new_figure(width=6.8, height=4.4)
    for i, (label, values) in enumerate(ratios.items()):
        rows = _rows(values)
        rows = np.where((rows > 0) & np.isfinite(rows), rows, np.nan)
        color = _CYCLE[i % len(_CYCLE)]
        for row in rows:
            ax.semilogy(sigmas, row, ls="none", marker="o", ms=3, alpha=0.4, color=color)
        mean = np.exp(np.nanmean(np.log(rows), axis=0))
        ax.semilogy(sigmas, mean, color=color,
                    label=f"{label} (geo. mean of {len(rows)} draws)")
    ax.axvline(1.0, color=COLORS["baseline"], ls="--", lw=1, label="sigma_1 = 1")
    ax.axhline(1.0, color=COLORS["baseline"], ls=":", lw=1)
    ax.set_xlabel("largest singular value sigma_1 of W_aa")
    ax.set_ylabel(f"||dLoss/da_1|| / ||dLoss/da_{timesteps}||")
    ax.legend(loc="upper left")
    return finish(fig, f"Vanishing below sigma_1 = 1, exploding only above it "
                       f"(T = {timesteps})")


def plot_clipping_geometry(gradient: Sequence[float], by_norm: Sequence[float],
                           by_value: Sequence[float], threshold: float) -> Figure:
    """A 2-D gradient and its two clipped versions as arrows: norm clipping shortens the
    arrow, value clipping turns it."""
    fig, ax = new_figure(width=5.2, height=4.6)
    arrows = [("gradient", gradient, COLORS["baseline"]),
              (f"clip by norm {threshold:g}", by_norm, COLORS["lstm"]),
              (f"clip by value {threshold:g}", by_value, COLORS["simple_rnn"])]
    for label, vector, color in arrows:
        ax.annotate("", xy=(vector[0], vector[1]), xytext=(0, 0),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 2})
        ax.plot([0, vector[0]], [0, vector[1]], color=color, lw=0, marker="o", markevery=[1],
                label=label)
    ax.add_patch(_square(threshold))
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(threshold * np.cos(circle), threshold * np.sin(circle), color=COLORS["lstm"],
            ls=":", lw=1)
    limit = 1.15 * max(np.abs(gradient).max(), threshold)
    ax.set_xlim(-0.2 * limit, limit)
    ax.set_ylim(-0.2 * limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("gradient component 1")
    ax.set_ylabel("gradient component 2")
    ax.legend(loc="upper right")
    return finish(fig, "Norm clipping keeps the direction, value clipping does not")


def _square(size: float):
    from matplotlib.patches import Rectangle

    return Rectangle((-size, -size), 2 * size, 2 * size, fill=False, ls=":", lw=1,
                     edgecolor=COLORS["simple_rnn"])


def plot_training_runs(runs: Sequence, loss_baseline: float | None = None,
                       title: str = "Training an RNN that explodes, with and without clipping"
                       ) -> Figure:
    """Loss per epoch (left) and gradient norm per step before clipping (right).

    ``runs``: objects with the attributes ``label``, ``losses`` (per epoch), ``step_norms``
    (per step) and ``diverged`` (e.g. a ``types.SimpleNamespace`` per run), or an object
    with ``runs`` (and ``mean_predictor_loss``, the default baseline). A run whose norms or
    losses hit NaN/inf is marked x at its last finite norm, and a note names that step
    ("NaN/inf after step k"). The legend sits below the panels, off the data, in as many
    columns as fit the figure's width (:func:`rnncourse.plots.finish`).
    """
    if hasattr(runs, "runs"):
        if loss_baseline is None:
            loss_baseline = runs.mean_predictor_loss
        runs = runs.runs
    fig, (left, right) = new_figure(ncols=2, width=7.5, height=4.6)
    notes = []
    for i, run in enumerate(runs):
        color = _CYCLE[i % len(_CYCLE)]
        losses = np.asarray(run.losses, dtype=float)
        finite = np.isfinite(losses)
        epochs = np.arange(1, len(losses) + 1)
        left.semilogy(epochs[finite], losses[finite], marker="o", color=color, label=run.label)
        norms = np.asarray(run.step_norms, dtype=float)
        steps = np.arange(1, len(norms) + 1)
        ok = np.isfinite(norms) & (norms > 0)
        right.semilogy(steps[ok], norms[ok], color=color, lw=1)
        if not np.all(finite) or not np.all(np.isfinite(norms)):
            last = steps[ok][-1] if ok.any() else 1
            height = norms[ok][-1] if ok.any() else 1.0
            right.plot([last], [height], marker="x", ms=12, mew=3, color=color, ls="none")
            notes.append((color, f"{run.label}: NaN/inf after step {last}"))
        elif run.diverged:
            notes.append((color, f"{run.label}: loss ended above 10x its first epoch"))
    for j, (color, note) in enumerate(notes):
        right.text(0.98, 0.97 - 0.08 * j, note, transform=right.transAxes, ha="right",
                   va="top", color=color, fontsize=9)
    if loss_baseline is not None:
        left.axhline(loss_baseline, color=COLORS["baseline"], ls="--", lw=1,
                     label=f"predict the mean ({loss_baseline:.3g})")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (MSE)")
    left.set_title("Loss")
    right.set_xlabel("optimizer step")
    right.set_ylabel("global gradient norm ||g|| (before clipping)")
    right.set_title("Gradient norm per step")
    return finish(fig, title, legend=left.get_legend_handles_labels())


def plot_step_norms(step_norms: Sequence[float], steps_per_epoch: int | None = None,
                    title: str = "Global gradient norm per training step") -> Figure:
    """Step norms recorded by :class:`rnncourse.gradients.GradientNormModel`, with the
    epoch boundaries and the median norm."""
    norms = np.asarray(step_norms, dtype=float)
    if norms.size == 0:
        raise ValueError("no step norms; fit a GradientNormModel.wrap(model) first")
    fig, ax = new_figure(width=7.2, height=3.8)
    ax.semilogy(np.arange(1, len(norms) + 1), norms, color=COLORS["lstm"], lw=1,
                label="||g|| per step")
    median = float(np.nanmedian(norms))
    ax.axhline(median, color=COLORS["highlight"], ls="--", lw=1, label=f"median {median:.3g}")
    if steps_per_epoch:
        for boundary in range(steps_per_epoch, len(norms), steps_per_epoch):
            ax.axvline(boundary + 0.5, color=COLORS["baseline"], lw=0.6, alpha=0.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("global gradient norm ||g||")
    ax.legend(loc="best")
    return finish(fig, title)

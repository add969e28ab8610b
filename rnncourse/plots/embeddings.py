"""Figures of the chapter *Embeddings and GloVe* (each function returns the Figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rnncourse.plots import COLORS, finish, new_figure

_CYCLE = [COLORS[k] for k in ("lstm", "gru", "simple_rnn", "accent", "highlight", "other")]
VARIANT_COLORS = {"glove": COLORS["gru"], "random": COLORS["baseline"],
                  "glove_frozen": COLORS["lstm"]}
VARIANT_LABELS = {"glove": "GloVe, fine-tuned", "random": "random init",
                  "glove_frozen": "GloVe, frozen"}


def plot_projection(glove, groups: Mapping[str, Sequence[str]]) -> Figure:
    """Words of a few groups projected on the two main PCA axes of their vectors.

    Args:
        glove: :class:`rnncourse.embeddings.GloveVectors` holding every word of ``groups``.
        groups: ``{"animals": ["cat", "dog", ...], ...}``.
    """
    from rnncourse.embeddings import projection_2d

    words = [w for ws in groups.values() for w in ws]
    points = projection_2d(glove, words)
    fig, ax = new_figure(width=7.5, height=5.2)
    start = 0
    for k, (name, ws) in enumerate(groups.items()):
        xy = points[start:start + len(ws)]
        color = _CYCLE[k % len(_CYCLE)]
        ax.scatter(xy[:, 0], xy[:, 1], color=color, label=name, s=30)
        for word, (x, y) in zip(ws, xy, strict=True):
            ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8,
                        color=color)
        start += len(ws)
    ax.set_xlabel("principal component 1 (GloVe units)")
    ax.set_ylabel("principal component 2 (GloVe units)")
    ax.legend(loc="best")
    return finish(fig, f"{len(words)} GloVe {glove.dim}-d vectors, projected to 2-D (PCA)")


def plot_coverage(reports: Mapping[str, object]) -> Figure:
    """Type and token coverage of several corpora's vocabularies by GloVe (bars, %)."""
    fig, ax = new_figure(width=7.0, height=3.8)
    names = list(reports)
    x = np.arange(len(names))
    types = [100 * reports[n].type_coverage for n in names]
    tokens = [100 * reports[n].token_coverage for n in names]
    ax.bar(x - 0.2, types, width=0.4, color=COLORS["other"], label="word types found")
    ax.bar(x + 0.2, tokens, width=0.4, color=COLORS["lstm"], label="running tokens found")
    for xi, (t, k) in enumerate(zip(types, tokens, strict=True)):
        ax.text(xi - 0.2, t + 1, f"{t:.0f}%", ha="center", fontsize=8)
        ax.text(xi + 0.2, k + 1, f"{k:.0f}%", ha="center", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 125)
    ax.set_ylabel("found in GloVe (%)")
    ax.legend(loc="upper center", ncols=2)
    return finish(fig, "How much of each corpus GloVe 6B covers")


def plot_oov_vectors(glove, oov_vectors: np.ndarray, zero_vectors: np.ndarray | None = None,
                     dims: Sequence[int] = (0, 1)) -> Figure:
    """Values of GloVe vectors vs truncated-normal OOV vectors in a few dimensions.

    Args:
        glove: the loaded vectors, ``(n, dim)``.
        oov_vectors: ``(m, dim)`` rows drawn for out-of-vocabulary words.
        zero_vectors: optional ``(m, dim)`` rows of the zero strategy (drawn as a spike).
        dims: which dimensions to show, one panel each.
    """
    fig, axes = new_figure(ncols=len(dims), width=3.8 * len(dims), height=3.6)
    axes = np.atleast_1d(axes)
    for ax, d in zip(axes, dims, strict=True):
        values = np.asarray(glove.vectors[:, d])
        bins = np.linspace(np.percentile(values, 0.5), np.percentile(values, 99.5), 40)
        ax.hist(values, bins=bins, density=True, color=COLORS["baseline"], alpha=0.6,
                label="GloVe words")
        ax.hist(oov_vectors[:, d], bins=bins, density=True, histtype="step", linewidth=2,
                color=COLORS["accent"], label="OOV: truncated normal")
        if zero_vectors is not None:
            ax.axvline(0.0, color=COLORS["simple_rnn"], linestyle="--", label="OOV: zeros")
        ax.set_xlabel(f"value of dimension {d}")
        ax.set_ylabel("density (1/unit)")
    axes[0].legend(loc="upper left", fontsize=8)
    return finish(fig, "Out-of-vocabulary vectors drawn from GloVe's own statistics")


def plot_learning_curves(results: Mapping[str, Sequence[Mapping[str, Sequence[float]]]],
                         metric: str = "val_accuracy") -> Figure:
    """Mean (line) and range over seeds (band) of ``metric`` per epoch, per variant."""
    fig, ax = new_figure(width=7.0, height=4.2)
    for k, (variant, runs) in enumerate(results.items()):
        curves = np.array([run[metric] for run in runs], dtype=float)
        epochs = np.arange(1, curves.shape[1] + 1)
        color = VARIANT_COLORS.get(variant, _CYCLE[k % len(_CYCLE)])
        ax.plot(epochs, curves.mean(axis=0), marker="o", color=color,
                label=f"{VARIANT_LABELS.get(variant, variant)} ({len(runs)} seeds)")
        if len(runs) > 1:
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=color,
                            alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " ") + (" (fraction)" if "acc" in metric else ""))
    ax.legend(loc="best")
    return finish(fig, "Movie-review sentiment: LSTM with GloVe vs random embeddings")


def plot_load_times(times: Mapping[str, float]) -> Figure:
    """Horizontal bars of wall time per loading method, in seconds."""
    fig, ax = new_figure(width=7.0, height=0.6 * len(times) + 1.6)
    names = list(times)
    values = [times[n] for n in names]
    ax.barh(names, values, color=[_CYCLE[k % len(_CYCLE)] for k in range(len(names))])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f} s", va="center", fontsize=8)
    ax.set_xlabel("wall time (s)")
    ax.invert_yaxis()
    ax.set_xlim(0, max(values) * 1.25 if values else 1)
    return finish(fig, "Loading GloVe vectors for one vocabulary")

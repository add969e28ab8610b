"""Figures of the chapter *Embeddings and GloVe* (each function returns the Figure).

They take the library's objects (:class:`rnncourse.glove.GloveVectors`,
:class:`rnncourse.embeddings.CoverageReport`) and plain mappings of measured numbers
(``{method: seconds}``, ``{variant: (seeds, epochs) accuracies}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rnncourse.embeddings import projection_2d
from rnncourse.glove import GloveVectors
from rnncourse.plots import COLORS, finish, new_figure

__all__ = ["plot_projection", "plot_coverage", "plot_oov_vectors", "plot_sentiment",
           "plot_loaders"]

_CYCLE = [COLORS[k] for k in ("lstm", "gru", "simple_rnn", "accent", "highlight", "other")]
VARIANT_COLORS = {"glove": COLORS["gru"], "random": COLORS["baseline"],
                  "glove_frozen": COLORS["lstm"]}
VARIANT_LABELS = {"glove": "GloVe, fine-tuned", "random": "random init",
                  "glove_frozen": "GloVe, frozen"}
_OFFSETS = [(5, 3), (5, -11), (-5, 3), (-5, -11), (0, 7), (0, -15), (7, -4), (-7, -4),
            (10, 10), (10, -19), (-10, 10), (-10, -19), (0, 15), (0, -23), (14, -4),
            (-14, -4)]


def _overlap(box, others) -> float:
    return sum(max(0.0, min(box.x1, b.x1) - max(box.x0, b.x0))
               * max(0.0, min(box.y1, b.y1) - max(box.y0, b.y0)) for b in others)


def _place_labels(fig: Figure, ax, points: np.ndarray, labels: Sequence[str],
                  colors: Sequence[str], fontsize: float = 9, marker_size: float = 30
                  ) -> None:
    """Annotate each point, choosing for each label the first of a few offsets whose box
    overlaps no marker and no label placed before it, and stays inside the axes (greedy;
    the least overlap otherwise)."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    radius = 0.5 * np.sqrt(marker_size) * fig.dpi / 72 + 1  # marker half-width, pixels
    centres = ax.transData.transform(points)
    markers = [Bbox([[cx - radius, cy - radius], [cx + radius, cy + radius]])
               for cx, cy in centres]
    frame = ax.get_window_extent(renderer)
    placed = []
    for (x, y), label, color in zip(points, labels, colors, strict=True):
        best, best_cost = None, None
        for dx, dy in _OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points",
                               fontsize=fontsize, color=color, ha=ha)
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            outside = box.width * box.height - _overlap(box, [frame])
            cost = _overlap(box, placed) + _overlap(box, markers) + outside
            if best is None or cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (text, box), cost
            else:
                text.remove()
            if cost == 0:
                break
        placed.append(best[1])


def plot_projection(glove: GloveVectors, groups: Mapping[str, Sequence[str]]) -> Figure:
    """Words of a few groups projected on the two main PCA axes of their vectors.

    Args:
        glove: :class:`rnncourse.glove.GloveVectors` holding every word of ``groups``.
        groups: ``{"animals": ["cat", "dog", ...], ...}``.
    """
    words = [w for ws in groups.values() for w in ws]
    points = projection_2d(glove, words)
    fig, ax = new_figure(width=7.5, height=5.6)
    colors = []
    start = 0
    for k, (name, ws) in enumerate(groups.items()):
        xy = points[start:start + len(ws)]
        color = _CYCLE[k % len(_CYCLE)]
        ax.scatter(xy[:, 0], xy[:, 1], color=color, label=name, s=30)
        colors += [color] * len(ws)
        start += len(ws)
    pad = 0.12 * np.ptp(points, axis=0)
    ax.set_xlim(points[:, 0].min() - pad[0], points[:, 0].max() + pad[0])
    ax.set_ylim(points[:, 1].min() - pad[1], points[:, 1].max() + pad[1])
    ax.set_xlabel("principal component 1 (GloVe units)")
    ax.set_ylabel("principal component 2 (GloVe units)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=len(groups))
    fig.tight_layout()
    _place_labels(fig, ax, points, words, colors)
    return finish(fig, f"{len(words)} GloVe {glove.dim}-d vectors, projected to 2-D (PCA)")


def plot_coverage(reports: Mapping[str, object]) -> Figure:
    """Type and token coverage of several corpora's vocabularies by GloVe (bars, %)."""
    fig, ax = new_figure(width=7.0, height=4.0)
    names = list(reports)
    x = np.arange(len(names))
    types = [100 * reports[n].type_coverage for n in names]
    tokens = [100 * reports[n].token_coverage for n in names]
    ax.bar(x - 0.2, types, width=0.4, color=COLORS["other"], label="word types found")
    ax.bar(x + 0.2, tokens, width=0.4, color=COLORS["lstm"], label="running tokens found")
    for xi, (t, k) in enumerate(zip(types, tokens, strict=True)):
        for dx, value, color in ((-0.2, t, "black"), (0.2, k, "white")):
            inside = value > 12
            ax.text(xi + dx, value - 2 if inside else value + 1, f"{value:.0f}%", ha="center",
                    va="top" if inside else "bottom", fontsize=9,
                    color=color if inside else "black")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 100)
    ax.set_ylabel("found in GloVe (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig, "How much of each corpus GloVe 6B covers")


def plot_oov_vectors(glove: GloveVectors, oov_vectors: np.ndarray,
                     zero_vectors: np.ndarray | None = None,
                     dims: Sequence[int] = (0, 1)) -> Figure:
    """Values of GloVe vectors vs truncated-normal OOV vectors in a few dimensions.

    Args:
        glove: the loaded vectors, ``(n, dim)``.
        oov_vectors: ``(m, dim)`` rows drawn for out-of-vocabulary words.
        zero_vectors: optional ``(m, dim)`` rows of the zero strategy (drawn as a line).
        dims: which dimensions to show, one panel each.
    """
    fig, axes = new_figure(ncols=len(dims), width=max(7.0, 2.6 * len(dims)), height=3.6)
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
    axes[0].set_ylabel("density (1/unit)")
    return finish(fig, "Out-of-vocabulary vectors drawn from GloVe's own statistics",
                  legend=axes[0].get_legend_handles_labels())


def plot_sentiment(val_accuracy: Mapping[str, np.ndarray], train_sentences: int) -> Figure:
    """Left: validation accuracy per epoch, mean (line) and range over seeds (band).
    Right: each run's best-epoch accuracy (dots), mean and standard deviation (bar).

    Args:
        val_accuracy: ``{variant: (seeds, epochs)}`` validation accuracy after each epoch,
            one row per training seed (the same number of seeds for every variant).
        train_sentences: labelled training sentences, for the title.
    """
    fig, (ax, right) = new_figure(ncols=2, width=7.5, height=4.4,
                                  gridspec_kw={"width_ratios": (3, 2)})
    variants = list(val_accuracy)
    n = len(np.asarray(val_accuracy[variants[0]]))
    for k, variant in enumerate(variants):
        curves = np.asarray(val_accuracy[variant], dtype=float)
        epochs = np.arange(1, curves.shape[1] + 1)
        color = VARIANT_COLORS.get(variant, _CYCLE[k % len(_CYCLE)])
        label = VARIANT_LABELS.get(variant, variant)
        ax.plot(epochs, curves.mean(axis=0), marker="o", color=color, label=label)
        if n > 1:
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=color,
                            alpha=0.2)
        best = curves.max(axis=1)
        jitter = np.linspace(-0.12, 0.12, n) if n > 1 else np.zeros(1)
        right.scatter(k + jitter, best, color=color, s=18, alpha=0.7)
        right.errorbar(k + 0.3, best.mean(), yerr=best.std(ddof=1) if n > 1 else 0,
                       fmt="s", color=color, capsize=4)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (fraction)")
    ax.set_xticks(np.arange(1, curves.shape[1] + 1))
    ax.legend(loc="lower right")
    ax.set_title(f"per epoch: mean and range over {n} seeds", fontsize=10)
    right.set_xticks(range(len(variants)),
                     [VARIANT_LABELS.get(v, v).replace(", ", ",\n") for v in variants])
    right.set_ylabel("best-epoch validation accuracy")
    right.set_title("each run (dots), mean ± std (square)", fontsize=10)
    return finish(fig, f"Movie-review sentiment, {train_sentences:,} labelled "
                       "sentences: LSTM with GloVe vs random embeddings")


def plot_loaders(seconds: Mapping[str, float], vector_bytes: Mapping[str, int],
                 words: int) -> Figure:
    """Wall time (this run) and float32 vector bytes held, per loading method.

    Args:
        seconds: ``{method: wall time of this run}`` (``"dictionary"``: the tutorials'
            loop over every line; other keys are their own label).
        vector_bytes: ``{method: float32 bytes of word vectors it keeps}``, same keys.
        words: vocabulary words loaded, for the title.
    """
    names = {"dictionary": "dictionary loop\n(all words)"}  # other keys are their own label
    keys = list(seconds)
    fig, axes = new_figure(ncols=2, width=9.0, height=3.4)
    for ax, values, unit, scale in ((axes[0], seconds, "s", 1.0),
                                    (axes[1], vector_bytes, "MiB", 2.0 ** -20)):
        data = [values[k] * scale for k in keys]
        ax.barh([names.get(k, k) for k in keys], data,
                color=[_CYCLE[i % len(_CYCLE)] for i in range(len(keys))])
        for y, v in enumerate(data):
            ax.text(v, y, f" {v:.2f} {unit}" if v < 10 else f" {v:.0f} {unit}", va="center",
                    fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, max(data) * 1.35 if data else 1)
    axes[0].set_xlabel("wall time of this run (s; depends on the machine's load)")
    axes[1].set_xlabel("word vectors held in memory (MiB, counted)")
    axes[1].set_yticklabels([])
    return finish(fig, f"Loading the GloVe vectors of {words:,} words")

"""Figures of the chapter *Variable-length batching* (:mod:`rnncourse.batching`).

The figures take the chapter's results: lengths, ``padding_stats`` dicts, datasets,
:class:`rnncourse.batching.PaddingCount` per strategy and the chapter's mask-exactness
table (a dict).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from rnncourse.plots import COLORS, finish, new_figure

if TYPE_CHECKING:
    from rnncourse.batching import PaddingCount

LABELS = {"global_max": "pad to global max", "per_batch": "pad per random batch",
          "bucketed": "bucketed", "sorted": "length-sorted"}
STRATEGY_COLORS = {"global_max": COLORS["baseline"], "per_batch": COLORS["other"],
                   "bucketed": COLORS["lstm"], "sorted": COLORS["gru"]}


def plot_lengths(lengths: Sequence[int], boundaries: Sequence[int] | None = None,
                 title: str = "Lengths of the movie reviews") -> Figure:
    """Histogram of sequence lengths (tokens), with bucket boundaries as vertical lines."""
    lengths = np.asarray(lengths)
    fig, ax = new_figure(width=7.5, height=3.6)
    ax.hist(lengths, bins=50, color=COLORS["lstm"], alpha=0.85)
    for i, boundary in enumerate(boundaries or []):
        ax.axvline(boundary, color=COLORS["highlight"], lw=0.8, alpha=0.8,
                   label="bucket boundaries" if i == 0 else None)
    ax.axvline(lengths.mean(), color=COLORS["accent"], lw=2, label=f"mean {lengths.mean():.0f}")
    ax.axvline(lengths.max(), color=COLORS["simple_rnn"], lw=2, ls="--",
               label=f"max {lengths.max()}")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("number of sequences")
    ax.legend()
    return finish(fig, title)


def plot_padding(stats: dict[str, float], title: str = "Padded positions by batching strategy"
                 ) -> Figure:
    """Bar chart of the padded fraction (percent) per strategy, from ``padding_stats``."""
    names = list(stats)
    values = [100 * stats[n] for n in names]
    fig, ax = new_figure(width=7.0, height=3.4)
    bars = ax.bar([LABELS.get(n, n) for n in names], values,
                  color=[STRATEGY_COLORS.get(n, COLORS["other"]) for n in names])
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 1, f"{value:.1f}%", ha="center")
    ax.set_ylabel("padded positions (% of batch cells)")
    ax.set_ylim(0, min(100.0, max(values) * 1.15 + 1))
    return finish(fig, title)


def plot_batch_layout(datasets: dict[str, Iterable], batches: int = 6,
                      title: str = "Real tokens (dark) and padding (light) in the first batches"
                      ) -> Figure:
    """One panel per strategy: the first ``batches`` batches stacked, real tokens vs padding.

    Args:
        datasets: ``{strategy: iterable of (x, y)}`` with ``x: (batch, timesteps)`` ids, 0 = pad.
        batches: batches drawn per panel.
    """
    fig, axes = new_figure(ncols=len(datasets), width=4.0 * len(datasets), height=3.8)
    axes = np.atleast_1d(axes)
    for ax, (name, ds) in zip(axes, datasets.items(), strict=True):
        rows = []
        for i, (x, _) in enumerate(ds):
            if i == batches:
                break
            rows.append(np.asarray(x) != 0)
        width = max(r.shape[1] for r in rows)
        image = np.concatenate([np.pad(r.astype(float), ((0, 0), (0, width - r.shape[1])),
                                       constant_values=np.nan) for r in rows])
        ax.imshow(image, aspect="auto", cmap="Blues", vmin=-0.3, vmax=1.0,
                  interpolation="nearest")
        ax.set_title(LABELS.get(name, name))
        ax.set_xlabel("timestep (token index)")
        ax.set_ylabel("example (batches stacked)")
        ax.grid(False)
    return finish(fig, title)


def plot_mask_exactness(results: Mapping[tuple[str, str], Mapping[str, float]],
                        title: str = "Padded batch vs each sequence alone") -> Figure:
    """Max abs difference (log scale) with and without a mask, per layer and padding side.

    Args:
        results: ``{(label, "mask" | "no mask"): {"outputs": d, "states": d}}``, the
            largest differences of the padded batch from each sequence run alone.
    """
    labels = sorted({label for label, _ in results}, key=list(dict.fromkeys(
        label for label, _ in results)).index)
    floor = 1e-9
    fig, ax = new_figure(width=9.5, height=3.8)
    positions = np.arange(len(labels))
    for offset, (kind, color) in zip((-0.2, 0.2), (("no mask", COLORS["simple_rnn"]),
                                                   ("mask", COLORS["lstm"])), strict=True):
        values = [max(max(results[(label, kind)].values()), floor) for label in labels]
        ax.bar(positions + offset, values, width=0.4, color=color,
               label=f"{kind} (0 drawn at {floor:g})" if kind == "mask" else kind)
    ax.axhline(1e-5, color=COLORS["highlight"], ls="--", label="tolerance 1e-5")
    ax.set_yscale("log")
    ax.set_xticks(positions, labels, rotation=20, ha="right")
    ax.set_ylabel("max |padded - alone| (outputs, states)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig, title)


def plot_epoch_cost(counts: Mapping[str, PaddingCount],
                    title: str = "Work in one epoch, same examples") -> Figure:
    """Padded timesteps and cells per epoch, per strategy, from ``batching.count_padding``.

    Args:
        counts: ``{strategy: PaddingCount}``, e.g. ``count_padding(padded_dataset(...))``.
    """
    names = list(counts)
    fig, (left, right) = new_figure(ncols=2, width=9.0, height=3.8)
    colors = [STRATEGY_COLORS.get(n, COLORS["other"]) for n in names]
    ticks = [LABELS.get(n, n) for n in names]
    left.bar(ticks, [counts[n].timesteps for n in names], color=colors)
    left.set_ylabel("padded timesteps per epoch")
    left.set_title("steps run in sequence, sum of $T_b$")
    tokens = np.array([counts[n].tokens for n in names]) / 1e6
    padding = np.array([counts[n].positions - counts[n].tokens for n in names]) / 1e6
    right.bar(ticks, tokens, color=COLORS["lstm"], label="real tokens")
    right.bar(ticks, padding, bottom=tokens, color=COLORS["baseline"], alpha=0.45,
              label="padding")
    right.set_ylabel("cells per epoch (millions)")
    right.set_title("cells computed, sum of $|b|\\,T_b$")
    right.legend(loc="upper right", fontsize=9)
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=15)
    return finish(fig, title)

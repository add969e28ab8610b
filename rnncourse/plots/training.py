"""Figures of the chapter *Training loops and sequence labelling* (:mod:`rnncourse.training`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rnncourse.plots import COLORS, finish, new_figure


def plot_loop_comparison(per_example, minibatch, per_example_epoch_seconds: float,
                         minibatch_epoch_seconds: float) -> Figure:
    """Per-step losses of the per-example loop and of mini-batches, and seconds per epoch.

    Args:
        per_example: ``training.LoopHistory`` of :func:`~rnncourse.training.fit_per_example`.
        minibatch: ``training.LoopHistory`` of :func:`~rnncourse.training.fit_minibatches`.
        per_example_epoch_seconds: seconds per epoch of the loop over the whole training set
            (extrapolated from the subset it ran on).
        minibatch_epoch_seconds: measured seconds per epoch of ``fit(batch_size=...)``.
    """
    fig, (ax_loss, ax_time) = new_figure(ncols=2, width=10.5, height=4.0,
                                         gridspec_kw={"width_ratios": [2.2, 1]})
    steps = np.arange(1, len(per_example.step_losses) + 1)
    ax_loss.plot(steps, per_example.step_losses, color=COLORS["simple_rnn"], lw=0.8, alpha=0.8,
                 label="fit() per example: loss of each step (1 tweet)")
    steps_mb = np.arange(1, len(minibatch.step_losses) + 1)
    ax_loss.plot(steps_mb, minibatch.step_losses, color=COLORS["lstm"], lw=1.6,
                 label=f"fit(batch_size={minibatch.step_sizes[0]}): loss of each step")
    for history, color in ((per_example, COLORS["simple_rnn"]), (minibatch, COLORS["lstm"])):
        per = history.steps_per_epoch
        centres = per * (np.arange(len(history.epoch_losses)) + 0.5)
        ax_loss.plot(centres, history.epoch_losses, color=color, ls="none", marker="D", ms=7,
                     markeredgecolor="black")
    ax_loss.plot([], [], ls="none", marker="D", color="white", markeredgecolor="black",
                 label="epoch means")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss per step (cross-entropy, nats)")
    ax_loss.set_title("What a jagged curve is made of")
    ax_loss.legend(loc="upper right")
    labels = ["fit() per\nexample", "fit(batch_size\n=32)"]
    values = [per_example_epoch_seconds, minibatch_epoch_seconds]
    bars = ax_time.bar(labels, values, color=[COLORS["simple_rnn"], COLORS["lstm"]])
    for bar, value in zip(bars, values, strict=True):
        ax_time.annotate(f"{value:.3g} s", (bar.get_x() + bar.get_width() / 2, value),
                         ha="center", va="bottom", fontsize=9)
    ax_time.set_yscale("log")
    ax_time.set_ylabel("wall time per epoch (s, log scale)")
    ax_time.set_title(f"{values[0] / values[1]:.0f}x slower per epoch")
    return finish(fig, "Per-example fit() calls vs mini-batches on the same tweets")


def plot_accumulation(results: Sequence) -> Figure:
    """Largest weight difference from one big-batch step, per variant and optimizer.

    Args:
        results: ``training.AccumulationResult`` objects (e.g. one for SGD, one for Adam).
    """
    fig, axes = new_figure(ncols=len(results), width=5.2 * len(results), height=4.2,
                           sharey=True)
    axes = np.atleast_1d(axes)
    floor = 1e-10
    for ax, result in zip(axes, results, strict=True):
        names = list(result.diffs)
        emb = [max(result.diffs[n][0], floor) for n in names]
        other = [max(result.diffs[n][1], floor) for n in names]
        pos = np.arange(len(names))
        ax.bar(pos - 0.2, emb, width=0.4, color=COLORS["highlight"], label="embedding matrix")
        ax.bar(pos + 0.2, other, width=0.4, color=COLORS["lstm"], label="LSTM and dense weights")
        ax.axhline(result.moved, color=COLORS["baseline"], ls="--", lw=1,
                   label="size of the update itself")
        ax.set_xticks(pos, [n.replace("-", "\nvs ") for n in names], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, 1)
        ax.set_title(f"{result.optimizer.upper()}: {result.steps} micro-batches of "
                     f"{result.micro_batch}")
    axes[0].set_ylabel("largest |weight difference| after the update")
    axes[0].legend(loc="upper left")
    return finish(fig, "Gradient accumulation vs one step on the whole batch")


def plot_tagger_runs(runs: Mapping[str, object]) -> Figure:
    """Validation loss per epoch and entity F1 of several tagger runs.

    Args:
        runs: ``{label: training.TaggerRun}``.
    """
    fig, (ax_loss, ax_f1) = new_figure(ncols=2, width=10.0, height=4.0)
    palette = [COLORS["lstm"], COLORS["simple_rnn"], COLORS["gru"], COLORS["accent"]]
    for color, (label, run) in zip(palette, runs.items(), strict=False):
        epochs = np.arange(1, len(run.history.val_losses) + 1)
        ax_loss.plot(epochs, run.history.epoch_losses, color=color, ls=":", lw=1.2)
        ax_loss.plot(epochs, run.history.val_losses, color=color, marker="o", ms=3,
                     label=f"{label} (dotted: training)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss per real token (cross-entropy, nats)")
    ax_loss.set_title("Validation loss (masked)")
    ax_loss.legend()
    labels = list(runs) + ["all-O baseline"]
    f1 = [run.scores.f1 for run in runs.values()] + [0.0]
    colors = palette[:len(runs)] + [COLORS["baseline"]]
    bars = ax_f1.bar(labels, f1, color=colors)
    for bar, value in zip(bars, f1, strict=True):
        ax_f1.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, value),
                       ha="center", va="bottom", fontsize=9)
    ax_f1.set_ylabel("entity F1 on validation tweets (seqeval)")
    ax_f1.set_title("Entity-level F1")
    ax_f1.tick_params(axis="x", labelsize=8)
    return finish(fig, "BiLSTM tagger on WNUT-16 tweets")


def plot_type_confusion(counts: np.ndarray, names: Sequence[str]) -> Figure:
    """Row-normalised token-level confusion of entity types (rows: true, columns: predicted).

    Args:
        counts: (types, types) int counts from :func:`~rnncourse.training.type_confusion`.
        names: the type of each row/column.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names):
        raise ValueError(f"counts must be ({len(names)}, {len(names)}), got {counts.shape}")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = new_figure(width=7.5, height=6.4)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), [f"{n} ({int(c)})" for n, c in
                                      zip(names, counts.sum(axis=1), strict=True)])
    for i in range(len(names)):
        for j in range(len(names)):
            if counts[i, j]:
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type (tokens)")
    fig.colorbar(image, ax=ax, label="share of the true type's tokens")
    return finish(fig, "Which entity types the tagger confuses (validation tokens)")

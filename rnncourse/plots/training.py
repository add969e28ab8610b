"""Figures of the chapter *Training loops and sequence labelling*.

They take what the chapter's page measured: :class:`rnncourse.training.LoopHistory` objects
and plain dicts of numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rnncourse import _checks
from rnncourse.plots import COLORS, finish, new_figure

PALETTE = [COLORS["baseline"], COLORS["simple_rnn"], COLORS["lstm"], COLORS["gru"],
           COLORS["accent"], COLORS["highlight"], COLORS["other"]]


def plot_loop_comparison(per_example, minibatch, train_tweets: int, batch_size: int
                         ) -> Figure:
    """Per-step losses against tweets seen, and optimizer steps / ``fit`` calls per epoch.

    Args:
        per_example: :class:`rnncourse.training.LoopHistory` of the per-example ``fit`` loop.
        minibatch: :class:`rnncourse.training.LoopHistory` of one ``fit`` over mini-batches.
        train_tweets: tweets in one epoch (the bars count steps over all of them).
        batch_size: tweets per mini-batch step.
    """
    fig, (ax_loss, ax_steps) = new_figure(ncols=2, width=10.5, height=4.2,
                                          gridspec_kw={"width_ratios": [2.2, 1]})
    ax_loss.plot(per_example.examples_seen, per_example.step_losses, color=COLORS["simple_rnn"],
                 lw=0.8, alpha=0.85, label="fit() per example: each step is 1 tweet")
    ax_loss.plot(minibatch.examples_seen, minibatch.step_losses, color=COLORS["lstm"], lw=1.6,
                 marker="o", ms=2.5,
                 label=f"fit(batch_size={batch_size}): each step is {batch_size} tweets")
    for history, color in ((per_example, COLORS["simple_rnn"]), (minibatch, COLORS["lstm"])):
        seen = history.examples_seen
        per = history.steps_per_epoch
        ends = seen[per - 1::per][:len(history.epoch_losses)]
        ax_loss.plot(ends, history.epoch_losses, color=color, ls="none", marker="D", ms=7,
                     markeredgecolor="black")
    ax_loss.plot([], [], ls="none", marker="D", color="white", markeredgecolor="black",
                 label="epoch means (at the end of each epoch)")
    ax_loss.set_xscale("log")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training tweets seen (log scale)")
    ax_loss.set_ylabel("training loss of each step (nats)")
    ax_loss.set_title("What a jagged curve is made of")
    ax_loss.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, fontsize=9,
                   frameon=False)
    steps = (train_tweets, -(-train_tweets // batch_size))
    calls = (train_tweets, 1)
    pos = np.arange(2)
    ax_steps.bar(pos - 0.2, steps, width=0.4, color=COLORS["lstm"], label="optimizer steps")
    ax_steps.bar(pos + 0.2, calls, width=0.4, color=COLORS["highlight"], label="fit() calls")
    for x, values in ((pos - 0.2, steps), (pos + 0.2, calls)):
        for xi, value in zip(x, values, strict=True):
            ax_steps.annotate(f"{value:,}", (xi, value), ha="center", va="bottom", fontsize=9)
    ax_steps.set_xticks(pos, ["fit() per\nexample", f"fit(batch_size\n={batch_size})"])
    ax_steps.set_yscale("log")
    ax_steps.set_ylim(0.5, max(steps) * 4)
    ax_steps.set_ylabel("per epoch over the training tweets")
    ax_steps.set_title(f"One epoch, {train_tweets:,} tweets")
    ax_steps.legend(loc="upper right", fontsize=9)
    return finish(fig, "Per-example fit() calls against mini-batches on the same tweets")


def plot_accumulation(diffs: Mapping[str, Mapping[str, tuple[float, float]]],
                      moved: Mapping[str, float], steps: int, micro_batch: int) -> Figure:
    """Largest weight differences between ways of updating, one panel per optimizer.

    Args:
        diffs: ``{optimizer: {"a-b": (embedding, other weights)}}``: the largest absolute
            difference between the weights variant ``a`` and variant ``b`` reached, in the
            embedding matrix and in all other weights (e.g. ``"accumulated-big"``).
        moved: ``{optimizer: largest weight change of the big-batch update itself}``,
            drawn as a line for scale.
        steps, micro_batch: micro-batches per update and examples in each (the titles).
    """
    _checks.fail_if(set(moved) != set(diffs), "moved",
                    f"needs one value per optimizer of diffs {list(diffs)}, has {list(moved)}")
    fig, axes = new_figure(ncols=len(diffs), width=5.2 * len(diffs), height=4.6,
                           sharey=True)
    axes = np.atleast_1d(axes)
    floor = 1e-10
    for ax, (optimizer, pairs) in zip(axes, diffs.items(), strict=True):
        names = list(pairs)
        emb = [max(pairs[n][0], floor) for n in names]
        other = [max(pairs[n][1], floor) for n in names]
        pos = np.arange(len(names))
        ax.bar(pos - 0.2, emb, width=0.4, color=COLORS["highlight"], label="embedding matrix")
        ax.bar(pos + 0.2, other, width=0.4, color=COLORS["lstm"], label="LSTM and dense weights")
        ax.axhline(moved[optimizer], color=COLORS["baseline"], ls="--", lw=1,
                   label="size of the update itself")
        ax.set_xticks(pos, [n.replace("-", "\nvs ") for n in names], fontsize=9)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, 10)
        ax.set_title(f"{optimizer.upper()}: {steps} micro-batches of {micro_batch}")
    axes[0].set_ylabel("largest |weight difference| after the update")
    axes[0].legend(loc="upper left", fontsize=9, ncol=1)
    return finish(fig, "Gradient accumulation against one step on the whole batch")


def plot_tagger_comparison(f1: Mapping[str, Sequence[float]],
                           val_losses: Mapping[str, Sequence[Sequence[float]]],
                           variants: Sequence[str] | None = None) -> Figure:
    """Entity F1 per variant over seeds (mean, standard deviation, each seed), and the
    validation loss curves of every run.

    Args:
        f1: ``{variant: F1 of each seed's run}`` (paired: the same seeds for every variant).
        val_losses: ``{variant: [per-epoch validation losses of each run]}``.
        variants: which variants to show, in order (default: all of ``f1``).
    """
    variants = list(variants or f1)
    fig, (ax_f1, ax_loss) = new_figure(ncols=2, width=7.5, height=0.9 * len(variants) + 2.6,
                                       gridspec_kw={"width_ratios": [1.25, 1]})
    rows = np.arange(len(variants))[::-1]
    for row, variant, color in zip(rows, variants, PALETTE, strict=False):
        values = np.asarray(f1[variant], dtype=float)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        ax_f1.barh(row, values.mean(), xerr=std, color=color, alpha=0.75, capsize=4,
                   height=0.6)
        ax_f1.plot(values, np.full(len(values), row), ls="none", marker="o", ms=5,
                   color="black")
        ax_f1.annotate(f"{values.mean():.3f} ± {std:.3f}", (values.max() + std + 0.01, row),
                       va="center", fontsize=9)
        for val in val_losses[variant]:
            ax_loss.plot(np.arange(1, len(val) + 1), val, color=color, lw=1.2, alpha=0.8)
        ax_loss.plot([], [], color=color, lw=2, label=variant)
    ax_f1.set_yticks(rows, variants, fontsize=9)
    top = max(max(f1[v]) for v in variants)
    ax_f1.set_xlim(0, min(1.0, top * 1.45 + 0.05))
    ax_f1.set_xlabel(f"entity F1 on validation tweets (seqeval); dots: "
                     f"{len(f1[variants[0]])} seeds")
    ax_f1.set_title("F1: mean ± std over seeds")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("validation loss per real token (nats)")
    ax_loss.set_title("Validation loss, every run")
    # below both panels, in the columns that fit (a legend under the right panel alone
    # widened the saved image and shrank the figure on the page)
    return finish(fig, "BiLSTM tagger on WNUT-16 tweets: vocabulary and unknown-word rows",
                  legend=ax_loss.get_legend_handles_labels())


def plot_type_confusion(counts: np.ndarray, names: Sequence[str]) -> Figure:
    """Row-normalised token-level confusion of entity types (rows: true, columns: predicted).

    Args:
        counts: (types, types) int counts from :func:`rnncourse.training.type_confusion`.
        names: the type of each row/column.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names):
        raise ValueError(f"counts must be ({len(names)}, {len(names)}), got {counts.shape}")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = new_figure(width=8.0, height=6.8)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), [f"{n} ({int(c)})" for n, c in
                                      zip(names, counts.sum(axis=1), strict=True)])
    for i in range(len(names)):
        for j in range(len(names)):
            if counts[i, j]:
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type (tokens)")
    fig.colorbar(image, ax=ax, label="share of the true type's tokens")
    return finish(fig, "Which entity types the tagger confuses (validation tokens)")

"""Figures of the chapter "Truncated BPTT" (:mod:`rnncourse.tbptt`,
:mod:`rnncourse.chapters.ch05_tbptt`)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnncourse.plots import COLORS, finish, new_figure


def plot_window_layout(batches, max_batches: int | None = None) -> Figure:
    """Which sequence and window fills each row of each batch of a stateful layout.

    Args:
        batches: a :class:`rnncourse.tbptt.StatefulBatches`.
        max_batches: draw only the first batches (default: two resets' worth).
    """
    b, k = batches.batch_size, batches.reset_every
    shown = min(batches.num_batches, max_batches or 2 * k)
    if shown < 1:
        raise ValueError("the layout has no batches to draw")
    groups = np.arange(shown) // k
    seq = groups[None, :] * b + np.arange(b)[:, None]  # (row, batch)
    window = np.broadcast_to(np.arange(shown) % k, seq.shape)
    filler = seq >= batches.num_sequences
    fig, ax = new_figure(width=max(7.0, 0.45 * shown + 2), height=0.45 * b + 1.6)
    palette = ListedColormap([COLORS[c] for c in ("lstm", "gru", "highlight", "accent",
                                                  "other", "simple_rnn")])
    image = np.ma.masked_where(filler, seq % palette.N)
    ax.imshow(np.where(filler, 1.0, np.nan), cmap=ListedColormap(["#d9d9d9"]), aspect="auto")
    ax.imshow(image, cmap=palette, aspect="auto", vmin=0, vmax=palette.N - 1)
    for (r, j), s in np.ndenumerate(seq):
        label = "fill" if filler[r, j] else f"s{s}\nw{window[r, j]}"
        ax.text(j, r, label, ha="center", va="center", fontsize=9,
                color="black" if filler[r, j] else "white")
    for j in range(k, shown, k):
        ax.axvline(j - 0.5, color="black", lw=2)
    ax.set_xticks(range(shown))
    ax.set_yticks(range(b))
    ax.grid(False)
    ax.set_xlabel("batch index j (state flows left to right; thick line = reset)")
    ax.set_ylabel("row i of the batch")
    return finish(fig, f"Stateful layout: sequence s, window w; {batches.num_sequences} "
                       f"sequences, batch {b}, reset every {k} batches")


def plot_memory(result) -> Figure:
    """Peak tensor memory of one training pass vs sequence length: full BPTT and TBPTT.

    Args:
        result: a :class:`rnncourse.chapters.ch05_tbptt.MemoryResult` (``lengths``,
            ``full_bptt``, ``tbptt`` and ``estimate`` in bytes, ``window``).
    """
    lengths = np.asarray(result.lengths)
    if lengths.size == 0:
        raise ValueError("the memory result has no lengths to draw")
    fig, ax = new_figure()
    ax.plot(lengths, np.asarray(result.full_bptt) / 2**20, "o-", color=COLORS["simple_rnn"],
            label="full BPTT (gradient through all L steps)")
    ax.plot(lengths, np.asarray(result.tbptt) / 2**20, "s-", color=COLORS["lstm"],
            label=f"TBPTT, window {result.window}")
    ax.plot(lengths, np.asarray(result.estimate) / 2**20, ":", color=COLORS["baseline"],
            label="estimate of full BPTT: batch x L x floats per step x 4 B")
    ax.set_xlabel("sequence length L (steps)")
    ax.set_ylabel("peak tensor memory (MiB)")
    ax.set_ylim(bottom=0)
    ax.legend()
    return finish(fig, "Memory of one pass over a sequence: TBPTT is flat in L")


def plot_bits_per_char(train_bits, validation_bits, unigram: float) -> Figure:
    """Training bits per character per epoch, held-out bits as stars, unigram baseline.

    Args:
        train_bits: ``{method: bits per character of each epoch}``, e.g.
            ``{"stateful fit": [...], "explicit loop": [...]}``.
        validation_bits: ``{method: held-out bits per character after training}``, the
            same methods.
        unigram: entropy of the character frequencies (bits/char without context).
    """
    train_bits, validation_bits = dict(train_bits), dict(validation_bits)
    if not train_bits or set(train_bits) != set(validation_bits):
        raise ValueError("pass the bits of at least one method, the same methods in "
                         f"train_bits {sorted(train_bits)} and validation_bits "
                         f"{sorted(validation_bits)}")
    fig, ax = new_figure()
    colors = [COLORS["lstm"], COLORS["gru"], COLORS["accent"], COLORS["other"]]
    last_epoch = 1
    for color, (method, bits) in zip(colors, train_bits.items(), strict=False):
        bits = list(bits)
        epochs = np.arange(1, len(bits) + 1)
        last_epoch = max(last_epoch, len(bits))
        ax.plot(epochs, bits, "o-", color=color, label=f"{method} (train)")
        ax.plot([len(bits)], [validation_bits[method]], "*", ms=12, color=color,
                label=f"{method} (held out)")
    ax.axhline(unigram, color=COLORS["baseline"], ls="--",
               label=f"unigram entropy {unigram:.2f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.set_xlim(0.5, last_epoch + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return finish(fig, "Character LM on Shakespeare trained with TBPTT")

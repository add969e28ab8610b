"""Every figure of the book, in one style.

This package holds the shared style (:func:`apply_style`, :data:`COLORS`,
:func:`new_figure`, :func:`finish`); the figures of each chapter live in a submodule
named after the chapter's module (``rnncourse.plots.gradients`` for ``rnncourse.gradients``).

Conventions: axes carry labels with units, a figure has a title that states what it
shows, colours come from :data:`COLORS` (readable on light and dark backgrounds), and
every plotting function returns the ``matplotlib.figure.Figure`` so a test can inspect it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt  # the backend stays matplotlib's choice (Agg when headless)
from matplotlib.figure import Figure
from matplotlib.text import Text

#: Colours by role, from the colour-blind-safe Okabe-Ito palette.
COLORS = {
    "lstm": "#0072B2",
    "gru": "#009E73",
    "simple_rnn": "#D55E00",
    "baseline": "#7f7f7f",
    "accent": "#CC79A7",
    "highlight": "#E69F00",
    "other": "#56B4E9",
}

STYLE = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "font.size": 10,
}


def apply_style() -> None:
    """Set the book's matplotlib defaults (white background survives the dark theme).

    :func:`new_figure` calls it; importing :mod:`rnncourse.plots` leaves your
    ``matplotlib.rcParams`` alone.
    """
    plt.rcParams.update(STYLE)


#: The widest figure, in inches. The website's text column is about 741 CSS px wide on a
#: desktop; a figure of 7.5 in at ``figure.dpi`` 110 (825 px) is shown at 90 % of its size,
#: so its smallest text (9 pt ticks and legends) stays above 9 pt on screen. A wider figure
#: was shrunk until its legends were 5-7 px tall.
MAX_WIDTH = 7.5
#: More panels than this in one row wrap into rows of two.
PANELS_PER_ROW = 3


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None,
               height: float | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` in the book's style, sized per panel (3.6 x 3.2 in by default).

    The figure is never wider than :data:`MAX_WIDTH` (a wider ``width`` is reduced to it, so
    the text stays readable on the page). One row of more than :data:`PANELS_PER_ROW` panels
    wraps into rows of two; the axes still come back as one flat array of ``ncols`` axes
    (``height`` is then the height of each row).
    """
    apply_style()
    panels = ncols * nrows
    rows = 1
    if nrows == 1 and ncols > PANELS_PER_ROW:
        rows, ncols = -(-ncols // 2), 2
    width = width if width is not None else max(7.0, 3.6 * ncols)
    width = min(width, MAX_WIDTH)
    if rows > 1:
        height = (height if height is not None else 3.2) * rows + 0.6
        fig, grid = plt.subplots(rows, ncols, figsize=(width, height), squeeze=False,
                                 **kwargs)
        axes = grid.ravel()
        for spare in axes[panels:]:
            fig.delaxes(spare)
        return fig, axes[:panels]
    height = height if height is not None else 3.2 * nrows + 0.6
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=True, **kwargs)


def finish(fig: Figure, title: str | None = None,
           legend: tuple[Sequence[Any], Sequence[str]] | None = None) -> Figure:
    """Add an overall title and a figure legend, tighten the layout, and return the figure.

    Nothing is drawn beyond the figure's width, so the image a notebook saves
    (``bbox_inches="tight"``) is no wider than the figure, and the website does not shrink
    its text: a title wider than the figure is wrapped onto balanced lines, and
    ``legend=(handles, labels)`` becomes one legend below the panels, in as many columns as
    fit the figure's width.

    The figure is closed in pyplot's registry, so a notebook shows it once: as the value
    the cell returns, not a second time through the inline backend.
    """
    if title:
        _wrap_to_width(fig.suptitle(title, fontsize=12), fig.bbox.width)
    bottom = 0.0
    if legend is not None:
        handles, labels = legend
        bottom = _legend_below(fig, list(handles), list(labels)) + 0.01
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    plt.close(fig)
    return fig


def _wrap_to_width(text: Text, width: float) -> None:
    """Break ``text`` into the fewest lines no wider than ``width`` display pixels: after
    its first colon when both halves fit, else at spaces into lines of about equal length
    (one word longer than ``width`` stays whole)."""
    words = text.get_text()
    if text.get_window_extent().width <= width:
        return
    head, colon, tail = words.partition(": ")
    if colon:
        text.set_text(f"{head}:\n{tail}")
        if text.get_window_extent().width <= width:
            return
    for lines in range(2, len(words.split()) + 1):
        # the narrowest wrap into this many lines: balanced instead of a short last line
        columns = next(c for c in range(-(-len(words) // lines), len(words) + 1)
                       if len(textwrap.wrap(words, c)) <= lines)
        text.set_text(textwrap.fill(words, columns))
        if text.get_window_extent().width <= width:
            return


def _legend_below(fig: Figure, handles: list[Any], labels: list[str]) -> float:
    """A figure legend at the bottom, centred, in the most columns (rows filled evenly)
    that fit the figure's width; returns its height as a fraction of the figure's."""
    if not labels:
        return 0.0
    for columns in range(len(labels), 0, -1):
        legend = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0),
                            ncols=columns)
        if columns == 1 or legend.get_window_extent().width <= fig.bbox.width:
            break
        legend.remove()
    rows = -(-len(labels) // columns)
    even = -(-len(labels) // rows)  # same rows, as few columns: 2 + 2 rather than 3 + 1
    if even != columns:
        legend.remove()
        legend = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0),
                            ncols=even)
    return legend.get_window_extent().height / fig.bbox.height


def has_data(fig: Figure) -> bool:
    """True when some axes of ``fig`` draw at least one finite data point (no empty figure)."""
    import numpy as np

    for ax in fig.axes:
        for line in ax.get_lines():
            if np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any():
                return True
        if ax.patches or ax.collections or ax.images:
            return True
    return False


def markdown_table(rows, headers=None):
    """A Markdown table for notebooks: ``rows`` of dicts (keys become headers) or sequences.

    Returns an ``IPython.display.Markdown`` object (renders as a table in Jupyter and on the
    website); ``str(result.data)`` is the Markdown text.
    """
    from IPython.display import Markdown

    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        headers = headers or list(rows[0])
        rows = [[row[h] for h in headers] for row in rows]
    if not headers:
        raise ValueError("markdown_table needs headers when rows are not dicts")

    def cell(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(str(h).replace("|", "\\|") for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def __getattr__(name: str):
    """Import a chapter's figure module on first use: ``plots.gradients.plot_...``."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The shared figure helpers of rnncourse.plots: tables, titles and legends that fit the page.

A notebook shows a figure as a PNG saved with ``bbox_inches="tight"`` at ``figure.dpi``
(IPython's inline backend); whatever reaches beyond the figure widens that image, and the
website then shrinks all of its text. These tests save figures the same way.
"""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from IPython.core.pylabtools import print_figure
from markdown_it import MarkdownIt
from PIL import Image

from rnncourse import plots
from rnncourse.plots import embeddings as embedding_plots
from rnncourse.plots import gradients as gradient_plots


def saved_width(fig) -> int:
    """Width in pixels of the PNG a notebook shows for ``fig``."""
    return Image.open(io.BytesIO(print_figure(fig, "png", bbox_inches="tight"))).width


def figure_pixels(fig) -> float:
    return fig.get_figwidth() * fig.dpi


def test_markdown_table_escapes_pipes_in_headers_and_cells():
    table = plots.markdown_table([{"layer": "LSTM", "|Δ output|": "|a| < 1e-6", "n": 1200}])
    text = str(table.data)
    assert text.splitlines()[0] == "| layer | \\|Δ output\\| | n |"
    html = MarkdownIt().enable("table").render(text)
    assert html.count("<th>") == 3 and html.count("<td>") == 3, html
    assert "<th>|Δ output|</th>" in html and "<td>|a| &lt; 1e-6</td>" in html
    assert "<td>1,200</td>" in html


def test_markdown_table_needs_headers_for_plain_rows():
    with pytest.raises(ValueError):
        plots.markdown_table([[1, 2]])
    assert str(plots.markdown_table([[1, 2]], headers=["a|b", "c"]).data).startswith(
        "| a\\|b | c |")


def test_a_title_wider_than_the_figure_is_wrapped_inside_it():
    fig, ax = plots.new_figure(width=5.0, height=3.0)
    ax.plot([0, 1], [0, 1])
    title = "A long title: " + " ".join(["words that make it wider than the figure"] * 3)
    plots.finish(fig, title)
    shown = fig.get_suptitle()
    assert shown.replace("\n", " ") == title and shown.count("\n") >= 1
    assert saved_width(fig) <= figure_pixels(fig)


def test_a_short_title_stays_on_one_line():
    fig, ax = plots.new_figure(width=7.0, height=3.0)
    ax.plot([0, 1], [0, 1])
    plots.finish(fig, "Short: title")
    assert fig.get_suptitle() == "Short: title"


def test_a_legend_below_the_panels_takes_the_columns_that_fit():
    fig, (left, right) = plots.new_figure(ncols=2, width=7.5, height=4.0)
    for i in range(6):
        left.plot([0, 1], [i, i + 1], label=f"a run with a long label number {i}")
    right.plot([0, 1], [1, 0])
    plots.finish(fig, "Six runs", legend=left.get_legend_handles_labels())
    (legend,) = fig.legends
    fig.draw_without_rendering()  # lays the legend out
    columns = {round(text.get_window_extent().x0) for text in legend.get_texts()}
    assert 1 < len(columns) < 6, columns  # one row would be wider than the figure
    assert saved_width(fig) <= figure_pixels(fig)
    # the panels sit above the legend: the x labels do not overlap it
    assert left.get_tightbbox().y0 >= legend.get_window_extent().y1 - 1


def _run(label, losses, norms, diverged=False):
    return SimpleNamespace(label=label, losses=np.asarray(losses, float),
                           step_norms=np.asarray(norms, float), diverged=diverged)


@pytest.mark.parametrize("labels", [
    ["no clipping", "global_clipnorm=1", "clipvalue=0.1"],
    [f"global_clipnorm={t:.2g}" for t in (0.41, 4.1, 41, 410, 4100)],
])
def test_training_runs_figure_is_no_wider_than_the_page_allows(labels):
    rng = np.random.default_rng(0)
    runs = [_run(label, [12.0 * (k + 1), 1.2, 0.3, 0.2], 10 + rng.random(30))
            for k, label in enumerate(labels)]
    runs[0] = _run(labels[0], [50.0, np.nan, np.nan, np.nan], [100.0, 1e5, np.inf],
                   diverged=True)
    fig = gradient_plots.plot_training_runs(runs, loss_baseline=0.1664)
    assert plots.has_data(fig)
    assert fig.get_figwidth() <= plots.MAX_WIDTH
    assert saved_width(fig) <= figure_pixels(fig) + 4  # tight bbox: a pixel of rounding


def test_sentiment_figure_is_no_wider_than_the_page_allows():
    rng = np.random.default_rng(0)
    variants = ("glove", "random", "glove_frozen")
    val_accuracy = {v: 0.6 + 0.1 * rng.random((5, 6)) for v in variants}  # 5 seeds
    fig = embedding_plots.plot_sentiment(val_accuracy, train_sentences=12_345)
    assert plots.has_data(fig) and "12,345 labelled" in fig.get_suptitle()
    assert fig.get_figwidth() <= plots.MAX_WIDTH
    assert saved_width(fig) <= figure_pixels(fig) + 4


SIZE_ARGUMENTS = ("fontsize", "size", "labelsize")


def test_no_figure_text_is_smaller_than_the_style_allows():
    """The site test computes each figure's smallest text from rnncourse.plots.STYLE; a
    figure function that set a smaller ``fontsize`` (or a relative one such as "small")
    would escape it."""
    import ast
    from pathlib import Path

    smallest = min(plots.STYLE[k] for k in ("font.size", "legend.fontsize", "xtick.labelsize",
                                             "ytick.labelsize", "axes.labelsize",
                                             "axes.titlesize"))
    assert smallest >= 9
    found = []
    for path in sorted(Path(plots.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            sizes = []
            if isinstance(node, ast.keyword) and node.arg in SIZE_ARGUMENTS \
                    and not isinstance(node.value, ast.Name):  # a parameter: its default
                sizes = [node.value]
            elif isinstance(node, ast.FunctionDef):  # def f(..., fontsize=9)
                arguments = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) \
                    + node.args.defaults + node.args.kw_defaults
                sizes = [d for a, d in zip(arguments, defaults, strict=True)
                         if a.arg in SIZE_ARGUMENTS and d is not None]
            found += [(path.name, node.lineno, getattr(v, "value", None)) for v in sizes]
    assert found, "no fontsize found: the scan is broken"
    too_small = [(name, line, size) for name, line, size in found
                 if not isinstance(size, (int, float)) or size < smallest]
    assert too_small == [], f"text below {smallest} pt (or not a number of points): {too_small}"


def test_an_empty_legend_adds_nothing():
    fig, ax = plots.new_figure()
    ax.plot([0, 1], [0, 1])  # no label
    plots.finish(fig, "No labels", legend=ax.get_legend_handles_labels())
    assert fig.legends == []

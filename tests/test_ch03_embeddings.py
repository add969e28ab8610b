"""Chapter 3's module (its scales and recipe) and its figures (rnncourse.plots.embeddings).

Everything else the chapter runs is on its page, and nbval runs it there.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import embeddings as M
from rnncourse import glove as G
from rnncourse import plots
from rnncourse.chapters import ch03_embeddings as C
from rnncourse.plots import embeddings as P
from rnncourse.text import Vocabulary

ROWS = {"the": [0.1, 0.2, 0.3], "cat": [1.0, 0.0, -1.0], "dog": [0.9, 0.1, -0.9],
        "king": [0.5, 0.9, 0.1], "queen": [0.5, 0.1, 0.9], "man": [0.2, 0.9, 0.0],
        "woman": [0.2, 0.0, 0.9]}


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "small.txt"
    path.write_text("".join(f"{w} {' '.join(map(repr, v))}\n" for w, v in ROWS.items()))
    return path


def test_scales_share_the_recipe_and_repeat_runs():
    assert C.SIZES["ci"].repeats >= 3 and C.SIZES["full"].repeats >= C.SIZES["ci"].repeats
    assert C.RECIPE.train_sentences == 1000


def test_sentiment_figure_reads_one_or_several_seeds():
    one = P.plot_sentiment({"glove": np.array([[0.5, 0.6]])}, train_sentences=10)
    assert plots.has_data(one) and fig_title(one).startswith("Movie-review sentiment, 10 ")
    curves = {"glove": np.array([[0.6, 0.70], [0.6, 0.74], [0.7, 0.72]]),
              "random": np.array([[0.60, 0.66], [0.5, 0.68], [0.64, 0.6]])}
    fig = P.plot_sentiment(curves, train_sentences=1000)
    assert plots.has_data(fig) and "1,000 labelled" in fig_title(fig)
    left, right = fig.axes
    # the right panel: each run's best epoch (dots) per variant, on the variants' ticks
    assert [t.get_text() for t in right.get_xticklabels()] == ["GloVe,\nfine-tuned",
                                                               "random init"]
    np.testing.assert_allclose(right.collections[0].get_offsets()[:, 1], [0.70, 0.74, 0.72])


def fig_title(fig) -> str:
    return fig._suptitle.get_text()


def test_figures_have_data(small):
    glove = G.read_glove(small)
    vocab = Vocabulary.from_tokens([["cat", "zorp"]])
    _, report = M.embedding_matrix(vocab, glove)
    oov = np.stack([M.truncated_normal(f"w{i}", glove.mean, glove.std) for i in range(50)])
    figures = [P.plot_projection(glove, {"animals": ["cat", "dog"], "royals": ["king", "queen"]}),
               P.plot_coverage({"a": report, "b": report}),
               P.plot_oov_vectors(glove, oov, oov * 0),
               P.plot_loaders({"dictionary": 0.2, "read_glove": 0.1},
                              {"dictionary": 84, "read_glove": 24}, words=2)]
    for fig in figures:
        assert plots.has_data(fig) and fig._suptitle is not None
    ax = figures[1].axes[0]
    assert ax.get_ylim() == (0, 100)


def test_oov_figure_legend_sits_below_every_panel_and_its_label(small):
    """The legend once covered the middle panel's x label (finish() undid the layout)."""
    glove = G.read_glove(small)
    oov = np.stack([M.truncated_normal(f"w{i}", glove.mean, glove.std) for i in range(50)])
    fig = P.plot_oov_vectors(glove, oov, oov * 0, dims=(0, 1, 2))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the figure comes back closed, without a canvas to draw
    canvas.draw()
    renderer = canvas.get_renderer()
    (legend,) = fig.legends
    top = legend.get_window_extent(renderer).y1
    for ax in fig.axes:
        assert top < ax.get_window_extent(renderer).y0
        assert top < ax.xaxis.label.get_window_extent(renderer).y0, ax.get_xlabel()


def test_projection_labels_do_not_overlap(small):
    vectors = G.read_glove(small)
    fig = P.plot_projection(vectors, {"animals": ["cat", "dog"], "royals": ["king", "queen"],
                                      "people": ["man", "woman"]})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)

"""Tests of chapter 3's experiments (rnncourse.chapters.ch03_embeddings) and its figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnncourse import embeddings as M
from rnncourse import glove as G
from rnncourse import plots
from rnncourse.chapters import Settings
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


def tiny(repeats: int = 2) -> Settings:
    return Settings(scale="ci", seed=0, sizes=C.Sizes(epochs=1, repeats=repeats, glove_words=7),
                    recipe=dataclasses.replace(C.RECIPE, units=4, batch_size=8,
                                               train_sentences=10, timesteps=4))


def test_scales_share_the_recipe_and_repeat_runs():
    assert C.SIZES["ci"].repeats >= 3 and C.SIZES["full"].repeats >= C.SIZES["ci"].repeats
    assert C.RECIPE.train_sentences == 1000


def test_compare_loaders_agree_and_count_bytes(small):
    result = C.compare_loaders(small, ["cat", "queen", "absent"])
    assert result.same_vectors and result.kept == 2 and result.lines == 7
    assert result.vector_bytes == {"dictionary": 7 * 3 * 4, "read_glove": 2 * 3 * 4}
    assert set(result.seconds) == {"dictionary", "read_glove"}


def test_one_hot_vs_dense_arithmetic():
    sizes = C.one_hot_vs_dense_bytes(vocab_size=20_000, dim=50, batch_size=32, timesteps=100)
    assert sizes["one_hot"] == 32 * 100 * 20_000 * 4
    assert sizes["one_hot"] // sizes["dense_batch"] == 400
    assert sizes["table"] == 20_000 * 50 * 4
    assert C.one_hot_vs_dense_bytes(np.int64(10), 2, 1, np.int32(3))["ids"] == 12
    with pytest.raises(ValueError) as info:
        C.one_hot_vs_dense_bytes(vocab_size=10, dim=2, batch_size=1, timesteps=0)
    assert info.value.argument == "timesteps"
    with pytest.raises(TypeError) as info:
        C.one_hot_vs_dense_bytes(vocab_size=10.0, dim=2, batch_size=1, timesteps=3)
    assert info.value.argument == "vocab_size"


def test_sentiment_data_on_tiny_data(small):
    texts = ["the cat", "the dog zorp", "king queen", "man woman"] * 4
    labels = [1, 0, 1, 0] * 4
    setup = tiny(repeats=1)
    data = C.sentiment_data(texts, labels, small, setup)
    assert data.x_train.shape == (10, 4) and data.x_val.shape == (3, 4)
    assert data.x_train.dtype == np.int32 and data.y_train.dtype == np.float32
    assert [w for w, _ in data.report.missing] == ["zorp"]
    # GloVe rows for the vocabulary's words, row 0 (padding) zero
    assert data.matrix.shape == (len(data.vocab), 3) and not data.matrix[0].any()
    np.testing.assert_allclose(data.matrix[data.vocab.index("cat")], ROWS["cat"])
    with pytest.raises(ValueError, match="differ in length"):
        C.sentiment_data(texts, labels[:-1], small, setup)


def test_a_single_seed_comparison_has_no_spread():
    result = C.SentimentComparison(("glove",), (10,), {"glove": np.array([[0.5, 0.6]])},
                                   10, 0)
    assert result.mean("glove") == pytest.approx(0.6) and result.spread("glove") == 0.0
    assert result.gap("glove", "glove") == (0.0, 0.0)
    fig = P.plot_sentiment(result)
    assert plots.has_data(fig) and fig._suptitle is not None


def test_comparison_statistics_are_paired_over_seeds():
    curves = {"glove": np.array([[0.6, 0.70], [0.6, 0.74], [0.7, 0.72]]),
              "random": np.array([[0.60, 0.66], [0.5, 0.68], [0.64, 0.6]])}
    result = C.SentimentComparison(("glove", "random"), (10, 11, 12), curves, 1000, 0)
    np.testing.assert_allclose(result.best("glove"), [0.70, 0.74, 0.72])
    assert result.mean("random") == pytest.approx(0.66)
    assert result.spread("glove") == pytest.approx(0.02)
    mean, std = result.gap("glove", "random")
    assert mean == pytest.approx(0.06) and std == pytest.approx(np.std([0.04, 0.06, 0.08],
                                                                       ddof=1))
    fig = P.plot_sentiment(result)
    assert plots.has_data(fig) and "1,000 labelled" in fig._suptitle.get_text()


def test_figures_have_data(small):
    glove = G.read_glove(small)
    vocab = Vocabulary.from_tokens([["cat", "zorp"]])
    _, report = M.embedding_matrix(vocab, glove)
    oov = np.stack([M.truncated_normal(f"w{i}", glove.mean, glove.std) for i in range(50)])
    figures = [P.plot_projection(glove, {"animals": ["cat", "dog"], "royals": ["king", "queen"]}),
               P.plot_coverage({"a": report, "b": report}),
               P.plot_oov_vectors(glove, oov, oov * 0),
               P.plot_loaders(C.compare_loaders(small, ["cat", "dog"]))]
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


def test_keras_probes():
    matrix = np.random.default_rng(0).normal(size=(9, 4)).astype("float32")
    ids = np.array([[0, 3, 8], [1, 1, 2]])
    assert C.lookup_vs_one_hot(matrix, ids) < 1e-6
    assert C.initial_table_probe(matrix) == {"weights": True, "constant": True}
    message = C.input_length_warning()
    assert message is not None and "input_length" in message


def test_group_similarity(small):
    vectors = G.read_glove(small)
    within, between = C.group_similarity(vectors, {"animals": ["cat", "dog"],
                                                   "royals": ["king", "queen"]})
    assert within > between
    unit = vectors.unit_vectors()
    assert within == pytest.approx(np.mean([unit[1] @ unit[2], unit[3] @ unit[4]]), abs=1e-6)
    with pytest.raises(KeyError, match="zorp"):
        C.group_similarity(vectors, {"a": ["cat", "zorp"], "b": ["king"]})
    with pytest.raises(ValueError, match="two groups"):
        C.group_similarity(vectors, {"a": ["cat", "dog"]})


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

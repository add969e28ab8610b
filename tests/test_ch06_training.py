"""Tests of chapter 6's experiments (rnncourse.chapters.ch06_training) and its figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnncourse import config, glove, plots, text, training
from rnncourse.chapters import Settings
from rnncourse.chapters import ch06_training as ch06
from rnncourse.plots import training as training_plots

config.quiet_tensorflow()

TINY = Settings(scale="ci", seed=0, recipe=ch06.RECIPE,
                sizes=ch06.Sizes(loop_examples=3, loop_epochs=2, tagger_tweets=12,
                                 tagger_epochs=1, units=4, repeats=2))


def tiny_tweets() -> ch06.Tweets:
    """Twelve tweets and a five-word "GloVe": no corpus, no cache."""
    tokens = [["Paris", "is", "nice"], ["I", "love", "Paris"], ["@bob", "is", "here"],
              ["zzq", "love"], ["Rome", "is", "nice"], ["@amy", "I", "love"]] * 2
    tags = [["B-geo-loc", "O", "O"], ["O", "O", "B-geo-loc"], ["B-person", "O", "O"],
            ["O", "O"], ["B-geo-loc", "O", "O"], ["B-person", "O", "O"]] * 2
    tokens[11] = ["Rome", "unseenword", "qqq"]
    words = ["paris", "is", "nice", "rome", "qqq"]
    vectors = glove.GloveVectors(words=words, vectors=np.eye(5, 5, dtype="float32"))
    train, val = np.arange(9), np.arange(9, 12)
    return ch06.Tweets(tokens=tokens, tags=tags, tag_names=text.tag_vocabulary(tags),
                       train=train, val=val, vectors=vectors, split_seed=0)


# ----------------------------------------------------------------------------- contract
def test_the_recipe_regularises_and_ci_repeats():
    assert ch06.RECIPE.dropout > 0 and ch06.RECIPE.patience >= 1  # one recipe, CI included
    assert ch06.SIZES["ci"].repeats >= 2


# ----------------------------------------------------------------------------- vocabularies
def test_strategies_differ_in_what_maps_to_oov():
    tweets = tiny_tweets()
    old = ch06.encode_tweets(tweets, "GloVe, training words", TINY)
    new = ch06.encode_tweets(tweets, "GloVe + text words, trained <oov>", TINY)
    shared = ch06.encode_tweets(tweets, "... one shared unknown vector", TINY)
    # training words only: no training token is <oov>, so its row never gets a gradient
    assert old.oov_train == 0 and old.oov_val == 2 and old.oov_val_in_glove == 1
    # words with a GloVe vector join, also from the unlabelled validation text ("qqq");
    # training words seen once without one ("zzq", "@amy") are <oov>, which now trains
    assert "qqq" in new.vocab and "Rome" in new.vocab and "unseenword" not in new.vocab
    assert new.oov_val_in_glove == 0 and new.oov_train == 2
    assert "@amy" not in new.vocab and "@bob" in new.vocab  # "@bob": seen twice
    assert "love" not in shared.vocab and shared.oov_train > new.oov_train
    assert old.embeddings.shape == (len(old.vocab), 5)
    assert ch06.encode_tweets(tweets, "random init", TINY).embeddings is None
    zeros = ch06.encode_tweets(tweets, "... unknown rows zero", TINY)
    assert not zeros.embeddings[text.OOV].any() and new.embeddings[text.OOV].any()
    with pytest.raises(ValueError, match="strategy must be one of"):
        ch06.encode_tweets(tweets, "glove", TINY)


def test_reader_layout_makes_padding_a_class():
    tweets = tiny_tweets()
    encoding = ch06.encode_tweets(tweets, "GloVe, training words", TINY)
    vectors, labels = ch06.reader_layout(encoding, tweets.train)
    assert vectors.shape == (9, 3, 5) and labels.shape == (9, 3, 1)
    assert labels[3, 2, 0] == 0 and not vectors[3, 2].any()  # "zzq love" + padding
    assert (labels[encoding.x[tweets.train] != 0] >= 1).all()
    with pytest.raises(ValueError, match="GloVe encoding"):
        ch06.reader_layout(ch06.encode_tweets(tweets, "random init", TINY), tweets.train)


# ----------------------------------------------------------------------------- probes
def test_equal_length_rows():
    x = np.array([[3, 4, 0], [3, 0, 0], [5, 6, 0], [7, 8, 9]])
    assert ch06.equal_length_rows(x, 2).tolist() == [0, 2]
    with pytest.raises(ValueError, match="share a length"):
        ch06.equal_length_rows(x, 3)


def test_perfect_predictions_score_badly_on_mse():
    scores = ch06.perfect_prediction_scores(np.array([[1, 2, 3, 0]]), 4)
    assert scores["accuracy"] == 1.0 and scores["mse"] > 0.5


def test_format_tagged_marks_entities_and_wraps():
    out = ch06.format_tagged(["I", "love", "Paris"], ["O", "O", "B-geo-loc"],
                             ["O", "B-person", "B-geo-loc"])
    assert out == "I [love O|B-person] [Paris B-geo-loc]"
    long = ch06.format_tagged(["word"] * 40, ["O"] * 40, ["O"] * 40, width=40)
    assert max(len(line) for line in long.splitlines()) <= 40
    url = "http://t.co/" + "x" * 60
    wrapped = ch06.format_tagged([url, "is", "here"], ["B-url", "O", "O"],
                                 ["O", "O", "O"], width=30)
    assert max(len(line) for line in wrapped.splitlines()) <= 30
    assert "".join(wrapped.split()) == "".join(f"[{url} B-url|O] is here".split())


def test_max_abs_diff():
    a = [np.zeros((2, 2)), np.ones(3)]
    assert ch06.max_abs_diff(a, [np.zeros((2, 2)), np.array([1.0, 1.5, 0.75])]) == 0.5
    assert ch06.max_abs_diff(a, a) == 0.0


# ----------------------------------------------------------------------------- results
def _run(f1: float, epochs: int) -> ch06.TaggerRun:
    scores = training.EntityScores(precision=f1, recall=f1, f1=f1, report="")
    history = {"loss": list(np.linspace(1, 0.5, epochs)), "val_loss": [0.9] * epochs}
    return ch06.TaggerRun(model=None, history=history, scores=scores, true_tags=[["O"]],
                          predicted_tags=[["O"]], val_accuracy=0.9)


def test_tagger_comparison_collects_paired_runs():
    tweets = tiny_tweets()
    encodings = {v: ch06.encode_tweets(tweets, v, TINY)
                 for v in ("random init", "GloVe, training words")}
    runs = {"random init": [_run(0.1, 2), _run(0.2, 3), _run(0.3, 2)],
            "GloVe, training words": [_run(0.3, 4), _run(0.3, 2), _run(0.6, 2)]}
    result = ch06.TaggerComparison.from_runs(runs, (10, 11, 12), encodings)
    assert result.f1["random init"] == (0.1, 0.2, 0.3)
    assert result.epochs["GloVe, training words"] == (4, 2, 2)
    assert result.first["random init"] is runs["random init"][0]
    mean, se = result.gap("GloVe, training words", "random init")  # differences .2 .1 .3
    assert mean == pytest.approx(0.2) and se == pytest.approx(0.1 / np.sqrt(3))
    assert result.mean("random init") == pytest.approx(0.2)
    assert result.spread("random init") == pytest.approx(0.1)
    assert [row["variant"] for row in result.table()] == list(runs)
    assert plots.has_data(training_plots.plot_tagger_comparison(result))
    with pytest.raises(ValueError, match="one run per seed"):
        ch06.TaggerComparison.from_runs(runs, (10, 11), encodings)


def test_the_chapter_module_trains_nothing():
    """Every fit, compile and update of the chapter is on its page, none in the module."""
    source = Path(ch06.__file__).read_text(encoding="utf-8")
    for call in (".fit(", ".compile(", "tf.GradientTape", ".apply_gradients(",
                 ".train_on_batch(", ".apply("):
        assert call not in source, call


# ----------------------------------------------------------------------------- figures
def _history(steps: int, epochs: int, size: int) -> training.LoopHistory:
    rng = np.random.default_rng(0)
    return training.LoopHistory(step_losses=rng.uniform(0.1, 2, steps * epochs),
                                step_sizes=np.full(steps * epochs, size),
                                epoch_losses=np.linspace(1, 0.5, epochs),
                                epoch_seconds=np.ones(epochs), val_losses=np.ones(epochs))


def test_figures_have_data():
    per_example, minibatch = _history(10, 2, 1), _history(5, 2, 32)
    assert plots.has_data(training_plots.plot_loop_comparison(per_example, minibatch, 150, 32))
    result = ch06.AccumulationResult("sgd", 4, 8, {"a-b": (1e-9, 1e-3)}, 0.01)
    assert plots.has_data(training_plots.plot_accumulation([result, result]))
    counts, names = training.type_confusion([["B-person", "O"]], [["B-person", "B-geo-loc"]])
    assert plots.has_data(training_plots.plot_type_confusion(counts, names))
    with pytest.raises(ValueError, match="counts must be"):
        training_plots.plot_type_confusion(counts, names[:1])

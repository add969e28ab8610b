"""Tests of chapter 6's experiments (rnncourse.chapters.ch06_training) and its figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnncourse import config, glove, models, plots, text, training
from rnncourse.chapters import Settings
from rnncourse.chapters import ch06_training as ch06
from rnncourse.plots import training as training_plots

config.quiet_tensorflow()

import tensorflow as tf  # noqa: E402
from test_training import STEPS, TAGS, VOCAB, ids  # noqa: E402  (tests/ is on the path)

TINY = Settings(scale="ci", seed=0, recipe=ch06.RECIPE,
                sizes=ch06.Sizes(loop_examples=3, loop_epochs=2, tagger_tweets=12,
                                 tagger_epochs=1, units=4, repeats=2))


def tiny_tagger(seed: int = 0) -> tf.keras.Model:
    return models.sequence_tagger(VOCAB, TAGS, units=4, embedding_dim=6, seed=seed)


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
def test_scales_share_the_recipe_and_sizes_are_counts():
    assert set(ch06.SIZES) == {"ci", "full"}
    for field in dataclasses.fields(ch06.Sizes):
        assert all(isinstance(getattr(s, field.name), int) for s in ch06.SIZES.values())
    assert ch06.RECIPE.dropout > 0 and ch06.RECIPE.patience >= 1  # one recipe, CI included
    assert ch06.SIZES["ci"].repeats >= 2


def test_settings_read_the_scale(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_SCALE", "ci")
    assert ch06.settings().sizes == ch06.SIZES["ci"]
    assert ch06.settings().dropout == ch06.RECIPE.dropout


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


def test_output_sums_softmax_vs_sigmoid():
    x = np.random.default_rng(0).normal(size=(2, STEPS, 3)).astype("float32")
    sigmoid = ch06.reader_tagger(STEPS, 3, num_classes=TAGS, units=4)
    softmax = ch06.reader_tagger(STEPS, 3, num_classes=TAGS, units=4, activation="softmax",
                                 metric="accuracy")
    assert np.allclose(ch06.output_sums(softmax, x), 1.0, atol=1e-5)
    assert np.abs(ch06.output_sums(sigmoid, x) - 1.0).min() > 0.5


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


@pytest.mark.parametrize("optimizer,learning_rate", [("sgd", 0.5), ("adam", 0.01)])
def test_gradient_accumulation_equivalence(optimizer, learning_rate):
    x, y = ids(16, seed=4)  # no padding: every micro-batch holds the same number of tokens
    result = ch06.accumulation_comparison(tiny_tagger, x, y, steps=4, optimizer=optimizer,
                                          learning_rate=learning_rate, run_eagerly=True)
    emb, other = result.diffs["custom-accumulated"]
    assert max(emb, other) < 1e-5, result  # our tape loop == Keras' accumulation
    assert result.moved > 1e-3
    assert result.diffs["separate-big"][1] > 10 * result.diffs["accumulated-big"][1]
    if optimizer == "sgd":  # linear update: accumulation == one big step
        assert max(result.diffs["accumulated-big"]) < 1e-5, result
    else:  # LSTM/dense agree; Adam squares each repeated row of the sparse big-batch gradient
        assert result.diffs["accumulated-big"][1] < 1e-5, result
        assert result.diffs["accumulated-big"][0] > 1e-4, result
    assert "micro-batches" in str(result)
    with pytest.raises(ValueError, match=">= 2"):
        ch06.accumulation_comparison(tiny_tagger, x, y, steps=1)


def test_token_weighting_matches_whole_batch_with_padding():
    x, y = ids(12, seed=5, padded=True)
    gaps = ch06.weighting_gap(tiny_tagger(), x, y, steps=3)
    assert gaps["token"] < 1e-6 * max(1.0, gaps["scale"])
    assert gaps["batch"] > 100 * gaps["token"]


def test_schedule_advances_per_micro_step_under_accumulation():
    probe = ch06.schedule_under_accumulation(steps=4, updates=2)
    assert probe.micro_steps == 8 and probe.updates == 2
    assert probe.learning_rate == pytest.approx(probe.at_micro_steps)
    assert probe.at_micro_steps < probe.at_updates


# ----------------------------------------------------------------------------- training
def test_tagger_comparison_on_tiny_tweets():
    tweets = tiny_tweets()
    result = ch06.run_tagger_comparison(tweets, ["random init", "GloVe, training words"],
                                        TINY, progress=False)
    assert len(result.seeds) == 2 and set(result.f1) == {"random init", "GloVe, training words"}
    for variant, f1 in result.f1.items():
        assert len(f1) == 2 and all(0.0 <= f <= 1.0 for f in f1)
        assert result.epochs[variant] == (1, 1)
    run = result.first["random init"]
    assert [len(t) for t in run.predicted_tags] == [len(t) for t in run.true_tags]
    mean, se = result.gap("GloVe, training words", "random init")
    assert np.isfinite(mean) and se >= 0
    assert len(result.table()) == 2
    assert plots.has_data(training_plots.plot_tagger_comparison(result))


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    result = ch06.strategy_comparison(devices=2, examples=16, timesteps=5, batch_size=8,
                                      epochs=1)
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3
    assert result["max_abs_diff"] < 1e-5, result
    assert result["loss_mirrored"] == pytest.approx(result["loss_single"], rel=1e-5)


# ----------------------------------------------------------------------------- figures
def _history(steps: int, epochs: int, size: int) -> training.LoopHistory:
    rng = np.random.default_rng(0)
    return training.LoopHistory(step_losses=rng.uniform(0.1, 2, steps * epochs),
                                step_sizes=np.full(steps * epochs, size),
                                epoch_losses=np.linspace(1, 0.5, epochs),
                                epoch_seconds=np.ones(epochs), val_losses=np.ones(epochs))


def test_figures_have_data():
    loop = ch06.LoopComparison(per_example=_history(10, 2, 1), minibatch=_history(5, 2, 32),
                               train_tweets=150, subset=10, batch_size=32,
                               roughness_per_example=1.0, roughness_minibatch=0.1,
                               output_sums=np.ones(3), perfect={}, padding_share=0.5)
    assert loop.steps_per_epoch == (150, 5) and loop.fit_calls_per_epoch == (150, 1)
    assert plots.has_data(training_plots.plot_loop_comparison(loop))
    result = ch06.AccumulationResult("sgd", 4, 8, {"a-b": (1e-9, 1e-3)}, 0.01)
    assert plots.has_data(training_plots.plot_accumulation([result, result]))
    counts, names = training.type_confusion([["B-person", "O"]], [["B-person", "B-geo-loc"]])
    assert plots.has_data(training_plots.plot_type_confusion(counts, names))
    with pytest.raises(ValueError, match="counts must be"):
        training_plots.plot_type_confusion(counts, names[:1])

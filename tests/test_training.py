"""Tests of rnncourse.training: loops, accumulation, masked metrics, distributed run."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import config, plots, training
from rnncourse.embeddings import Vocabulary
from rnncourse.plots import training as training_plots

config.quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

VOCAB, TAGS, STEPS = 30, 5, 6


def tiny_tagger(seed: int = 0, **kwargs) -> keras.Model:
    kwargs.setdefault("units", 4)
    kwargs.setdefault("embedding_dim", 6)
    return training.build_tagger(VOCAB, TAGS, seed=seed, **kwargs)


def ids(n: int, seed: int = 0, padded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(2, VOCAB, size=(n, STEPS)).astype("int32")
    y = rng.integers(0, TAGS, size=(n, STEPS)).astype("int32")
    if padded:
        for i, length in enumerate(rng.integers(1, STEPS + 1, size=n)):
            x[i, length:] = 0
            y[i, length:] = 0
    return x, y


# ----------------------------------------------------------------------------- encoding
def test_tag_vocabulary_puts_outside_first():
    names = training.tag_vocabulary([["B-person", "O"], ["B-geo-loc", "I-geo-loc", "O"]])
    assert names[0] == "O"
    assert sorted(names) == sorted({"O", "B-person", "B-geo-loc", "I-geo-loc"})


def test_encode_tagging_pads_with_zero_and_checks_input():
    tokens = [["Hello", "Paris"], ["a", "b", "c"]]
    tags = [["O", "B-geo-loc"], ["O", "O", "O"]]
    vocab = Vocabulary.from_tokens(tokens)
    names = training.tag_vocabulary(tags)
    x, y = training.encode_tagging(tokens, tags, vocab, names)
    assert x.shape == y.shape == (2, 3)
    assert x[0, 2] == 0 and y[0, 2] == 0 and (x[1] > 1).all()
    assert names[y[0, 1]] == "B-geo-loc"
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        training.encode_tagging([["a", "b"]], [["O"]], vocab, names)
    with pytest.raises(ValueError, match="empty"):
        training.encode_tagging([[]], [[]], vocab, names)
    with pytest.raises(ValueError, match="missing from tag_names"):
        training.encode_tagging([["a"]], [["B-movie"]], vocab, names)
    with pytest.raises(ValueError, match="one tag list per sentence"):
        training.encode_tagging(tokens, tags[:1], vocab, names)


def test_split_indices_is_a_partition():
    train, val = training.split_indices(10, 0.3, seed=1)
    assert len(val) == 3 and sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="validation_fraction"):
        training.split_indices(10, 1.5)


def test_equal_length_rows():
    x = np.array([[3, 4, 0], [3, 0, 0], [5, 6, 0], [7, 8, 9]])
    assert training.equal_length_rows(x, 2).tolist() == [0, 2]
    with pytest.raises(ValueError, match="share a length"):
        training.equal_length_rows(x, 3)


# ----------------------------------------------------------------------------- metrics
def test_keras_masked_loss_and_accuracy_match_numpy_over_real_tokens():
    x, y = ids(12, seed=3, padded=True)
    model = tiny_tagger()
    probs = model.predict(x, verbose=0)
    mask = x != 0
    picked = -np.log(np.take_along_axis(probs, y[..., None], axis=-1)[..., 0])
    whole = model.evaluate(x, y, batch_size=12, verbose=0, return_dict=True)
    assert whole["loss"] == pytest.approx(picked[mask].mean(), rel=1e-5)
    # accuracy counts real tokens over all batches; the loss is a mean of per-batch token
    # means, weighted by examples per batch
    batched = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    assert batched["accuracy"] == pytest.approx(training.masked_accuracy(y, probs, mask),
                                                abs=1e-6)
    means = [picked[i:i + 5][mask[i:i + 5]].mean() for i in range(0, 12, 5)]
    assert batched["loss"] == pytest.approx(np.average(means, weights=[5, 5, 2]), rel=1e-5)
    # counting padding would change the accuracy: padded targets are 0, predictions vary
    assert training.masked_accuracy(y, probs, np.ones_like(mask)) != batched["accuracy"]


def test_masked_accuracy_errors():
    with pytest.raises(ValueError, match="no token"):
        training.masked_accuracy(np.zeros((1, 2)), np.zeros((1, 2, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="shapes disagree"):
        training.masked_accuracy(np.zeros((1, 2)), np.zeros((1, 3, 3)), np.ones((1, 2)))


def test_perfect_predictions_score_badly_on_mse():
    labels = np.array([[1, 2, 3, 0]])
    scores = training.perfect_prediction_scores(labels, 4)
    assert scores["accuracy"] == 1.0
    assert scores["mse"] > 0.5


def test_output_sums_softmax_vs_sigmoid():
    x = np.random.default_rng(0).normal(size=(2, STEPS, 3)).astype("float32")
    sigmoid = training.reader_tagger(STEPS, 3, num_classes=TAGS, units=4)
    softmax = training.reader_tagger(STEPS, 3, num_classes=TAGS, units=4, activation="softmax",
                                     metric="accuracy")
    assert np.allclose(training.output_sums(softmax, x), 1.0, atol=1e-5)
    assert np.abs(training.output_sums(sigmoid, x) - 1.0).min() > 0.5


def test_entity_scores_uses_entity_spans():
    true = [["B-person", "I-person", "O"], ["O", "B-geo-loc"]]
    assert training.entity_scores(true, true).f1 == 1.0
    all_o = [["O"] * len(t) for t in true]
    assert training.entity_scores(true, all_o).f1 == 0.0
    half = [["B-person", "O", "O"], ["O", "B-geo-loc"]]  # person span cut short: wrong
    scores = training.entity_scores(true, half)
    assert scores.precision == 0.5 and scores.recall == 0.5
    with pytest.raises(ValueError, match="trim predictions"):
        training.entity_scores(true, [["O"], ["O", "O"]])


def test_type_confusion_counts_tokens():
    counts, names = training.type_confusion([["B-person", "I-person", "O"]],
                                            [["B-person", "O", "B-geo-loc"]])
    assert names == ["geo-loc", "person", "O"]
    assert counts[names.index("person"), names.index("person")] == 1
    assert counts[names.index("person"), names.index("O")] == 1
    assert counts[names.index("O"), names.index("geo-loc")] == 1
    assert counts.sum() == 3


def test_format_tagged():
    text = training.format_tagged(["I", "love", "Paris"], ["O", "O", "B-geo-loc"],
                                  ["O", "B-person", "B-geo-loc"])
    assert text == "I [love O|B-person] [Paris B-geo-loc]"


# ----------------------------------------------------------------------------- loops
def test_step_losses_are_recovered_from_running_means():
    x, y = ids(10, seed=1)
    model = tiny_tagger()
    model.run_eagerly = True
    history = training.fit_minibatches(model, x, y, epochs=2, batch_size=4, shuffle=False)
    assert history.step_sizes.tolist() == [4, 4, 2, 4, 4, 2]
    for epoch in range(2):
        part = slice(3 * epoch, 3 * epoch + 3)
        mean = np.average(history.step_losses[part], weights=history.step_sizes[part])
        assert mean == pytest.approx(history.epoch_losses[epoch], rel=1e-4)
    assert len(history.epoch_seconds) == 2


def test_per_example_loop_takes_one_step_per_example():
    x, y = ids(4, seed=2)
    model = tiny_tagger(optimizer="sgd", learning_rate=0.1)
    model.run_eagerly = True
    history = training.fit_per_example(model, x, y, epochs=2, validation_data=(x, y))
    assert len(history.step_losses) == 8 and history.steps_per_epoch == 4
    assert int(model.optimizer.iterations) == 8
    assert len(history.val_losses) == 2
    assert training.per_epoch_seconds(history, 40) == pytest.approx(
        history.epoch_seconds[-1] * 10)
    with pytest.raises(ValueError, match="one target per input"):
        training.fit_per_example(model, x, y[:2])


def test_roughness():
    assert training.roughness([1.0, 2.0, 3.0, 4.0]) == 0.0
    assert training.roughness([0.0, 1.0, 0.0, 1.0]) == pytest.approx(np.std([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="at least 3"):
        training.roughness([1.0, 2.0])


# ----------------------------------------------------------------------------- accumulation
def test_indexed_slices_need_care():
    a = tf.IndexedSlices(tf.ones((2, 3)), tf.constant([0, 2]), tf.constant([4, 3]))
    b = tf.IndexedSlices(2 * tf.ones((1, 3)), tf.constant([2]), tf.constant([4, 3]))
    with pytest.raises(TypeError):
        _ = a + b
    total = training.add_gradients(a, b)
    assert isinstance(total, tf.IndexedSlices)
    dense = tf.convert_to_tensor(total).numpy()
    assert dense[:, 0].tolist() == [1.0, 0.0, 3.0, 0.0]
    unique = training.deduplicate(total)
    assert sorted(unique.indices.numpy().tolist()) == [0, 2]
    assert np.allclose(tf.convert_to_tensor(unique).numpy(), dense)
    mixed = training.add_gradients(a, tf.ones((4, 3)))
    assert np.allclose(mixed.numpy()[:, 0], [2.0, 1.0, 2.0, 1.0])


def test_embedding_gradient_is_indexed_slices():
    model = tiny_tagger()
    x, y = ids(2)
    grads, _ = training.accumulated_gradients(model, [(x, y)])
    assert isinstance(grads[0], tf.IndexedSlices)
    assert not any(isinstance(g, tf.IndexedSlices) for g in grads[1:])


@pytest.mark.parametrize("optimizer,learning_rate", [("sgd", 0.5), ("adam", 0.01)])
def test_gradient_accumulation_equivalence(optimizer, learning_rate):
    x, y = ids(16, seed=4)  # no padding: every micro-batch holds the same number of tokens
    result = training.accumulation_comparison(tiny_tagger, x, y, steps=4, optimizer=optimizer,
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


def test_token_weighting_matches_whole_batch_with_padding():
    x, y = ids(12, seed=5, padded=True)
    gaps = training.weighting_gap(tiny_tagger(), x, y, steps=3)
    assert gaps["token"] < 1e-6 * max(1.0, gaps["scale"])
    assert gaps["batch"] > 100 * gaps["token"]
    with pytest.raises(ValueError, match="weighting"):
        training.accumulated_gradients(tiny_tagger(), [(x, y)], weighting="mean")


def test_accumulation_comparison_rejects_one_step():
    x, y = ids(4)
    with pytest.raises(ValueError, match=">= 2"):
        training.accumulation_comparison(tiny_tagger, x, y, steps=1)


# ----------------------------------------------------------------------------- distributed
def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    result = training.strategy_comparison(devices=2, examples=16, timesteps=5, batch_size=8,
                                          epochs=1, run_eagerly=False)
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3
    assert result["max_abs_diff"] < 1e-5, result
    assert result["loss_mirrored"] == pytest.approx(result["loss_single"], rel=1e-5)


def test_train_tagger_under_default_strategy():
    x, y = ids(20, seed=6, padded=True)
    names = ["O", "B-a", "I-a", "B-b", "I-b"]
    train, val = training.split_indices(20, 0.25)
    run = training.train_tagger(x, y, names, train, val, VOCAB, units=4, epochs=1,
                                batch_size=8, strategy=tf.distribute.get_strategy())
    assert len(run.predicted_tags) == len(val)
    assert [len(t) for t in run.predicted_tags] == [len(t) for t in run.true_tags]
    assert 0.0 <= run.scores.f1 <= 1.0 and 0.0 <= run.val_accuracy <= 1.0


# ----------------------------------------------------------------------------- figures
def _history(steps: int, epochs: int, size: int) -> training.LoopHistory:
    rng = np.random.default_rng(0)
    return training.LoopHistory(step_losses=rng.uniform(0.1, 2, steps * epochs),
                                step_sizes=np.full(steps * epochs, size),
                                epoch_losses=np.linspace(1, 0.5, epochs),
                                epoch_seconds=np.ones(epochs), val_losses=np.ones(epochs))


def test_figures_have_data():
    fig = training_plots.plot_loop_comparison(_history(10, 2, 1), _history(5, 2, 32), 50.0, 1.0)
    assert plots.has_data(fig)
    result = training.AccumulationResult("sgd", 4, 8, {"a-b": (1e-9, 1e-3)}, 0.01)
    assert plots.has_data(training_plots.plot_accumulation([result, result]))
    run = training.TaggerRun(model=None, history=_history(3, 4, 32),
                             scores=training.EntityScores(0.3, 0.2, 0.24, ""), true_tags=[],
                             predicted_tags=[], val_accuracy=0.9)
    assert plots.has_data(training_plots.plot_tagger_runs({"GloVe": run, "random": run}))
    counts, names = training.type_confusion([["B-person", "O"]], [["B-person", "B-geo-loc"]])
    assert plots.has_data(training_plots.plot_type_confusion(counts, names))
    with pytest.raises(ValueError, match="counts must be"):
        training_plots.plot_type_confusion(counts, names[:1])

"""Tests of rnncourse.training: loops, accumulation, masked metrics, optimizer by name."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import config, models, training

config.quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

VOCAB, TAGS, STEPS = 30, 5, 6


def tiny_tagger(seed: int = 0, optimizer: str = "adam", learning_rate: float = 0.01,
                **kwargs) -> keras.Model:
    kwargs.setdefault("units", 4)
    kwargs.setdefault("embedding_dim", 6)
    model = models.sequence_tagger(VOCAB, TAGS, seed=seed, **kwargs)
    model.compile(optimizer=training.optimizer(optimizer, learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def ids(n: int, seed: int = 0, padded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(2, VOCAB, size=(n, STEPS)).astype("int32")
    y = rng.integers(0, TAGS, size=(n, STEPS)).astype("int32")
    if padded:
        for i, length in enumerate(rng.integers(1, STEPS + 1, size=n)):
            x[i, length:] = 0
            y[i, length:] = 0
    return x, y


# Bad input is tested in test_bad_input.py.


def test_optimizer_by_name_passes_options():
    opt = training.optimizer("sgd", 0.5, gradient_accumulation_steps=4)
    assert isinstance(opt, keras.optimizers.SGD)
    assert opt.gradient_accumulation_steps == 4
    assert float(opt.learning_rate) == pytest.approx(0.5)
    same = keras.optimizers.Adam()
    assert training.optimizer(same, 0.1) is same
    assert training.optimizer("adam", np.float32(1e-3)).learning_rate.dtype is not None
    assert training.optimizer("adam", 0.1, gradient_accumulation_steps=None) is not None


def test_loop_history_from_steps_weights_epochs_by_examples():
    history = training.LoopHistory.from_steps([1.0, 3.0, 2.0, 2.0], [3, 1, 2, 2], epochs=2)
    assert history.epoch_losses.tolist() == [1.5, 2.0]
    assert history.examples_seen.tolist() == [3, 4, 6, 8] and history.steps_per_epoch == 2
    assert training.LoopHistory.from_steps([1.0, 2.0, 3.0]).step_sizes.tolist() == [1, 1, 1]


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


def test_predict_tags_trims_to_real_length():
    x, _ = ids(3, seed=7, padded=True)
    names = ["O", "B-a", "I-a", "B-b", "I-b"]
    tags = training.predict_tags(tiny_tagger(), x, names)
    assert [len(t) for t in tags] == (x != 0).sum(axis=1).tolist()
    assert all(t in names for row in tags for t in row)


def test_predict_tags_reads_the_real_tokens_of_pre_padded_rows():
    """Padding first: the tags are those predicted at the real tokens, not at the padding."""
    names = ["O", "B-a", "I-a", "B-b", "I-b"]
    model = tiny_tagger()
    row = np.array([[0, 0, 0, 7, 8, 9]], dtype="int32")
    expected = np.argmax(model.predict(row, verbose=0), axis=-1)[0, 3:]
    predicted = training.predict_tags(model, row, names)
    assert predicted == [[names[t] for t in expected]]
    assert [names.index(t) for t in predicted[0]] == expected.tolist()


def test_entity_scores_uses_entity_spans():
    true = [["B-person", "I-person", "O"], ["O", "B-geo-loc"]]
    assert training.entity_scores(true, true).f1 == 1.0
    all_o = [["O"] * len(t) for t in true]
    assert training.entity_scores(true, all_o).f1 == 0.0
    half = [["B-person", "O", "O"], ["O", "B-geo-loc"]]  # person span cut short: wrong
    scores = training.entity_scores(true, half)
    assert scores.precision == 0.5 and scores.recall == 0.5
    assert "F1 0.500" in str(scores)


def test_entity_scores_without_any_entity_are_zero_as_in_conlleval():
    scores = training.entity_scores([["O"]], [["O"]])
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)
    assert training.entity_scores([["O", "O"]], [["B-a", "O"]]).f1 == 0.0


def test_type_confusion_counts_tokens():
    counts, names = training.type_confusion([["B-person", "I-person", "O"]],
                                            [["B-person", "O", "B-geo-loc"]])
    assert names == ["geo-loc", "person", "O"]
    assert counts[names.index("person"), names.index("person")] == 1
    assert counts[names.index("person"), names.index("O")] == 1
    assert counts[names.index("O"), names.index("geo-loc")] == 1
    assert counts.sum() == 3
    assert training.entity_type("I-geo-loc") == "geo-loc" and training.entity_type("O") == "O"


# ----------------------------------------------------------------------------- loops
def test_step_losses_are_recovered_from_running_means():
    x, y = ids(10, seed=1)
    model = tiny_tagger()
    model.run_eagerly = True
    history = training.fit_minibatches(model, x, y, epochs=2, batch_size=4, shuffle=False)
    assert history.step_sizes.tolist() == [4, 4, 2, 4, 4, 2]
    assert history.examples_seen.tolist() == [4, 8, 10, 14, 18, 20]
    assert history.fit_calls == 1
    for epoch in range(2):
        part = slice(3 * epoch, 3 * epoch + 3)
        mean = np.average(history.step_losses[part], weights=history.step_sizes[part])
        assert mean == pytest.approx(history.epoch_losses[epoch], rel=1e-4)
    assert len(history.epoch_seconds) == 2
    recorder = training.StepLosses(len(x), 4)
    keras_history = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0,
                              callbacks=[recorder])
    recorded = recorder.history()  # what the chapter's page calls after its own fit
    assert recorded.step_sizes.tolist() == [4, 4, 2, 4, 4, 2]
    assert recorded.epoch_losses == pytest.approx(keras_history.history["loss"], rel=1e-4)


def test_step_losses_equal_the_losses_of_separate_evaluations():
    """With SGD at learning rate 0 nothing moves, so each step's loss is its batch's loss."""
    x, y = ids(8, seed=2)
    model = tiny_tagger(optimizer="sgd", learning_rate=1e-12)
    history = training.fit_minibatches(model, x, y, epochs=1, batch_size=4, shuffle=False)
    expected = [model.evaluate(x[i:i + 4], y[i:i + 4], verbose=0)[0] for i in (0, 4)]
    assert history.step_losses == pytest.approx(expected, rel=1e-4)


def test_per_example_loop_takes_one_step_per_example():
    x, y = ids(4, seed=2)
    model = tiny_tagger(optimizer="sgd", learning_rate=0.1)
    model.run_eagerly = True
    history = training.fit_per_example(model, x, y, epochs=2, validation_data=(x, y))
    assert len(history.step_losses) == 8 and history.steps_per_epoch == 4
    assert history.fit_calls == 8
    assert int(model.optimizer.iterations) == 8
    assert len(history.val_losses) == 2


def test_roughness():
    assert training.roughness([1.0, 2.0, 3.0, 4.0]) == 0.0
    assert training.roughness([0.0, 1.0, 0.0, 1.0]) == pytest.approx(np.std([1.0, -1.0, 1.0]))


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
    half = training.scale_gradient(total, 0.5)
    assert np.allclose(tf.convert_to_tensor(half).numpy(), dense / 2)


def test_embedding_gradient_is_indexed_slices():
    model = tiny_tagger()
    x, y = ids(2)
    grads, _ = training.accumulated_gradients(model, [(x, y)])
    assert isinstance(grads[0], tf.IndexedSlices)
    assert not any(isinstance(g, tf.IndexedSlices) for g in grads[1:])


def test_token_weighted_accumulation_equals_the_whole_batch_gradient():
    x, y = ids(12, seed=5, padded=True)
    model = tiny_tagger()
    whole, _ = training.accumulated_gradients(model, [(x, y)], "token")
    parts = [(x[i:i + 4], y[i:i + 4]) for i in (0, 4, 8)]
    token, _ = training.accumulated_gradients(model, parts, "token")
    batch, _ = training.accumulated_gradients(model, parts, "batch")

    def gap(a, b):
        return max(float(np.max(np.abs(np.asarray(tf.convert_to_tensor(u))
                                       - np.asarray(tf.convert_to_tensor(v)))))
                   for u, v in zip(a, b, strict=True))

    assert gap(token, whole) < 1e-6
    assert gap(batch, whole) > 100 * gap(token, whole)


def test_accumulate_and_apply_with_sgd_equals_keras_accumulation():
    x, y = ids(8, seed=4)
    keras_model, ours = tiny_tagger(optimizer="sgd", learning_rate=0.5), tiny_tagger()
    ours.set_weights(keras_model.get_weights())
    keras_model.compile(optimizer=training.optimizer("sgd", 0.5, gradient_accumulation_steps=2),
                        loss="sparse_categorical_crossentropy")
    keras_model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    sgd = training.optimizer("sgd", 0.5)
    sgd.build(ours.trainable_variables)
    training.accumulate_and_apply(ours, [(x[:4], y[:4]), (x[4:], y[4:])], sgd)
    for a, b in zip(keras_model.get_weights(), ours.get_weights(), strict=True):
        assert np.abs(a - b).max() < 1e-5

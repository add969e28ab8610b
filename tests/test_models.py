"""Tests of rnncourse.models: the cell registry and one builder per model family."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnncourse import models


def test_one_registry_of_the_three_keras_cells():
    assert models.CELLS == {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU,
                            "lstm": keras.layers.LSTM}


@pytest.mark.parametrize("call, error, argument", [
    (lambda: models.recurrent_layer("rnn", 4), ValueError, "cell"),
    (lambda: models.recurrent_layer(["lstm"], 4), TypeError, "cell"),
    (lambda: models.recurrent_layer("lstm", 0), ValueError, "units"),
    (lambda: models.recurrent_layer("lstm", 4.0), TypeError, "units"),
    (lambda: models.embedding(10), ValueError, "embedding_dim"),
    (lambda: models.embedding(10, embeddings=np.zeros((9, 3))), ValueError, "embeddings"),
    (lambda: models.embedding(10, embeddings=np.zeros(10)), ValueError, "embeddings"),
    (lambda: models.embedding(2, embeddings=[["a"], ["b"]]), TypeError, "embeddings"),
    (lambda: models.embedding(3, 4, embeddings=np.zeros((3, 3))), ValueError, "embedding_dim"),
    (lambda: models.embedding(2, embeddings=np.array([[0.0], [np.nan]])), ValueError, "embeddings"),
    (lambda: models.embedding(0, 3), ValueError, "vocab_size"),
    (lambda: models.embedding(5, 3, seed=1.5), TypeError, "seed"),
    (lambda: models.sequence_classifier(10, num_classes=1), ValueError, "num_classes"),
    (lambda: models.sequence_classifier(10, dropout=1.0), ValueError, "dropout"),
    (lambda: models.sequence_classifier(10, recurrent_dropout=20), ValueError,
     "recurrent_dropout"),  # Keras would clip it to 1 without a word
    (lambda: models.sequence_classifier(10, input_dropout="0.1"), TypeError, "input_dropout"),
    (lambda: models.sequence_tagger(10, 0), ValueError, "num_tags"),
    (lambda: models.sequence_regressor("gru", units=2, features=0), ValueError, "features"),
    (lambda: models.char_lm(5, stateful=True), ValueError, "batch_size"),
    (lambda: models.state_char_lm(5, units=0), ValueError, "units"),
])
def test_bad_arguments_name_the_argument(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument


@pytest.mark.parametrize("builder", [
    lambda n: models.sequence_classifier(n(20), embedding_dim=n(4), units=n(3), seed=n(1),
                                         timesteps=n(5), num_classes=n(3), dropout=0.1),
    lambda n: models.sequence_tagger(n(20), n(5), units=n(3), embedding_dim=n(4), seed=n(1),
                                     dropout=np.float32(0.1)),
    lambda n: models.sequence_regressor("gru", n(3), n(2), timesteps=n(5), seed=n(1)),
    lambda n: models.char_lm(n(7), n(3), n(4), batch_size=n(2), timesteps=n(5), stateful=True,
                             seed=n(1), dropout=0.1),
    lambda n: models.state_char_lm(n(7), n(3), n(4), seed=n(1)),
])
def test_builders_take_numpy_ints_as_python_ints(builder):
    plain = builder(int)
    for kind in (np.int64, np.int32, np.uint16):
        numpy_built = builder(kind)
        for a, b in zip(plain.get_weights(), numpy_built.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_embedding_starts_from_the_given_matrix():
    matrix = np.arange(12, dtype="float32").reshape(4, 3)
    layer = models.embedding(4, embeddings=matrix, trainable=False)
    out = np.asarray(layer(np.array([[3, 0, 1]])))
    np.testing.assert_array_equal(out[0], matrix[[3, 0, 1]])
    assert not layer.trainable and layer.mask_zero


@pytest.mark.parametrize("builder", [
    lambda seed: models.sequence_classifier(20, embedding_dim=4, units=3, seed=seed),
    lambda seed: models.sequence_tagger(20, 5, units=3, embedding_dim=4, seed=seed),
    lambda seed: models.sequence_regressor("gru", 3, 2, seed=seed),
    lambda seed: models.char_lm(7, 3, 4, seed=seed),
])
def test_same_seed_same_weights(builder):
    a, b, c = builder(1), builder(1), builder(2)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in
               zip(a.get_weights(), c.get_weights(), strict=True))


@pytest.mark.parametrize("num_classes, shape", [(2, (2, 1)), (4, (2, 4))])
def test_classifier_outputs_probabilities(num_classes, shape):
    model = models.sequence_classifier(20, embedding_dim=4, units=3, num_classes=num_classes,
                                       seed=0)
    out = np.asarray(model(np.array([[2, 3, 0, 0], [4, 5, 6, 7]])))
    assert out.shape == shape and (out >= 0).all() and (out <= 1).all()
    if num_classes > 2:
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_classifier_mask_makes_padding_invisible():
    model = models.sequence_classifier(20, embedding_dim=4, units=3, seed=0)
    short = np.asarray(model(np.array([[2, 3]])))
    padded = np.asarray(model(np.array([[2, 3, 0, 0, 0]])))
    np.testing.assert_allclose(short, padded, atol=1e-6)


def test_copy_weights_by_name_moves_a_fixed_length_model_to_any_length():
    fixed = models.sequence_classifier(20, embedding_dim=4, units=3, timesteps=5, seed=0)
    free = models.copy_weights_by_name(
        fixed, models.sequence_classifier(20, embedding_dim=4, units=3, seed=9))
    x = np.array([[2, 3, 4, 0, 0]])
    np.testing.assert_allclose(np.asarray(fixed(x)), np.asarray(free(x)), atol=1e-6)
    np.asarray(free(np.array([[2, 3, 4, 5, 6, 7, 8]])))  # any length now
    with pytest.raises(ValueError, match="lstm weight shape .* is not compatible"):
        models.copy_weights_by_name(fixed, models.sequence_classifier(20, embedding_dim=4,
                                                                      units=5))
    with pytest.raises(ValueError, match="No such layer: embedding"):
        models.copy_weights_by_name(fixed, models.sequence_regressor("lstm", 3, 4))


def test_tagger_predicts_one_distribution_per_step_and_masks_padding():
    model = models.sequence_tagger(20, 5, units=3, embedding_dim=4, seed=0)
    out = np.asarray(model(np.array([[2, 3, 4, 0]])))
    assert out.shape == (1, 4, 5)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    names = [layer.name for layer in model.layers]
    assert names == ["token_ids", "embedding", "bi_lstm", "tags"]
    binary = models.sequence_tagger(20, 1, units=3, bidirectional=False, activation="sigmoid")
    assert np.asarray(binary(np.array([[2, 3]]))).shape == (1, 2, 1)


def test_state_char_lm_equals_char_lm_from_a_zero_state():
    lm = models.char_lm(7, 5, 4, seed=0)
    explicit = models.copy_weights_by_name(lm, models.state_char_lm(7, 5, 4))
    ids = np.array([[1, 2, 3, 4]], dtype="int32")
    zero = np.zeros((1, 5), "float32")
    logits, _, _ = explicit([ids, zero, zero])
    np.testing.assert_allclose(np.asarray(lm(ids)), np.asarray(logits), atol=1e-5)


def test_stateful_char_lm_carries_state_between_calls():
    lm = models.char_lm(7, 5, 4, batch_size=1, stateful=True, seed=0)
    ids = np.array([[1, 2]], dtype="int32")
    first, second = np.asarray(lm(ids)), np.asarray(lm(ids))
    assert not np.allclose(first, second)
    lm.get_layer("lstm").reset_state()
    np.testing.assert_allclose(np.asarray(lm(ids)), first, atol=1e-6)

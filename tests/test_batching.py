"""Tests of rnncourse.batching: padding, bucketing, masks, grouping, bad input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from rnncourse import batching, plots
from rnncourse.plots import batching as batching_plots


def _sequences(n=40, seed=0, low=1, high=30):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 20, size=rng.integers(low, high)).astype("int32") for _ in range(n)]


def test_vocabulary_reserves_padding_and_oov():
    vocab = batching.build_vocabulary(["a b a c", "a b"], max_words=4)
    assert vocab == {"a": 2, "b": 3}
    ids = batching.texts_to_ids(["a c b"], vocab)[0]
    np.testing.assert_array_equal(ids, [2, 1, 3])


def test_pad_wraps_keras_pre_and_post():
    x = batching.pad([[3, 4, 5], [6]], padding="pre")
    np.testing.assert_array_equal(x, [[3, 4, 5], [0, 0, 6]])
    x = batching.pad([[3, 4, 5], [6]], maxlen=2, padding="post", truncating="pre")
    np.testing.assert_array_equal(x, [[4, 5], [6, 0]])
    with pytest.raises(ValueError, match="'pre' or 'post'"):
        batching.pad([[1]], padding="left")


@pytest.mark.parametrize("bad, message", [
    ([[3, 4], []], "empty sequence"),
    ([], "no sequences"),
    ([[3, 0, 4]], "reserved for padding"),
])
def test_bad_sequences_raise_with_a_fix(bad, message):
    with pytest.raises(ValueError, match=message):
        batching.validate_sequences(bad)


def test_label_count_mismatch_raises():
    with pytest.raises(ValueError, match="one label per sequence"):
        batching.bucketed_dataset([[3, 4], [5]], np.zeros(3))
    with pytest.raises(ValueError, match="one label per sequence"):
        batching.length_grouped_batches([[3, 4], [5]], np.zeros(1))


def test_padding_stats_by_hand():
    lengths = np.array([1, 2, 3, 10])
    stats = batching.padding_stats(lengths, batch_size=2, boundaries=[5])
    assert stats["global_max"] == pytest.approx(1 - 16 / 40)
    assert stats["sorted"] == pytest.approx(1 - 16 / (2 * 2 + 2 * 10))
    # buckets [.., 5) and [5, ..): {1, 2, 3} then {10}; the first bucket emits a batch of two
    # and a remainder of one: 7 or 8 positions for 6 tokens, plus 10 for the 10.
    options = (1 - 16 / 17, 1 - 16 / 18)
    assert min(abs(stats["bucketed"] - option) for option in options) < 1e-9
    with pytest.raises(ValueError, match="positive lengths"):
        batching.padding_stats([3, 0])


def test_bucketed_dataset_sees_every_example_once_and_pads_per_batch():
    sequences = _sequences(60)
    labels = np.arange(60)
    boundaries = batching.choose_boundaries(batching.lengths_of(sequences), batch_size=8)
    ds = batching.bucketed_dataset(sequences, labels, batch_size=8, boundaries=boundaries, seed=1)
    for _ in range(2):  # two epochs: reshuffled, still complete
        seen = []
        for x, y in ds:
            x, y = x.numpy(), y.numpy()
            assert x.shape[0] <= 8 and x.shape[0] == y.shape[0]
            real = (x != 0).sum(axis=1)
            assert real.max() == x.shape[1], "each batch is padded only to its own maximum"
            for row, label in zip(x, y, strict=True):
                np.testing.assert_array_equal(row[row != 0], sequences[label])
            bucket = np.searchsorted(boundaries, real, side="right")
            assert len(set(bucket)) == 1, "one bucket per batch"
            seen.extend(y.tolist())
        assert sorted(seen) == list(range(60))
    assert int(ds.cardinality()) == sum(1 for _ in ds)


def test_bucketed_dataset_shuffles_across_epochs():
    sequences = _sequences(64, low=5, high=7)
    ds = batching.bucketed_dataset(sequences, np.arange(64), batch_size=8, seed=3)
    first = [y.numpy().tolist() for _, y in ds]
    second = [y.numpy().tolist() for _, y in ds]
    assert first != second


def test_padded_dataset_strategies():
    sequences = _sequences(50)
    longest = batching.lengths_of(sequences).max()
    widths = {s: [x.shape[1] for x, _ in batching.padded_dataset(sequences, np.zeros(50), 16, s)]
              for s in ("global_max", "per_batch")}
    assert set(widths["global_max"]) == {longest}
    assert max(widths["per_batch"]) == longest and min(widths["per_batch"]) <= longest
    with pytest.raises(ValueError, match="strategy must be one of"):
        batching.padded_dataset(sequences, np.zeros(50), strategy="sorted")


def test_length_grouped_batches_have_no_padding_and_cover_everything():
    sequences = _sequences(50, high=6)
    batches = batching.length_grouped_batches(sequences, np.arange(50), batch_size=4, seed=0)
    seen = []
    for x, y in batches:
        assert x.ndim == 2 and (x != 0).all() and len(x) <= 4
        for row, label in zip(x, y, strict=True):
            np.testing.assert_array_equal(row, sequences[label])
        seen.extend(y.tolist())
    assert sorted(seen) == list(range(50))


@pytest.mark.parametrize("kind, padding, features", [
    ("lstm", "pre", "ids"), ("gru", "post", "ids"), ("bi_lstm", "post", "floats"),
    ("lstm", "pre", "floats"),
])
def test_mask_is_exact_and_no_mask_is_not(kind, padding, features):
    masked = batching.mask_exactness(kind, padding, True, features, units=4)
    assert max(masked.values()) < 1e-5, masked
    unmasked = batching.mask_exactness(kind, padding, False, features, units=4)
    assert max(unmasked.values()) > 1e-3, unmasked


def test_length_grouping_gives_the_same_loss_and_gradients():
    sequences = _sequences(24, high=5)
    labels = np.arange(24) % 2
    result = batching.grouped_vs_padded_gradients(sequences, labels, batch_size=4, units=4)
    assert result["loss_grouped"] == pytest.approx(result["loss_padded"], abs=1e-6)
    assert result["max_grad_diff"] < 1e-6 * max(1.0, result["max_grad"] * 1e3)
    assert result["batches"] > 1


def test_loss_normalisations():
    x = batching.pad(_sequences(6, high=8))
    y = (np.arange(x.size).reshape(x.shape) % 3 == 0).astype("float32")
    r = batching.loss_normalisations(x, y, units=4)
    assert r["mask_loss"] == pytest.approx(r["real_mean"], rel=1e-4)
    assert r["weight_loss"] == pytest.approx(r["all_mean"], rel=1e-4)
    assert r["rescaled_weight_loss"] == pytest.approx(r["real_mean"], rel=1e-4)
    assert r["all_mean"] == pytest.approx(r["real_mean"] * r["real_fraction"], rel=1e-4)
    assert r["mask_accuracy"] == pytest.approx(r["real_accuracy"], abs=1e-6)
    with pytest.raises(ValueError, match="one target per timestep"):
        batching.loss_normalisations(x, y[:, :-1])


def test_right_padding_check_matches_keras():
    rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")  # Keras' own cuDNN checks

    post = batching.mask_of(batching.pad([[3, 4, 5], [6]], padding="post"))
    pre = batching.mask_of(batching.pad([[3, 4, 5], [6]], padding="pre"))
    empty_row = np.array([[True, False], [False, False]])
    for mask in (post, pre, empty_row):
        assert batching.is_right_padded(mask) == bool(rnn._is_sequence_right_padded(mask))
        assert batching.has_all_padding_row(mask) == bool(rnn._has_fully_masked_sequence(mask))
    assert batching.is_right_padded(post) and not batching.is_right_padded(pre)


def test_fixed_length_weights_move_into_free_length_model():
    fixed = batching.classifier(20, 6, units=4, embedding_dim=4)
    free = batching.fixed_to_free_length(fixed, 20, units=4, embedding_dim=4)
    x = batching.pad(_sequences(5, high=6), maxlen=6)
    np.testing.assert_allclose(free.predict(x, verbose=0), fixed.predict(x, verbose=0), atol=1e-7)
    longer = batching.pad(_sequences(3, low=20, high=25))
    assert free.predict(longer, verbose=0).shape == (3, 1)
    assert "incompatible" in batching.call_error(fixed, longer)
    assert batching.call_error(free, longer) == ""


def test_ragged_error_and_conversion():
    import tensorflow as tf

    assert "ragged" in batching.ragged_lstm_error().lower()
    ragged = tf.RaggedTensor.from_row_lengths(np.ones((5, 2), "float32"), [3, 2])
    dense, mask = batching.ragged_to_padded(ragged)
    assert dense.shape == (2, 3, 2)
    np.testing.assert_array_equal(mask, [[True, True, True], [True, True, False]])


def test_mask_propagation_table():
    table = batching.mask_propagation()
    assert table["TimeDistributed(Dense)"]["keeps_mask"]
    assert not table["Lambda(lambda x: 2 * x)"]["keeps_mask"]
    assert table["custom Layer, supports_masking=True"]["keeps_mask"]


def test_plots_have_data():
    lengths = batching.lengths_of(_sequences(30))
    stats = batching.padding_stats(lengths, batch_size=8)
    sequences = _sequences(30)
    datasets = {s: batching.padded_dataset(sequences, np.zeros(30), 8, s)
                for s in batching.STRATEGIES}
    exact = {("lstm post", "mask"): {"outputs": 0.0, "states": 0.0},
             ("lstm post", "no mask"): {"outputs": 0.1, "states": 0.2}}
    times = {s: {"seconds": 1.0, "timesteps": 10.0, "padded": 0.1, "batches": 2.0}
             for s in batching.STRATEGIES}
    for fig in (batching_plots.plot_lengths(lengths, [5, 10]), batching_plots.plot_padding(stats),
                batching_plots.plot_batch_layout(datasets, batches=2),
                batching_plots.plot_mask_exactness(exact), batching_plots.plot_epoch_times(times)):
        assert plots.has_data(fig)
        assert fig.axes[0].get_ylabel()


def test_padded_steps_repeat_or_stay_zero_and_empty_row_gives_initial_state():
    after = batching.padded_step_outputs("post", "gru")
    before = batching.padded_step_outputs("pre", "gru")
    np.testing.assert_array_equal(after[2:], np.repeat(after[1:2], 3, axis=0))
    np.testing.assert_array_equal(before[:3], 0.0)
    np.testing.assert_allclose(before[3:], after[:2], atol=1e-6)
    np.testing.assert_array_equal(batching.all_padding_row_output("bi_lstm"), 0.0)

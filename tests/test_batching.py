"""Tests of rnncourse.batching: padding, bucketing, labels, grouping."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import tensorflow as tf

from rnncourse import batching, plots, text
from rnncourse.plots import batching as batching_plots


def _sequences(n=40, seed=0, low=1, high=30):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 20, size=rng.integers(low, high)).astype("int32") for _ in range(n)]


def test_batching_has_no_pad_of_its_own():
    # one pad function in the library: rnncourse.text.pad
    assert not hasattr(batching, "pad") and "pad" not in batching.__all__


@pytest.mark.parametrize("row, diagnosis", [
    ([3, 4, 0, 0], "looks already padded"), ([0, 0, 3, 4], "looks already padded"),
    ([3, 0, 4], "shift your ids"), ([0, 3, 0, 4], "shift your ids"),
])
def test_a_padding_id_inside_a_sequence_is_diagnosed(row, diagnosis):
    # padded rows fed back to bucketing are told to pass the unpadded sequences; ids that
    # use 0 for a real token are told to shift
    with pytest.raises(ValueError) as info:
        batching.bucketed_dataset([[5, 6], row], [0, 1])
    assert info.value.argument == "sequences" and diagnosis in str(info.value)
    assert "sequence 1 " in str(info.value)


def test_already_padded_rows_get_the_padded_diagnosis():
    padded = text.pad([[3, 4, 5], [6]])
    with pytest.raises(ValueError, match="looks already padded"):
        batching.padded_dataset(padded, [0, 1])


# Bad input (ids, labels, sizes) is tested in test_bad_input.py.


def test_ids_of_any_integer_type_are_accepted():
    arrays = batching.validate_sequences([np.array([3, 4], "uint8"), (5, 6, 7), [2 ** 31 - 1]],
                                         vocab_size=2 ** 31)
    assert [a.dtype for a in arrays] == [np.int32] * 3
    assert arrays[2][0] == 2 ** 31 - 1


def test_padding_stats_by_hand():
    lengths = np.array([1, 2, 3, 10])
    stats = batching.padding_stats(lengths, batch_size=2, boundaries=[5])
    assert stats["global_max"] == pytest.approx(1 - 16 / 40)
    assert stats["sorted"] == pytest.approx(1 - 16 / (2 * 2 + 2 * 10))
    # buckets [.., 5) and [5, ..): {1, 2, 3} then {10}; the first bucket emits a batch of two
    # and a remainder of one: 7 or 8 positions for 6 tokens, plus 10 for the 10.
    options = (1 - 16 / 17, 1 - 16 / 18)
    assert min(abs(stats["bucketed"] - option) for option in options) < 1e-9


def test_count_padding_by_hand():
    batches = [(np.array([[3, 4, 0], [5, 0, 0]]), None), (np.array([[6], [7]]), None)]
    count = batching.count_padding(batches)
    assert (count.batches, count.timesteps, count.positions, count.tokens) == (2, 4, 8, 5)
    assert count.padded == pytest.approx(3 / 8)
    assert batching.padding_fraction(batches) == pytest.approx(3 / 8)


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


@pytest.mark.parametrize("layout", ["scalar", "column", "one_hot"])
@pytest.mark.parametrize("strategy", batching.STRATEGIES)
def test_label_shapes_of_keras_pass_through(layout, strategy):
    sequences = _sequences(20, high=9)
    index = np.arange(20)
    labels = {"scalar": index, "column": index[:, None],
              "one_hot": np.eye(20, dtype="float32")}[layout]
    ds = batching.padded_dataset(sequences, labels, 6, strategy, seed=2)
    seen = []
    for x, y in ds:
        x, y = x.numpy(), y.numpy()
        assert y.shape == (len(x),) + labels.shape[1:]
        ids = y.reshape(len(x), -1).argmax(axis=1) if layout == "one_hot" else y.reshape(-1)
        for row, i in zip(x, ids, strict=True):
            np.testing.assert_array_equal(row[row != 0], sequences[i])
        seen.extend(ids.tolist())
    assert sorted(seen) == list(range(20))


@pytest.mark.parametrize("strategy", batching.STRATEGIES)
def test_per_token_labels_are_bucketed_and_padded_with_zero(strategy):
    sequences = _sequences(30, high=12)
    tags = [(s % 3 + 1).astype("int32") for s in sequences]  # tag ids 1..3, 0 = padding
    ds = batching.padded_dataset(sequences, tags, 8, strategy, seed=4)
    rows = 0
    for x, y in ds:
        x, y = x.numpy(), y.numpy()
        assert y.shape == x.shape
        np.testing.assert_array_equal(y == 0, x == 0)  # padded exactly where the ids are
        np.testing.assert_array_equal(y[x != 0], x[x != 0] % 3 + 1)
        rows += len(x)
    assert rows == 30
    one_hot = [np.eye(4, dtype="float32")[t] for t in tags]
    for x, y in batching.bucketed_dataset(sequences, one_hot, 8, seed=4).take(2):
        assert y.shape == (*x.shape, 4)
        assert (y.numpy().sum(axis=-1) == (x.numpy() != 0)).all()
    grouped = batching.length_grouped_batches(sequences, tags, 8)
    assert all(y.shape == x.shape for x, y in grouped)


def test_padded_dataset_strategies_and_maxlen():
    sequences = _sequences(50)
    longest = batching.lengths_of(sequences).max()
    widths = {s: [x.shape[1] for x, _ in batching.padded_dataset(sequences, np.zeros(50), 16, s)]
              for s in ("global_max", "per_batch")}
    assert set(widths["global_max"]) == {longest}
    assert max(widths["per_batch"]) == longest and min(widths["per_batch"]) <= longest
    tags = [np.ones(len(s), "int32") for s in sequences]
    for x, y in batching.padded_dataset(sequences, tags, 16, "global_max", maxlen=5):
        assert x.shape[1] == 5 and y.shape == x.shape


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


def test_right_padding_check_matches_keras():
    rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")  # Keras' own cuDNN checks

    post = batching.mask_of(text.pad([[3, 4, 5], [6]], padding="post"))
    pre = batching.mask_of(text.pad([[3, 4, 5], [6]], padding="pre"))
    empty_row = np.array([[True, False], [False, False]])
    for mask in (post, pre, empty_row):
        assert batching.is_right_padded(mask) == bool(rnn._is_sequence_right_padded(mask))
        assert batching.has_all_padding_row(mask) == bool(rnn._has_fully_masked_sequence(mask))
    assert batching.is_right_padded(post) and not batching.is_right_padded(pre)


def test_ragged_to_padded():
    ragged = tf.RaggedTensor.from_row_lengths(np.ones((5, 2), "float32"), [3, 2])
    dense, mask = batching.ragged_to_padded(ragged)
    assert dense.shape == (2, 3, 2) and (dense[1, 2] == 0).all()
    np.testing.assert_array_equal(mask, [[True, True, True], [True, True, False]])


def test_plots_have_data():
    sequences = _sequences(30)
    lengths = batching.lengths_of(sequences)
    stats = batching.padding_stats(lengths, batch_size=8)
    datasets = {s: batching.padded_dataset(sequences, np.zeros(30), 8, s)
                for s in batching.STRATEGIES}
    counts = {s: batching.count_padding(ds) for s, ds in datasets.items()}
    exact = {("lstm post", "mask"): {"outputs": 0.0, "states": 0.0},
             ("lstm post", "no mask"): {"outputs": 0.1, "states": 0.2}}
    for fig in (batching_plots.plot_lengths(lengths, [5, 10]), batching_plots.plot_padding(stats),
                batching_plots.plot_batch_layout(datasets, batches=2),
                batching_plots.plot_mask_exactness(exact), batching_plots.plot_epoch_cost(counts)):
        assert plots.has_data(fig)
        assert fig.axes[0].get_ylabel()
    assert batching_plots.plot_padding(stats).axes[0].get_ylim()[1] <= 100

"""Chapter 7, Scaling out: the chapter's experiments (see :mod:`rnncourse.chapters`).

The chapter-6 BiLSTM tagger (GloVe + OOV rows, masking, bucketed batches) trained three
ways from the same initial weights on the same global batches:

* ``"single"``: one replica, in this process (:func:`run_single`);
* ``"mirrored"``: ``MirroredStrategy`` over two logical CPUs of one fresh process
  (:func:`run_mirrored`, through :func:`rnncourse.process.run_fresh`);
* ``"multi_worker"``: ``MultiWorkerMirroredStrategy`` with two local worker processes
  (:func:`run_multi_worker`, through :func:`rnncourse.distributed.run_workers`).

:func:`train_tagger` is the one function all three run. :func:`run_worker_lost` kills
worker 1 in the middle of an epoch, records how worker 0 ends, restarts both with
``keras.callbacks.BackupAndRestore`` and compares the final weights with an uninterrupted
two-worker run.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnncourse import config, data, distributed, models, process, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.glove import embedding_matrix, read_glove

config.quiet_tensorflow()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src.backend.tensorflow import trainer as _trainer  # noqa: E402

_KERAS_REDUCE = _trainer.reduce_per_replica

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "KINDS", "TaggingSet",
           "tagging_set", "length_boundaries", "global_batches", "replica_slices",
           "stateful_probe",
           "train_tagger",
           "ReplicaRun", "run_single", "run_mirrored", "run_multi_worker", "Exactness",
           "exactness", "WorkerLost", "run_worker_lost", "max_abs_diff"]

KINDS = ("single", "mirrored", "multi_worker")
"""The compared ways to train: one replica; two replicas in one process; two workers."""


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter."""

    tweets: int
    epochs: int
    units: int


SIZES = {"ci": Sizes(tweets=200, epochs=2, units=8),
         "full": Sizes(tweets=2394, epochs=4, units=32)}


@dataclass(frozen=True)
class Recipe:
    """The recipe, the same at both scales.

    ``batch_size`` is the GLOBAL batch: each of two replicas gets half of every batch.
    No dropout and no shuffling, so the compared runs see the same numbers (exactness).
    The worker-lost run kills worker ``kill_worker`` before batch ``kill_batch`` of epoch
    ``kill_epoch`` (0-based); backups are written at every epoch end. ``corpus``
    ``"wnut16"`` trains on the tweets with GloVe rows; ``"synthetic"`` (the tests) on
    random ids of random lengths, with no download.
    """

    batch_size: int = 32
    learning_rate: float = 0.01
    glove_dim: int = 50
    validation_fraction: float = 0.2
    replicas: int = 2
    kill_worker: int = 1
    kill_epoch: int = 1
    kill_batch: int = 2
    collective_timeout: float = 60.0
    worker_timeout: float = 420.0
    worker_grace: float = 90.0
    corpus: str = "wnut16"


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TaggingSet:
    """The training tweets, encoded: what every replica and worker rebuilds identically.

    Attributes:
        x, y: ``(n, timesteps)`` int32 token ids (0 = padding) and tag ids.
        embeddings: ``(vocab_size, glove_dim)`` GloVe rows + truncated-normal OOV rows.
        tag_names: id -> BIO tag.
    """

    x: np.ndarray
    y: np.ndarray
    embeddings: np.ndarray
    tag_names: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return int(self.embeddings.shape[0])


def tagging_set(tweets: int, seed: int, glove_dim: int = 50,
                validation_fraction: float = 0.2, corpus: str = "wnut16") -> TaggingSet:
    """The first ``tweets`` WNUT-16 tweets, split with ``seed``; the training part, encoded.

    The vocabulary comes from the training tweets; GloVe rows are looked up lower-cased and
    OOV rows drawn per word (:func:`rnncourse.glove.embedding_matrix`), so two processes
    calling this with the same arguments build the same arrays. ``corpus="synthetic"``:
    as many random "sentences" (3 to 20 random ids, random tags, random vectors) from
    ``seed``, no download.
    """
    if corpus == "synthetic":
        rng = np.random.default_rng(seed)
        n = tweets - int(round(tweets * validation_fraction))
        lengths = rng.integers(3, 21, size=n)
        x = np.zeros((n, int(lengths.max())), dtype="int32")
        y = np.zeros_like(x)
        for i, length in enumerate(lengths):
            x[i, :length] = rng.integers(2, 60, size=length)
            y[i, :length] = rng.integers(0, 3, size=length)
        matrix = rng.normal(0, 0.3, size=(60, glove_dim)).astype("float32")
        return TaggingSet(x=x, y=y, embeddings=matrix, tag_names=("O", "B-x", "I-x"))
    if corpus != "wnut16":
        raise ValueError(f"corpus must be 'wnut16' or 'synthetic', not {corpus!r}")
    tokens, tags = data.load_tweet_ner()
    tokens, tags = tokens[:tweets], tags[:tweets]
    train, _ = text.split_indices(len(tokens), validation_fraction, seed=seed)
    tokens = [tokens[i] for i in train]
    tags = [tags[i] for i in train]
    vocab = text.Vocabulary.from_tokens(tokens)
    glove = read_glove(data.glove_path(glove_dim), vocabulary={w.lower() for w in vocab.words})
    matrix, _ = embedding_matrix(vocab, glove, oov="truncated_normal", seed=seed)
    tag_names = text.tag_vocabulary(tags)
    x, y = text.encode_tagging(tokens, tags, vocab, tag_names)
    return TaggingSet(x=x, y=y, embeddings=matrix, tag_names=tuple(tag_names))


def length_boundaries(x: np.ndarray) -> list[int]:
    """Bucket boundaries at the quartiles of the real lengths of ``x`` (0 = padding)."""
    lengths = (np.asarray(x) != 0).sum(axis=1)
    cuts = np.quantile(lengths, [0.25, 0.5, 0.75]).astype(int) + 1
    return sorted({int(c) for c in cuts if 1 < c <= lengths.max()})


def global_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Bucketed global batches ``(ids, tags, weights)`` in a fixed order, one pass.

    Each sentence is cut to its real length, then ``bucket_by_sequence_length`` groups
    sentences of similar length and pads each batch to its own longest sentence. No
    shuffling: every process builds the same batches in the same order. ``weights`` are
    :func:`rnncourse.distributed.global_token_weights`.

    Returns:
        Dataset of ``(batch, timesteps)`` int32 ids, int32 tags and float32 weights;
        ``timesteps`` differs from batch to batch.
    """
    lengths = (np.asarray(x) != 0).sum(axis=1).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y, lengths))
    ds = ds.map(lambda ids, tags, n: (ids[:n], tags[:n]))
    boundaries = length_boundaries(x)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda ids, tags: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], [None]))
    return ds.map(lambda ids, tags: (ids, tags,
                                     distributed.global_token_weights(ids)))


def replica_slices(batches: tf.data.Dataset, replicas: int,
                   steps: int = 3) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """The first ``steps`` global batches and what each of ``replicas`` replicas gets of them.

    Each replica's share comes from :func:`rnncourse.distributed.replica_batches` with the
    ``tf.distribute.InputContext`` of a one-replica-per-pipeline setup, as
    ``distribute_datasets_from_function`` would build it.

    Returns:
        ``[(ids, [slice_0, ..., slice_{R-1}])]``: the global ``(batch, timesteps)`` ids and
        the replicas' ``(ceil(batch / R), timesteps)`` ids, in replica order.
    """
    shares = [list(distributed.replica_batches(
        batches, tf.distribute.InputContext(replicas, worker, replicas)).take(steps))
        for worker in range(replicas)]
    return [(ids.numpy(), [shares[worker][step][0].numpy() for worker in range(replicas)])
            for step, (ids, _, _) in enumerate(batches.take(steps))]


# --------------------------------------------------------------------------- one run
class _KillWorker(keras.callbacks.Callback):
    """SIGKILL this process before batch ``batch`` of epoch ``epoch`` if it is ``worker``."""

    def __init__(self, worker: int, epoch: int, batch: int) -> None:
        super().__init__()
        self.worker, self.epoch, self.batch = worker, epoch, batch
        self.current = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (distributed.worker_index() == self.worker and self.current == self.epoch
                and batch == self.batch):
            os.kill(os.getpid(), signal.SIGKILL)


class _FirstEpoch(keras.callbacks.Callback):
    """The first epoch ``fit`` runs (> 0 after a restore), and each epoch's seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.first: int | None = None
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if self.first is None:
            self.first = int(epoch)
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _mean_over_workers(values, strategy, reduction):
    """``reduce_per_replica`` of Keras 3.15 with scalars averaged over the workers.

    Under ``MultiWorkerMirroredStrategy``, ``fit``'s step function averages the logs
    (scalar loss and metric values) with ``strategy.reduce("MEAN", v, axis=0)``
    (``keras/src/backend/tensorflow/trainer.py``, ``reduce_per_replica``); for a scalar
    that fails with "Invalid reduction dimension 0 for input with 0 dimensions"
    (tensorflow/tensorflow#72388). This reduces scalars with ``axis=None`` and leaves
    every other case to Keras. It changes only the logged numbers, never the update.
    """
    if reduction in ("auto", "mean") and _trainer._collective_all_reduce_multi_worker(
            strategy):
        return tf.nest.map_structure(
            lambda v: strategy.reduce("MEAN", v, axis=0 if v.shape.rank else None), values)
    return _KERAS_REDUCE(values, strategy, reduction)


def _build_from(model: keras.Model, strategy, batch: tuple) -> None:
    """Let ``fit`` build the compiled model from a local batch (workaround).

    Before training, Keras 3.15's ``fit`` takes the first batch of the distributed
    dataset and averages it over the replicas with ``strategy.reduce`` to build the loss
    and optimizer symbolically (``Trainer._maybe_symbolic_build`` in
    ``keras/src/backend/tensorflow/trainer.py``). Under ``MultiWorkerMirroredStrategy``
    that reduce fails ("Attempt to convert a value (PerReplica...) with an unsupported
    type"; keras-team/keras#20585). This builds from ``batch`` (this replica's
    slice: same shapes and dtypes) instead.
    """

    def build(iterator=None, data_batch=None):
        with strategy.scope():
            model._symbolic_build(data_batch=batch)

    model._maybe_symbolic_build = build


def _split_cpu(devices: int) -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def stateful_probe(strategy, global_batch: int, seed: int) -> dict:
    """Where a stateful LSTM keeps its state under ``strategy`` (a probe of Keras 3.15).

    Builds ``Input(batch_size=rows)`` -> ``LSTM(2, stateful=True)`` -> ``Dense`` in the
    strategy's scope and trains one epoch on two random global batches of
    ``global_batch`` rows, twice: with ``rows`` the global batch (the error message is
    kept), then with ``rows`` the per-replica batch.

    Returns:
        ``global_error`` (first line of the error with the global batch, ``""`` if
        none), ``state_rows`` (rows of the state variable, per-replica build),
        ``global_rows``, ``copies`` (one per replica) and ``replica_gap``: the largest
        difference between the replicas' copies of the state after training (0 would
        mean they are kept equal, as the weights are).
    """
    rng = np.random.default_rng(seed)
    x = rng.random((2 * global_batch, 5, 3)).astype("float32")
    y = rng.random((2 * global_batch, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch,
                                                            drop_remainder=True)

    def fit(rows: int):
        with strategy.scope():
            inputs = keras.Input(shape=(5, 3), batch_size=rows)
            lstm = keras.layers.LSTM(2, stateful=True, seed=seed)
            probe = keras.Model(inputs, keras.layers.Dense(1)(lstm(inputs)))
            probe.compile(optimizer="sgd", loss="mse")
        probe.fit(data, epochs=1, shuffle=False, verbose=0)
        return lstm

    try:
        fit(global_batch)
        global_error = ""
    except ValueError as err:
        lines = [line.strip() for line in str(err).splitlines() if "batch size" in line]
        global_error = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(lines))  # no ANSI colour
    lstm = fit(global_batch // int(strategy.num_replicas_in_sync))
    copies = [np.asarray(v) for v in strategy.experimental_local_results(lstm.states[0].value)]
    return {"global_error": global_error, "state_rows": int(lstm.states[0].shape[0]),
            "global_rows": global_batch, "copies": len(copies),
            "replica_gap": float(max(np.max(np.abs(c - copies[0])) for c in copies))}


def train_tagger(kind: str, out_dir: str, tweets: int, epochs: int, units: int,
                 batch_size: int, learning_rate: float, seed: int, glove_dim: int = 50,
                 validation_fraction: float = 0.2, replicas: int = 2,
                 collective_timeout: float = 60.0, backup_dir: str | None = None,
                 kill: list[int] | None = None, corpus: str = "wnut16") -> dict:
    """Train the tagger under one strategy and save its weights: the worker function.

    ``kind`` ``"single"`` uses the default strategy, ``"mirrored"`` a ``MirroredStrategy``
    over ``replicas`` logical CPUs (call it in a fresh process: TensorFlow fixes its devices
    at start), ``"multi_worker"`` :func:`rnncourse.distributed.multi_worker_strategy` (call it
    through :func:`rnncourse.distributed.run_workers`). Every kind builds the same data, the
    same initial weights (``seed``) and the same global batches, then:

    1. saves the gradient of the first global batch as THIS replica would compute it
       (its slice, its loss), before any step;
    2. trains ``epochs`` epochs with ``keras.Model.fit``;
    3. writes ``out_dir/<kind>-<worker>.npz`` with ``weights`` and ``gradients``.

    Args:
        backup_dir: use ``keras.callbacks.BackupAndRestore`` there (one subfolder per
            worker, backups at every epoch end).
        kill: ``[worker, epoch, batch]``: that worker SIGKILLs itself before that batch.

    Returns:
        JSON-friendly dict: ``kind``, ``worker``, ``replicas``, ``steps_per_epoch``,
        ``first_epoch`` (1 after a restore from the epoch-1 backup), ``loss`` (last
        epoch), ``epoch_seconds`` (wall-clock, per epoch run), ``slice_rows`` and
        ``slice_timesteps`` (this replica's share of the first global batches), ``path``
        of the ``.npz``, ``stateful`` (``"mirrored"`` only: :func:`stateful_probe`).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "mirrored":
        strategy = tf.distribute.MirroredStrategy(_split_cpu(replicas))
    elif kind == "multi_worker":
        strategy = distributed.multi_worker_strategy(collective_timeout)
    else:
        strategy = tf.distribute.get_strategy()
    worker = distributed.worker_index() if kind == "multi_worker" else 0
    n_replicas = int(strategy.num_replicas_in_sync)
    tagging = tagging_set(tweets, seed, glove_dim, validation_fraction, corpus)
    batches = global_batches(tagging.x, tagging.y, batch_size)
    steps = int(batches.reduce(0, lambda count, _: count + 1).numpy())

    config.set_seed(seed)
    with strategy.scope():
        model = models.sequence_tagger(tagging.vocab_size, len(tagging.tag_names),
                                       units=units, embeddings=tagging.embeddings, seed=seed)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(reduction="sum"))

    # This process's replicas' slices of the first global batches: worker w of a
    # multi-worker run holds replica w; the mirrored process holds replicas 0 .. R-1.
    pipelines = n_replicas if kind == "multi_worker" else 1
    local = n_replicas // pipelines
    context = tf.distribute.InputContext(num_input_pipelines=pipelines,
                                         input_pipeline_id=worker,
                                         num_replicas_in_sync=n_replicas)
    own = list(distributed.replica_batches(batches, context).take(3 * local))
    shapes = [tuple(int(d) for d in ids.shape) for ids, _, _ in own]
    arrays = {}
    for j, (ids, tags, weights) in enumerate(own[:local]):
        replica = worker * local + j
        with tf.GradientTape(persistent=True) as tape:
            probabilities = model(ids, training=True)
            per_token = keras.losses.sparse_categorical_crossentropy(tags, probabilities)
            # This replica's loss as compiled: its tokens' losses / tokens of the global
            # batch; the all-reduce SUMS these gradients. Times the replicas, it is the
            # replica's own estimate of the global-batch gradient, and the MEAN of those
            # estimates is what the update uses.
            weighted = n_replicas * tf.reduce_sum(per_token * weights)
            # Keras' default instead: the mean over this slice's own real tokens.
            real = tf.cast(ids != 0, per_token.dtype)
            plain = tf.reduce_sum(per_token * real) / tf.maximum(tf.reduce_sum(real), 1.0)
        for name, loss in (("gradient", weighted), ("plain", plain)):
            for i, g in enumerate(tape.gradient(loss, model.trainable_variables)):
                arrays[f"{name}_{replica}_{i}"] = tf.convert_to_tensor(g).numpy()
        del tape

    if kind == "single":
        train = batches.repeat()
    else:
        train = strategy.distribute_datasets_from_function(
            lambda ctx: distributed.replica_batches(batches, ctx).repeat())
    first = _FirstEpoch()
    callbacks: list[keras.callbacks.Callback] = [first]
    if backup_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(
            os.path.join(backup_dir, f"worker-{worker}"), save_freq="epoch"))
    if kill:
        callbacks.append(_KillWorker(*kill))
    if kind == "multi_worker":
        _build_from(model, strategy, own[0])
        _trainer.reduce_per_replica = _mean_over_workers
    with strategy.scope():
        history = model.fit(train, epochs=epochs, steps_per_epoch=steps,
                            callbacks=callbacks, shuffle=False, verbose=0)
    path = Path(out_dir) / f"{kind}-{worker}.npz"
    arrays.update({f"weight_{i}": w for i, w in enumerate(model.get_weights())})
    np.savez(path, **arrays)
    probe = stateful_probe(strategy, batch_size, seed) if kind == "mirrored" else None
    return {"kind": kind, "worker": worker, "replicas": n_replicas, "steps_per_epoch": steps,
            "stateful": probe,
            "first_epoch": first.first, "loss": float(history.history["loss"][-1]),
            "epoch_seconds": [round(t, 4) for t in first.seconds],
            "slice_rows": [s[0] for s in shapes], "slice_timesteps": [s[1] for s in shapes],
            "path": str(path)}


def _load(path: str) -> tuple[list[np.ndarray], dict[str, dict[int, list[np.ndarray]]]]:
    """Weights, and ``{"gradient"|"plain": {replica: [arrays]}}`` of one ``.npz``."""
    with np.load(path) as f:
        arrays = {key: f[key] for key in f.files}
    weights = [arrays[f"weight_{i}"] for i in range(sum(k.startswith("weight_") for k in arrays))]
    grads: dict[str, dict[int, list[np.ndarray]]] = {"gradient": {}, "plain": {}}
    for key in arrays:
        name, *rest = key.split("_")
        if name in grads:
            replica, i = rest
            grads[name].setdefault(int(replica), {})[int(i)] = arrays[key]
    grads = {name: {r: [parts[i] for i in sorted(parts)] for r, parts in by.items()}
             for name, by in grads.items()}
    return weights, grads


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest absolute difference between two lists of same-shaped arrays."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} arrays against {len(b)}; compare the same model")
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b,
                                                                                   strict=True))


# --------------------------------------------------------------------------- the runs
@dataclass(frozen=True)
class ReplicaRun:
    """One training run: what :func:`train_tagger` reported, and its arrays.

    Attributes:
        kind: one of :data:`KINDS`.
        reports: one dict per worker (one for ``single``/``mirrored``).
        weights: final weights (worker 0's).
        gradients: per replica, the gradient of its slice of the first global batch for
            the compiled loss (global-token weights, summed).
        plain_gradients: the same for Keras' default loss, the mean over the slice's own
            real tokens.
    """

    kind: str
    reports: tuple[dict, ...]
    weights: tuple[np.ndarray, ...]
    gradients: tuple[tuple[np.ndarray, ...], ...]
    plain_gradients: tuple[tuple[np.ndarray, ...], ...]

    @property
    def replicas(self) -> int:
        return int(self.reports[0]["replicas"])


def _kwargs(kind: str, out_dir: str, s: Settings) -> dict:
    r = s.recipe
    return {"kind": kind, "out_dir": out_dir, "tweets": s.sizes.tweets,
            "epochs": s.sizes.epochs, "units": s.sizes.units, "batch_size": r.batch_size,
            "learning_rate": r.learning_rate, "seed": config.seed(0),
            "glove_dim": r.glove_dim, "validation_fraction": r.validation_fraction,
            "replicas": r.replicas, "collective_timeout": r.collective_timeout,
            "corpus": r.corpus}


def _run(kind: str, reports: list[dict]) -> ReplicaRun:
    loaded = [_load(report["path"]) for report in reports]
    merged: dict[str, dict[int, list[np.ndarray]]] = {"gradient": {}, "plain": {}}
    for _, grads in loaded:
        for name in merged:
            merged[name].update(grads[name])
    return ReplicaRun(kind=kind, reports=tuple(reports), weights=tuple(loaded[0][0]),
                      gradients=tuple(tuple(merged["gradient"][r])
                                      for r in sorted(merged["gradient"])),
                      plain_gradients=tuple(tuple(merged["plain"][r])
                                            for r in sorted(merged["plain"])))


def run_single(out_dir: str, setup: Settings | None = None) -> ReplicaRun:
    """The one-replica reference, trained in this process."""
    s = setup or settings()
    return _run("single", [train_tagger(**_kwargs("single", out_dir, s))])


def run_mirrored(out_dir: str, setup: Settings | None = None) -> ReplicaRun:
    """``MirroredStrategy`` over ``recipe.replicas`` logical CPUs, in a fresh process."""
    s = setup or settings()
    report = process.run_fresh("rnncourse.chapters.ch07_scaling:train_tagger",
                               _kwargs("mirrored", out_dir, s),
                               env={"CUDA_VISIBLE_DEVICES": "-1"},
                               timeout=s.recipe.worker_timeout)
    return _run("mirrored", [report])


def run_multi_worker(out_dir: str, setup: Settings | None = None, backup_dir: str | None = None
                     ) -> ReplicaRun:
    """``MultiWorkerMirroredStrategy`` with ``recipe.replicas`` local workers."""
    s = setup or settings()
    kwargs = _kwargs("multi_worker", out_dir, s)
    if backup_dir:
        kwargs["backup_dir"] = backup_dir
    reports = distributed.run_workers("rnncourse.chapters.ch07_scaling:train_tagger", kwargs,
                                      workers=s.recipe.replicas,
                                      timeout=s.recipe.worker_timeout,
                                      grace=s.recipe.worker_grace)
    return _run("multi_worker", reports)


@dataclass(frozen=True)
class Exactness:
    """How far two runs are apart.

    Attributes:
        weights: largest absolute difference of the final weights, other run vs reference.
        gradient: largest absolute difference between the reference's first-batch gradient and
            the mean of the other run's per-replica gradients.
        unweighted_gradient: the same for the mean of per-replica gradients of Keras'
            default loss (mean over each slice's own real tokens), for contrast.
    """

    weights: float
    gradient: float
    unweighted_gradient: float


def exactness(reference: ReplicaRun, other: ReplicaRun) -> Exactness:
    """Compare ``other`` (several replicas) with the one-replica ``reference``."""
    def mean(per_replica):
        return [np.mean(np.stack(parts), axis=0) for parts in zip(*per_replica, strict=True)]

    return Exactness(weights=max_abs_diff(list(reference.weights), list(other.weights)),
                     gradient=max_abs_diff(list(reference.gradients[0]),
                                           mean(other.gradients)),
                     unweighted_gradient=max_abs_diff(list(reference.plain_gradients[0]),
                                                      mean(other.plain_gradients)))


# --------------------------------------------------------------------------- worker lost
@dataclass(frozen=True)
class WorkerLost:
    """A worker killed mid-epoch, the survivor's end, and the restart from the backup.

    Attributes:
        killed: the killed worker's outcome (returncode -9).
        survivor: the other worker's outcome (it should end by itself: ``stopped`` False).
        survivor_error: the last error line the survivor printed.
        resumed: the restarted run (both workers, same backup folder).
        weights_vs_uninterrupted: largest absolute difference of the resumed run's final
            weights from ``uninterrupted``'s.
    """

    killed: distributed.WorkerOutcome
    survivor: distributed.WorkerOutcome
    survivor_error: str
    resumed: ReplicaRun
    weights_vs_uninterrupted: float


def _error_line(stderr: str) -> str:
    """The Python exception a worker died with (``tensorflow...Error: ...``), if any."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    raised = [line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))
              and not line.startswith(("E0000", "W0000", "I0000"))]
    line = (raised or [line for line in lines if "Error" in line] or lines or [""])[-1]
    cause = [x for x in lines if x.startswith("Collective ops is aborted by")]
    return f"{line} {cause[-1]}" if cause else line


def run_worker_lost(out_dir: str, uninterrupted: ReplicaRun, setup: Settings | None = None
                    ) -> WorkerLost:
    """Kill a worker mid-epoch, watch the survivor, restart both from the backup.

    ``uninterrupted``: a :func:`run_multi_worker` run with the same settings.
    """
    s = setup or settings()
    r = s.recipe
    backup = tempfile.mkdtemp(prefix="backup-", dir=out_dir)
    kwargs = _kwargs("multi_worker", out_dir, s)
    kwargs.update(backup_dir=backup, kill=[r.kill_worker, r.kill_epoch, r.kill_batch])
    outcomes = distributed.launch_workers("rnncourse.chapters.ch07_scaling:train_tagger",
                                          kwargs, workers=r.replicas,
                                          timeout=r.worker_timeout, grace=r.worker_grace)
    killed = outcomes[r.kill_worker]
    survivor = next(o for o in outcomes if o.index != r.kill_worker)
    resumed = run_multi_worker(out_dir, s, backup_dir=backup)
    return WorkerLost(killed=killed, survivor=survivor,
                      survivor_error=_error_line(survivor.stderr_tail), resumed=resumed,
                      weights_vs_uninterrupted=max_abs_diff(list(uninterrupted.weights),
                                                            list(resumed.weights)))


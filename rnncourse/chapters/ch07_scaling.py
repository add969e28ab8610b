"""Chapter 7, Scaling out: the chapter's experiments (see :mod:`rnncourse.chapters`).

The chapter-6 BiLSTM tagger (GloVe + OOV rows, masking, bucketed batches) is trained three
ways (:data:`KINDS`) from the same initial weights on the same global batches, by a worker
script that the chapter's page writes and shows (``tagger_worker.py``): one replica in the
notebook, ``MirroredStrategy`` over two logical CPUs of a fresh process, and
``MultiWorkerMirroredStrategy`` with two local worker processes. This module holds what the
script and the page need but a reader need not see:

* the data: :func:`tagging_set`, :func:`global_batches`, :func:`replica_slices`;
* the script's aids: :func:`worker_kwargs` (its JSON arguments), the callbacks
  :class:`KillWorker` and :class:`EpochClock`, :func:`npz_arrays` (what it saves);
* the comparison: :func:`load_run`, :func:`exactness`, :func:`worker_lost`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, config, data, distributed, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.embeddings import embedding_matrix
from rnncourse.glove import read_glove

config.quiet_tensorflow()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "KINDS", "TaggingSet",
           "tagging_set", "length_boundaries", "global_batches", "replica_slices",
           "KillWorker", "EpochClock", "npz_arrays", "worker_kwargs", "ReplicaRun",
           "load_run", "Exactness", "exactness", "WorkerLost", "worker_lost", "max_abs_diff"]

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
    OOV rows drawn per word (:func:`rnncourse.embeddings.embedding_matrix`), so two processes
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


# --------------------------------------------------------------------------- the worker's aids
class KillWorker(keras.callbacks.Callback):
    """SIGKILL this process before batch ``batch`` of epoch ``epoch`` if it is ``worker``.

    The worker-lost experiment's fault: no goodbye, as when a machine dies.
    """

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


class EpochClock(keras.callbacks.Callback):
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


def npz_arrays(weights: list[np.ndarray], gradients: dict[tuple[str, int], list[np.ndarray]]
               ) -> dict[str, np.ndarray]:
    """The arrays a worker saves: ``weight_<i>`` and ``<loss>_<replica>_<i>`` for
    ``gradients[(loss, replica)]`` (``loss`` is ``"gradient"`` or ``"plain"``)."""
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
    for (name, replica), parts in gradients.items():
        arrays.update({f"{name}_{replica}_{i}": np.asarray(g) for i, g in enumerate(parts)})
    return arrays


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
    """One training run: what the worker script's ``train_tagger`` reported, and its arrays.

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


def worker_kwargs(out_dir: str, setup: Settings | None = None) -> dict:
    """The JSON keyword arguments of the worker script's ``train_tagger`` (all but ``kind``)."""
    s = setup or settings()
    r = s.recipe
    return {"out_dir": out_dir, "tweets": s.sizes.tweets,
            "epochs": s.sizes.epochs, "units": s.sizes.units, "batch_size": r.batch_size,
            "learning_rate": r.learning_rate, "seed": config.seed(0),
            "glove_dim": r.glove_dim, "validation_fraction": r.validation_fraction,
            "replicas": r.replicas, "collective_timeout": r.collective_timeout,
            "corpus": r.corpus}


def load_run(kind: str, reports: list[dict]) -> ReplicaRun:
    """A run's reports (one per process) and the arrays their ``.npz`` files hold."""
    kind = _checks.choice(kind, "kind", KINDS)
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


def worker_lost(outcomes: list[distributed.WorkerOutcome], kill_worker: int,
                resumed: ReplicaRun, uninterrupted: ReplicaRun) -> WorkerLost:
    """Sum up the killed run (``outcomes`` of ``launch_workers``) and the restart."""
    killed = outcomes[kill_worker]
    survivor = next(o for o in outcomes if o.index != kill_worker)
    return WorkerLost(killed=killed, survivor=survivor,
                      survivor_error=_error_line(survivor.stderr_tail), resumed=resumed,
                      weights_vs_uninterrupted=max_abs_diff(list(uninterrupted.weights),
                                                            list(resumed.weights)))

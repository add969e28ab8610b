"""Multi-worker training on one machine: a launcher for local ``tf.distribute`` workers.

``MultiWorkerMirroredStrategy`` runs one Python process per worker. Each process learns
who it is from the ``TF_CONFIG`` environment variable::

    {"cluster": {"worker": ["127.0.0.1:40111", "127.0.0.1:40112"]},
     "task": {"type": "worker", "index": 0}}

On a cluster every machine gets the same ``cluster`` and its own ``task``; here
:func:`launch_workers` starts ``workers`` processes on 127.0.0.1 with free ports, runs one
function (``"package.module:function"``) in each, collects their JSON results and always
stops them, also when one fails, hangs or the caller is interrupted.

* :func:`free_ports`, :func:`tf_config`: the cluster description;
* :func:`launch_workers` -> one :class:`WorkerOutcome` per worker (never raises for a
  failed worker); :func:`run_workers` -> the results, or :class:`WorkerError`;
* in a worker: :func:`worker_index`, :func:`multi_worker_strategy` (CPU collectives with
  a timeout), :func:`replica_batches` (each global batch -> this worker's per-replica
  slices), :func:`global_token_weights` (a masked loss averaged over the global batch) and
  :func:`multi_worker_model` (a model Keras 3.15's ``fit`` can train with several workers).

The launcher itself does not import TensorFlow; the workers do.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rnncourse import _checks
from rnncourse.config import quiet_tensorflow
from rnncourse.process import child_command, child_environment, read_result

__all__ = ["free_ports", "tf_config", "WorkerOutcome", "WorkerError", "launch_workers",
           "describe_failure", "run_workers", "worker_index", "multi_worker_strategy",
           "replica_batches", "global_token_weights", "multi_worker_model"]

_HOST = "127.0.0.1"


# --------------------------------------------------------------------------- cluster
@_checks.arguments(count=lambda v, a: _checks.count(v, a, maximum=65535), host=str)  # TCP ports
def free_ports(count: int, host: str = _HOST) -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` right now.

    Binding to port 0 lets the kernel choose an unused port; all ``count`` sockets stay
    open until every port is known, so the ports differ. They are closed before returning:
    another program could take one in the moment before a worker binds it (rare; a
    worker then fails to start with "address already in use" and is reported).
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@_checks.arguments(index=_checks.natural, host=str)
def tf_config(ports: list[int], index: int, host: str = _HOST) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of workers on ``host:ports``.

    On a real cluster, ``host`` differs per worker: every machine gets the same
    ``"cluster"`` list (``["machine-a:port", "machine-b:port", ...]``) and its own index.
    """
    ports = _checks.ids(ports, "ports", ndim=1, below=65536).tolist()
    if not ports or len(set(ports)) != len(ports):
        _checks.fail("ports", f"must be a non-empty list of distinct ports, got {ports!r}")
    _checks.fail_if(index >= len(ports), "index", f"must be < {len(ports)}, one per port")
    return {"cluster": {"worker": [f"{host}:{port}" for port in ports]},
            "task": {"type": "worker", "index": index}}


def worker_index() -> int:
    """This process's worker index from ``TF_CONFIG`` (0 outside a cluster)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        return int(json.loads(raw)["task"]["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"TF_CONFIG is no cluster description ({err}): {raw!r}") from None


# --------------------------------------------------------------------------- launcher
@dataclass(frozen=True)
class WorkerOutcome:
    """How one worker process ended.

    Attributes:
        index: the worker's index in ``TF_CONFIG``.
        pid: its process id (also its process group id).
        returncode: exit status; negative: killed by that signal (``-9``: SIGKILL);
            ``None`` only while running (never in a returned outcome).
        result: the function's return value (through JSON), or ``None`` if it failed.
        seconds: from the launch until the process ended.
        stopped: the launcher stopped it (timeout, or a peer failed and it did not end
            by itself within ``grace`` seconds); ``False`` when it ended on its own.
        stderr_tail: the last 3,000 characters of its standard error.
    """

    index: int
    pid: int
    returncode: int | None
    result: Any
    seconds: float
    stopped: bool
    stderr_tail: str

    @property
    def ok(self) -> bool:
        """Exited with status 0 and printed a result, on its own."""
        return self.returncode == 0 and not self.stopped


class WorkerError(RuntimeError):
    """A worker failed, was killed or timed out. ``outcomes`` holds every worker's end."""

    def __init__(self, message: str, outcomes: list[WorkerOutcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def _stop(process: subprocess.Popen, wait: float = 5.0) -> None:
    """SIGTERM to the worker's process group, then SIGKILL; always reaps the worker."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The worker may have exited while children it started still run: end its group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _importable(module_name: str, pythonpath: str) -> bool:
    """Whether ``module_name`` imports here, or its top package lies on ``pythonpath``."""
    try:
        if importlib.util.find_spec(module_name) is not None:
            return True
    except (ImportError, ValueError):
        pass
    folders = [p for p in pythonpath.split(os.pathsep) if p]
    top = module_name.split(".")[0]
    return bool(folders) and importlib.machinery.PathFinder.find_spec(top, folders) is not None


@_checks.arguments(workers=_checks.count, timeout=_checks.number, grace=_checks.number)
def launch_workers(target: str, kwargs: Mapping[str, Any] | None = None, *,
                   workers: int = 2, timeout: float = 300.0, grace: float = 60.0,
                   env: Mapping[str, str] | None = None) -> list[WorkerOutcome]:
    """Run ``target(**kwargs)`` in ``workers`` local processes, one ``TF_CONFIG`` each.

    Every worker is started as ``python -m rnncourse.process`` in a process group of its
    own, with ``TF_CONFIG`` from :func:`tf_config` (free ports on 127.0.0.1), this copy of
    ``rnncourse`` first on ``PYTHONPATH``, and ``CUDA_VISIBLE_DEVICES=-1`` (CPU only; pass
    ``env={"CUDA_VISIBLE_DEVICES": "0"}`` to change it). Standard output and error go to
    temporary files, so a chatty worker never blocks on a full pipe.

    Time is bounded twice: after ``timeout`` seconds every worker still running is
    stopped; and once a worker has failed, the others get ``grace`` seconds to fail on
    their own (a collective whose peer died raises an error, see
    :func:`multi_worker_strategy`) before they are stopped. In a ``finally`` block every
    worker's process group gets SIGTERM, then SIGKILL, and every worker is reaped, so no
    process is left behind even when the caller is interrupted.

    Args:
        target: ``"package.module:function"``; the function takes JSON keyword arguments
            and returns something JSON can encode.
        kwargs: the keyword arguments, the same for every worker (a worker reads its own
            index with :func:`worker_index`).
        workers: number of worker processes (>= 1).
        timeout: seconds for the whole run.
        grace: seconds the others may take to end after the first failure.
        env: extra environment variables for every worker; a ``PYTHONPATH`` here
            replaces the workers' (put the package's folder on it too) and is searched
            for ``target``'s module, so a script folder need not be on this ``sys.path``.

    Returns:
        One :class:`WorkerOutcome` per worker, in index order. A failed worker does not
        raise here (see :func:`run_workers`); bad arguments raise ``ValueError`` /
        ``TypeError`` before anything starts.
    """
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        _checks.fail("target", f"must be 'package.module:function', got {target!r}")
    try:
        payload = json.dumps(dict(kwargs or {}))
    except (TypeError, ValueError) as err:  # arrays: pass lists, rebuild them in the worker
        _checks.fail("kwargs", f"must be JSON-serialisable ({err})", TypeError)
    module_name = target.split(":")[0]
    if not _importable(module_name, (env or {}).get("PYTHONPATH", "")):
        _checks.fail("target", f"no module {module_name!r} on sys.path or env's PYTHONPATH")
    ports = free_ports(workers)
    processes: list[subprocess.Popen] = []
    logs: list[tuple[Any, Any]] = []
    ended: dict[int, float] = {}
    stopped: set[int] = set()
    start = time.monotonic()
    try:
        for index in range(workers):
            child_env = child_environment({"CUDA_VISIBLE_DEVICES": "-1",
                                           "TF_CONFIG": json.dumps(tf_config(ports, index)),
                                           **(env or {})})
            out = tempfile.TemporaryFile(mode="w+b")
            err = tempfile.TemporaryFile(mode="w+b")
            logs.append((out, err))
            processes.append(subprocess.Popen(
                child_command(target, payload),
                env=child_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True))
        first_failure: float | None = None
        while len(ended) < workers:
            now = time.monotonic()
            for index, process in enumerate(processes):
                if index not in ended and process.poll() is not None:
                    ended[index] = now - start
                    if process.returncode != 0 and first_failure is None:
                        first_failure = now
            late = now - start > timeout or (
                first_failure is not None and now - first_failure > grace)
            if late:
                for index, process in enumerate(processes):
                    if index not in ended:
                        _stop(process)
                        ended[index] = time.monotonic() - start
                        stopped.add(index)
                break
            time.sleep(0.05)
    finally:
        for index, process in enumerate(processes):
            if process.poll() is None:
                stopped.add(index)
                ended.setdefault(index, time.monotonic() - start)
            _stop(process, wait=2.0)
    outcomes = []
    for index, (process, (out, err)) in enumerate(zip(processes, logs, strict=True)):
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        out.close()
        err.close()
        found, result = read_result(stdout)
        returncode = process.returncode
        if returncode == 0 and not found:
            returncode = 1  # exited without printing a result: count it as a failure
        outcomes.append(WorkerOutcome(index=index, pid=process.pid, returncode=returncode,
                                      result=result, seconds=round(ended[index], 3),
                                      stopped=index in stopped, stderr_tail=stderr[-3000:]))
    return outcomes


def describe_failure(outcomes: list[WorkerOutcome], target: str = "") -> str:
    """One paragraph per worker that did not succeed: index, how it ended, stderr tail."""
    parts = []
    for o in outcomes:
        if o.ok:
            continue
        if o.stopped:
            how = f"was stopped by the launcher after {o.seconds:.0f} s (timeout or peer failed)"
        elif o.returncode is not None and o.returncode < 0:
            how = f"was killed by signal {-o.returncode} after {o.seconds:.0f} s"
        else:
            how = f"exited with status {o.returncode} after {o.seconds:.0f} s"
        tail = o.stderr_tail.strip()[-1500:] or "(no standard error)"
        parts.append(f"worker {o.index} (pid {o.pid}) {how}; end of its stderr:\n{tail}")
    head = f"{target}: " if target else ""
    return head + "\n\n".join(parts)


def run_workers(target: str, kwargs: Mapping[str, Any] | None = None, *, workers: int = 2,
                timeout: float = 300.0, grace: float = 60.0,
                env: Mapping[str, str] | None = None) -> list[Any]:
    """:func:`launch_workers`, returning each worker's result (index order).

    Raises:
        WorkerError: some worker failed, was killed or timed out; the message names each
            one, how it ended and the end of its standard error; ``.outcomes`` has all.
    """
    outcomes = launch_workers(target, kwargs, workers=workers, timeout=timeout, grace=grace,
                              env=env)
    if not all(o.ok for o in outcomes):
        raise WorkerError(describe_failure(outcomes, target), outcomes)
    return [o.result for o in outcomes]


# --------------------------------------------------------------------------- in a worker
@_checks.arguments(timeout_seconds=_checks.optional(_checks.number))
def multi_worker_strategy(timeout_seconds: float | None = 60.0):
    """``MultiWorkerMirroredStrategy`` for CPU workers: RING all-reduce, bounded collectives.

    Reads the cluster from ``TF_CONFIG``. CPU workers cannot use NCCL, so the collective
    implementation is ``RING`` (gRPC between the workers). ``timeout_seconds`` makes a
    collective that waits longer (a peer died or hangs) raise
    ``tf.errors.DeadlineExceededError`` instead of blocking forever
    (``CommunicationOptions``, ``tensorflow/python/distribute/collective_util.py``,
    TF 2.21). A peer that died closes its connections, and the collective fails with
    ``UnavailableError`` without waiting for the timeout, which covers a peer that hangs.
    Create the strategy at the start of the program, before other TensorFlow work.
    """
    quiet_tensorflow()
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def replica_batches(global_batches, input_context):
    """Cut every global batch into per-replica slices and keep this input pipeline's ones.

    For ``strategy.distribute_datasets_from_function``: with ``R`` replicas in sync, a
    global batch of ``b`` rows (any padded length ``timesteps``) becomes ``R`` slices of
    ``ceil(b / R)`` rows (the last ones may be shorter, or empty), all padded to the same
    ``timesteps``; pipeline ``p`` of ``P`` (one per worker) yields the slices of its
    ``R / P`` replicas, in replica order, and the strategy hands them to its replicas.

    Args:
        global_batches: ``tf.data.Dataset`` of tuples of tensors ``(batch, ...)``, the same
            sequence of global batches in every worker (no unseeded shuffling).
        input_context: the ``tf.distribute.InputContext`` the strategy passes.

    Returns:
        ``tf.data.Dataset`` of per-replica tuples ``(ceil(batch / R), ...)``.
    """
    quiet_tensorflow()
    import tensorflow as tf

    replicas = int(input_context.num_replicas_in_sync)
    pipelines = int(input_context.num_input_pipelines)
    pipeline = int(input_context.input_pipeline_id)
    _checks.fail_if(replicas % pipelines, "input_context", f"{replicas} replicas over {pipelines}")
    per_pipeline = replicas // pipelines

    def slices(*batch):
        size = (tf.shape(batch[0])[0] + replicas - 1) // replicas

        def take(j):
            replica = tf.cast(pipeline * per_pipeline, tf.int64) + j
            begin = tf.cast(replica, tf.int32) * size
            return tuple(t[begin:begin + size] for t in batch)

        return tf.data.Dataset.range(per_pipeline).map(take)

    return global_batches.flat_map(slices)


def global_token_weights(token_ids):
    """Per-token loss weights that make a masked loss the mean over the GLOBAL batch.

    Keras' default loss averages over the real tokens of each replica's slice, and then
    divides by the number of replicas (``keras.src.losses.loss.scale_loss_for_distribution``);
    the all-reduce sums the replicas' gradients. So the update follows the average of the
    per-replica means, which is the mean over the global batch only when every slice holds
    the same number of real tokens; bucketed variable-length batches rarely do. Compile
    the loss with ``reduction="sum"`` (Keras 3.15 does not divide a ``"sum"`` loss by the
    replicas) and pass these weights: each replica then sums ``loss / tokens`` over its
    tokens, the all-reduce adds the replicas, and the result is the mean over the global
    batch for one replica or many.

    Args:
        token_ids: ``(batch, timesteps)`` int ids of one GLOBAL batch, 0 = padding.

    Returns:
        ``(batch, timesteps)`` float32: ``1 / tokens`` at real tokens, 0 at padding, where
        ``tokens`` counts the real tokens of the whole global batch.
    """
    quiet_tensorflow()
    import tensorflow as tf

    token_ids = token_ids if isinstance(token_ids, tf.Tensor) else tf.convert_to_tensor(
        _checks.ids(token_ids, "token_ids", ndim=2))  # NumPy arrays, lists, Variables
    _checks.fail_if(token_ids.shape.rank != 2, "token_ids", f"must be 2-D, got {token_ids.shape}")
    real = tf.cast(tf.not_equal(token_ids, 0), tf.float32)
    return real / tf.maximum(tf.reduce_sum(real), 1.0)


@functools.cache
def _worker_mean_model_class():
    """``keras.Model`` whose logs, under several workers, are 1-element vectors (see below)."""
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    def several_workers(strategy) -> bool:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return False
        spec = strategy.cluster_resolver.cluster_spec().as_dict()
        return len(spec.get("chief", [])) + len(spec.get("worker", [])) > 1

    class WorkerMeanModel(keras.Model):
        """A functional model whose ``fit`` logs average over all workers' replicas."""

        def _vectors(self, logs):
            if not several_workers(self.distribute_strategy):
                return logs
            return {name: tf.reshape(value, [1]) for name, value in logs.items()}

        def train_step(self, data):
            return self._vectors(super().train_step(data))

        def test_step(self, data):
            return self._vectors(super().test_step(data))

    return WorkerMeanModel


def multi_worker_model(model):
    """``model``'s layers as a model that Keras 3.15's ``fit`` trains with several workers.

    Keras 3.15's ``fit`` fails twice under ``MultiWorkerMirroredStrategy`` with more than one
    worker (``keras/src/backend/tensorflow/trainer.py``):

    1. a model created inside ``strategy.scope()`` records the strategy, and before
       training ``fit`` averages the first distributed batch over the replicas with
       ``strategy.reduce``, which cannot take the ``PerReplica`` batch
       (keras-team/keras#20585). A model *object* created outside any scope skips that
       step; the graph is built when ``fit`` first traces the training step.
    2. after every step ``fit`` averages the logged numbers (loss, metrics) over the
       replicas with ``strategy.reduce("MEAN", value, axis=0)``, which fails for a scalar
       (tensorflow/tensorflow#72388). The returned model's ``train_step`` and ``test_step``
       call Keras' own and give each logged value as a 1-element vector, which that reduce
       averages over the replicas of all workers. Only the logged numbers change, never
       the update.

    Use it in three steps: build the model (its layers and weights) inside
    ``strategy.scope()``, so the weights are mirrored; call this function outside the
    scope; then ``compile`` and ``fit`` the returned model inside the scope. Public Keras
    API only: a ``keras.Model`` subclass built from ``model.input`` and ``model.output``.
    Under any other strategy, or one worker, it trains and logs like ``model``.

    Args:
        model: a functional ``keras.Model`` (``model.inputs`` and ``model.outputs``).

    Returns:
        A ``keras.Model`` sharing ``model``'s layers and weights (same order in
        ``get_weights()``), uncompiled.

    Raises:
        RuntimeError: called inside a strategy scope (``fit`` would fail as above).
    """
    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        _checks.fail("model", f"must be a functional keras.Model, got {type(model)}", TypeError)
    quiet_tensorflow()
    import tensorflow as tf

    if tf.distribute.has_strategy():
        # Keras 3.15: a model made inside the scope cannot start fit with several workers
        raise RuntimeError("call multi_worker_model outside strategy.scope() (layers inside)")
    return _worker_mean_model_class()(model.input, model.output, name=model.name)

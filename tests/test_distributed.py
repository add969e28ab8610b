"""The multi-worker launcher (rnncourse.distributed) and chapter 7's two-worker runs.

The launcher tests use tiny stdlib-only targets (below), so they take seconds. The two
TensorFlow tests run chapter 7's worker script (the ``%%writefile`` cells of
``book/07_scaling_out.ipynb``, which use :func:`rnncourse.distributed.multi_worker_model`)
in this process and as two local ``MultiWorkerMirroredStrategy`` workers, three times
(uninterrupted, killed, resumed), on random data: no download. Every test checks that no
process it started is left behind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import pytest

from rnncourse import distributed
from rnncourse.chapters import Settings

# The workers of the launcher tests import this file: it must not import TensorFlow at
# the top (chapter 7's module does), or each worker would take seconds to start.
TARGET = "test_distributed:behave"  # tests/ is put on the workers' PYTHONPATH


# ----------------------------------------------------------------------------- targets
def behave(modes: list[str]) -> dict:
    """Worker ``i`` does ``modes[i]``: ``ok``, ``fail`` (exit 3), ``hang``, ``sleep1``."""
    index = distributed.worker_index()
    mode = modes[index]
    if mode == "fail":
        sys.exit(3)
    if mode == "hang":
        time.sleep(600)
    if mode == "sleep1":
        time.sleep(1)
    return {"index": index, "pid": os.getpid(), "tf_config": json.loads(os.environ["TF_CONFIG"])}


def gone(outcomes: list[distributed.WorkerOutcome]) -> bool:
    """No process of any worker's process group exists any more."""
    for o in outcomes:
        try:
            os.killpg(o.pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


HERE = os.path.dirname(os.path.abspath(__file__))
# tests/ for this file, the checkout for rnncourse (an ``env`` PYTHONPATH replaces the
# launcher's own).
ENV = {"PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE)])}


def launch(modes, **kwargs):
    return distributed.launch_workers(TARGET, {"modes": modes}, workers=len(modes),
                                      env=ENV, **kwargs)


# ----------------------------------------------------------------------------- cluster
def test_free_ports_are_distinct_and_bindable():
    ports = distributed.free_ports(4)
    assert len(set(ports)) == 4 and all(1024 <= p < 65536 for p in ports)


def test_tf_config_is_one_cluster_with_own_task():
    configs = [distributed.tf_config([4001, 4002], i) for i in range(2)]
    assert configs[0]["cluster"] == configs[1]["cluster"] == {
        "worker": ["127.0.0.1:4001", "127.0.0.1:4002"]}
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0},
                                            {"type": "worker", "index": 1}]


@pytest.mark.parametrize("ports, index, error, argument", [
    ([], 0, ValueError, "ports"), ([4001, 4001], 0, ValueError, "ports"),
    ([4001], 1, ValueError, "index"), ([4001], -1, ValueError, "index"),
    ([4001], True, TypeError, "index"), ([4001], "0", TypeError, "index")])
def test_tf_config_rejects(ports, index, error, argument):
    with pytest.raises(error) as info:
        distributed.tf_config(ports, index)
    assert info.value.argument == argument


def test_counts_may_be_numpy_ints():
    import numpy as np

    assert distributed.tf_config([np.int64(4001), 4002], np.int32(1))["task"]["index"] == 1
    assert len(distributed.free_ports(np.int64(2))) == 2


@pytest.mark.parametrize("raw, expected", [("", 0), ('{"task": {"index": 1}}', 1)])
def test_worker_index(monkeypatch, raw, expected):
    monkeypatch.setenv("TF_CONFIG", raw)
    assert distributed.worker_index() == expected


def test_worker_index_rejects_a_broken_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distributed.worker_index()


# ----------------------------------------------------------------------------- launcher
@pytest.mark.parametrize("target, kwargs, options, error, argument", [
    ("no_colon", {}, {}, ValueError, "target"),
    ("a:b:c", {}, {}, ValueError, "target"),
    (":f", {}, {}, ValueError, "target"),
    (42, {}, {}, ValueError, "target"),
    ("no_such_module_xyz:f", {}, {}, ValueError, "target"),
    ("rnncourse.config:seed", {"x": object()}, {}, TypeError, None),
    ("rnncourse.config:seed", {}, {"workers": 0}, ValueError, "workers"),
    ("rnncourse.config:seed", {}, {"workers": True}, TypeError, "workers"),
    ("rnncourse.config:seed", {}, {"workers": 2.0}, TypeError, "workers"),
    ("rnncourse.config:seed", {}, {"timeout": 0}, ValueError, "timeout"),
    ("rnncourse.config:seed", {}, {"timeout": math.inf}, ValueError, "timeout"),
    ("rnncourse.config:seed", {}, {"timeout": math.nan}, ValueError, "timeout"),
    ("rnncourse.config:seed", {}, {"grace": -1}, ValueError, "grace"),
    ("rnncourse.config:seed", {}, {"grace": "5"}, TypeError, "grace"),
])
def test_launch_workers_rejects_bad_input_before_starting(target, kwargs, options, error,
                                                          argument):
    with pytest.raises(error) as info:
        distributed.launch_workers(target, kwargs, **options)
    if argument is None:
        assert "JSON" in str(info.value)
    else:
        assert info.value.argument == argument


def test_two_workers_get_their_own_tf_config_and_results():
    outcomes = launch(["ok", "ok"], timeout=120)
    assert [o.ok for o in outcomes] == [True, True], distributed.describe_failure(outcomes)
    results = [o.result for o in outcomes]
    assert [r["index"] for r in results] == [0, 1]
    assert results[0]["tf_config"]["cluster"] == results[1]["tf_config"]["cluster"]
    assert gone(outcomes)


def test_a_failed_worker_stops_its_hanging_peer_after_the_grace():
    start = time.monotonic()
    outcomes = launch(["hang", "fail"], timeout=120, grace=1)
    assert time.monotonic() - start < 60
    hung, failed = outcomes
    assert failed.returncode == 3 and not failed.stopped and failed.result is None
    assert hung.stopped and not hung.ok
    assert gone(outcomes)
    with pytest.raises(distributed.WorkerError, match="worker 1 .* exited with status 3"):
        distributed.run_workers(TARGET, {"modes": ["ok", "fail"]}, timeout=120,
                                env=ENV)


def test_the_timeout_stops_every_worker():
    outcomes = launch(["hang", "sleep1"], timeout=4)
    assert outcomes[0].stopped and 4 <= outcomes[0].seconds < 30
    assert outcomes[1].ok  # ended by itself before the timeout
    assert gone(outcomes)


# ----------------------------------------------------------------------------- input
def test_replica_batches_cut_each_global_batch_into_equal_padded_slices():
    import numpy as np
    import tensorflow as tf

    ids = np.arange(1, 5 * 4 + 1, dtype="int32").reshape(5, 4)  # one batch of 5 rows
    batches = tf.data.Dataset.from_tensors((ids, ids * 0)).repeat(2)
    got = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, 2)
        got.append([tuple(t.numpy() for t in s)
                    for s in distributed.replica_batches(batches, context)])
    assert [len(g) for g in got] == [2, 2]  # one slice per global batch per worker
    assert [g[0][0].shape for g in got] == [(3, 4), (2, 4)]  # ceil(5 / 2), then the rest
    assert np.array_equal(np.concatenate([got[0][1][0], got[1][1][0]]), ids)
    # one pipeline feeding two replicas (MirroredStrategy): both slices, in order
    both = list(distributed.replica_batches(batches.take(1), tf.distribute.InputContext(
        1, 0, 2)))
    assert [tuple(b[0].shape) for b in both] == [(3, 4), (2, 4)]
    with pytest.raises(ValueError, match="replicas over"):
        distributed.replica_batches(batches, tf.distribute.InputContext(2, 0, 3))


def test_global_token_weights_average_over_the_global_batch():
    import numpy as np
    import tensorflow as tf

    ids = tf.constant([[5, 6, 0, 0], [7, 0, 0, 0]])
    weights = distributed.global_token_weights(ids).numpy()
    assert np.allclose(weights, [[1 / 3, 1 / 3, 0, 0], [1 / 3, 0, 0, 0]])
    assert float(distributed.global_token_weights(tf.zeros((2, 3), "int32")).numpy().sum()) == 0
    with pytest.raises(ValueError, match="must be 2-D"):
        distributed.global_token_weights(tf.constant([1, 2]))


def test_multi_worker_model_shares_the_layers_and_refuses_a_scope():
    import numpy as np
    import tensorflow as tf

    from rnncourse import models

    tagger = models.sequence_tagger(20, 3, units=4, embedding_dim=5, seed=1)
    model = distributed.multi_worker_model(tagger)
    assert [id(w) for w in model.weights] == [id(w) for w in tagger.weights]
    ids = np.array([[3, 4, 0]], "int32")
    np.testing.assert_array_equal(model(ids), tagger(ids))
    # one process, no workers: trains and logs a scalar loss like any model
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(ids, np.array([[1, 2, 0]]), epochs=1, verbose=0)
    assert isinstance(history.history["loss"][0], float)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(RuntimeError, match="outside strategy.scope"):
            distributed.multi_worker_model(tagger)
    with pytest.raises(TypeError) as info:
        distributed.multi_worker_model(object())
    assert info.value.argument == "model"


# ----------------------------------------------------------------------------- chapter 7
BOOK = Path(HERE).parent / "book" / "07_scaling_out.ipynb"


def write_worker_script(folder: Path) -> Path:
    """Chapter 7's worker script, as its page writes it (the ``%%writefile`` cells)."""
    cells = json.loads(BOOK.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    parts = [src.split("\n", 1)[1] for src in sources if src.startswith("%%writefile")]
    assert len(parts) >= 3, "the page no longer writes tagger_worker.py"
    path = folder / "tagger_worker.py"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ch07():
    from rnncourse.chapters import ch07_scaling

    return ch07_scaling


@pytest.fixture(scope="module")
def tiny(ch07):
    return Settings(scale="ci", seed=0, sizes=ch07.Sizes(tweets=80, epochs=2, units=4),
                    recipe=dataclasses.replace(ch07.RECIPE, corpus="synthetic",
                                               batch_size=16, glove_dim=8, kill_batch=1,
                                               collective_timeout=30.0,
                                               worker_timeout=150.0, worker_grace=45.0))


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_global_batches_cut_into_replica_slices_put_back_together(ch07, replicas):
    import numpy as np
    import tensorflow as tf

    data = ch07.tagging_set(40, 3, glove_dim=8, corpus="synthetic")
    batches = ch07.global_batches(data.x, data.y, 16)
    shares = [list(distributed.replica_batches(
        batches, tf.distribute.InputContext(replicas, worker, replicas)).take(2))
        for worker in range(replicas)]
    for step, (ids, tags, weights) in enumerate(batches.take(2)):
        assert ids.shape == tags.shape == weights.shape and ids.shape[0] <= 16
        np.testing.assert_allclose(float(tf.reduce_sum(weights)), 1.0, rtol=1e-6)
        parts = [share[step][0].numpy() for share in shares]
        assert all(p.shape[1] == ids.shape[1] for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), ids.numpy())


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    folder = tmp_path_factory.mktemp("script")
    write_worker_script(folder)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("tagger_worker", None)


def load(reports):
    """Worker 0's final weights and each replica's first-batch gradients (compiled loss),
    as the page's ``run`` reads them from the script's ``.npz`` files."""
    import numpy as np

    arrays = {}
    for report in reports[::-1]:
        with np.load(report["path"]) as saved:
            arrays.update({key: saved[key] for key in saved.files})

    def listed(prefix):
        return [arrays[f"{prefix}{i}"] for i in range(len(arrays)) if f"{prefix}{i}" in arrays]

    return {"reports": reports, "weights": listed("weight_"),
            "gradient": [listed(f"gradient_{r}_") for r in range(reports[0]["replicas"])]}


def max_abs_diff(a, b):
    import numpy as np

    assert len(a) == len(b) > 0
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def workers(ch07, tiny, script, out, **extra):
    kwargs = {**ch07.worker_kwargs(out, tiny), "kind": "multi_worker", **extra}
    env = {"PYTHONPATH": os.pathsep.join([str(script), os.path.dirname(HERE)])}
    return distributed.launch_workers("tagger_worker:train_tagger", kwargs, workers=2,
                                      env=env, timeout=tiny.recipe.worker_timeout,
                                      grace=tiny.recipe.worker_grace)


@pytest.fixture(scope="module")
def runs(ch07, tiny, script, tmp_path_factory):
    import tagger_worker

    out = str(tmp_path_factory.mktemp("ch07"))
    single = load([tagger_worker.train_tagger(kind="single", **ch07.worker_kwargs(out, tiny))])
    outcomes = workers(ch07, tiny, script, out)
    assert all(o.ok for o in outcomes), distributed.describe_failure(outcomes)
    multi = load([o.result for o in outcomes])
    return out, single, multi


def test_two_workers_match_one_process(runs):
    import numpy as np

    _, single, multi = runs
    assert [r["replicas"] for r in multi["reports"]] == [2, 2]
    assert [r["worker"] for r in multi["reports"]] == [0, 1]
    steps = single["reports"][0]["steps_per_epoch"]
    assert all(r["steps_per_epoch"] == steps for r in multi["reports"])
    assert max_abs_diff(single["weights"], multi["weights"]) < 1e-5
    mean = [np.mean(parts, axis=0) for parts in zip(*multi["gradient"], strict=True)]
    assert max_abs_diff(single["gradient"][0], mean) < 1e-5
    # multi_worker_model: both workers log the mean over the workers, a plausible loss
    losses = [r["loss"] for r in multi["reports"]]
    assert losses[0] == losses[1] and 0 < losses[0] < 10


def test_a_lost_worker_fails_its_peer_and_the_restart_resumes(ch07, tiny, script, runs):
    out, _, multi = runs
    r = tiny.recipe
    backup = str(Path(out) / "backup")
    outcomes = workers(ch07, tiny, script, out, backup_dir=backup,
                       kill=[r.kill_worker, r.kill_epoch, r.kill_batch])
    resumed_outcomes = workers(ch07, tiny, script, out, backup_dir=backup)
    assert all(o.ok for o in resumed_outcomes), distributed.describe_failure(resumed_outcomes)
    resumed = load([o.result for o in resumed_outcomes])
    killed = outcomes[r.kill_worker]
    survivor = next(o for o in outcomes if o.index != r.kill_worker)
    assert killed.returncode == -9
    # the survivor ends by itself with an error, well before the launcher would stop it
    assert not survivor.stopped and survivor.returncode not in (0, None)
    assert survivor.seconds - killed.seconds < r.collective_timeout
    assert "Error" in survivor.stderr_tail
    assert gone([killed, survivor])
    assert [x["first_epoch"] for x in resumed["reports"]] == [r.kill_epoch] * 2
    assert max_abs_diff(multi["weights"], resumed["weights"]) < 1e-6

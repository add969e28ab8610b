"""Sphinx extension: execute the book's notebooks side by side, before Sphinx reads them.

In ``cache`` mode myst-nb executes a notebook when Sphinx reads it, so the notebooks run one
after another, and a notebook that trains small models leaves the second core mostly idle.
Here, at ``env-before-read-docs``, every notebook about to be read that jupyter-cache has no
execution of runs in ``RNNCOURSE_BOOK_WORKERS`` kernels at once (default: one per core),
longest first. Each executed notebook goes into the same jupyter-cache, with its run time,
so myst-nb then finds it there and executes nothing; the execution table of the intro shows
those run times. The execution itself is myst-nb's: jupyter-cache's ``single_nb_execution``
in the notebook's folder, with the book's timeout and error rule.

"Longest first" uses the seconds this extension wrote at the last build
(``<build>/../execution-seconds.json``, kept when the cache is cleared), else
:data:`TYPICAL_SECONDS`, else the order of the table of contents. A notebook that fails
stops the build with its traceback.

Why not jupyter-cache's own ``local-parallel`` executor (jupyter-cache 1.0.1,
``executors/basic.py``)? It takes ``multiprocessing.Pool()``, one process per core with no
way to set fewer, and hands out notebooks with ``pool.map`` in chunks (two notebooks per
chunk for ten notebooks on two cores), so the two longest can land on one worker. A failing
notebook only gets its traceback stored, and myst-nb then runs it again, alone, while
reading. Nothing in it ends its worker processes when the build is killed (here
:func:`_die_with_the_build` does).
"""

import contextlib
import json
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)
# Full-scale seconds per notebook, two at a time on two cores (a clean clone's `make book`,
# 2026-12-03): only the order of the first build on a machine; later builds use their own.
TYPICAL_SECONDS = {"06_training_loops.ipynb": 427, "09_rnn_or_attention.ipynb": 347,
                   "02_gru_lstm.ipynb": 255, "03_embeddings_glove.ipynb": 163,
                   "01_rnn_gradients.ipynb": 149, "07_scaling_out.ipynb": 126,
                   "05_tbptt.ipynb": 120, "04_variable_length_batching.ipynb": 65,
                   "08_your_project.ipynb": 13, "00_setup.ipynb": 12}
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of IPython's tracebacks


def _execute(path, in_temp, timeout, allow_errors):
    """Run one notebook (in a worker process), in its folder or, like myst-nb with
    ``execution_in_temp``, in an empty temporary one. Returns (executed notebook, seconds,
    traceback or None)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    folder = tempfile.TemporaryDirectory() if in_temp else contextlib.nullcontext(
        str(Path(path).parent))
    with folder as cwd:
        result = single_nb_execution(notebook, cwd=cwd, timeout=timeout,
                                     allow_errors=allow_errors, meta_override=True)
    return result.nb, result.time, result.exc_string if result.err else None


def _die_with_the_build():
    """Worker start-up, on Linux: the worker is killed when the build process dies (a build
    stopped with SIGTERM or SIGKILL leaves no worker running; its kernel exits with it)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PDEATHSIG
    except (OSError, AttributeError):  # not Linux: Ctrl-C still reaches every process
        pass


def _workers():
    value = os.environ.get("RNNCOURSE_BOOK_WORKERS", "").strip()
    if not value:
        return os.cpu_count() or 1
    if not value.isdigit():
        raise ExtensionError(f"RNNCOURSE_BOOK_WORKERS must be a whole number, not {value!r}")
    return max(int(value), 1)


def _seconds(path):
    """Notebook file name -> seconds, as the last build wrote them ({} without a record)."""
    try:
        records = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in records.items() if isinstance(v, (int, float))} \
        if isinstance(records, dict) else {}


def _execute_uncached(app, env, docnames):
    config = getattr(env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(config.execution_cache_path)
    pending = []
    for docname in docnames:
        path = Path(env.doc2path(docname))
        if path.suffix != ".ipynb":
            continue
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:  # no execution of this code in the cache
            pending.append(path)
    workers = min(_workers(), len(pending))
    if workers < 2:  # nothing to gain: myst-nb executes it as it reads
        return
    record_path = Path(config.execution_cache_path).parent / "execution-seconds.json"
    own = _seconds(record_path)
    pending.sort(key=lambda p: -own.get(p.name, TYPICAL_SECONDS.get(p.name, 0.0)))  # stable
    logger.info(f"executing {len(pending)} notebooks, {workers} at a time, longest first")
    start, failures, measured = time.monotonic(), [], {}
    spawn = multiprocessing.get_context("spawn")  # no copy of Sphinx's state in the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn,
                             initializer=_die_with_the_build) as pool:
        futures = {pool.submit(_execute, str(p), config.execution_in_temp,
                               config.execution_timeout, config.execution_allow_errors): p
                   for p in pending}
        for done, future in enumerate(as_completed(futures), 1):
            path = futures[future]
            notebook, seconds, error = future.result()
            if error:
                failures.append(f"{path.name}:\n{ANSI.sub('', error)}")
                logger.info(f"[{done}/{len(pending)}] {path.name} FAILED after {seconds:.0f} s")
                continue
            stage = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, stage.uri, data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            measured[path.name] = round(seconds, 1)
            logger.info(f"[{done}/{len(pending)}] {path.name}: {seconds:.0f} s "
                        f"({time.monotonic() - start:.0f} s since the first started)")
    if measured:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps({**own, **measured}, indent=1, sort_keys=True) + "\n")
    if failures:
        raise ExtensionError("notebook execution failed:\n\n" + "\n\n".join(failures))


def setup(app):
    app.connect("env-before-read-docs", _execute_uncached)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

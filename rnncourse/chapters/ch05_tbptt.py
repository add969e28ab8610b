"""Chapter 5, truncated BPTT: the chapter's sizes and its memory measurement (see
:mod:`rnncourse.chapters`).

The data, the stateful and the explicit-state trainings, generation and every statistic a
claim rests on are on the page, ``book/05_tbptt.ipynb``. This module keeps what the page
need not show:

* :func:`activation_bytes`: the memory arithmetic of a backward pass through an LSTM, the
  formula the page states;
* :func:`measure_memory` (:func:`memory_vs_length` in a fresh process): the measured peak
  memory of one training pass per sequence length, full BPTT vs TBPTT.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, config, models, process, tbptt
from rnncourse.chapters import Settings, settings_for

config.quiet_tensorflow()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "PLAYS", "activation_bytes",
           "MemoryResult", "memory_vs_length", "measure_memory"]

PLAYS = ("macbeth", "hamlet", "othello", "king-lear")
"""The plays of the Shakespeare corpus the chapter reads, in this order."""


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        plays: how many of :data:`PLAYS` to read.
        characters: characters of text kept (the start of the plays).
        sequence_length: ``L``, characters per training sequence.
        units: LSTM units of the language model.
        epochs: training epochs of each language model.
        sample_characters: characters the batch-1 generator samples.
        memory_lengths: sequence lengths of the memory measurement.
        memory_units: LSTM units of the memory measurement.
        memory_sequences: sequences side by side (the batch) in the memory measurement.
    """

    plays: int
    characters: int
    sequence_length: int
    units: int
    epochs: int
    sample_characters: int
    memory_lengths: tuple[int, ...]
    memory_units: int
    memory_sequences: int


SIZES = {
    "ci": Sizes(plays=1, characters=60_000, sequence_length=200, units=128, epochs=4,
                sample_characters=80, memory_lengths=(50, 100, 200), memory_units=64,
                memory_sequences=16),
    "full": Sizes(plays=4, characters=300_000, sequence_length=400, units=192, epochs=4,
                  sample_characters=400, memory_lengths=(200, 500, 1000),
                  memory_units=128, memory_sequences=32),
}


@dataclass(frozen=True)
class Recipe:
    """The chapter's recipe, the same at both scales."""

    window: int = 25
    batch_size: int = 32
    embedding_dim: int = 32
    learning_rate: float = 1e-2
    clipnorm: float = 1.0
    validation_fraction: float = 0.1
    temperature: float = 0.7
    memory_vocabulary: int = 64


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


def activation_bytes(batch_size: int, timesteps: int, units: int, input_dim: int,
                     output_dim: int = 0, dtype_bytes: int = 4) -> int:
    """Rough bytes a backward pass keeps for an LSTM(+Dense) over ``timesteps`` steps.

    Per sample and step: the input (``input_dim``), four gate pre-activations and
    activations (``8 * units``), the cell and hidden states and ``tanh(c)`` (``3 * units``),
    and the logits and softmax of an output layer (``2 * output_dim``). It grows linearly
    in ``batch_size * timesteps``: TBPTT bounds ``timesteps`` by the window.
    """
    per_step = input_dim + 11 * units + 2 * output_dim
    return int(batch_size) * int(timesteps) * per_step * dtype_bytes


@dataclass(frozen=True)
class MemoryResult:
    """Peak bytes of one training pass over ``(batch_size, L)`` sequences, per ``L``.

    Attributes:
        lengths: the sequence lengths ``L``.
        full_bptt: bytes with one gradient through all ``L`` steps.
        tbptt: bytes with ``L / window`` updates, the gradient through ``window`` steps each.
        estimate: :func:`activation_bytes` of full BPTT for each ``L``.
        window: the TBPTT window.
    """

    lengths: tuple[int, ...]
    full_bptt: tuple[int, ...]
    tbptt: tuple[int, ...]
    estimate: tuple[int, ...]
    window: int


def _pass_peak_bytes(fn, *args) -> int:
    """Peak allocator bytes while ``fn(*args)`` runs, above what was live before."""
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    gc.collect()
    gc.disable()  # no collection in the middle of the pass: frees happen at fixed points
    try:
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        fn(*args)
        return int(tf.config.experimental.get_memory_info(device)["peak"] - before)
    finally:
        gc.enable()


def memory_vs_length(lengths, window: int = 25, batch_size: int = 32, units: int = 128,
                     vocab_size: int = 64, embedding_dim: int = 32, seed: int = 0,
                     eager: bool = True) -> dict:
    """Measure, in *this* process, the peak bytes of one training pass per sequence length.

    For each ``L``: full BPTT (a :class:`~rnncourse.tbptt.TBPTTTrainer` whose window is
    ``L``) and TBPTT (windows of ``window``), on the same model and random ids, with a
    learning rate of 0. The ``tf.function`` steps run eagerly, one op after the other on
    one thread, so the allocator sees the same sequence of allocations on every run: a
    compiled graph runs independent ops in an order that changes from run to run, and its
    peak with it (up to 2x at these sizes). ``eager=False`` measures the compiled steps
    instead, as training runs them (``benchmarks/tbptt_memory.py`` prints both). Call it
    through :func:`measure_memory`, which gives it a fresh process with TensorFlow's
    counting (BFC) allocator.

    Returns:
        ``{"lengths", "full_bptt", "tbptt"}``: lists of bytes aligned with ``lengths``.
    """
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started: the caller chose its threads
        pass
    tf.config.run_functions_eagerly(bool(eager))
    try:
        rng = np.random.default_rng(seed)
        model = models.state_char_lm(vocab_size, units, embedding_dim, seed=seed)
        optimizer = keras.optimizers.SGD(0.0)
        truncated = tbptt.TBPTTTrainer(model, optimizer, window=window)
        result = {"lengths": [int(n) for n in lengths], "full_bptt": [], "tbptt": []}
        for length in result["lengths"]:
            x = rng.integers(0, vocab_size, (batch_size, length)).astype(np.int32)
            y = rng.integers(0, vocab_size, (batch_size, length)).astype(np.int32)
            full = tbptt.TBPTTTrainer(model, optimizer, window=length)
            result["full_bptt"].append(_pass_peak_bytes(full.train_on_sequences, x, y))
            result["tbptt"].append(_pass_peak_bytes(truncated.train_on_sequences, x, y))
        return result
    finally:
        tf.config.run_functions_eagerly(False)


#: The child's environment: TensorFlow's counting allocator on the CPU too (the default
#: one does not count small tensors), one inter-op and one intra-op thread.
FRESH_ENV = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "TF_NUM_INTEROP_THREADS": "1",
             "TF_NUM_INTRAOP_THREADS": "1"}


def measure_memory(lengths, window: int = 25, batch_size: int = 32, units: int = 128,
                   vocab_size: int = 64, embedding_dim: int = 32, seed: int = 0,
                   eager: bool = True, timeout: float = 600.0) -> MemoryResult:
    """:func:`memory_vs_length` in a fresh Python process with every allocation counted
    (:data:`FRESH_ENV`). The child's allocator starts empty, so the numbers do not depend
    on what the caller ran before, nor on the load of the machine; ``estimate`` is
    :func:`activation_bytes` of full BPTT at each length.
    """
    # checked here: in the child a mistake would surface as a traceback in its stderr
    lengths = [_checks.count(n, "lengths") for n in lengths]
    _checks.fail_if(not lengths, "lengths", "must hold at least one sequence length")
    got = process.run_fresh(
        "rnncourse.chapters.ch05_tbptt:memory_vs_length",
        dict(lengths=lengths, window=window, batch_size=batch_size, units=units,
             vocab_size=vocab_size, embedding_dim=embedding_dim, seed=seed,
             eager=bool(eager)),
        env=FRESH_ENV, timeout=timeout)
    estimate = [activation_bytes(batch_size, n, units, embedding_dim, vocab_size)
                for n in lengths]
    return MemoryResult(tuple(lengths), tuple(got["full_bptt"]), tuple(got["tbptt"]),
                        tuple(estimate), window)

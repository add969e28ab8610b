"""Chapter 5, truncated BPTT: the chapter's experiments (see :mod:`rnncourse.chapters`).

* :func:`activation_bytes`: the memory arithmetic of a backward pass through an LSTM.
* :func:`run_memory` (:func:`measure_memory`, :func:`memory_vs_length`): the measured peak
  memory of one training pass, full BPTT vs TBPTT, counted in a fresh process.
* :func:`char_data`: Shakespeare as next-character sequences for the character-level LSTM
  language model that the chapter's page trains, with stateful layers and with an
  explicit-state loop.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np

from rnncourse import config, data, models, process, tbptt, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.text import CharVocabulary

config.quiet_tensorflow()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "PLAYS", "activation_bytes",
           "MemoryResult", "memory_vs_length", "measure_memory", "run_memory", "CharData",
           "char_data"]

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
    "full": Sizes(plays=4, characters=400_000, sequence_length=400, units=256, epochs=6,
                  sample_characters=400, memory_lengths=(200, 500, 1000, 2000),
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


# --------------------------------------------------------------------------- memory
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
    """

    lengths: tuple[int, ...]
    full_bptt: tuple[int, ...]
    tbptt: tuple[int, ...]
    estimate: tuple[int, ...]
    window: int
    batch_size: int
    units: int

    @property
    def growth_length(self) -> float:
        return self.lengths[-1] / self.lengths[0]

    @property
    def growth_full(self) -> float:
        return self.full_bptt[-1] / self.full_bptt[0]

    @property
    def growth_tbptt(self) -> float:
        return max(self.tbptt) / min(self.tbptt)

    @property
    def full_per_estimate(self) -> float:
        """Measured / estimated bytes of full BPTT at the longest ``L``."""
        return self.full_bptt[-1] / self.estimate[-1]


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
    ``L``) and TBPTT (windows of ``window``), on the same model and random ids. The
    ``tf.function`` steps run eagerly, one op after the other on one thread, so the
    allocator sees the same sequence of allocations on every run: a compiled graph runs
    independent ops in an order that changes from run to run, and its peak with it (up
    to 2x at these sizes). ``eager=False`` measures the compiled steps instead, as training
    runs them (``benchmarks/tbptt_memory.py`` prints both). Call it through
    :func:`measure_memory`, which gives it a fresh process with TensorFlow's counting (BFC)
    allocator.

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


def measure_memory(lengths, window: int = 25, batch_size: int = 32, units: int = 128,
                   vocab_size: int = 64, embedding_dim: int = 32, seed: int = 0,
                   eager: bool = True, timeout: float = 600.0) -> MemoryResult:
    """:func:`memory_vs_length` in a fresh Python process with every allocation counted.

    The child sets ``TF_CPU_ALLOCATOR_USE_BFC=true`` before TensorFlow starts (on the CPU
    the default allocator does not count small tensors) and one inter-op and one intra-op
    thread; its allocator starts empty, so the numbers do not depend on what the caller ran
    before, nor on the load of the machine.
    """
    lengths = tuple(int(n) for n in lengths)
    if not lengths or min(lengths) < 1:
        raise ValueError(f"lengths must be positive ints, got {lengths}")
    kwargs = dict(lengths=list(lengths), window=window, batch_size=batch_size, units=units,
                  vocab_size=vocab_size, embedding_dim=embedding_dim, seed=seed,
                  eager=bool(eager))
    env = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "TF_NUM_INTEROP_THREADS": "1",
           "TF_NUM_INTRAOP_THREADS": "1"}
    got = process.run_fresh("rnncourse.chapters.ch05_tbptt:memory_vs_length", kwargs, env=env,
                    timeout=timeout)
    estimate = tuple(activation_bytes(batch_size, n, units, embedding_dim, vocab_size)
                     for n in lengths)
    return MemoryResult(lengths, tuple(got["full_bptt"]), tuple(got["tbptt"]), estimate,
                        window, batch_size, units)


def run_memory(setup: Settings[Sizes, Recipe] | None = None) -> MemoryResult:
    """:func:`measure_memory` at the chapter's sizes: full BPTT vs TBPTT per ``L``."""
    s = setup or settings()
    return measure_memory(s.sizes.memory_lengths, window=s.recipe.window,
                          batch_size=s.sizes.memory_sequences, units=s.sizes.memory_units,
                          vocab_size=s.recipe.memory_vocabulary,
                          embedding_dim=s.recipe.embedding_dim, seed=config.seed(0))


# --------------------------------------------------------------------------- language model
@dataclass(frozen=True)
class CharData:
    """Shakespeare as consecutive next-character sequences, the last share held out.

    Attributes:
        x_train, y_train: ``(N, L)`` int32 ids and next-character targets.
        x_val, y_val: the held-out sequences, the end of the text.
        unigram_bits: entropy of the character frequencies of the whole text.
    """

    vocab: CharVocabulary
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    unigram_bits: float
    characters: int


def char_data(setup: Settings[Sizes, Recipe] | None = None) -> CharData:
    """Read the plays, encode them by character, cut sequences, hold out the end."""
    s = setup or settings()
    corpus = data.load_shakespeare(plays=list(PLAYS[: s.sizes.plays]))[: s.sizes.characters]
    vocab = text.char_vocabulary(corpus)
    ids = vocab.encode(corpus)
    x, y = tbptt.char_sequences(ids, s.sizes.sequence_length)
    train, val = text.split_indices(len(x), s.recipe.validation_fraction, shuffle=False)
    return CharData(vocab, x[train], y[train], x[val], y[val],
                    tbptt.unigram_entropy_bits(ids, len(vocab)), len(corpus))

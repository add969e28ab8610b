"""Chapter 3, Embeddings and GloVe: the chapter's experiments (see :mod:`rnncourse.chapters`).

* :func:`lookup_vs_one_hot`, :func:`initial_table_probe`, :func:`input_length_warning`:
  probes of ``keras.layers.Embedding`` (Keras 3.15): a lookup is a one-hot product; both
  ``weights=[matrix]`` and ``embeddings_initializer=Constant(matrix)`` load a table; the
  Keras 2 argument ``input_length`` only warns.
* :func:`group_similarity`: mean cosine within and between groups of related words.
* :func:`dictionary_loader`, :func:`compare_loaders`: the tutorial loop against
  :func:`rnncourse.glove.read_glove` (same rows; what each one holds in memory).
* :func:`one_hot_vs_dense_bytes`: the memory arithmetic of one-hot inputs, ids and
  pre-built vectors.
* :func:`sentiment_data`, :class:`SentimentComparison`: the capstone's inputs and the
  statistics of its runs. The page trains a sentiment LSTM whose embedding table starts
  from GloVe (fine-tuned or frozen) or at random, from ``repeats`` seeds per variant on
  the same split.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, config, models, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.embeddings import CoverageReport, embedding_matrix
from rnncourse.glove import GloveVectors, read_glove
from rnncourse.text import Vocabulary

config.quiet_tensorflow()
import keras  # noqa: E402

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "VARIANTS",
           "lookup_vs_one_hot", "initial_table_probe", "input_length_warning",
           "dictionary_loader", "LoaderComparison", "compare_loaders",
           "group_similarity", "one_hot_vs_dense_bytes", "SentimentData", "sentiment_data",
           "SentimentComparison"]

VARIANTS = ("glove", "random", "glove_frozen")
"""The compared embedding tables: GloVe fine-tuned, random (trained), GloVe frozen."""


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        epochs: training epochs of each sentiment run.
        repeats: training seeds per variant (mean and spread over them).
        glove_words: GloVe rows (most frequent first) loaded for neighbours and analogies.
    """

    epochs: int
    repeats: int
    glove_words: int


SIZES = {"ci": Sizes(epochs=4, repeats=3, glove_words=100_000),
         "full": Sizes(epochs=10, repeats=5, glove_words=400_000)}


@dataclass(frozen=True)
class Recipe:
    """The sentiment experiment's recipe, the same at both scales.

    ``train_sentences`` labelled sentences (of the 3,200 in the training split) is part
    of the question asked (few labels), so both scales use it; validation uses the other
    800 sentences.
    """

    train_sentences: int = 1000
    validation_fraction: float = 0.2
    vocabulary_from_all: bool = True
    timesteps: int = 50
    units: int = 32
    dropout: float = 0.3
    learning_rate: float = 5e-3
    batch_size: int = 32
    variants: tuple[str, ...] = VARIANTS


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


# =========================================================================== Keras probes
def lookup_vs_one_hot(matrix: np.ndarray, ids: np.ndarray) -> float:
    """Max abs difference between ``Embedding(ids)`` and ``one_hot(ids) @ matrix``.

    ``ids``: ``(batch, timesteps)`` ints. The layer is :func:`rnncourse.models.embedding`
    started from ``matrix`` (no mask: id 0 is an ordinary row here).
    """
    layer = models.embedding(len(matrix), embeddings=matrix, mask_zero=False)
    looked_up = keras.ops.convert_to_numpy(layer(np.asarray(ids, dtype="int32")))
    one_hot = keras.ops.convert_to_numpy(keras.ops.one_hot(ids, len(matrix)))
    return float(np.abs(looked_up - one_hot @ matrix).max())


def initial_table_probe(matrix: np.ndarray) -> dict[str, bool]:
    """Whether each Keras 3 way of passing a start table gives exactly ``matrix``.

    ``"weights"``: ``Embedding(..., weights=[matrix])`` (Keras 3.15's constructor builds
    the layer and calls ``set_weights``, as Keras 2 did); ``"constant"``:
    ``embeddings_initializer=keras.initializers.Constant(matrix)``.
    """
    n, d = matrix.shape
    layers = {"weights": keras.layers.Embedding(n, d, weights=[matrix]),
              "constant": keras.layers.Embedding(
                  n, d, embeddings_initializer=keras.initializers.Constant(matrix))}
    out = {}
    for name, layer in layers.items():
        layer.build()
        out[name] = bool(np.array_equal(keras.ops.convert_to_numpy(layer.embeddings),
                                        matrix))
    return out


def input_length_warning() -> str | None:
    """What Keras says to ``Embedding(..., input_length=10)`` (Keras 2 code), or ``None``.

    Keras 3.15 pops the argument and warns (caught here, not shown); the sequence length
    comes from the input, so ``keras.Input(shape=(None,))`` works.
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            keras.layers.Embedding(10, 2, input_length=10)
        except (TypeError, ValueError) as error:
            return str(error)
    messages = [str(w.message) for w in caught if "input_length" in str(w.message)]
    return messages[0] if messages else None


# =========================================================================== loaders
def dictionary_loader(path: str | os.PathLike, max_lines: int | None = None
                      ) -> dict[str, np.ndarray]:
    """The loader found in many tutorials: one ``dict`` entry per line, every word.

    The baseline of the chapter's loading comparison: every line's word and vector go
    into one dictionary, whether or not the vocabulary needs them.

    Args:
        path: a GloVe text file.
        max_lines: stop after this many lines (``None``: the whole file).
    """
    embeddings_index = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            if max_lines is not None and line_no >= max_lines:
                break
            values = line.split()
            word = values[0]
            coefs = np.asarray(values[1:], dtype="float32")
            embeddings_index[word] = coefs
    return embeddings_index


@dataclass(frozen=True)
class LoaderComparison:
    """The dictionary loop against :func:`rnncourse.glove.read_glove` on one vocabulary.

    Attributes:
        seconds: wall time per loader (``dictionary``, ``read_glove``), for the figure
            only: it depends on the machine's load, so nothing asserts it.
        vector_bytes: float32 bytes of word vectors each loader keeps (counted, not timed):
            the dictionary holds every line's vector, the reader only the kept rows.
        lines: lines of the file read.
        kept: vocabulary words found in the file.
        same_vectors: the two loaders gave identical float32 rows for the kept words.
    """

    seconds: dict[str, float]
    vector_bytes: dict[str, int]
    lines: int
    kept: int
    same_vectors: bool


def compare_loaders(path: str | os.PathLike, words: Iterable[str],
                    max_lines: int | None = None) -> LoaderComparison:
    """Load the GloVe rows of ``words`` two ways: the dictionary loop, :func:`read_glove`.

    Both read the first ``max_lines`` lines (all when ``None``).
    ``benchmarks/glove_loading.py`` times the reader against other readers, with repeats.
    """
    words = list(dict.fromkeys(words))
    start = time.perf_counter()
    table = dictionary_loader(path, max_lines)
    reference = {w: table[w] for w in words if w in table}
    dictionary = time.perf_counter() - start
    lines, table_bytes = len(table), sum(v.nbytes for v in table.values())
    del table
    start = time.perf_counter()
    read = read_glove(path, vocabulary=words, max_words=max_lines, lowercase=False)
    reader = time.perf_counter() - start
    same = set(read.words) == set(reference) and all(
        np.array_equal(reference[w], v) for w, v in zip(read.words, read.vectors, strict=True))
    return LoaderComparison(
        seconds={"dictionary": dictionary, "read_glove": reader},
        vector_bytes={"dictionary": table_bytes, "read_glove": int(read.vectors.nbytes)},
        lines=lines, kept=len(read), same_vectors=bool(same))


# =========================================================================== geometry
def group_similarity(vectors: GloveVectors, groups: Mapping[str, Sequence[str]]
                     ) -> tuple[float, float]:
    """Mean cosine similarity of word pairs within a group and across groups.

    Args:
        vectors: GloVe vectors holding every word of ``groups``.
        groups: ``{"animals": ["cat", "dog", ...], ...}``, at least two groups.

    Returns:
        ``(within, between)``: mean over distinct pairs of the same group, and over pairs
        from different groups.
    """
    if len(groups) < 2:
        raise ValueError(f"need at least two groups to compare, got {len(groups)}")
    words = [w for ws in groups.values() for w in ws]
    missing = [w for w in words if w not in vectors]
    if missing:
        raise KeyError(f"words without a vector: {missing}; load more GloVe rows")
    label = np.repeat(np.arange(len(groups)), [len(ws) for ws in groups.values()])
    unit = vectors.unit_vectors()[[vectors.index[w] for w in words]]
    cosine = unit @ unit.T
    pairs = ~np.eye(len(words), dtype=bool)
    same = label[:, None] == label[None, :]
    return float(cosine[same & pairs].mean()), float(cosine[~same].mean())


# =========================================================================== memory
def one_hot_vs_dense_bytes(vocab_size: int, dim: int, batch_size: int, timesteps: int
                           ) -> dict[str, int]:
    """float32 bytes of one batch fed as one-hot vectors vs ids + an embedding table.

    Returns ``{"one_hot": batch*timesteps*vocab*4, "ids": batch*timesteps*4,
    "table": vocab*dim*4, "dense_batch": batch*timesteps*dim*4}``.
    """
    vocab_size, dim = _checks.count(vocab_size, "vocab_size"), _checks.count(dim, "dim")
    batch_size = _checks.count(batch_size, "batch_size")
    timesteps = _checks.count(timesteps, "timesteps")
    tokens = batch_size * timesteps
    return {"one_hot": tokens * vocab_size * 4, "ids": tokens * 4,
            "table": vocab_size * dim * 4, "dense_batch": tokens * dim * 4}


# =========================================================================== sentiment
@dataclass(frozen=True)
class SentimentData:
    """The sentiment experiment's inputs.

    Attributes:
        vocab: built from the tokens of both splits (no labels) or of training only.
        glove: the GloVe rows of the vocabulary's words.
        matrix: ``(len(vocab), dim)`` float32: GloVe rows, truncated-normal OOV rows.
        report: GloVe coverage of the vocabulary.
        x_train, x_val: ``(n, timesteps)`` int32 ids, post-padded.
        y_train, y_val: ``(n,)`` float32 labels (1 positive).
        split_seed: seed of the train/validation split.
    """

    vocab: Vocabulary
    glove: GloveVectors
    matrix: np.ndarray
    report: CoverageReport
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    split_seed: int


def sentiment_data(texts: Sequence[str], labels: Sequence[int], glove_path: str | os.PathLike,
                   setup: Settings[Sizes, Recipe] | None = None) -> SentimentData:
    """Split (``text.split_indices``, seed ``config.seed(0)``), vocabulary, GloVe matrix.

    The first ``recipe.train_sentences`` sentences of the training split are kept (few
    labels: the case pretrained vectors are for); validation keeps the whole held-out
    share. Sentences longer than ``recipe.timesteps`` tokens are cut.
    """
    s = setup or settings()
    r = s.recipe
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels differ in length ({len(texts)} vs {len(labels)}); "
                         "pass one label per text")
    split_seed = config.seed(0)
    train, val = text.split_indices(len(texts), r.validation_fraction, seed=split_seed)
    order = np.random.default_rng(split_seed).permutation(train)[:r.train_sentences]
    tokens = [t.split() for t in texts]
    labels = np.asarray(labels, dtype=np.float32)
    tr_tokens = [tokens[i] for i in order]
    va_tokens = [tokens[i] for i in val]
    # The vocabulary may use all the text (no labels): words seen only in validation then
    # get GloVe vectors with GloVe, random untrained ones without it.
    vocab = Vocabulary.from_tokens(tr_tokens + va_tokens if r.vocabulary_from_all
                                   else tr_tokens)
    glove = read_glove(glove_path, vocabulary=vocab.words)
    matrix, report = embedding_matrix(vocab, glove)

    def pad(token_lists):
        return text.pad(vocab.encode_batch(token_lists), maxlen=r.timesteps, truncating="post")

    return SentimentData(vocab, glove, matrix, report, pad(tr_tokens), labels[order],
                         pad(va_tokens), labels[val], split_seed)


@dataclass(frozen=True)
class SentimentComparison:
    """Validation accuracy of every variant, trained from the same seeds on one split.

    Attributes:
        variants: the compared variants (keys of ``val_accuracy``).
        seeds: training seeds, one run per variant and seed.
        val_accuracy: ``{variant: (repeats, epochs)}`` validation accuracy per epoch.
        train_sentences: labelled training sentences.
        split_seed: seed of the data split.
    """

    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    val_accuracy: dict[str, np.ndarray]
    train_sentences: int
    split_seed: int

    def best(self, variant: str) -> np.ndarray:
        """``(repeats,)`` best-epoch validation accuracy of each run."""
        return self.val_accuracy[variant].max(axis=1)

    def mean(self, variant: str) -> float:
        """Mean over seeds of the best-epoch validation accuracy."""
        return float(self.best(variant).mean())

    def spread(self, variant: str) -> float:
        """Standard deviation over seeds of the best-epoch validation accuracy."""
        return float(self.best(variant).std(ddof=1)) if len(self.seeds) > 1 else 0.0

    def gap(self, a: str, b: str) -> tuple[float, float]:
        """Mean and standard deviation over seeds of the paired difference ``a - b``.

        Runs with the same seed share the LSTM's initial weights, so the paired
        difference can remove part of the seed noise.
        """
        diff = self.best(a) - self.best(b)
        return float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0

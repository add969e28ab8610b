"""Chapter 6, training loops and the BiLSTM tagger: what the page need not show.

Follows the chapter contract of :mod:`rnncourse.chapters`: :class:`Sizes` (what the scale
changes), one :data:`RECIPE` for both scales and :func:`settings`. Every model, loss,
optimizer and loop the chapter trains is on its page (``book/06_training_loops.ipynb``);
this module holds the rest:

* data assembly: the WNUT-16 tweets with their GloVe rows (:func:`load_tweets`), encoded
  under each vocabulary strategy (:data:`STRATEGIES`, :func:`encode_tweets`), the reader's
  pre-embedded layout (:func:`reader_layout`) and rows of equal length
  (:func:`equal_length_rows`);
* probes and comparisons: :func:`perfect_prediction_scores`, :func:`max_abs_diff`;
* result dataclasses for :mod:`rnncourse.plots.training`: :class:`AccumulationResult`,
  :class:`TaggerRun`, :class:`TaggerComparison`; formatting (:func:`format_tagged`) and
  :func:`quiet_retracing` for the many short ``fit`` calls of the per-example loop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import config, data, embeddings, glove, text, training
from rnncourse.chapters import Settings, settings_for
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402

__all__ = [
    "Sizes", "SIZES", "Recipe", "RECIPE", "settings", "quiet_retracing", "Tweets",
    "load_tweets", "STRATEGIES", "Encoding", "encode_tweets", "reader_layout",
    "perfect_prediction_scores", "equal_length_rows", "max_abs_diff", "AccumulationResult",
    "TaggerRun", "TaggerComparison", "format_tagged",
]


# ============================================================================ settings
@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        loop_examples: training tweets the per-example ``fit`` loop runs on.
        loop_epochs: epochs of the loop comparison.
        tagger_tweets: tweets used for the tagger (training + validation).
        tagger_epochs: most epochs of a tagger run (early stopping may end it sooner).
        units: LSTM units per direction of the tagger and the reader's model.
        repeats: seeds per tagger variant.
    """

    loop_examples: int
    loop_epochs: int
    tagger_tweets: int
    tagger_epochs: int
    units: int
    repeats: int


SIZES = {
    "ci": Sizes(loop_examples=40, loop_epochs=2, tagger_tweets=1000, tagger_epochs=8,
                units=32, repeats=3),
    "full": Sizes(loop_examples=100, loop_epochs=3, tagger_tweets=2394, tagger_epochs=40,
                  units=64, repeats=5),
}


@dataclass(frozen=True)
class Recipe:
    """The chapter's recipe, the same at both scales.

    Attributes:
        batch_size: tweets per optimizer step.
        validation_fraction: share of tweets held out (:func:`rnncourse.text.split_indices`).
        optimizer, learning_rate: the tagger's optimizer.
        dropout: on the word vectors and on the BiLSTM outputs.
        patience: early stopping on the validation loss, best epoch's weights kept.
        glove_dim: GloVe 6B vectors used.
        min_count: training words seen fewer times and without a GloVe vector map to
            ``<oov>`` in the "trained <oov>" vocabularies, so the ``<oov>`` row is trained.
        reader_optimizer, reader_learning_rate: the reader's model (SGD, 0.1).
        accumulation_steps, accumulation_examples: micro-batches per update and examples
            in all of them together.
        accumulation_units: LSTM units of the small tagger of the accumulation check.
        accumulation_rates: learning rate per optimizer of the accumulation check.
    """

    batch_size: int = 32
    validation_fraction: float = 0.2
    optimizer: str = "adam"
    learning_rate: float = 0.01
    dropout: float = 0.5
    patience: int = 3
    glove_dim: int = 50
    min_count: int = 2
    reader_optimizer: str = "sgd"
    reader_learning_rate: float = 0.1
    accumulation_steps: int = 4
    accumulation_examples: int = 32
    accumulation_units: int = 16
    accumulation_rates: tuple[tuple[str, float], ...] = (("sgd", 0.5), ("adam", 0.01))


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


@contextlib.contextmanager
def quiet_retracing():
    """Hide TensorFlow's "triggered tf.function retracing" warnings inside the block.

    The per-example loop and the accumulation check build many short ``fit`` calls, each
    of which traces anew; the warning says so dozens of times on the page. The level of
    the ``tensorflow`` logger is restored on exit.
    """
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ============================================================================ data
@dataclass(frozen=True)
class Tweets:
    """The WNUT-16 tweets, split, with the GloVe vectors of every word they contain.

    Attributes:
        tokens, tags: one list of tokens / BIO tags per tweet.
        tag_names: tag id -> name, ``"O"`` first.
        train, val: sorted index arrays into ``tokens`` (:func:`rnncourse.text.split_indices`).
        vectors: GloVe rows of the lower-cased words of all tweets (no labels used).
        split_seed: seed of the split and of the truncated-normal rows.
    """

    tokens: list
    tags: list
    tag_names: list
    train: np.ndarray
    val: np.ndarray
    vectors: glove.GloveVectors
    split_seed: int


def load_tweets(setup: Settings | None = None) -> Tweets:
    """The first ``tagger_tweets`` WNUT-16 tweets, split with seed ``config.seed(0)``."""
    s = setup or settings()
    tokens, tags = data.load_tweet_ner()
    tokens, tags = tokens[:s.sizes.tagger_tweets], tags[:s.sizes.tagger_tweets]
    split_seed = config.seed(0)
    train, val = text.split_indices(len(tokens), s.recipe.validation_fraction, seed=split_seed)
    words = {t.lower() for sentence in tokens for t in sentence}
    vectors = glove.read_glove(data.glove_path(s.recipe.glove_dim), vocabulary=words)
    return Tweets(tokens=tokens, tags=tags, tag_names=text.tag_vocabulary(tags), train=train,
                  val=val, vectors=vectors, split_seed=split_seed)


STRATEGIES = {
    "random init": ("training words", None),
    "GloVe, training words": ("training words", "truncated_normal"),
    "GloVe + text words, trained <oov>": ("training + text words", "truncated_normal"),
    "... unknown rows zero": ("training + text words", "zeros"),
    "... one shared unknown vector": ("GloVe words only", "truncated_normal"),
}
"""Vocabulary and embedding initialisation of each tagger variant, by label.

Vocabularies: ``"training words"``: every word of the training tweets (the ``<oov>`` row is
then never trained: no training token maps to it); ``"training + text words"``: training
words seen ``min_count`` times or with a GloVe vector, plus every word of the unlabelled
text of all tweets that has a GloVe vector (rarer training words map to ``<oov>``, which is
trained on them); ``"GloVe words only"``: only words with a GloVe vector, every other word
is ``<oov>``. Initialisation: ``None`` random, else GloVe rows and ``oov`` rows
(:func:`rnncourse.embeddings.embedding_matrix`).
"""


@dataclass(frozen=True)
class Encoding:
    """Tweets as ids under one vocabulary strategy.

    Attributes:
        name: the strategy's label in :data:`STRATEGIES`.
        x, y: (n, timesteps) int32 token ids and tag ids of all tweets.
        vocab: the :class:`rnncourse.text.Vocabulary`.
        embeddings: (len(vocab), dim) float32 initial matrix, or None (random init).
        oov_train, oov_val: training / validation tokens that map to ``<oov>``.
        oov_val_in_glove: validation ``<oov>`` tokens whose word has a GloVe vector.
        train_tokens, val_tokens: tokens in the training / validation tweets.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    vocab: text.Vocabulary
    embeddings: np.ndarray | None
    oov_train: int
    oov_val: int
    oov_val_in_glove: int
    train_tokens: int
    val_tokens: int

    @property
    def oov_val_share(self) -> float:
        return self.oov_val / self.val_tokens


def _vocabulary(tweets: Tweets, kind: str, min_count: int) -> text.Vocabulary:
    train_tokens = [tweets.tokens[i] for i in tweets.train]
    counted = text.Vocabulary.from_tokens(train_tokens)
    if kind == "training words":
        return counted
    has_vector = tweets.vectors.index
    if kind == "training + text words":
        words = [w for w in counted.words[2:]
                 if counted.counts[w] >= min_count or w.lower() in has_vector]
    elif kind == "GloVe words only":
        words = [w for w in counted.words[2:] if w.lower() in has_vector]
    else:
        raise ValueError(f"vocabulary kind must be one of 'training words', "
                         f"'training + text words', 'GloVe words only', not {kind!r}")
    seen = set(words)
    for sentence in tweets.tokens:  # unlabelled text: the words only, never the tags
        for word in sentence:
            if word not in seen and word.lower() in has_vector:
                seen.add(word)
                words.append(word)
    return text.Vocabulary([text.PAD_TOKEN, text.OOV_TOKEN, *words], counted.counts)


def encode_tweets(tweets: Tweets, strategy: str, setup: Settings | None = None) -> Encoding:
    """Encode all tweets under ``strategy`` (a label of :data:`STRATEGIES`)."""
    s = setup or settings()
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, not {strategy!r}")
    kind, oov = STRATEGIES[strategy]
    vocab = _vocabulary(tweets, kind, s.recipe.min_count)
    matrix = None
    if oov is not None:
        matrix, _ = embeddings.embedding_matrix(vocab, tweets.vectors, oov=oov,
                                                seed=tweets.split_seed)
    x, y = text.encode_tagging(tweets.tokens, tweets.tags, vocab, tweets.tag_names)
    is_oov = x == text.OOV
    val_oov_words = [w for i in tweets.val for w, t in zip(tweets.tokens[i], x[i], strict=False)
                     if t == text.OOV]
    return Encoding(name=strategy, x=x, y=y, vocab=vocab, embeddings=matrix,
                    oov_train=int(is_oov[tweets.train].sum()),
                    oov_val=int(is_oov[tweets.val].sum()),
                    oov_val_in_glove=sum(w.lower() in tweets.vectors.index
                                         for w in val_oov_words),
                    train_tokens=int((x[tweets.train] != text.PAD).sum()),
                    val_tokens=int((x[tweets.val] != text.PAD).sum()))


# ============================================================================ the reader's set-up
def reader_layout(encoding: Encoding, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batches as first built: word vectors looked up in advance, padding as class 0.

    Returns:
        ``vectors``: (n, timesteps, dim) float32 embedding rows (zeros at padding);
        ``labels``: (n, timesteps, 1) int32, tag id + 1 at real tokens and 0 at padding, so
        padding is one more class to predict (nothing masks it).
    """
    if encoding.embeddings is None:
        raise ValueError("the reader looks up pre-trained vectors; pass a GloVe encoding")
    x, y = encoding.x[indices], encoding.y[indices]
    vectors = encoding.embeddings[x]
    labels = np.where(x != text.PAD, y + 1, 0).astype("int32")[..., None]
    return vectors, labels


def perfect_prediction_scores(labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """``mse`` and accuracy of a flawless one-hot prediction of ``labels``.

    ``mse`` compares the integer label with every class probability, so even perfect
    predictions score far from 0: it measures nothing useful for classification.

    Args:
        labels: (batch, timesteps) or (batch, timesteps, 1) int class ids.
        num_classes: width of the prediction.
    """
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    one_hot = keras.ops.one_hot(labels, num_classes)
    target = np.asarray(labels, dtype="float32")[..., None]
    mse = keras.metrics.MeanSquaredError()
    mse.update_state(target, one_hot)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    accuracy.update_state(labels, one_hot)
    return {"mse": float(mse.result()), "accuracy": float(accuracy.result())}


# ============================================================================ accumulation
def equal_length_rows(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows of ``x`` with the same real length (the most common one).

    Micro-batches without padding hold equal numbers of tokens, so the mean of their mean
    losses is the mean over all of them.

    Args:
        x: (examples, timesteps) int ids, 0 = padding.
        n: rows wanted.
    """
    lengths = (x != text.PAD).sum(axis=1)
    values, counts = np.unique(lengths, return_counts=True)
    best = values[np.argmax(counts)]
    if counts.max() < n:
        raise ValueError(f"only {counts.max()} rows share a length (length {best}); ask for "
                         f"at most that many, not {n}")
    return np.flatnonzero(lengths == best)[:n]


def max_abs_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Largest absolute difference between two lists of weight arrays of equal shapes."""
    return float(max(np.max(np.abs(np.asarray(u) - np.asarray(v)))
                     for u, v in zip(a, b, strict=True)))


@dataclass(frozen=True)
class AccumulationResult:
    """Largest weight differences after one epoch of micro-batches, per variant.

    ``big`` is one step on all examples at once; ``accumulated`` is Keras'
    ``gradient_accumulation_steps=steps`` over the micro-batches; ``custom`` is the page's
    ``GradientTape`` loop; ``separate`` is ``steps`` plain
    updates, one per micro-batch. Each ``diffs`` entry is ``(embedding matrix, all other
    weights)``.

    Attributes:
        diffs: ``{"accumulated-big": (emb, other), "custom-big": ...,
            "custom-accumulated": ..., "separate-big": ...}``.
        moved: largest weight change of the big-batch step itself (for scale).
    """

    optimizer: str
    steps: int
    micro_batch: int
    diffs: dict[str, tuple[float, float]]
    moved: float

    def __str__(self) -> str:
        rows = [f"{self.optimizer}: {self.steps} micro-batches of {self.micro_batch}, "
                f"big step moved weights by up to {self.moved:.2e}"]
        rows += [f"  {k:<20} embedding {e:.1e}   other weights {o:.1e}"
                 for k, (e, o) in self.diffs.items()]
        return "\n".join(rows)


# ============================================================================ the tagger
@dataclass(frozen=True)
class TaggerRun:
    """A trained tagger and what it measured on the validation tweets.

    Attributes:
        model: the trained model, weights of its best epoch.
        history: Keras' ``History.history`` (``"loss"``, ``"val_loss"``, ... per epoch).
        scores: entity scores on the validation tweets.
        true_tags, predicted_tags: one list of tags per validation tweet, real tokens only.
        val_accuracy: token accuracy over the real validation tokens.
    """

    model: keras.Model
    history: dict
    scores: training.EntityScores
    true_tags: list
    predicted_tags: list
    val_accuracy: float


@dataclass(frozen=True)
class TaggerComparison:
    """Tagger variants, each trained with the same seeds (paired runs).

    Attributes:
        seeds: the training seeds (weights, dropout, shuffling), one run each per variant.
        f1, accuracy: ``{variant: (value per seed, ...)}`` entity F1 and masked token
            accuracy on the validation tweets.
        epochs: ``{variant: (epochs trained per seed, ...)}``.
        val_losses, train_losses: ``{variant: (per-epoch array per seed, ...)}``.
        first: ``{variant: TaggerRun}`` of the first seed (model, tags, report).
        encodings: ``{variant: Encoding}``.
    """

    seeds: tuple
    f1: dict
    accuracy: dict
    epochs: dict
    val_losses: dict
    train_losses: dict
    first: dict
    encodings: dict

    @classmethod
    def from_runs(cls, runs: Mapping[str, Sequence[TaggerRun]], seeds: Sequence[int],
                  encodings: Mapping[str, Encoding]) -> TaggerComparison:
        """Collect ``{variant: [TaggerRun per seed, in the order of seeds]}``."""
        for variant, variant_runs in runs.items():
            if len(variant_runs) != len(seeds):
                raise ValueError(f"runs[{variant!r}] holds {len(variant_runs)} runs for "
                                 f"{len(seeds)} seeds; pass one run per seed")

        def per_variant(value):
            return {v: tuple(value(r) for r in rs) for v, rs in runs.items()}

        return cls(seeds=tuple(seeds), f1=per_variant(lambda r: r.scores.f1),
                   accuracy=per_variant(lambda r: r.val_accuracy),
                   epochs=per_variant(lambda r: len(r.history["loss"])),
                   val_losses=per_variant(lambda r: np.asarray(r.history["val_loss"])),
                   train_losses=per_variant(lambda r: np.asarray(r.history["loss"])),
                   first={v: rs[0] for v, rs in runs.items()},
                   encodings={v: encodings[v] for v in runs})

    def mean(self, variant: str) -> float:
        return float(np.mean(self.f1[variant]))

    def spread(self, variant: str) -> float:
        """Standard deviation of the F1 over seeds (0 with one seed)."""
        return float(np.std(self.f1[variant], ddof=1)) if len(self.seeds) > 1 else 0.0

    def gap(self, a: str, b: str) -> tuple[float, float]:
        """Mean and standard error of the paired F1 difference ``a - b`` over seeds."""
        d = np.asarray(self.f1[a]) - np.asarray(self.f1[b])
        se = float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
        return float(d.mean()), se

    def table(self) -> list[dict]:
        return [{"variant": v, "F1 mean": round(self.mean(v), 3),
                 "F1 std": round(self.spread(v), 3),
                 "F1 per seed": " ".join(f"{f:.3f}" for f in self.f1[v]),
                 "epochs": " ".join(str(e) for e in self.epochs[v]),
                 "val <oov> share": f"{self.encodings[v].oov_val_share:.1%}"}
                for v in self.f1]


def format_tagged(tokens: Sequence[str], true: Sequence[str], predicted: Sequence[str],
                  width: int = 88) -> str:
    """One tweet with its entities, wrapped at ``width`` columns.

    ``[token tag]`` is a correct entity tag, ``[token true|predicted]`` a mistake; tokens
    that are ``"O"`` in both stay plain. No line is longer than ``width``: a token longer
    than that (a long URL) is split across lines.
    """
    words = []
    for token, t, p in zip(tokens, true, predicted, strict=True):
        if t == text.OUTSIDE and p == text.OUTSIDE:
            words.append(token)
        else:
            words.append(f"[{token} {t}|{p}]" if t != p else f"[{token} {t}]")
    return textwrap.fill(" ".join(words), width=width, break_long_words=True,
                         break_on_hyphens=False)

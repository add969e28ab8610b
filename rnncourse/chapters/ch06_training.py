"""Chapter 6, training loops and the BiLSTM tagger: the chapter's experiments.

Follows the chapter contract of :mod:`rnncourse.chapters`: :class:`Sizes` (what the scale
changes), one :data:`RECIPE` for both scales, :func:`settings`, and ``run_*`` functions that
return frozen dataclasses for :mod:`rnncourse.plots.training`.

* the reader's set-up, deliberately wrong (:func:`reader_layout`, :func:`reader_tagger`) and
  its per-example loop against mini-batches (:func:`run_loop_comparison`);
* gradient accumulation against one big step (:func:`accumulation_comparison`,
  :func:`weighting_gap`) and what a learning-rate schedule sees under Keras'
  ``gradient_accumulation_steps`` (:func:`schedule_under_accumulation`);
* the tagger on WNUT-16 tweets with several vocabulary / unknown-word strategies, each over
  several seeds (:func:`load_tweets`, :func:`encode_tweets`, :func:`run_tagger_comparison`);
* ``MirroredStrategy`` over two logical CPUs against one device, in a fresh process
  (:func:`strategy_comparison`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import config, data, glove, models, text, training
from rnncourse.chapters import Settings, settings_for
from rnncourse.config import quiet_tensorflow
from rnncourse.process import run_fresh

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = [
    "Sizes", "SIZES", "Recipe", "RECIPE", "settings", "quiet_retracing", "Tweets",
    "load_tweets", "Encoding", "run_accumulation",
    "STRATEGIES", "encode_tweets", "reader_layout", "reader_tagger", "output_sums",
    "perfect_prediction_scores", "LoopComparison", "run_loop_comparison", "compile_tagger",
    "equal_length_rows", "AccumulationResult", "accumulation_comparison", "weighting_gap",
    "ScheduleProbe", "schedule_under_accumulation", "TaggerRun", "train_tagger",
    "TaggerComparison", "run_tagger_comparison", "format_tagged", "mirrored_check",
    "strategy_comparison",
]


# ============================================================================ settings
@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        loop_examples: training tweets the per-example ``fit`` loop runs on.
        loop_epochs: epochs of the loop comparison.
        tagger_tweets: tweets used for the tagger (training + validation).
        tagger_epochs: most epochs of a tagger run (early stopping usually ends it sooner).
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
(:func:`rnncourse.glove.embedding_matrix`).
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
        matrix, _ = glove.embedding_matrix(vocab, tweets.vectors, oov=oov,
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


def reader_tagger(timesteps: int, features: int, num_classes: int, units: int = 32,
                  activation: str = "sigmoid", metric: str = "mse",
                  learning_rate: float = 0.1, seed: int = 0) -> keras.Model:
    """The model as first written: pre-embedded input, sigmoid outputs, ``mse`` metric.

    Deliberately wrong, the chapter's starting point; use :func:`rnncourse.models.sequence_tagger`.
    ``(batch, timesteps, features)`` float32 word vectors (already looked up, padded with
    zero vectors) -> ``Bidirectional(LSTM)`` -> ``TimeDistributed(Dense(activation))``,
    compiled with SGD, sparse categorical cross-entropy and ``metric``. Labels are
    ``(batch, timesteps)`` ints where 0 marks padding, a class the model is asked to learn.
    Pass ``activation="softmax", metric="accuracy"`` for the corrected output layer.
    """
    glorot = keras.initializers.GlorotUniform
    inputs = keras.Input(shape=(timesteps, features), name="word_vectors")
    lstm = keras.layers.LSTM(units, return_sequences=True,
                             kernel_initializer=glorot(seed=seed + 1),
                             recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2))
    x = keras.layers.Bidirectional(lstm)(inputs)
    dense = keras.layers.Dense(num_classes, activation=activation,
                               kernel_initializer=glorot(seed=seed + 3))
    outputs = keras.layers.TimeDistributed(dense)(x)
    model = keras.Model(inputs, outputs, name=f"reader_tagger_{activation}")
    model.compile(optimizer=training.optimizer("sgd", learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=[metric])
    return model


def output_sums(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Sum over classes of the model's outputs at every step: (batch, timesteps) float.

    A softmax output sums to 1 everywhere; independent sigmoids do not, so they are not a
    distribution over tags even when sparse categorical cross-entropy trains on them.
    """
    return np.asarray(model.predict(x, verbose=0)).sum(axis=-1)


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


@dataclass(frozen=True)
class LoopComparison:
    """The reader's per-example loop against one ``fit`` over mini-batches.

    Attributes:
        per_example: history of :func:`rnncourse.training.fit_per_example` on ``subset``
            training tweets.
        minibatch: history of :func:`rnncourse.training.fit_minibatches` on all of them.
        train_tweets: training tweets (one epoch).
        subset: tweets the per-example loop ran on.
        batch_size: of the mini-batch run.
        roughness_per_example, roughness_minibatch: :func:`rnncourse.training.roughness`.
        output_sums: sigmoid outputs summed over the classes at real tokens (64 tweets).
        perfect: accuracy and ``mse`` of a flawless prediction.
        padding_share: share of label positions that are padding.
    """

    per_example: training.LoopHistory
    minibatch: training.LoopHistory
    train_tweets: int
    subset: int
    batch_size: int
    roughness_per_example: float
    roughness_minibatch: float
    output_sums: np.ndarray
    perfect: dict
    padding_share: float

    @property
    def steps_per_epoch(self) -> tuple[int, int]:
        """Optimizer steps per epoch over all training tweets: (per example, mini-batches)."""
        return self.train_tweets, math.ceil(self.train_tweets / self.batch_size)

    @property
    def fit_calls_per_epoch(self) -> tuple[int, int]:
        """``model.fit`` calls per epoch over all training tweets."""
        return self.train_tweets, 1


def run_loop_comparison(tweets: Tweets, setup: Settings | None = None) -> LoopComparison:
    """The reader's model (sigmoid, ``mse``, padding as a class), trained two ways."""
    s = setup or settings()
    encoding = encode_tweets(tweets, "GloVe, training words", s)
    vectors, labels = reader_layout(encoding, tweets.train)
    timesteps, dim, num_classes = vectors.shape[1], vectors.shape[2], len(tweets.tag_names) + 1
    n = s.sizes.loop_examples
    config.set_seed(config.seed(1))
    kwargs = {"units": s.sizes.units, "learning_rate": s.recipe.reader_learning_rate,
              "seed": config.seed(1)}
    loop_model = reader_tagger(timesteps, dim, num_classes, **kwargs)
    with quiet_retracing():
        loop = training.fit_per_example(loop_model, vectors[:n], labels[:n],
                                        epochs=s.sizes.loop_epochs)
    batch_model = reader_tagger(timesteps, dim, num_classes, **kwargs)
    batches = training.fit_minibatches(batch_model, vectors, labels,
                                       epochs=s.sizes.loop_epochs,
                                       batch_size=s.recipe.batch_size)
    real = labels[:64, :, 0] != 0
    return LoopComparison(
        per_example=loop, minibatch=batches, train_tweets=len(vectors), subset=n,
        batch_size=s.recipe.batch_size,
        roughness_per_example=training.roughness(loop.step_losses),
        roughness_minibatch=training.roughness(batches.step_losses),
        output_sums=output_sums(loop_model, vectors[:64])[real],
        perfect=perfect_prediction_scores(labels[:256], num_classes),
        padding_share=float((labels == 0).mean()))


# ============================================================================ accumulation
def compile_tagger(model: keras.Model, optimizer: str = "adam", learning_rate: float = 0.005,
                   **optimizer_kwargs) -> keras.Model:
    """Compile a tagger of :func:`rnncourse.models.sequence_tagger` for integer tags.

    Sparse categorical cross-entropy and accuracy; the embedding's mask makes both
    averages over real tokens. Returns ``model``.
    """
    model.compile(optimizer=training.optimizer(optimizer, learning_rate, **optimizer_kwargs),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


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


def _max_abs_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return float(max(np.max(np.abs(np.asarray(u) - np.asarray(v)))
                     for u, v in zip(a, b, strict=True)))


def weighting_gap(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int
                  ) -> dict[str, float]:
    """How far accumulated gradients are from the whole-batch gradient, per weighting.

    Splits (x, y) into ``steps`` micro-batches in order and compares both weightings of
    :func:`rnncourse.training.accumulated_gradients` with the gradient of the whole batch.

    Returns:
        ``{"batch": d, "token": d, "scale": s}``: largest absolute difference of each
        weighting from the whole-batch gradient, and the largest whole-batch gradient entry.
    """
    micro = len(x) // steps
    if micro == 0:
        raise ValueError(f"need at least {steps} examples, got {len(x)}")
    x, y = x[:micro * steps], y[:micro * steps]
    whole, _ = training.accumulated_gradients(model, [(x, y)], "token")
    whole = [np.asarray(tf.convert_to_tensor(g)) for g in whole]
    batches = [(x[i:i + micro], y[i:i + micro]) for i in range(0, len(x), micro)]
    gaps = {}
    for weighting in ("batch", "token"):
        grads, _ = training.accumulated_gradients(model, batches, weighting)
        gaps[weighting] = _max_abs_diff([np.asarray(tf.convert_to_tensor(g)) for g in grads],
                                        whole)
    gaps["scale"] = float(max(np.abs(g).max() for g in whole))
    return gaps


@dataclass(frozen=True)
class AccumulationResult:
    """Largest weight differences after one epoch of micro-batches, per variant.

    ``big`` is one step on all examples at once; ``accumulated`` is Keras'
    ``gradient_accumulation_steps=steps`` over the micro-batches; ``custom`` is
    :func:`rnncourse.training.accumulate_and_apply`; ``separate`` is ``steps`` plain
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


def accumulation_comparison(model_fn: Callable[[], keras.Model], x: np.ndarray, y: np.ndarray,
                            steps: int = 4, optimizer: str = "sgd", learning_rate: float = 0.1,
                            weighting: str = "batch", run_eagerly: bool = False
                            ) -> AccumulationResult:
    """Compare accumulation over ``steps`` micro-batches with one step on all of them.

    Uses the first ``len(x) // steps * steps`` examples in order (no shuffling). Every
    variant starts from the same initial weights. The model's first weight must be its
    embedding matrix (true for :func:`rnncourse.models.sequence_tagger`).

    Args:
        model_fn: builds a fresh, uncompiled model (it is compiled here).
        x, y: (n, timesteps) int ids and tags.
        steps: micro-batches per update.
        optimizer: ``"sgd"`` or ``"adam"``.
        learning_rate: of the optimizer.
        weighting: passed to :func:`rnncourse.training.accumulated_gradients`.
        run_eagerly: skip ``tf.function`` tracing (faster for tiny models and tests).
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (Keras' gradient_accumulation_steps), got {steps}")
    micro = len(x) // steps
    if micro == 0:
        raise ValueError(f"need at least {steps} examples for {steps} micro-batches, got {len(x)}")
    x, y = x[:micro * steps], y[:micro * steps]
    initial = model_fn().get_weights()

    def fresh(**optimizer_kwargs):
        model = model_fn()
        model.set_weights(initial)
        model.compile(optimizer=training.optimizer(optimizer, learning_rate, **optimizer_kwargs),
                      loss="sparse_categorical_crossentropy", run_eagerly=run_eagerly)
        return model

    weights = {}
    for name, kwargs, batch_size in [("big", {}, len(x)),
                                     ("accumulated", {"gradient_accumulation_steps": steps},
                                      micro),
                                     ("separate", {}, micro)]:
        model = fresh(**kwargs)
        model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        weights[name] = model.get_weights()
    model = fresh()
    model.optimizer.build(model.trainable_variables)
    batches = [(x[i:i + micro], y[i:i + micro]) for i in range(0, len(x), micro)]
    training.accumulate_and_apply(model, batches, model.optimizer, weighting)
    weights["custom"] = model.get_weights()

    def diff(a, b):
        return (_max_abs_diff(weights[a][:1], weights[b][:1]),
                _max_abs_diff(weights[a][1:], weights[b][1:]))

    pairs = [("accumulated", "big"), ("custom", "big"), ("custom", "accumulated"),
             ("separate", "big")]
    return AccumulationResult(optimizer=optimizer, steps=steps, micro_batch=micro,
                              diffs={f"{a}-{b}": diff(a, b) for a, b in pairs},
                              moved=_max_abs_diff(initial, weights["big"]))


def run_accumulation(tweets: Tweets, setup: Settings | None = None
                     ) -> tuple[list[AccumulationResult], dict[str, float]]:
    """The chapter's accumulation checks on training tweets (GloVe, training words).

    Returns:
        ``([AccumulationResult per optimizer of the recipe], weighting_gap(...))``; the
        first on tweets of equal length (no padding), the gap on the first padded ones.
    """
    s = setup or settings()
    r = s.recipe
    encoding = encode_tweets(tweets, "GloVe, training words", s)
    train_x, train_y = encoding.x[tweets.train], encoding.y[tweets.train]
    rows = equal_length_rows(train_x, r.accumulation_examples)

    def tagger():
        return models.sequence_tagger(len(encoding.vocab), len(tweets.tag_names),
                                      units=r.accumulation_units,
                                      embeddings=encoding.embeddings, seed=config.seed(2))

    with quiet_retracing():
        results = [accumulation_comparison(tagger, train_x[rows], train_y[rows],
                                           steps=r.accumulation_steps, optimizer=name,
                                           learning_rate=rate)
                   for name, rate in r.accumulation_rates]
    n = r.accumulation_examples
    gaps = weighting_gap(tagger(), train_x[:n], train_y[:n], steps=r.accumulation_steps)
    return results, gaps


@dataclass(frozen=True)
class ScheduleProbe:
    """What a learning-rate schedule sees under ``gradient_accumulation_steps``.

    Attributes:
        micro_steps: ``apply_gradients`` calls made (micro-batches).
        updates: ``optimizer.iterations`` afterwards (weight updates).
        learning_rate: the optimizer's current learning rate afterwards.
        at_micro_steps, at_updates: the schedule evaluated at ``micro_steps`` / ``updates``.
    """

    micro_steps: int
    updates: int
    learning_rate: float
    at_micro_steps: float
    at_updates: float


def schedule_under_accumulation(steps: int = 4, updates: int = 3) -> ScheduleProbe:
    """Apply ``steps * updates`` micro-batch gradients to one variable and read the schedule.

    Keras 3.15 counts updates in ``optimizer.iterations`` (``_iterations // steps``) but
    evaluates a ``LearningRateSchedule`` at the micro-step counter (see
    ``keras/src/optimizers/base_optimizer.py``, ``_get_current_learning_rate``).
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(schedule, gradient_accumulation_steps=steps)
    variable = keras.Variable(np.zeros(2, dtype="float32"))
    for _ in range(steps * updates):
        optimizer.apply_gradients([(tf.ones(2), variable)])
    return ScheduleProbe(micro_steps=steps * updates, updates=int(optimizer.iterations),
                         learning_rate=float(optimizer.learning_rate),
                         at_micro_steps=float(schedule(steps * updates)),
                         at_updates=float(schedule(updates)))


# ============================================================================ the tagger
@dataclass(frozen=True)
class TaggerRun:
    """A trained tagger and what it measured on the validation tweets."""

    model: keras.Model
    history: training.LoopHistory
    scores: training.EntityScores
    true_tags: list
    predicted_tags: list
    val_accuracy: float


def train_tagger(x: np.ndarray, y: np.ndarray, tag_names: Sequence[str], train: np.ndarray,
                 val: np.ndarray, vocab_size: int, embeddings: np.ndarray | None = None,
                 setup: Settings | None = None, seed: int = 0, strategy=None,
                 batch_size: int | None = None, callbacks: Sequence = ()) -> TaggerRun:
    """Build, train and score a BiLSTM tagger with the chapter's recipe.

    The model (:func:`rnncourse.models.sequence_tagger`) is built and compiled inside
    ``strategy.scope()`` (default: the current strategy, one device), so passing
    ``tf.distribute.MirroredStrategy()`` trains one replica per GPU with gradients
    all-reduced; ``batch_size`` (default: the recipe's) is the global batch. Early stopping
    on the validation loss keeps the best epoch's weights. ``config.set_seed(seed)`` first,
    so a run repeats.

    Args:
        x, y: (n, timesteps) int32 token ids and tag ids.
        train, val: index arrays into ``x``.
        vocab_size: ``len(vocab)``.
        embeddings: optional (vocab_size, dim) initial matrix; None for random init.
    """
    s = setup or settings()
    r = s.recipe
    strategy = strategy or tf.distribute.get_strategy()
    config.set_seed(seed)
    with strategy.scope():
        model = models.sequence_tagger(vocab_size, len(tag_names), units=s.sizes.units,
                                       embedding_dim=r.glove_dim, embeddings=embeddings,
                                       dropout=r.dropout, seed=seed)
        compile_tagger(model, r.optimizer, r.learning_rate)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=r.patience,
                                         restore_best_weights=True)
    history = training.fit_minibatches(model, x[train], y[train], epochs=s.sizes.tagger_epochs,
                                       batch_size=batch_size or r.batch_size,
                                       validation_data=(x[val], y[val]),
                                       callbacks=[stop, *callbacks])
    lengths = (x[val] != text.PAD).sum(axis=1)
    true = [[tag_names[t] for t in row[:n]] for row, n in zip(y[val], lengths, strict=True)]
    probabilities = model.predict(x[val], batch_size=256, verbose=0)
    predicted = [[tag_names[t] for t in row[:n]]
                 for row, n in zip(np.argmax(probabilities, axis=-1), lengths, strict=True)]
    return TaggerRun(model=model, history=history, scores=training.entity_scores(true, predicted),
                     true_tags=true, predicted_tags=predicted,
                     val_accuracy=training.masked_accuracy(y[val], probabilities,
                                                           x[val] != text.PAD))


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


def run_tagger_comparison(tweets: Tweets, variants: Sequence[str] = tuple(STRATEGIES),
                          setup: Settings | None = None, strategy=None,
                          progress: bool = True) -> TaggerComparison:
    """Train every variant (labels of :data:`STRATEGIES`) with ``repeats`` seeds each."""
    s = setup or settings()
    seeds = config.seeds(s.sizes.repeats, offset=10)
    out: dict[str, dict] = {k: {} for k in ("f1", "accuracy", "epochs", "val", "train",
                                            "first", "enc")}
    for variant in variants:
        encoding = encode_tweets(tweets, variant, s)
        runs = []
        for k, seed in enumerate(seeds):
            callbacks = [training.EpochProgress(f"{variant}, seed {k + 1}")] if progress else []
            with quiet_retracing():
                run = train_tagger(encoding.x, encoding.y, tweets.tag_names, tweets.train,
                                   tweets.val, len(encoding.vocab), encoding.embeddings, s,
                                   seed=seed, strategy=strategy, callbacks=callbacks)
            runs.append(run)
        out["f1"][variant] = tuple(r.scores.f1 for r in runs)
        out["accuracy"][variant] = tuple(r.val_accuracy for r in runs)
        out["epochs"][variant] = tuple(len(r.history.epoch_losses) for r in runs)
        out["val"][variant] = tuple(r.history.val_losses for r in runs)
        out["train"][variant] = tuple(r.history.epoch_losses for r in runs)
        out["first"][variant] = runs[0]
        out["enc"][variant] = encoding
    return TaggerComparison(seeds=seeds, f1=out["f1"], accuracy=out["accuracy"],
                            epochs=out["epochs"], val_losses=out["val"],
                            train_losses=out["train"], first=out["first"],
                            encodings=out["enc"])


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


# ============================================================================ distribution
def mirrored_check(devices: int = 2, examples: int = 32, timesteps: int = 12,
                   batch_size: int = 8, epochs: int = 2, seed: int = 0,
                   run_eagerly: bool = False) -> dict:
    """Same tagger on one device and under ``MirroredStrategy`` over ``devices`` logical CPUs.

    Must run in a fresh process (TensorFlow fixes its devices when it starts): use
    :func:`strategy_comparison`. Both runs start from the same weights and see the same
    batches (no shuffling, no dropout).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    rng = np.random.default_rng(seed)
    vocab_size, num_tags = 50, 5
    x = rng.integers(2, vocab_size, size=(examples, timesteps)).astype("int32")
    y = rng.integers(0, num_tags, size=(examples, timesteps)).astype("int32")

    def build():
        model = models.sequence_tagger(vocab_size, num_tags, units=8, embedding_dim=8,
                                       seed=seed)
        return compile_tagger(model, "sgd", 0.5)

    single = build()
    initial = single.get_weights()
    mirrored_strategy = tf.distribute.MirroredStrategy(names)
    with mirrored_strategy.scope():
        mirrored = build()
    mirrored.set_weights(initial)
    single.run_eagerly = mirrored.run_eagerly = run_eagerly
    h1 = single.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    h2 = mirrored.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return {"replicas": int(mirrored_strategy.num_replicas_in_sync),
            "max_abs_diff": _max_abs_diff(single.get_weights(), mirrored.get_weights()),
            "moved": _max_abs_diff(single.get_weights(), initial),
            "loss_single": float(h1.history["loss"][-1]),
            "loss_mirrored": float(h2.history["loss"][-1])}


def strategy_comparison(devices: int = 2, examples: int = 32, timesteps: int = 12,
                        batch_size: int = 8, epochs: int = 2, seed: int = 0,
                        run_eagerly: bool = False, timeout: float = 300.0) -> dict:
    """:func:`mirrored_check` in a fresh CPU-only process (:func:`rnncourse.process.run_fresh`).

    Returns:
        dict with ``replicas``, ``max_abs_diff`` (largest weight difference after
        training), ``moved`` (largest weight change of the single-device run) and
        ``loss_single`` / ``loss_mirrored`` (last epoch's training loss).
    """
    kwargs = {"devices": devices, "examples": examples, "timesteps": timesteps,
              "batch_size": batch_size, "epochs": epochs, "seed": seed,
              "run_eagerly": run_eagerly}
    return run_fresh("rnncourse.chapters.ch06_training:mirrored_check", kwargs,
                     env={"CUDA_VISIBLE_DEVICES": "-1"}, timeout=timeout)

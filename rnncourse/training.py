"""Training loops for sequence labelling: mini-batches, gradient accumulation, a BiLSTM tagger.

The chapter *Training loops and sequence labelling* calls this module. It holds

* the loop people write first (``model.fit`` once per example inside an epoch loop),
  :func:`fit_per_example`, next to :func:`fit_minibatches`, and :func:`roughness`, a
  measure of how jagged a loss curve is;
* gradient accumulation: Keras 3's ``gradient_accumulation_steps`` compared with one step
  on a larger batch (:func:`accumulation_comparison`), and an explicit ``tf.GradientTape``
  version (:func:`accumulated_gradients`) that handles the ``IndexedSlices`` gradients of
  an ``Embedding`` layer and can weight micro-batches by their number of real tokens;
* a BiLSTM tagger done right (:func:`build_tagger`, :func:`encode_tagging`,
  :func:`train_tagger`, :func:`predict_tags`, :func:`entity_scores`), trainable under any
  ``tf.distribute`` strategy.

Conventions: token id 0 is padding (``rnncourse.embeddings.PAD``), tag id 0 is ``"O"``;
padded positions carry tag 0 in ``y`` but are masked out of loss and metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse import config
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

OUTSIDE = "O"


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Sizes for the chapter at the current scale (``RNNCOURSE_SCALE``).

    Attributes:
        loop_examples: tweets the per-example ``fit`` loop runs on (then extrapolated).
        loop_epochs: epochs of the loop comparison.
        tagger_tweets: tweets used for the tagger (train + validation).
        tagger_epochs: most epochs of a tagger run.
        units: LSTM units per direction.
        dropout: dropout of the tagger (word vectors and BiLSTM outputs).
        patience: early-stopping patience on validation loss (None: train all epochs).
    """

    loop_examples: int = field(default_factory=lambda: config.by_scale(ci=40, full=100))
    loop_epochs: int = field(default_factory=lambda: config.by_scale(ci=2, full=3))
    tagger_tweets: int = field(default_factory=lambda: config.by_scale(ci=1000, full=2394))
    tagger_epochs: int = field(default_factory=lambda: config.by_scale(ci=6, full=20))
    units: int = field(default_factory=lambda: config.by_scale(ci=32, full=64))
    dropout: float = field(default_factory=lambda: config.by_scale(ci=0.0, full=0.5))
    patience: int | None = field(default_factory=lambda: config.by_scale(ci=None, full=3))
    batch_size: int = 32
    validation_fraction: float = 0.2
    learning_rate: float = 0.005


# ----------------------------------------------------------------------------- encoding
def tag_vocabulary(tag_lists: Iterable[Sequence[str]]) -> list[str]:
    """Tag names with ``"O"`` first (id 0), then the others sorted by entity type.

    Args:
        tag_lists: one list of BIO tags per sentence.

    Returns:
        list of tag names; ``names.index(tag)`` is a tag's id.
    """
    tags = {tag for tags in tag_lists for tag in tags}
    if not tags:
        raise ValueError("no tags found: pass one list of BIO tags per sentence")
    others = sorted(tags - {OUTSIDE}, key=lambda t: (t.split("-", 1)[-1], t))
    return [OUTSIDE, *others]


def encode_tagging(token_lists: Sequence[Sequence[str]], tag_lists: Sequence[Sequence[str]],
                   vocab, tag_names: Sequence[str], maxlen: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Token and tag lists -> padded id matrices for a tagger.

    Args:
        token_lists: ``n`` sentences, each a list of tokens.
        tag_lists: ``n`` lists of BIO tags, one per token.
        vocab: a ``rnncourse.embeddings.Vocabulary`` (id 0 padding, 1 out-of-vocabulary).
        tag_names: tag vocabulary from :func:`tag_vocabulary`.
        maxlen: pad/truncate to this many steps (default: the longest sentence).

    Returns:
        ``x``: (n, timesteps) int32 token ids, 0 after the end of a sentence;
        ``y``: (n, timesteps) int32 tag ids, 0 (``"O"``) at padded positions, which the
        model's mask removes from loss and metrics.
    """
    if len(token_lists) != len(tag_lists):
        raise ValueError(f"{len(token_lists)} sentences but {len(tag_lists)} tag lists; "
                         "pass one tag list per sentence")
    tag_id = {tag: i for i, tag in enumerate(tag_names)}
    for i, (tokens, tags) in enumerate(zip(token_lists, tag_lists, strict=True)):
        if len(tokens) == 0:
            raise ValueError(f"sentence {i} is empty; drop empty sentences before encoding "
                             "(an all-padding row has nothing to learn from)")
        if len(tokens) != len(tags):
            raise ValueError(f"sentence {i} has {len(tokens)} tokens but {len(tags)} tags; "
                             "every token needs exactly one tag")
        unknown = set(tags) - tag_id.keys()
        if unknown:
            raise ValueError(f"sentence {i} has tags {sorted(unknown)} missing from tag_names; "
                             "build tag_names from all tag lists with tag_vocabulary()")
    ids = vocab.encode_batch([list(tokens) for tokens in token_lists])
    x = keras.utils.pad_sequences(ids, maxlen=maxlen, padding="post", truncating="post",
                                  value=0, dtype="int32")
    y = keras.utils.pad_sequences([[tag_id[t] for t in tags] for tags in tag_lists],
                                  maxlen=x.shape[1], padding="post", truncating="post",
                                  value=0, dtype="int32")
    return x, y


def split_indices(n: int, validation_fraction: float = 0.2, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and validation indices for ``n`` examples."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * validation_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class TaggingData:
    """Tweets ready for a tagger: ids, tags, split, vocabulary and GloVe matrix.

    Attributes:
        x: (n, timesteps) int32 token ids, 0 = padding, 1 = out-of-vocabulary.
        y: (n, timesteps) int32 tag ids (0 = ``"O"``, also at padded positions).
        tokens, tags: the tweets as token and BIO tag lists.
        tag_names: tag id -> name.
        train, val: index arrays into ``x``.
        vocab: ``rnncourse.embeddings.Vocabulary`` built from the training tweets only.
        embeddings: (len(vocab), 50) float32 GloVe rows, truncated-normal OOV rows.
        coverage: the ``CoverageReport`` of the vocabulary against GloVe.
    """

    x: np.ndarray
    y: np.ndarray
    tokens: list
    tags: list
    tag_names: list
    train: np.ndarray
    val: np.ndarray
    vocab: object
    embeddings: np.ndarray
    coverage: object


def prepare_tweets(n_tweets: int | None = None, validation_fraction: float = 0.2,
                   seed: int = 0, glove_dim: int = 50) -> TaggingData:
    """Load the WNUT-16 tweets and GloVe, and encode them for :func:`build_tagger`.

    The vocabulary comes from the training tweets only (validation words it lacks become
    OOV, as new text would); the embedding matrix takes GloVe rows (looked up lower-case)
    and truncated-normal rows for words GloVe lacks.

    Args:
        n_tweets: use the first ``n_tweets`` tweets (None: all 2,394).
        validation_fraction: share of tweets held out.
        seed: of the split and the OOV rows.
    """
    from rnncourse import data, embeddings

    tokens, tags = data.load_tweet_ner()
    tokens, tags = tokens[:n_tweets], tags[:n_tweets]
    train, val = split_indices(len(tokens), validation_fraction, seed)
    vocab = embeddings.Vocabulary.from_tokens([tokens[i] for i in train])
    glove = embeddings.read_glove(data.load_glove(glove_dim),
                                  vocabulary={w.lower() for w in vocab.words})
    matrix, report = embeddings.embedding_matrix(vocab, glove, oov="truncated_normal",
                                                 seed=seed)
    tag_names = tag_vocabulary(tags)
    x, y = encode_tagging(tokens, tags, vocab, tag_names)
    return TaggingData(x=x, y=y, tokens=tokens, tags=tags, tag_names=tag_names, train=train,
                       val=val, vocab=vocab, embeddings=matrix, coverage=report)


def reader_layout(data: TaggingData, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batches as first built: word vectors looked up in advance, padding as class 0.

    Returns:
        ``vectors``: (n, timesteps, dim) float32 embedding rows (zeros at padding);
        ``labels``: (n, timesteps, 1) int32, tag id + 1 at real tokens and 0 at padding, so
        padding is one more class to predict (nothing masks it).
    """
    x, y = data.x[indices], data.y[indices]
    vectors = data.embeddings[x]
    labels = np.where(x != 0, y + 1, 0).astype("int32")[..., None]
    return vectors, labels


def equal_length_rows(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows of ``x`` with the same real length (the most common one).

    Micro-batches without padding hold equal numbers of tokens, so the mean of their mean
    losses is the mean over all of them.

    Args:
        x: (examples, timesteps) int ids, 0 = padding.
        n: rows wanted.
    """
    lengths = (x != 0).sum(axis=1)
    values, counts = np.unique(lengths, return_counts=True)
    best = values[np.argmax(counts)]
    if counts.max() < n:
        raise ValueError(f"only {counts.max()} rows share a length (length {best}); ask for "
                         f"at most that many, not {n}")
    return np.flatnonzero(lengths == best)[:n]


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


def per_epoch_seconds(history: LoopHistory, examples: int) -> float:
    """Seconds one epoch over ``examples`` would take, from the last epoch measured.

    The last epoch excludes the one-off tracing of the first; for a loop run on a subset
    the time scales linearly with the number of examples.
    """
    seen = int(history.step_sizes[-history.steps_per_epoch:].sum())
    return float(history.epoch_seconds[-1]) * examples / seen


def format_tagged(tokens: Sequence[str], true: Sequence[str], predicted: Sequence[str]) -> str:
    """One tweet with its entities: ``token/true-type|predicted-type`` where either is set."""
    words = []
    for token, t, p in zip(tokens, true, predicted, strict=True):
        if t == OUTSIDE and p == OUTSIDE:
            words.append(token)
        else:
            words.append(f"[{token} {t}|{p}]" if t != p else f"[{token} {t}]")
    return " ".join(words)


# ----------------------------------------------------------------------------- models
def build_tagger(vocab_size: int, num_tags: int, units: int = 64, embedding_dim: int = 50,
                 embeddings: np.ndarray | None = None, trainable_embeddings: bool = True,
                 learning_rate: float = 0.01, optimizer: str | keras.optimizers.Optimizer = "adam",
                 dropout: float = 0.0, seed: int = 0, name: str = "bilstm_tagger"
                 ) -> keras.Model:
    """A BiLSTM tagger, compiled: ids -> Embedding(mask_zero) -> BiLSTM -> softmax per step.

    Input ``(batch, timesteps)`` int32 token ids with 0 as padding; output
    ``(batch, timesteps, num_tags)`` softmax probabilities. The padding mask flows from the
    ``Embedding`` to the loss and to the accuracy metric, so both average over real tokens.
    The LSTM keeps cuDNN-eligible settings.

    Args:
        vocab_size: rows of the embedding matrix (``len(vocab)``).
        num_tags: number of tags (``len(tag_names)``).
        units: LSTM units per direction.
        embedding_dim: embedding width when ``embeddings`` is None.
        embeddings: optional (vocab_size, dim) float32 initial matrix (GloVe + OOV rows).
        trainable_embeddings: fine-tune the embedding matrix.
        learning_rate: for the optimizer when ``optimizer`` is a name.
        optimizer: ``"adam"``, ``"sgd"`` or an optimizer instance.
        dropout: dropout rate on the word vectors and on the BiLSTM outputs (not recurrent
            dropout, which would rule out cuDNN); 0 for none.
        seed: seed of the weight initialisers (same seed, same initial weights).
    """
    if embeddings is not None:
        if embeddings.ndim != 2 or embeddings.shape[0] != vocab_size:
            raise ValueError(f"embeddings has shape {embeddings.shape}; expected "
                             f"({vocab_size}, dim): one row per vocabulary id")
        embedding_dim = embeddings.shape[1]
        emb_init = keras.initializers.Constant(embeddings)
    else:
        emb_init = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)
    glorot = keras.initializers.GlorotUniform
    orthogonal = keras.initializers.Orthogonal
    inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, embeddings_initializer=emb_init,
                               mask_zero=True, trainable=trainable_embeddings,
                               name="embedding")(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed + 6, name="word_dropout")(x)
    lstm = keras.layers.LSTM(units, return_sequences=True, name="lstm",
                             kernel_initializer=glorot(seed=seed + 1),
                             recurrent_initializer=orthogonal(seed=seed + 2))
    backward = keras.layers.LSTM(units, return_sequences=True, go_backwards=True,
                                 name="lstm_backward",
                                 kernel_initializer=glorot(seed=seed + 3),
                                 recurrent_initializer=orthogonal(seed=seed + 4))
    x = keras.layers.Bidirectional(lstm, backward_layer=backward, name="bi_lstm")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed + 7, name="output_dropout")(x)
    outputs = keras.layers.Dense(num_tags, activation="softmax", name="tags",
                                 kernel_initializer=glorot(seed=seed + 5))(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=_optimizer(optimizer, learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def reader_tagger(timesteps: int, features: int, num_classes: int, units: int = 32,
                  activation: str = "sigmoid", metric: str = "mse",
                  learning_rate: float = 0.1, seed: int = 0) -> keras.Model:
    """The model as first written: pre-embedded input, sigmoid outputs, ``mse`` metric.

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
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=[metric])
    return model


def _optimizer(optimizer, learning_rate: float, **kwargs) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    names = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    if optimizer not in names:
        raise ValueError(f"optimizer must be one of {sorted(names)} or an optimizer instance, "
                         f"not {optimizer!r}")
    return names[optimizer](learning_rate=learning_rate, **kwargs)


# ----------------------------------------------------------------------------- loops
@dataclass
class LoopHistory:
    """What a training loop recorded.

    Attributes:
        step_losses: (steps,) loss of each optimizer step, in order.
        step_sizes: (steps,) examples in each step.
        epoch_losses: (epochs,) example-weighted mean of the step losses of each epoch.
        epoch_seconds: (epochs,) wall time of each epoch.
        val_losses: (epochs,) validation loss after each epoch (empty without validation).
    """

    step_losses: np.ndarray
    step_sizes: np.ndarray
    epoch_losses: np.ndarray
    epoch_seconds: np.ndarray
    val_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def steps_per_epoch(self) -> int:
        return len(self.step_losses) // max(1, len(self.epoch_losses))


def fit_per_example(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int = 1,
                    validation_data: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> LoopHistory:
    """The loop people write first: ``model.fit`` on one example at a time, epochs outside.

    Reproduces ``for epoch: for X, y in data: model.fit(X[None], y[None], epochs=1,
    batch_size=1)``. Every call builds a fresh data pipeline and callback list and takes one
    optimizer step on a single example, so it is slow and its per-step losses are noisy.

    Args:
        model: a compiled model.
        x: (n, ...) inputs; y: (n, ...) targets.
        epochs: passes over the data.
        validation_data: optional (x_val, y_val), evaluated after each epoch.
    """
    _check_xy(x, y)
    losses, seconds, val = [], [], []
    for _ in range(epochs):
        start = time.perf_counter()
        for i in range(len(x)):
            history = model.fit(x[i:i + 1], y[i:i + 1], epochs=1, batch_size=1, verbose=0)
            losses.append(history.history["loss"][0])
        seconds.append(time.perf_counter() - start)
        if validation_data is not None:
            val.append(_evaluate_loss(model, validation_data))
    step_losses = np.asarray(losses, dtype=np.float64)
    return LoopHistory(step_losses=step_losses, step_sizes=np.ones(len(losses), dtype=int),
                       epoch_losses=step_losses.reshape(epochs, len(x)).mean(axis=1),
                       epoch_seconds=np.asarray(seconds), val_losses=np.asarray(val))


class StepLosses(keras.callbacks.Callback):
    """Record the loss of every training step and the wall time of every epoch.

    Keras reports a running mean over the epoch in ``on_train_batch_end``; the loss of step
    ``k`` is recovered from consecutive means weighted by the examples seen,
    ``l_k = (N_k m_k - N_{k-1} m_{k-1}) / b_k``.
    """

    def __init__(self, n_examples: int, batch_size: int) -> None:
        super().__init__()
        self.n_examples, self.batch_size = n_examples, batch_size
        self.losses, self.sizes, self.epoch_seconds = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._seen, self._previous_total = 0, 0.0
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        size = min(self.batch_size, self.n_examples - self._seen)
        self._seen += size
        total = float(logs["loss"]) * self._seen
        self.losses.append((total - self._previous_total) / size)
        self.sizes.append(size)
        self._previous_total = total

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)


def fit_minibatches(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int = 1,
                    batch_size: int = 32, validation_data=None, shuffle: bool = True,
                    callbacks: Sequence[keras.callbacks.Callback] = ()) -> LoopHistory:
    """One ``model.fit`` call over all epochs with shuffled mini-batches; per-step losses kept.

    Args:
        model: a compiled model.
        x: (n, ...) inputs; y: (n, ...) targets.
        epochs: passes over the data.
        batch_size: examples per optimizer step.
        validation_data: optional (x_val, y_val).
        shuffle: reshuffle the examples every epoch.
        callbacks: extra Keras callbacks (e.g. ``models.EpochProgress()``).
    """
    _check_xy(x, y)
    recorder = StepLosses(len(x), batch_size)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                        validation_data=validation_data, verbose=0,
                        callbacks=[recorder, *callbacks])
    return LoopHistory(step_losses=np.asarray(recorder.losses),
                       step_sizes=np.asarray(recorder.sizes),
                       epoch_losses=np.asarray(history.history["loss"]),
                       epoch_seconds=np.asarray(recorder.epoch_seconds),
                       val_losses=np.asarray(history.history.get("val_loss", [])))


def roughness(losses: Sequence[float]) -> float:
    """How jagged a loss curve is: the standard deviation of its step-to-step changes."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or len(losses) < 3:
        raise ValueError(f"need a 1-D curve of at least 3 losses, got shape {losses.shape}")
    return float(np.std(np.diff(losses)))


def _check_xy(x, y) -> None:
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}; pass one target per input")
    if len(x) == 0:
        raise ValueError("no examples to train on")


def _evaluate_loss(model, data) -> float:
    result = model.evaluate(data[0], data[1], verbose=0, batch_size=256, return_dict=True)
    return float(result["loss"])


# ----------------------------------------------------------------------------- metrics
def masked_accuracy(y_true: np.ndarray, probabilities: np.ndarray, mask: np.ndarray) -> float:
    """Token accuracy over real tokens only.

    Args:
        y_true: (batch, timesteps) int tag ids.
        probabilities: (batch, timesteps, num_tags) predicted probabilities.
        mask: (batch, timesteps) bool, True at real tokens.
    """
    y_true, mask = np.asarray(y_true), np.asarray(mask, dtype=bool)
    if y_true.shape != mask.shape or probabilities.shape[:2] != y_true.shape:
        raise ValueError(f"shapes disagree: y_true {y_true.shape}, mask {mask.shape}, "
                         f"probabilities {probabilities.shape}; expected (batch, timesteps)")
    if not mask.any():
        raise ValueError("the mask selects no token (all-padding batch)")
    correct = np.argmax(probabilities, axis=-1) == y_true
    return float(correct[mask].mean())


def output_sums(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Sum over classes of the model's outputs at every step: (batch, timesteps) float.

    A softmax output sums to 1 everywhere; independent sigmoids do not, so they are not a
    distribution over tags even when sparse categorical cross-entropy trains on them.
    """
    return np.asarray(model.predict(x, verbose=0)).sum(axis=-1)


def predict_tags(model: keras.Model, x: np.ndarray, tag_names: Sequence[str],
                 lengths: Sequence[int] | None = None, batch_size: int = 256
                 ) -> list[list[str]]:
    """Most likely tag of every real token.

    Args:
        model: a tagger with (batch, timesteps, num_tags) output.
        x: (n, timesteps) int token ids, 0 as padding.
        tag_names: id -> tag name.
        lengths: real length of each sentence (default: count of non-zero ids).
    """
    ids = np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=-1)
    lengths = (x != 0).sum(axis=1) if lengths is None else lengths
    return [[tag_names[t] for t in row[:n]] for row, n in zip(ids, lengths, strict=True)]


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores from ``seqeval`` (an entity counts only if span and type match)."""

    precision: float
    recall: float
    f1: float
    report: str

    def __str__(self) -> str:
        return (f"entity precision {self.precision:.3f}, recall {self.recall:.3f}, "
                f"F1 {self.f1:.3f}")


def entity_scores(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
                  ) -> EntityScores:
    """Entity precision, recall and F1 (micro-averaged) with ``seqeval``, CoNLL rules."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    if len(true_tags) != len(predicted_tags):
        raise ValueError(f"{len(true_tags)} true and {len(predicted_tags)} predicted "
                         "sentences; predict one tag list per sentence")
    for i, (t, p) in enumerate(zip(true_tags, predicted_tags, strict=True)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags, {len(p)} predicted; "
                             "trim predictions to the real length (see predict_tags)")
    true_tags, predicted_tags = [list(t) for t in true_tags], [list(p) for p in predicted_tags]
    kwargs = {"zero_division": 0}
    return EntityScores(
        precision=float(precision_score(true_tags, predicted_tags, **kwargs)),
        recall=float(recall_score(true_tags, predicted_tags, **kwargs)),
        f1=float(f1_score(true_tags, predicted_tags, **kwargs)),
        report=classification_report(true_tags, predicted_tags, digits=3, **kwargs),
    )


def entity_type(tag: str) -> str:
    """``"B-person"`` -> ``"person"``; ``"O"`` -> ``"O"``."""
    return tag.split("-", 1)[1] if "-" in tag else tag


def type_confusion(true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
                   ) -> tuple[np.ndarray, list[str]]:
    """Token-level confusion of entity types (B-/I- merged).

    Returns:
        ``counts``: (types, types) int, rows true type, columns predicted type;
        ``names``: the types, ``"O"`` last.
    """
    pairs = [(entity_type(t), entity_type(p))
             for ts, ps in zip(true_tags, predicted_tags, strict=True)
             for t, p in zip(ts, ps, strict=True)]
    names = sorted({n for pair in pairs for n in pair} - {OUTSIDE}) + [OUTSIDE]
    index = {n: i for i, n in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=int)
    for t, p in pairs:
        counts[index[t], index[p]] += 1
    return counts, names


# ----------------------------------------------------------------------------- tagger run
@dataclass
class TaggerRun:
    """A trained tagger and what it measured on the validation tweets."""

    model: keras.Model
    history: LoopHistory
    scores: EntityScores
    true_tags: list[list[str]]
    predicted_tags: list[list[str]]
    val_accuracy: float


def train_tagger(x: np.ndarray, y: np.ndarray, tag_names: Sequence[str], train: np.ndarray,
                 val: np.ndarray, vocab_size: int, embeddings: np.ndarray | None = None,
                 units: int = 64, epochs: int = 10, batch_size: int = 32,
                 learning_rate: float = 0.01, seed: int = 0, strategy=None,
                 trainable_embeddings: bool = True, dropout: float = 0.0,
                 patience: int | None = None, shuffle: bool = True,
                 callbacks: Sequence = ()) -> TaggerRun:
    """Build, train and score a BiLSTM tagger; works under any ``tf.distribute`` strategy.

    The model is built and compiled inside ``strategy.scope()`` (default: the current
    strategy, one device), so passing ``tf.distribute.MirroredStrategy()`` trains one replica
    per GPU with gradients all-reduced; ``batch_size`` is the global batch. Everything is
    seeded with :func:`rnncourse.config.set_seed` first, so a run repeats.

    Args:
        x, y: (n, timesteps) int32 token ids and tag ids from :func:`encode_tagging`.
        tag_names: id -> tag name.
        train, val: index arrays into ``x`` (see :func:`split_indices`).
        vocab_size: ``len(vocab)``.
        embeddings: optional (vocab_size, dim) initial matrix; None for random init.
        strategy: a ``tf.distribute.Strategy`` or None.
        trainable_embeddings: fine-tune the embedding matrix (False freezes GloVe).
        dropout: see :func:`build_tagger`.
        patience: stop after this many epochs without a lower validation loss and keep
            the weights of the best epoch (``keras.callbacks.EarlyStopping``); None trains
            all ``epochs``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    config.set_seed(seed)
    with strategy.scope():
        model = build_tagger(vocab_size, len(tag_names), units=units, embeddings=embeddings,
                             trainable_embeddings=trainable_embeddings, dropout=dropout,
                             learning_rate=learning_rate, seed=seed)
    callbacks = list(callbacks)
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                       restore_best_weights=True))
    history = fit_minibatches(model, x[train], y[train], epochs=epochs, batch_size=batch_size,
                              validation_data=(x[val], y[val]), shuffle=shuffle,
                              callbacks=callbacks)
    lengths = (x[val] != 0).sum(axis=1)
    true = [[tag_names[t] for t in row[:n]] for row, n in zip(y[val], lengths, strict=True)]
    predicted = predict_tags(model, x[val], tag_names, lengths)
    probabilities = model.predict(x[val], batch_size=256, verbose=0)
    return TaggerRun(model=model, history=history, scores=entity_scores(true, predicted),
                     true_tags=true, predicted_tags=predicted,
                     val_accuracy=masked_accuracy(y[val], probabilities, x[val] != 0))


def compare_initialisations(data: TaggingData, settings: Settings | None = None, seed: int = 0,
                            strategy=None, progress: bool = True) -> dict[str, TaggerRun]:
    """Train the tagger twice, GloVe + OOV rows vs random embeddings, same recipe and seed.

    Returns:
        ``{"GloVe + OOV rows": run, "random init": run}``.
    """
    from rnncourse.models import EpochProgress

    settings = settings or Settings()
    runs = {}
    for label, matrix in (("GloVe + OOV rows", data.embeddings), ("random init", None)):
        runs[label] = train_tagger(
            data.x, data.y, data.tag_names, data.train, data.val, len(data.vocab),
            embeddings=matrix, units=settings.units, epochs=settings.tagger_epochs,
            batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            dropout=settings.dropout, patience=settings.patience, seed=seed,
            strategy=strategy, callbacks=[EpochProgress(label)] if progress else [])
    return runs


# ----------------------------------------------------------------------------- accumulation
def add_gradients(a, b):
    """Sum two gradients of one variable, keeping ``tf.IndexedSlices`` sparse.

    ``Embedding`` gradients are ``IndexedSlices`` (one row per token of the batch), which do
    not support ``+``; two of them are summed by concatenating their rows (repeated indices
    add up when applied). Anything else is converted to a dense tensor first.
    """
    if a is None:
        return b
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], axis=0),
                                tf.concat([a.indices, b.indices], axis=0), a.dense_shape)
    return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)


def deduplicate(g):
    """Sum the rows of an ``IndexedSlices`` that share an index (dense tensors pass through).

    A linear update (SGD) does not care, but Adam squares the gradient: on a gradient with
    a repeated row it squares each copy instead of their sum, so deduplicate first.
    """
    if not isinstance(g, tf.IndexedSlices):
        return g
    unique, position = tf.unique(g.indices)
    values = tf.math.unsorted_segment_sum(g.values, position, tf.shape(unique)[0])
    return tf.IndexedSlices(values, unique, g.dense_shape)


def scale_gradient(g, factor: float):
    """``factor * g`` for a dense gradient or ``tf.IndexedSlices``."""
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(g.values * factor, g.indices, g.dense_shape)
    return g * factor


def accumulated_gradients(model: keras.Model, micro_batches: Iterable[tuple],
                          weighting: str = "batch") -> tuple[list, float]:
    """Average the gradients of several micro-batches with ``tf.GradientTape``.

    The loss is sparse categorical cross-entropy over real tokens (token id 0 is padding
    when the inputs are int ids; float inputs count every step). ``Embedding`` gradients
    stay sparse (``tf.IndexedSlices``) and come back with duplicate rows summed.

    Args:
        model: a tagger, (batch, timesteps) -> (batch, timesteps, num_tags).
        micro_batches: ``(x, y)`` pairs, x (b, timesteps), y (b, timesteps).
        weighting: ``"batch"`` gives every micro-batch the same weight (the mean of the
            micro-batch mean losses, what ``gradient_accumulation_steps`` does);
            ``"token"`` weights each by its real tokens, which equals one step on the
            concatenated batch even when micro-batches hold different numbers of tokens.

    Returns:
        (gradients aligned with ``model.trainable_variables``, mean loss).
    """
    if weighting not in ("batch", "token"):
        raise ValueError(f"weighting must be 'batch' or 'token', not {weighting!r}")
    variables = model.trainable_variables
    totals, loss_total, weight_total = [None] * len(variables), 0.0, 0.0
    for x, y in micro_batches:
        x = tf.convert_to_tensor(x)
        mask = tf.cast(x != 0, "float32") if x.dtype.is_integer else tf.ones(tf.shape(y))
        tokens = float(tf.reduce_sum(mask))
        if tokens == 0:
            raise ValueError("a micro-batch holds only padding; drop all-padding rows")
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            per_token = keras.losses.sparse_categorical_crossentropy(y, probabilities)
            summed = tf.reduce_sum(per_token * mask)
            loss = summed if weighting == "token" else summed / tokens
        grads = tape.gradient(loss, variables)
        totals = [add_gradients(t, g) for t, g in zip(totals, grads, strict=True)]
        loss_total += float(loss)
        weight_total += tokens if weighting == "token" else 1.0
    if weight_total == 0:
        raise ValueError("no micro-batches given")
    grads = [deduplicate(scale_gradient(g, 1.0 / weight_total)) for g in totals]
    return grads, loss_total / weight_total


def accumulate_and_apply(model: keras.Model, micro_batches: Iterable[tuple],
                         optimizer: keras.optimizers.Optimizer, weighting: str = "batch"
                         ) -> float:
    """One optimizer update from the averaged gradients of several micro-batches.

    Returns the mean loss. See :func:`accumulated_gradients` for ``weighting``.
    """
    grads, loss = accumulated_gradients(model, micro_batches, weighting)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return loss


def weighting_gap(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int
                  ) -> dict[str, float]:
    """How far accumulated gradients are from the whole-batch gradient, per weighting.

    Splits (x, y) into ``steps`` micro-batches in order and compares both weightings of
    :func:`accumulated_gradients` with the gradient of the whole batch at once.

    Returns:
        ``{"batch": d, "token": d, "scale": s}``: largest absolute difference of each
        weighting from the whole-batch gradient, and the largest whole-batch gradient entry.
    """
    micro = len(x) // steps
    if micro == 0:
        raise ValueError(f"need at least {steps} examples, got {len(x)}")
    x, y = x[:micro * steps], y[:micro * steps]
    whole, _ = accumulated_gradients(model, [(x, y)], "token")
    whole = [np.asarray(tf.convert_to_tensor(g)) for g in whole]
    batches = [(x[i:i + micro], y[i:i + micro]) for i in range(0, len(x), micro)]
    gaps = {}
    for weighting in ("batch", "token"):
        grads, _ = accumulated_gradients(model, batches, weighting)
        gaps[weighting] = _max_abs_diff([np.asarray(tf.convert_to_tensor(g)) for g in grads],
                                        whole)
    gaps["scale"] = float(max(np.abs(g).max() for g in whole))
    return gaps


def _max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(max(np.max(np.abs(u - v)) for u, v in zip(a, b, strict=True)))


@dataclass(frozen=True)
class AccumulationResult:
    """Largest weight differences after one epoch of micro-batches, per variant.

    ``big`` is one step on all examples at once; ``accumulated`` is Keras'
    ``gradient_accumulation_steps=steps`` over the micro-batches; ``custom`` is
    :func:`accumulate_and_apply`; ``separate`` is ``steps`` plain updates, one per
    micro-batch. Each ``diffs`` entry is ``(embedding matrix, all other weights)``.

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
    embedding matrix (true for :func:`build_tagger`).

    Args:
        model_fn: builds a fresh model (it is recompiled here).
        x, y: (n, timesteps) int ids and tags.
        steps: micro-batches per update.
        optimizer: ``"sgd"`` or ``"adam"``.
        learning_rate: of the optimizer.
        weighting: passed to :func:`accumulated_gradients` for the custom loop.
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
        model.compile(optimizer=_optimizer(optimizer, learning_rate, **optimizer_kwargs),
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
    accumulate_and_apply(model, batches, model.optimizer, weighting)
    weights["custom"] = model.get_weights()

    def diff(a, b):
        return (_max_abs_diff(weights[a][:1], weights[b][:1]),
                _max_abs_diff(weights[a][1:], weights[b][1:]))

    pairs = [("accumulated", "big"), ("custom", "big"), ("custom", "accumulated"),
             ("separate", "big")]
    return AccumulationResult(optimizer=optimizer, steps=steps, micro_batch=micro,
                              diffs={f"{a}-{b}": diff(a, b) for a, b in pairs},
                              moved=_max_abs_diff(initial, weights["big"]))


# ----------------------------------------------------------------------------- distribution
def strategy_comparison(devices: int = 2, examples: int = 32, timesteps: int = 12,
                        batch_size: int = 8, epochs: int = 2, seed: int = 0,
                        run_eagerly: bool = False, timeout: float = 300.0) -> dict:
    """Train the same tagger on one device and with ``MirroredStrategy`` over logical CPUs.

    TensorFlow fixes its devices when it starts, so this runs in a fresh Python process
    that splits the CPU into ``devices`` logical devices before anything else. Both runs
    start from the same weights and see the same batches (no shuffling, no dropout).

    Returns:
        dict with ``replicas`` (replicas in sync of the mirrored run), ``max_abs_diff``
        (largest weight difference after training) and ``loss_single`` /
        ``loss_mirrored`` (last epoch's training loss).
    """
    args = json.dumps({"devices": devices, "examples": examples, "timesteps": timesteps,
                       "batch_size": batch_size, "epochs": epochs, "seed": seed,
                       "run_eagerly": run_eagerly})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # so -m finds us
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
               PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "rnncourse.training", "mirrored-check", args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"mirrored check failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mirrored_check(devices: int, examples: int, timesteps: int, batch_size: int, epochs: int,
                    seed: int, run_eagerly: bool = False) -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    rng = np.random.default_rng(seed)
    vocab_size, num_tags = 50, 5
    x = rng.integers(2, vocab_size, size=(examples, timesteps)).astype("int32")
    y = rng.integers(0, num_tags, size=(examples, timesteps)).astype("int32")
    single = build_tagger(vocab_size, num_tags, units=8, embedding_dim=8, seed=seed,
                          optimizer="sgd", learning_rate=0.5)
    initial = single.get_weights()
    mirrored_strategy = tf.distribute.MirroredStrategy(names)
    with mirrored_strategy.scope():
        mirrored = build_tagger(vocab_size, num_tags, units=8, embedding_dim=8, seed=seed,
                                optimizer="sgd", learning_rate=0.5)
    mirrored.set_weights(initial)
    single.run_eagerly = mirrored.run_eagerly = run_eagerly
    h1 = single.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    h2 = mirrored.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return {"replicas": int(mirrored_strategy.num_replicas_in_sync),
            "max_abs_diff": _max_abs_diff(single.get_weights(), mirrored.get_weights()),
            "moved": _max_abs_diff(single.get_weights(), initial),
            "loss_single": float(h1.history["loss"][-1]),
            "loss_mirrored": float(h2.history["loss"][-1])}


if __name__ == "__main__":  # python -m rnncourse.training mirrored-check '{"devices": 2}'
    if len(sys.argv) == 3 and sys.argv[1] == "mirrored-check":
        print(json.dumps(_mirrored_check(**json.loads(sys.argv[2]))))
    else:
        sys.exit("usage: python -m rnncourse.training mirrored-check '<json arguments>'")

"""Model builders: one cell registry and one builder per model family.

Every chapter builds its models here, so a model family has one definition:

================================  ==========================================================
builder                           input -> output
================================  ==========================================================
:func:`sequence_regressor`        ``(batch, timesteps, features)`` floats -> RNN -> ``(batch, 1)``
:func:`sequence_classifier`       ``(batch, timesteps)`` ids -> Embedding -> RNN -> classes
:func:`sequence_tagger`           ``(batch, timesteps)`` ids -> Embedding -> (Bi)RNN -> per-step
:func:`char_lm`                   ``(batch, timesteps)`` ids -> Embedding -> LSTM -> logits
:func:`state_char_lm`             ``[ids, h, c]`` -> ``[logits, h, c]`` (caller owns the state)
================================  ==========================================================

Builders return uncompiled models, so the caller chooses optimizer, loss and metrics. Layers
keep cuDNN-eligible settings by default (tanh/sigmoid, no recurrent dropout, not unrolled):
the same model trains on a GPU with the fused kernel. A ``seed`` makes every initialiser
deterministic, so two calls with the same seed build identical weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnncourse import _checks
from rnncourse.config import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402

__all__ = ["CELLS", "recurrent_layer", "embedding", "sequence_regressor",
           "sequence_classifier", "sequence_tagger", "char_lm", "state_char_lm",
           "copy_weights_by_name"]

CELLS = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU,
         "lstm": keras.layers.LSTM}
"""The one cell registry: name -> Keras recurrent layer class."""


def _offset(seed: int | None, offset: int) -> int | None:
    """``seed + offset`` as a Python int (Keras 3.15 refuses NumPy ints), or ``None``."""
    seed = _checks.optional_count(seed, "seed", 0)
    return None if seed is None else seed + offset


def _glorot(seed: int | None, offset: int):
    seed = _offset(seed, offset)
    return "glorot_uniform" if seed is None else keras.initializers.GlorotUniform(seed)


@_checks.arguments(cell=tuple(CELLS), units=_checks.count)
def recurrent_layer(cell: str, units: int, *, seed: int | None = None,
                    **kwargs) -> keras.layers.Layer:
    """Keras' ``SimpleRNN``, ``GRU`` or ``LSTM`` layer by name (see :data:`CELLS`).

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        units: recurrent units.
        seed: seeds the input kernel (Glorot uniform, ``seed``) and the recurrent kernel
            (orthogonal, ``seed + 1``) unless ``kwargs`` sets them; ``None``: Keras' draw.
        **kwargs: any other argument of the Keras layer (``return_sequences``, ...).
    """
    layer_class = CELLS[cell]
    if seed is not None:
        kwargs.setdefault("kernel_initializer", _glorot(seed, 0))
        kwargs.setdefault("recurrent_initializer", keras.initializers.Orthogonal(
            seed=_offset(seed, 1)))
    return layer_class(units, **kwargs)


@_checks.arguments(vocab_size=_checks.count, embedding_dim=_checks.optional_count)
def embedding(vocab_size: int, embedding_dim: int | None = None, *,
              embeddings: np.ndarray | None = None, trainable: bool = True,
              mask_zero: bool = True, seed: int | None = None,
              name: str = "embedding") -> keras.layers.Embedding:
    """``keras.layers.Embedding`` with random or given (e.g. GloVe) initial vectors.

    ``(batch, timesteps)`` int ids -> ``(batch, timesteps, embedding_dim)``. With
    ``embeddings`` ``(vocab_size, dim)`` the layer starts from it through Keras'
    ``Embedding(weights=[embeddings])`` (Keras 3.15 builds the layer and calls
    ``set_weights``). ``mask_zero=True`` makes id 0 padding: downstream RNNs skip it.

    Args:
        vocab_size: rows, ids ``0 .. vocab_size - 1``.
        embedding_dim: width; taken from ``embeddings`` when given.
        embeddings: optional initial vectors ``(vocab_size, dim)``, one row per id.
        trainable: whether training updates the vectors (``False`` freezes them).
        mask_zero: id 0 is padding.
        seed: seeds the uniform initialiser when there is no ``embeddings``.
    """
    if embeddings is not None:
        # Keras would load a wrong-sized or NaN table silently, or fail at build time.
        matrix = _checks.array(embeddings, "embeddings", ndim=2, kinds="iuf", finite=True)
        _checks.fail_if(len(matrix) != vocab_size, "embeddings", f"needs {vocab_size} rows")
        if embedding_dim not in (None, matrix.shape[1]):
            _checks.fail("embedding_dim", f"differs from the embeddings' {matrix.shape[1]}")
        return keras.layers.Embedding(vocab_size, matrix.shape[1],
                                      weights=[matrix.astype("float32")],
                                      trainable=trainable, mask_zero=mask_zero, name=name)
    _checks.fail_if(embedding_dim is None, "embedding_dim", "is needed without embeddings")
    initializer = ("uniform" if seed is None
                   else keras.initializers.RandomUniform(-0.05, 0.05, seed=_offset(seed, 0)))
    return keras.layers.Embedding(vocab_size, embedding_dim, embeddings_initializer=initializer,
                                  trainable=trainable, mask_zero=mask_zero, name=name)


@_checks.arguments(features=_checks.count, timesteps=_checks.optional_count)
def sequence_regressor(cell: str = "simple_rnn", units: int = 32, features: int = 2, *,
                       timesteps: int | None = None, activation: str | None = None,
                       recurrent_initializer: str | keras.initializers.Initializer | None = None,
                       seed: int = 0, name: str | None = None) -> keras.Model:
    """``(batch, timesteps, features)`` floats -> one recurrent layer -> ``Dense(1)``.

    The model of the adding problem (:func:`rnncourse.data.adding_problem`) and of the
    gradient measurements. Layer names: ``sequence`` (input), the cell name, ``output``.

    Args:
        cell: ``"simple_rnn"``, ``"gru"`` or ``"lstm"``.
        units: recurrent units.
        features: input features per step.
        timesteps: fixed sequence length, or ``None`` for any length.
        activation: the cell's activation; ``None`` keeps Keras' tanh (only tanh keeps
            LSTM/GRU cuDNN-eligible).
        recurrent_initializer: e.g. ``"identity"`` for an IRNN (Le et al., 2015);
            ``None``: orthogonal, seeded.
        seed: seed of every initialiser (kernel ``seed``, recurrent ``seed + 1``, head
            ``seed + 2``).

    Returns:
        An uncompiled ``keras.Model`` with output ``(batch, 1)``.
    """
    kwargs: dict = {"name": cell}
    if recurrent_initializer is not None:
        kwargs["recurrent_initializer"] = (keras.initializers.Identity()
                                           if recurrent_initializer == "identity"
                                           else recurrent_initializer)
    if activation is not None:
        kwargs["activation"] = activation
    inputs = keras.Input(shape=(timesteps, features), name="sequence")
    hidden = recurrent_layer(cell, units, seed=seed, **kwargs)(inputs)
    head = keras.layers.Dense(1, kernel_initializer=_glorot(seed, 2), name="output")
    return keras.Model(inputs, head(hidden), name=name or f"{cell}_regressor")


# Keras clips a dropout rate into [0, 1] without a word: dropout=20 would drop everything.
@_checks.arguments(num_classes=_checks.at_least(2), dropout=_checks.fraction,
                   recurrent_dropout=_checks.fraction, input_dropout=_checks.fraction,
                   timesteps=_checks.optional_count)
def sequence_classifier(vocab_size: int, *, embedding_dim: int = 32, units: int = 32,
                        cell: str = "lstm", num_classes: int = 2, bidirectional: bool = False,
                        embeddings: np.ndarray | None = None, trainable_embeddings: bool = True,
                        mask_zero: bool = True, dropout: float = 0.0,
                        recurrent_dropout: float = 0.0, input_dropout: float = 0.0,
                        timesteps: int | None = None,
                        seed: int | None = None, name: str | None = None) -> keras.Model:
    """Token ids -> Embedding -> recurrent layer -> class probabilities.

    Input ``(batch, timesteps)`` int ids with 0 as padding; output ``(batch, 1)`` sigmoid
    probabilities when ``num_classes == 2``, else ``(batch, num_classes)`` softmax. Layer
    names: ``token_ids``, ``embedding``, the cell name (``bi_<cell>`` when bidirectional),
    ``probability``/``probabilities``: models built with different ``timesteps`` share
    them, so :func:`copy_weights_by_name` moves weights between them.

    Args:
        vocab_size: rows of the embedding matrix (ids ``0 .. vocab_size - 1``).
        embedding_dim: width of the embedding; taken from ``embeddings`` when given.
        units: recurrent units.
        cell: ``"lstm"``, ``"gru"`` or ``"simple_rnn"``.
        num_classes: 2 for one sigmoid unit, more for softmax.
        bidirectional: wrap the recurrent layer in ``keras.layers.Bidirectional``.
        embeddings: optional ``(vocab_size, dim)`` initial matrix (e.g. GloVe rows).
        trainable_embeddings: whether training updates the embedding matrix.
        mask_zero: id 0 is padding, skipped by the recurrent layer.
        dropout: dropout on the recurrent layer's output (keeps cuDNN).
        recurrent_dropout: dropout on the recurrent state; anything but 0 rules out cuDNN.
        input_dropout: the recurrent layer's own ``dropout``: drops features of the word
            vectors it reads, one mask per sequence for all its steps (keeps cuDNN).
        timesteps: fixed input length, or ``None`` for any length.
        seed: seeds every initialiser; ``None``: Keras' draw.
    """
    inputs = keras.Input(shape=(timesteps,), dtype="int32", name="token_ids")
    x = embedding(vocab_size, None if embeddings is not None else embedding_dim,
                  embeddings=embeddings, trainable=trainable_embeddings, mask_zero=mask_zero,
                  seed=seed)(inputs)
    rnn = recurrent_layer(cell, units, seed=_offset(seed, 1), name=cell,
                          dropout=input_dropout, recurrent_dropout=recurrent_dropout)
    x = keras.layers.Bidirectional(rnn, name=f"bi_{cell}")(x) if bidirectional else rnn(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=_offset(seed, 0), name="dropout")(x)
    dense_init = _glorot(seed, 3)
    if num_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=dense_init,
                                     name="probability")(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation="softmax",
                                     kernel_initializer=dense_init, name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or f"{cell}_classifier")


@_checks.arguments(num_tags=_checks.count, dropout=_checks.fraction,
                   embedding_dropout=_checks.fraction)
def sequence_tagger(vocab_size: int, num_tags: int, *, units: int = 64,
                    embedding_dim: int = 50, embeddings: np.ndarray | None = None,
                    trainable_embeddings: bool = True, cell: str = "lstm",
                    bidirectional: bool = True, dropout: float = 0.0,
                    embedding_dropout: float = 0.0,
                    activation: str = "softmax", mask_zero: bool = True, seed: int | None = 0,
                    name: str | None = None) -> keras.Model:
    """A tagger: ids -> Embedding(mask_zero) -> (Bi)RNN -> one prediction per step.

    Input ``(batch, timesteps)`` int32 token ids with 0 as padding; output
    ``(batch, timesteps, num_tags)`` (softmax by default). The padding mask flows from
    the ``Embedding`` to the loss and to the metrics, so both average over real tokens.

    Args:
        vocab_size: rows of the embedding matrix (``len(vocab)``).
        num_tags: outputs per step (``len(tag_names)``; 1 with ``activation="sigmoid"``
            for a binary per-step label).
        units: recurrent units per direction.
        embedding_dim: embedding width when ``embeddings`` is None.
        embeddings: optional (vocab_size, dim) initial matrix (GloVe + OOV rows).
        trainable_embeddings: fine-tune the embedding matrix.
        cell: ``"lstm"``, ``"gru"`` or ``"simple_rnn"``.
        bidirectional: read the sentence both ways (``Bidirectional``).
        dropout: rate of a ``Dropout`` on the RNN's outputs (not recurrent dropout, which
            would rule out cuDNN), as in every builder; 0 for none.
        embedding_dropout: rate of a ``Dropout`` on the word vectors, before the RNN.
        activation: of the per-step ``Dense`` layer.
        seed: seeds of the initialisers (same seed, same initial weights) and dropout;
            ``None``: Keras' draw.
    """
    inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = embedding(vocab_size, None if embeddings is not None else embedding_dim,
                  embeddings=embeddings, trainable=trainable_embeddings, mask_zero=mask_zero,
                  seed=seed)(inputs)
    if embedding_dropout:
        x = keras.layers.Dropout(embedding_dropout, seed=_offset(seed, 6),
                                 name="word_dropout")(x)
    forward = recurrent_layer(cell, units, seed=_offset(seed, 1), return_sequences=True,
                              name=cell)
    if bidirectional:
        backward = recurrent_layer(cell, units, seed=_offset(seed, 3), return_sequences=True,
                                   go_backwards=True, name=f"{cell}_backward")
        x = keras.layers.Bidirectional(forward, backward_layer=backward, name=f"bi_{cell}")(x)
    else:
        x = forward(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=_offset(seed, 7), name="output_dropout")(x)
    outputs = keras.layers.Dense(num_tags, activation=activation, name="tags",
                                 kernel_initializer=_glorot(seed, 5))(x)
    return keras.Model(inputs, outputs,
                       name=name or f"{'bi' if bidirectional else ''}{cell}_tagger")


@_checks.arguments(vocab_size=_checks.count, dropout=_checks.fraction,
                   batch_size=_checks.optional_count, timesteps=_checks.optional_count)
def char_lm(vocab_size: int, units: int = 128, embedding_dim: int = 32, *,
            batch_size: int | None = None, timesteps: int | None = None, stateful: bool = False,
            activation: str = "tanh", dropout: float = 0.0, seed: int | None = None,
            name: str | None = None) -> keras.Model:
    """Character language model: ids -> Embedding -> LSTM -> logits for the next character.

    Input ``(batch, timesteps)`` int32 ids, output ``(batch, timesteps, vocab_size)`` logits.
    ``stateful=True`` needs a fixed ``batch_size`` (Keras 3: ``keras.Input(batch_shape=...)``)
    and keeps the last state of row ``i`` as the initial state of row ``i`` of the next
    batch. Layer names (``embedding``, ``lstm``, ``logits``) are shared with
    :func:`state_char_lm`, so :func:`copy_weights_by_name` moves weights between them.

    Args:
        batch_size: fixed rows per batch (required when ``stateful``), or ``None``.
        timesteps: fixed steps per call (a stateful model's TBPTT window), or ``None``.
        activation: the LSTM's cell activation; anything but ``"tanh"`` rules out cuDNN.
        dropout: rate of a ``Dropout`` on the LSTM's outputs (inactive at inference).
    """
    # Keras 3.15 would build a model that cannot run
    _checks.fail_if(stateful and batch_size is None, "batch_size", "is needed by a stateful model")
    inputs = keras.Input(batch_shape=(batch_size, timesteps), dtype="int32", name="char_ids")
    x = embedding(vocab_size, embedding_dim, mask_zero=False, seed=seed)(inputs)
    x = recurrent_layer("lstm", units, seed=_offset(seed, 1), activation=activation,
                        return_sequences=True, stateful=stateful, name="lstm")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=_offset(seed, 0), name="dropout")(x)
    outputs = keras.layers.Dense(vocab_size, kernel_initializer=_glorot(seed, 3),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name=name or ("stateful_char_lm" if stateful
                                                      else "char_lm"))


@_checks.arguments(vocab_size=_checks.count, units=_checks.count)  # units: the state width
def state_char_lm(vocab_size: int, units: int = 128, embedding_dim: int = 32,
                  activation: str = "tanh", seed: int | None = None) -> keras.Model:
    """Explicit-state char LM: ``[ids, h, c] -> [logits, h, c]`` with any batch size.

    Inputs ``ids`` ``(batch, timesteps)`` int32 and the LSTM state ``h``, ``c``, each
    ``(batch, units)`` float32; outputs the logits ``(batch, timesteps, vocab_size)`` and the
    state after the last step. No stateful layer: the caller owns the state.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")
    h0 = keras.Input(shape=(units,), name="h")
    c0 = keras.Input(shape=(units,), name="c")
    x = embedding(vocab_size, embedding_dim, mask_zero=False, seed=seed)(ids)
    x, h, c = recurrent_layer("lstm", units, seed=_offset(seed, 1),
                              activation=activation, return_sequences=True, return_state=True,
                              name="lstm")(x, initial_state=[h0, c0])
    logits = keras.layers.Dense(vocab_size, kernel_initializer=_glorot(seed, 3),
                                name="logits")(x)
    return keras.Model([ids, h0, c0], [logits, h, c], name="state_char_lm")


@_checks.arguments(source=keras.Model, target=keras.Model, names=_checks.optional(_checks.strings))
def copy_weights_by_name(source: keras.Model, target: keras.Model,
                         names: Sequence[str] | None = None) -> keras.Model:
    """Copy the weights of every layer of ``source`` into the same-named layer of ``target``.

    Recurrent weights do not depend on the number of timesteps or the batch size, so this
    moves a trained model into one with another input shape (fixed -> any length, batch
    32 -> batch 1, stateful -> explicit state). Returns ``target``. A layer ``target``
    lacks, or weights of another shape, raise Keras' ``ValueError`` naming the layer.
    """
    names = list(names) if names is not None else [
        layer.name for layer in source.layers if layer.weights]
    # copying nothing would pass silently
    _checks.fail_if(not names, "source", f"{source.name!r} has no layer with weights to copy")
    for name in names:
        target.get_layer(name).set_weights(source.get_layer(name).get_weights())
    return target

"""Model builders shared by several chapters, and training callbacks.

Chapter-specific builders live in the chapter's module (``rnncourse.tbptt`` builds the
stateful char-LM, for instance); this module holds the ones more than one chapter uses.
All layers keep cuDNN-eligible settings (tanh/sigmoid, no recurrent dropout, not
unrolled), so the same model trains on a GPU with the fused kernel.
"""

from __future__ import annotations

from rnncourse.config import quiet_tensorflow
from rnncourse.progress import progress

quiet_tensorflow()

import keras  # noqa: E402

CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}


def recurrent_layer(cell: str, units: int, **kwargs) -> keras.layers.Layer:
    """Keras' ``LSTM``, ``GRU`` or ``SimpleRNN`` layer by name: lstm, gru, simple_rnn."""
    try:
        layer_class = CELLS[cell]
    except KeyError:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}") from None
    return layer_class(units, **kwargs)


def sequence_classifier(vocab_size: int, embedding_dim: int = 32, units: int = 32,
                        cell: str = "lstm", num_classes: int = 2, bidirectional: bool = False,
                        embeddings=None, trainable_embeddings: bool = True,
                        mask_zero: bool = True, dropout: float = 0.0,
                        name: str | None = None) -> keras.Model:
    """Token ids -> Embedding -> recurrent layer -> class probabilities.

    Input ``(batch, timesteps)`` int ids with 0 as padding; output ``(batch, 1)`` sigmoid
    probabilities when ``num_classes == 2``, else ``(batch, num_classes)`` softmax.

    Args:
        vocab_size: number of rows of the embedding matrix (ids ``0 .. vocab_size-1``).
        embedding_dim: width of the embedding; ignored when ``embeddings`` is given.
        units: recurrent units.
        cell: ``"lstm"``, ``"gru"`` or ``"simple_rnn"``.
        num_classes: 2 for a single sigmoid unit, more for softmax.
        bidirectional: wrap the recurrent layer in ``keras.layers.Bidirectional``.
        embeddings: optional ``(vocab_size, dim)`` initial matrix (e.g. from GloVe).
        trainable_embeddings: whether the embedding matrix is updated by training.
        mask_zero: let id 0 mean padding, so recurrent layers skip it.
        dropout: dropout on the recurrent layer's output (not recurrent dropout,
            which would rule out cuDNN).
    """
    if embeddings is not None:
        if embeddings.shape[0] != vocab_size:
            raise ValueError(f"embeddings has {embeddings.shape[0]} rows, "
                             f"vocab_size is {vocab_size}")
        embedding_dim = embeddings.shape[1]
        initializer = keras.initializers.Constant(embeddings)
    else:
        initializer = "uniform"
    inputs = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, embeddings_initializer=initializer,
                               mask_zero=mask_zero, trainable=trainable_embeddings,
                               name="embedding")(inputs)
    rnn = recurrent_layer(cell, units, name=cell)
    x = keras.layers.Bidirectional(rnn, name=f"bi_{cell}")(x) if bidirectional else rnn(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    if num_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name or f"{cell}_classifier")


class EpochProgress(keras.callbacks.Callback):
    """One progress bar over epochs with the latest metrics as its postfix.

    Use with ``model.fit(..., verbose=0, callbacks=[EpochProgress()])`` instead of Keras'
    per-step bars, which flood notebooks and rendered pages.
    """

    def __init__(self, desc: str = "epochs") -> None:
        super().__init__()
        self.desc = desc
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = progress(total=self.params.get("epochs"), desc=self.desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{float(v):.4g}" for k, v in (logs or {}).items()})

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def smoke_run(texts, labels, epochs: int = 1, batch_size: int = 32, units: int = 32,
              seed: int = 0) -> dict:
    """Train a small LSTM classifier for ``epochs`` and report whether training works.

    Args:
        texts: space-tokenised strings; labels: ``(n,)`` 0/1 ints.

    Returns:
        A dict with ``loss_before`` and ``loss_after`` (training loss of the same model
        before and after training), ``accuracy`` (on a held-out 20 %), ``seconds`` (wall
        time of ``fit``) and ``device`` (where the LSTM ran).
    """
    import time

    import numpy as np

    from rnncourse.config import set_seed
    from rnncourse.devices import gpus
    from rnncourse.embeddings import Vocabulary

    set_seed(seed)
    tokens = [text.split() for text in texts]
    vocabulary = Vocabulary.from_tokens(tokens, max_size=20_000)
    ids = keras.utils.pad_sequences(vocabulary.encode_batch(tokens), padding="post")
    labels = np.asarray(labels, dtype="float32")
    order = np.random.default_rng(seed).permutation(len(ids))
    split = int(0.8 * len(ids))
    train, test = order[:split], order[split:]
    model = sequence_classifier(len(vocabulary), units=units)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    loss_before = model.evaluate(ids[train], labels[train], batch_size=256, verbose=0)[0]
    start = time.perf_counter()
    model.fit(ids[train], labels[train], epochs=epochs, batch_size=batch_size, verbose=0)
    seconds = time.perf_counter() - start
    loss_after = model.evaluate(ids[train], labels[train], batch_size=256, verbose=0)[0]
    accuracy = model.evaluate(ids[test], labels[test], batch_size=256, verbose=0)[1]
    return {"loss_before": float(loss_before), "loss_after": float(loss_after),
            "accuracy": float(accuracy), "seconds": seconds,
            "device": gpus()[0] if gpus() else "CPU"}

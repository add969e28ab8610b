"""Chapter 9, "Should I still use an RNN?": sizes, recipe and the data of its three tasks.

Follows the chapter contract of :mod:`rnncourse.chapters`. The page builds and trains the
contenders; this module only assembles the data the page trains them on (the Shakespeare
split of chapter 5, the WNUT-16 tweets with GloVe rows of chapter 6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncourse import config, data, embeddings, glove, tbptt, text
from rnncourse.chapters import Settings, settings_for
from rnncourse.chapters.ch05_tbptt import PLAYS

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "CharTask", "char_task",
           "TagTask", "tag_task"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter.

    Attributes:
        seeds: training runs per contender and task (paired: run ``k`` of every contender
            uses ``config.seed(k)``); one at the test scale, where nothing is compared.
        parameter_count: trainable parameters every contender gets (within 10 %).
        adding_lengths: sequence lengths (lags) of the adding problem, short enough for
            two CPU cores (a recurrent layer takes its ``T`` steps one after the other).
        adding_steps: training steps (batches) of the adding problem, the same at every lag.
        plays, characters, char_length: the Shakespeare text (the first ``characters``
            characters of ``plays`` of chapter 5's plays) and its sequence length.
        char_epochs: epochs of the character models.
        tweets: WNUT-16 tweets used (train + validation).
        tag_epochs: epochs of the taggers.
    """

    seeds: int
    parameter_count: int
    adding_lengths: tuple[int, ...]
    adding_steps: int
    plays: int
    characters: int
    char_length: int
    char_epochs: int
    tweets: int
    tag_epochs: int


SIZES = {
    "ci": Sizes(seeds=1, parameter_count=5_000, adding_lengths=(10, 50), adding_steps=250,
                plays=1, characters=100_000, char_length=50, char_epochs=3, tweets=800,
                tag_epochs=5),
    "full": Sizes(seeds=3, parameter_count=20_000, adding_lengths=(10, 50),
                  adding_steps=350, plays=4, characters=200_000, char_length=128,
                  char_epochs=3, tweets=2_400, tag_epochs=5),
}


@dataclass(frozen=True)
class Recipe:
    """The chapter's recipe, the same at both scales."""

    contenders: tuple[str, ...] = ("lstm", "mingru", "transformer")
    heads: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-3
    tag_learning_rate: float = 1e-2
    validation_fraction: float = 0.1
    adding_test_examples: int = 1_000
    learned_mse: float = 0.05
    glove_dim: int = 50
    contexts: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096, 8192)
    cost_units: int = 512


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


@dataclass(frozen=True)
class CharTask:
    """Next-character prediction on Shakespeare, the end of the text held out.

    Attributes:
        x_train, y_train, x_val, y_val: ``(N, char_length)`` int32 ids and next ids.
        vocab_size: distinct characters.
        unigram_bits: bits per character of a model that ignores the context.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    vocab_size: int
    unigram_bits: float


def char_task(setup: Settings[Sizes, Recipe] | None = None) -> CharTask:
    """Chapter 5's text and split (its plays, the last share held out), this chapter's sizes."""
    s = setup or settings()
    corpus = data.load_shakespeare(plays=list(PLAYS[:s.plays]))[:s.characters]
    vocab = text.char_vocabulary(corpus)
    ids = vocab.encode(corpus)
    x, y = tbptt.char_sequences(ids, s.char_length)
    train, val = text.split_indices(len(x), s.validation_fraction, shuffle=False)
    return CharTask(x[train], y[train], x[val], y[val], len(vocab),
                    tbptt.unigram_entropy_bits(ids, len(vocab)))


@dataclass(frozen=True)
class TagTask:
    """WNUT-16 named entities, post-padded ids, with a GloVe matrix for the vocabulary.

    Attributes:
        x_train, y_train, x_val, y_val: ``(n, timesteps)`` int32 token and tag ids, 0 as
            padding (tag 0 is ``"O"``: padding is told apart by ``x == 0``).
        matrix: ``(len(vocab), glove_dim)`` float32 initial embeddings (GloVe rows,
            truncated-normal rows for the words GloVe lacks).
        tag_names: tag id -> BIO tag.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    matrix: np.ndarray
    tag_names: list


def tag_task(setup: Settings[Sizes, Recipe] | None = None) -> TagTask:
    """The first ``tweets`` tweets, split with ``config.seed(0)``; vocabulary from training."""
    s = setup or settings()
    tokens, tags = (part[:s.tweets] for part in data.load_tweet_ner())
    train, val = text.split_indices(len(tokens), s.validation_fraction, seed=config.seed(0))
    vocab = text.Vocabulary.from_tokens([tokens[i] for i in train])
    vectors = glove.read_glove(data.glove_path(s.glove_dim), vocabulary=vocab.words)
    matrix, _ = embeddings.embedding_matrix(vocab, vectors, seed=config.seed(0))
    tag_names = text.tag_vocabulary(tags)
    x, y = text.encode_tagging(tokens, tags, vocab, tag_names)
    return TagTask(x[train], y[train], x[val], y[val], matrix, tag_names)

"""Setup chapter: a smoke run that shows training works on this machine.

Follows the chapter contract of :mod:`rnncourse.chapters`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rnncourse import config, devices, models, text
from rnncourse.chapters import Settings, settings_for

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings", "SmokeRun", "run_smoke"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter."""

    epochs: int
    units: int


SIZES = {"ci": Sizes(epochs=1, units=32), "full": Sizes(epochs=1, units=32)}


@dataclass(frozen=True)
class Recipe:
    """The smoke run's recipe, the same at both scales."""

    batch_size: int = 32
    max_vocabulary: int = 20_000
    validation_fraction: float = 0.2
    optimizer: str = "adam"


RECIPE = Recipe()


def settings() -> Settings[Sizes, Recipe]:
    """This chapter's settings at the current scale and seed."""
    return settings_for(SIZES, RECIPE)


@dataclass(frozen=True)
class SmokeRun:
    """What one short training run showed.

    Attributes:
        loss_before, loss_after: training loss of the same model before and after ``fit``.
        accuracy: on the held-out split.
        seconds: wall time of ``fit`` (for the reader; never asserted).
        device: where the LSTM ran.
    """

    loss_before: float
    loss_after: float
    accuracy: float
    seconds: float
    device: str

    def rows(self) -> list[dict]:
        return [asdict(self)]


def run_smoke(texts: Sequence[str], labels: Sequence[int],
              setup: Settings[Sizes, Recipe] | None = None) -> SmokeRun:
    """Train a small LSTM classifier on space-tokenised ``texts`` with 0/1 ``labels``.

    ``setup``: the chapter's settings (default: :func:`settings` for the current scale).
    """
    s = setup or settings()
    config.set_seed(config.seed(0))
    tokens = [t.split() for t in texts]
    vocabulary = text.Vocabulary.from_tokens(tokens, max_size=s.recipe.max_vocabulary)
    ids = text.pad(vocabulary.encode_batch(tokens))
    labels = np.asarray(labels, dtype="float32")
    train, test = text.split_indices(len(ids), s.recipe.validation_fraction, seed=config.seed(1))
    model = models.sequence_classifier(len(vocabulary), units=s.sizes.units, seed=config.seed(2))
    model.compile(optimizer=s.recipe.optimizer, loss="binary_crossentropy",
                  metrics=["accuracy"])
    loss_before = model.evaluate(ids[train], labels[train], batch_size=256, verbose=0)[0]
    start = time.perf_counter()
    model.fit(ids[train], labels[train], epochs=s.sizes.epochs,
              batch_size=s.recipe.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    loss_after = model.evaluate(ids[train], labels[train], batch_size=256, verbose=0)[0]
    accuracy = model.evaluate(ids[test], labels[test], batch_size=256, verbose=0)[1]
    gpus = devices.gpus()
    return SmokeRun(float(loss_before), float(loss_after), float(accuracy), seconds,
                    gpus[0] if gpus else "CPU")

"""The chapters' experiments, apart from the library.

One module per chapter (``ch00_setup`` ... ``ch09_rnn_or_attention``), each with the same contract:

* ``Sizes``: a frozen dataclass of what the scale changes, and only that: numbers of
  examples, epochs, steps, units, timesteps, repeats and seeds (ints, or tuples of ints).
* ``SIZES = {"ci": Sizes(...), "full": Sizes(...)}``.
* ``Recipe``: a frozen dataclass of everything else (learning rates, dropout, patience,
  optimisers, compared strategies), one instance ``RECIPE`` shared by both scales.
* ``settings()`` returns :class:`Settings` for the current scale and seed knob.
* anything else a chapter module holds is what a reader need not see (data assembly shown
  once, figure data): the page itself builds, trains and evaluates every model.
  ``make test`` fails when a chapter's module trains, or when more than 10 % of the
  chapter's code is in its module where the page does not show it (each page shows its
  sizes and recipe with a ``literalinclude``).
* seeds come from :func:`rnncourse.config.seed` (``seed(0)``, ``seed(1)``, ...), never literals.

Probes of Keras behaviour (what an error message says, what a layer returns at padded steps)
are written on the page, never in the library. The library (:mod:`rnncourse.text`,
:mod:`rnncourse.models`, ...) never imports this package; ``tests/test_structure.py`` checks
both rules.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rnncourse import config

__all__ = ["Settings", "settings_for", "headline", "glue", "CHAPTERS"]

CHAPTERS = ("ch00_setup", "ch01_gradients", "ch02_gru_lstm", "ch03_embeddings",
            "ch04_batching", "ch05_tbptt", "ch06_training", "ch07_scaling",
            "ch09_rnn_or_attention")

S = TypeVar("S")
R = TypeVar("R")


@dataclass(frozen=True)
class Settings(Generic[S, R]):
    """A chapter's settings: sizes for the scale, the one recipe, the seed knob.

    Attributes:
        scale: ``"ci"`` or ``"full"``.
        seed: ``RNNCOURSE_SEED`` (:func:`rnncourse.config.base_seed`); experiments draw their
            seeds with :func:`rnncourse.config.seed`.
        sizes: the chapter's ``Sizes`` for ``scale``.
        recipe: the chapter's ``RECIPE`` (the same at both scales).
    """

    scale: str
    seed: int
    sizes: S
    recipe: R

    def __getattr__(self, name: str) -> Any:
        # settings.epochs reads settings.sizes.epochs; settings.learning_rate the recipe's.
        for part in ("sizes", "recipe"):
            value = object.__getattribute__(self, part)
            if dataclasses.is_dataclass(value) and name in {f.name for f in
                                                            dataclasses.fields(value)}:
                return getattr(value, name)
        raise AttributeError(f"settings have no {name!r} in their sizes or recipe")


def settings_for(sizes: Mapping[str, S], recipe: R) -> Settings[S, R]:
    """The settings of a chapter at the current scale (``RNNCOURSE_SCALE``)."""
    if set(sizes) != set(config.SCALES):
        raise ValueError(f"sizes must have exactly the scales {config.SCALES}, got {sorted(sizes)}")
    current = config.scale()
    return Settings(scale=current, seed=config.base_seed(), sizes=sizes[current], recipe=recipe)


def headline(chapter: str, **numbers: float) -> dict[str, float]:
    """Record a chapter's headline numbers (the ones its claims rest on) and return them.

    ``make robustness`` sets ``RNNCOURSE_HEADLINES`` to a file; each call appends one JSON
    line ``{"chapter", "scale", "seed", name: value, ...}`` there, and the robustness table
    reports min / median / max of every number over the seeds. Without the variable this
    only returns the numbers.
    """
    values = {}
    for name, value in numbers.items():
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"headline {chapter}.{name} is {number}; record finite numbers")
        values[name] = number
    target = os.environ.get("RNNCOURSE_HEADLINES", "").strip()
    if target:
        record = {"chapter": chapter, "scale": config.scale(), "seed": config.base_seed(),
                  **values}
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return values


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Store ``value`` so that the page's prose can quote it, and return it.

    Under Jupyter Book (``myst_nb`` installed) this is ``myst_nb.glue``: the prose writes
    ``{glue:text}`name:.3f``` and shows the number this run measured, never a bound. Where
    ``myst_nb`` is missing (Colab, the library alone) it only returns ``value``.
    """
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # NumPy/TF scalars: myst-nb formats Python numbers only
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value

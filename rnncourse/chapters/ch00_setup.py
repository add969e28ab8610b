"""Setup chapter: the sizes and recipe of the smoke run whose training the page shows.

Follows the chapter contract of :mod:`rnncourse.chapters`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnncourse.chapters import Settings, settings_for

__all__ = ["Sizes", "SIZES", "Recipe", "RECIPE", "settings"]


@dataclass(frozen=True)
class Sizes:
    """What the scale changes in this chapter (nothing: the smoke run is one short epoch)."""

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

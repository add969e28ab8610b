"""Progress bars for long work: downloads, extraction, training epochs (plain-text tqdm,
which needs no notebook widgets).

``RNNCOURSE_PROGRESS=0`` (or ``false``, ``no``, ``off``, in any case) turns every bar off
(the book build sets nothing; bars go to stderr, which the rendered website leaves out).
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from rnncourse import _checks


def enabled() -> bool:
    """Whether progress bars are shown: ``RNNCOURSE_PROGRESS`` is not ``0/false/no/off``
    (any case)."""
    return _checks.flag("RNNCOURSE_PROGRESS", True)


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm`` with the package's defaults; hidden by ``disable=True`` or RNNCOURSE_PROGRESS=0."""
    kwargs["disable"] = kwargs.get("disable", False) or not enabled()
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


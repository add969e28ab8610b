"""Word vectors in a model: the embedding matrix with OOV rows, coverage, neighbours.

:func:`embedding_matrix` builds the ``(len(vocab), dim)`` table for
``keras.layers.Embedding`` from :class:`rnncourse.glove.GloveVectors`, with a reproducible
vector for every word the file lacks (:func:`truncated_normal`); :func:`coverage` counts
what the file covers; :func:`nearest`, :func:`analogy` and :func:`projection_2d` look at
the geometry.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnncourse import _checks, text
from rnncourse.glove import GloveVectors
from rnncourse.text import Vocabulary

__all__ = ["CoverageReport", "coverage", "word_seed", "truncated_normal", "embedding_matrix",
           "nearest", "analogy", "projection_2d"]


@dataclass
class CoverageReport:
    """Vocabulary words (``types``, without ``<pad>``/``<oov>``) and counted corpus tokens
    that have a GloVe vector; ``missing``: ``[(word, count), ...]``, most frequent first."""

    found_types: int
    total_types: int
    found_tokens: int
    total_tokens: int
    missing: list[tuple[str, int]]
    type_coverage = property(lambda self: self.found_types / max(self.total_types, 1))
    token_coverage = property(lambda self: self.found_tokens / max(self.total_tokens, 1))

    def __str__(self) -> str:
        top = ", ".join(f"{w} ({c})" for w, c in self.missing[:10]) or "none"
        return (f"types found:  {self.found_types:,} / {self.total_types:,} "
                f"({self.type_coverage:.1%})\ntokens found: {self.found_tokens:,} / "
                f"{self.total_tokens:,} ({self.token_coverage:.1%})\n" + textwrap.fill(
                    f"most frequent missing: {top}", 88, subsequent_indent="  "))


@_checks.arguments(vocab=Vocabulary, glove=GloveVectors, top=_checks.natural)
def coverage(vocab: Vocabulary, glove: GloveVectors, lowercase: bool = True,
             top: int = 20) -> CoverageReport:
    """:class:`CoverageReport` of ``vocab`` against ``glove``, listing ``top`` missing words."""
    found = [(w, vocab.counts.get(w, 0), (w.lower() if lowercase else w) in glove.index)
             for w in vocab.words[2:]]
    missing = sorted(((w, c) for w, c, hit in found if not hit), key=lambda m: -m[1])
    return CoverageReport(sum(hit for *_, hit in found), len(found),
                          sum(c for _, c, hit in found if hit), sum(vocab.counts.values()),
                          missing[:top])


@_checks.arguments(word=str)
def word_seed(word: str, seed: int = 0) -> int:
    """A stable 64-bit seed for ``word`` (BLAKE2b, unlike Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{word}".encode(errors="surrogatepass"),
                                          digest_size=8).digest(), "little")


@_checks.arguments(word=str, limit=lambda value, argument: _checks.number(
    value, argument, low=0.1, low_inclusive=True))  # below 0.1 the redraws would hardly end
def truncated_normal(word: str, mean: np.ndarray, std: np.ndarray, seed: int = 0,
                     limit: float = 2.0) -> np.ndarray:
    """``(dim,)`` float32 ``mean + std * z`` with ``z`` standard normal, redrawn where
    ``|z| > limit`` (as ``keras.initializers.TruncatedNormal``), seeded by :func:`word_seed`:
    the same word, ``mean`` and ``std`` give the same vector in every run."""
    mean, std = (_checks.array(v, name, ndim=1, finite=True).astype(np.float64)
                 for v, name in ((mean, "mean"), (std, "std")))
    if std.shape != mean.shape or not (std >= 0).all():
        _checks.fail("std", f"must be finite, >= 0 and shaped like mean {mean.shape}")
    rng = np.random.default_rng(word_seed(word, seed))
    z = rng.standard_normal(len(mean))
    while (bad := np.abs(z) > limit).any():
        z[bad] = rng.standard_normal(int(bad.sum()))
    return (mean + std * z).astype(np.float32)


@_checks.arguments(vocab=Vocabulary, glove=GloveVectors, oov=("truncated_normal", "zeros"))
def embedding_matrix(vocab: Vocabulary, glove: GloveVectors, oov: str = "truncated_normal",
                     lowercase: bool = True, seed: int = 0
                     ) -> tuple[np.ndarray, CoverageReport]:
    """The ``(len(vocab), dim)`` float32 table for ``keras.layers.Embedding``, and coverage.

    Row 0 (padding) is zeros; a word with a GloVe vector (looked up lower-cased when
    ``lowercase``) gets it; every other row, ``<oov>`` included, gets
    :func:`truncated_normal` with the loaded rows' mean and std (``oov="truncated_normal"``)
    or zeros (``oov="zeros"``). A GloVe row holding nan or inf raises ``ValueError``.
    """
    if not len(glove) or not np.isfinite(glove.vectors).all():
        bad = [w for w, row in zip(glove.words, glove.vectors, strict=True)
               if not np.isfinite(row).all()]
        _checks.fail("glove", f"{len(bad)} GloVe rows hold nan or inf ({bad[:5]}): fix or "
                              "delete those lines" if bad else "holds no vectors; was it "
                              "read with a vocabulary that matched nothing?")
    matrix, mean, std = np.zeros((len(vocab), glove.dim), np.float32), glove.mean, glove.std
    for i, word in enumerate(vocab.words[1:], start=1):
        row = glove.index.get(word.lower() if lowercase else word)
        if row is not None and i != text.OOV:
            matrix[i] = glove.vectors[row]
        elif oov == "truncated_normal":
            matrix[i] = truncated_normal(word, mean, std, seed)
    return matrix, coverage(vocab, glove, lowercase)


# =========================================================================== similarity
def _top(glove: GloveVectors, query: np.ndarray, exclude: Sequence[str], k: int):
    """``[(word, cosine), ...]``: the ``k`` words nearest ``query`` outside ``exclude``."""
    scores = glove.unit_vectors() @ (query / max(float(np.linalg.norm(query)), 1e-12))
    scores[[glove.index[w] for w in exclude]] = -np.inf
    best = np.argsort(-scores, kind="stable")[:min(k, len(glove) - len(set(exclude)))]
    return [(glove.words[i], float(scores[i])) for i in best]


def _units(glove: GloveVectors, *words: str) -> list[np.ndarray]:
    missing = [w for w in words if w not in glove.index]
    if missing:
        raise KeyError(f"{missing[0]!r} is not among the {len(glove)} loaded GloVe words")
    return [glove.vectors[glove.index[w]] / max(np.linalg.norm(glove[w]), 1e-12) for w in words]


@_checks.arguments(glove=GloveVectors, word=str, k=_checks.count)
def nearest(glove: GloveVectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """``[(word, cosine), ...]``: the ``k`` words nearest ``word`` (itself excluded)."""
    return _top(glove, _units(glove, word)[0], [word], k)


@_checks.arguments(glove=GloveVectors, a=str, b=str, c=str, k=_checks.count)
def analogy(glove: GloveVectors, a: str, b: str, c: str, k: int = 1
            ) -> list[tuple[str, float]]:
    """``a : b :: c : ?`` by 3CosAdd: the words nearest ``b - a + c`` (unit vectors), the
    query words excluded (Mikolov et al. 2013): ``analogy(g, "man", "king", "woman")``."""
    ua, ub, uc = _units(glove, a, b, c)
    return _top(glove, ub - ua + uc, [a, b, c], k)


@_checks.arguments(glove=GloveVectors, words=_checks.strings)
def projection_2d(glove: GloveVectors, words: Sequence[str]) -> np.ndarray:
    """PCA of the vectors of ``words`` to 2-D (SVD, centred), ``(len(words), 2)``."""
    if len(words) < 2:
        _checks.fail("words", f"needs at least 2 words, got {words!r}")
    x = np.stack([glove[w] for w in words]).astype(np.float64)
    x -= x.mean(axis=0)
    return x @ np.linalg.svd(x, full_matrices=False)[2][:2].T

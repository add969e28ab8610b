"""GloVe vectors: the text-format reader, the embedding matrix with OOV rows, neighbours.

:func:`read_glove` reads ``word v1 ... vd`` lines (``pyarrow.csv`` parses the numbers, with
``vocabulary=`` only the lines of wanted words) and keeps a checksummed binary copy;
:func:`embedding_matrix` builds the ``(len(vocab), dim)`` table; :func:`nearest`,
:func:`analogy` and :func:`projection_2d` look at the geometry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import textwrap
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from rnncourse import _checks, config, text
from rnncourse.progress import progress
from rnncourse.text import Vocabulary

__all__ = ["GloveVectors", "read_glove", "cache_file", "CoverageReport", "coverage",
           "word_seed", "truncated_normal", "embedding_matrix", "nearest", "analogy",
           "projection_2d"]
_CHUNK, _NUMBER = 1 << 26, re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf", re.I)


@dataclass
class GloveVectors:
    """``vectors[i]`` (float32, ``(n, dim)``) is the vector of ``words[i]``; a word listed
    twice keeps its first row. ``index``: word -> row; ``from_cache``: read from the copy."""

    words: list[str]
    vectors: np.ndarray
    path: Path | None = None
    from_cache: bool = False

    def __post_init__(self) -> None:
        n = len(self.words)
        self.index = dict(zip(reversed(self.words), range(n - 1, -1, -1), strict=True))
        if len(self.index) < len(self.words):  # a repeated word: its first row wins
            rows = sorted(self.index.values())
            self.words, self.vectors = [self.words[i] for i in rows], self.vectors[rows]
            self.index = {word: i for i, word in enumerate(self.words)}

    dim = property(lambda self: int(self.vectors.shape[1]), doc="Vector size ``dim``.")
    mean = property(lambda self: self.vectors.mean(0, dtype=np.float64), doc="``(dim,)``.")
    std = property(lambda self: self.vectors.std(0, dtype=np.float64), doc="``(dim,)``.")

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        if word not in self.index:
            raise KeyError(f"{word!r} is not among the {len(self)} loaded GloVe words")
        return self.vectors[self.index[word]]

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1, ``(n, dim)`` float32."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return (self.vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def cache_file(path: str | os.PathLike, encoding: str = "utf-8") -> Path:
    """Where :func:`read_glove` keeps its copy of ``path``: ``config.cache_dir()/glove-cache``,
    named by a hash of the resolved path, size, modification time, first and last MiB."""
    path = _checks.path(path, "path").resolve()
    with open(path, "rb") as f:
        ends = f.read(1 << 20)
        ends += f.read() if f.seek(max(f.tell(), path.stat().st_size - (1 << 20))) else b""
    key = hashlib.blake2b(f"{path}|{path.stat().st_size}|{path.stat().st_mtime_ns}|{encoding}"
                          .encode(errors="surrogateescape") + ends, digest_size=10).hexdigest()
    return config.cache_dir() / "glove-cache" / f"{path.name}.{key}"


def _save(file: Path, words: list[str], vectors: np.ndarray) -> None:
    """One file: a line ``n dim bytes crc32``, the words, the rows; written whole or not."""
    blob, part = "\n".join(words).encode(), file.with_name(f"{file.name}.{os.getpid()}")
    try:
        file.parent.mkdir(exist_ok=True)
        crc = zlib.crc32(vectors, zlib.crc32(blob))
        part.write_bytes(f"{len(words)} {vectors.shape[1]} {len(blob)} {crc}\n".encode()
                         + blob + vectors.tobytes())
        os.replace(part, file)
    except OSError:  # a read-only cache folder: the next call parses the text again
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)


def _load(file: Path) -> tuple[list[str], np.ndarray] | None:
    """The copy, or ``None`` when it is missing or fails its CRC-32 (then it is rebuilt)."""
    try:
        with open(file, "rb") as f:
            n, dim, size, crc = (int(v) for v in f.readline().split())
            blob, vectors = f.read(size), np.fromfile(f, np.float32)
    except (OSError, ValueError):
        return None
    if vectors.size != n * dim or zlib.crc32(vectors, zlib.crc32(blob)) != crc:
        return None
    return blob.decode().split("\n"), vectors.reshape(n, dim)


def read_glove(path: str | os.PathLike, vocabulary: Iterable[str] | None = None, *,
               lowercase: bool = True, max_words: int | None = None, encoding: str = "utf-8",
               cache: bool = True) -> GloveVectors:
    """Read a GloVe text file (``word v1 ... vd`` per line) into words and float32 rows.

    Accepted: a word2vec header line ``count dim``, a byte-order mark, blank lines, CRLF,
    trailing spaces, a repeated word (its first line wins). ``pyarrow.csv`` parses blocks of
    lines (the rows equal ``np.asarray(fields, "float32")``); a block it refuses is read line
    by line, which reads words containing spaces (``glove.840B``) and names the file and
    line of a malformed one (``ValueError``).

    Args:
        path: the text file, e.g. ``rnncourse.data.glove_path(50)``.
        vocabulary: words to keep (a list, a set, a :class:`Vocabulary`); ``None``: all.
        lowercase: look the vocabulary up lower-cased, as :func:`embedding_matrix` does.
        max_words: keep only words among the first ``max_words`` of the file.
        encoding: the file's encoding; bytes that do not decode raise ``ValueError`` naming
            the file, the line and the encoding they look like (:func:`rnncourse.text.decode`).
        cache: answer from (and keep) a binary copy at :func:`cache_file`, rebuilt when its
            CRC-32 fails; without it, with ``vocabulary`` only the wanted lines are parsed.
    """
    path, wanted, max_words = _checks.path(path, "path"), None, _checks.optional_count(
        max_words, "max_words")
    if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, Iterable | None):
        _checks.fail("vocabulary", "must be an iterable of words, e.g. a list", TypeError)
    if vocabulary is not None:
        wanted = {w.lower() if lowercase else w
                  for w in _checks.token_lists([list(vocabulary)], "vocabulary")[0]}
    if not path.is_file():
        raise FileNotFoundError(f"no GloVe text file at {path}; data.glove_path(50) gives one")
    try:
        file = cache_file(path, encoding) if cache else None
    except OSError:  # no cache folder can be made (RNNCOURSE_CACHE names a file, say)
        file = None
    found = _load(file) if file else None
    words, vectors = found or _parse(path, encoding, *(wanted, max_words) * (not file))
    if file and not found:
        _save(file, words, vectors)
    if wanted is not None or max_words is not None:
        rows = [i for i, w in enumerate(words[:max_words]) if wanted is None or w in wanted]
        words, vectors = [words[i] for i in rows], vectors[rows]
    return GloveVectors(words, vectors, path, found is not None)


def _parse(path: Path, encoding: str, wanted: set[str] | None = None,
           max_words: int | None = None) -> tuple[list[str], np.ndarray]:
    raw = path.read_bytes()
    if raw.startswith((b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or b"\x00" in raw[:4096]:
        raise ValueError(f"{path} is an archive or binary (word2vec .bin?), not GloVe text: "
                         "extract it (unzip glove.6B.zip) or convert it to text first")
    data = (raw if encoding == "utf-8" else text.decode(raw, path, encoding).encode()
            ).removeprefix(b"\xef\xbb\xbf")
    sample = data[:1 << 16].splitlines()
    header = int(bool(sample) and re.fullmatch(rb"\d+ \d+\s*", sample[0]) is not None)
    first = next((line for line in sample[header:] if line.strip()), b"")
    if not first:
        raise ValueError(f"{path} holds no vectors (it is empty or blank)")
    dim, body = len(first.split()) - 1, data[data.find(b"\n") + 1:] if header else data
    end, count = 0, max_words or 0
    while count and end < len(body):  # max_words: cut after the line of the last word kept
        start, end = end, (body.find(b"\n", end) + 1) or len(body)
        count -= bool(body[start:end].strip())
    try:
        return _arrow(path, body[:end] if max_words else body, dim, first.endswith(b" "), wanted)
    except pa.ArrowInvalid:  # a line arrow refuses: read line by line, which names it
        return _exact(path, raw, encoding, header, dim, max_words)


def _arrow(path: Path, body: bytes, dim: int, trailing: bool, wanted: set[str] | None):
    """Arrow parses blocks of lines; with ``wanted`` only the lines whose word is wanted."""
    names = [f"f{i}" for i in range(dim + 1 + trailing)]
    numbers = (csv.ReadOptions(column_names=names),
               csv.ParseOptions(delimiter=" ", quote_char=False),
               csv.ConvertOptions(column_types={"f0": pa.string()} | dict.fromkeys(
                   names[1:], pa.float32()), null_values=[], include_columns=names[:dim + 1]))
    whole = (csv.ReadOptions(column_names=["line"]),
             csv.ParseOptions(delimiter="\x1f", quote_char=False),
             csv.ConvertOptions(column_types={"line": pa.binary()}))
    if wanted is not None:  # a word with spaces: keep the lines of its first part
        wanted = pa.array(list({word.split(" ", 1)[0] for word in wanted}), pa.string())
    words, blocks, start = [], [], 0
    with progress(total=len(body), unit="B", unit_scale=True, desc=f"read {path.name}",
                  disable=len(body) < _CHUNK) as bar:
        while start < len(body):
            end = (body.find(b"\n", start + _CHUNK) + 1) or len(body)
            block = pa.py_buffer(memoryview(body)[start:end])
            if wanted is not None:  # filter first: split lines, keep those of wanted words
                lines = csv.read_csv(block, *whole)["line"]
                heads = pc.list_element(pc.split_pattern(lines, " ", max_splits=1), 0)
                block = pa.py_buffer(b"\n".join(
                    lines.filter(pc.is_in(heads.cast(pa.string()), wanted)).to_pylist()))
            if block.size:
                table = csv.read_csv(block, *numbers)
                words += table["f0"].to_pylist()
                blocks.append(np.column_stack([table[n].to_numpy() for n in names[1:dim + 1]]))
            bar.update(end - start)
            start = end
    vectors = blocks[0] if len(blocks) == 1 else np.concatenate(blocks or [np.zeros((0, dim))])
    return words, vectors.astype(np.float32, copy=False)


def _exact(path: Path, raw: bytes, encoding: str, header: int, dim: int,
           max_words: int | None) -> tuple[list[str], np.ndarray]:
    """Line by line: reads words containing spaces; names the file and line of a bad one."""
    words, rows = [], []
    for n, line in enumerate(text.decode(raw, path, encoding).split("\n")[header:], header + 1):
        if len(words) == max_words:
            break
        word, *values = line.rstrip().rsplit(" ", dim)
        try:
            if line.strip() and (len(values) < dim or " " in word
                                 and _NUMBER.fullmatch(word.rsplit(" ", 1)[1])):
                raise ValueError(f"expected a word and {dim} numbers")
            rows += [np.array(values, dtype=np.float32)] if line.strip() else []
        except ValueError as error:
            raise ValueError(f"{path}:{n}: {error}: {line[:60]!r}") from None
        words += [word] if line.strip() else []
    return words, np.array(rows, np.float32).reshape(len(rows), dim)


# =========================================================================== matrix
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


def _objects(vocab, glove) -> None:
    if not isinstance(vocab, Vocabulary):
        _checks.fail("vocab", "must be a rnncourse.text.Vocabulary (Vocabulary.from_tokens)",
                     TypeError)
    if not isinstance(glove, GloveVectors):
        _checks.fail("glove", "must be GloveVectors; read the file with read_glove", TypeError)


def coverage(vocab: Vocabulary, glove: GloveVectors, lowercase: bool = True,
             top: int = 20) -> CoverageReport:
    """:class:`CoverageReport` of ``vocab`` against ``glove``, listing ``top`` missing words."""
    _objects(vocab, glove)
    top = _checks.count(top, "top", minimum=0)
    found = [(w, vocab.counts.get(w, 0), (w.lower() if lowercase else w) in glove.index)
             for w in vocab.words[2:]]
    missing = sorted(((w, c) for w, c, hit in found if not hit), key=lambda m: -m[1])
    return CoverageReport(sum(hit for *_, hit in found), len(found),
                          sum(c for _, c, hit in found if hit), sum(vocab.counts.values()),
                          missing[:top])


def word_seed(word: str, seed: int = 0) -> int:
    """A stable 64-bit seed for ``word`` (BLAKE2b, unlike Python's salted ``hash``)."""
    if not isinstance(word, str):
        _checks.fail("word", f"must be a str, got {type(word).__name__}", TypeError)
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{word}".encode(errors="surrogatepass"),
                                          digest_size=8).digest(), "little")


def truncated_normal(word: str, mean: np.ndarray, std: np.ndarray, seed: int = 0,
                     limit: float = 2.0) -> np.ndarray:
    """``(dim,)`` float32 ``mean + std * z`` with ``z`` standard normal, redrawn where
    ``|z| > limit`` (as ``keras.initializers.TruncatedNormal``), seeded by :func:`word_seed`:
    the same word, ``mean`` and ``std`` give the same vector in every run."""
    mean, std = _checks.array(mean, "mean", ndim=1).astype(np.float64), _checks.array(
        std, "std", ndim=1).astype(np.float64)
    if std.shape != mean.shape or not (np.isfinite(std) & (std >= 0)).all():
        _checks.fail("std", f"must be finite, >= 0 and shaped like mean {mean.shape}")
    limit, rng = _checks.number(limit, "limit"), np.random.default_rng(word_seed(word, seed))
    z = rng.standard_normal(len(mean))
    while (bad := np.abs(z) > limit).any():
        z[bad] = rng.standard_normal(int(bad.sum()))
    return (mean + std * z).astype(np.float32)


def embedding_matrix(vocab: Vocabulary, glove: GloveVectors, oov: str = "truncated_normal",
                     lowercase: bool = True, seed: int = 0
                     ) -> tuple[np.ndarray, CoverageReport]:
    """The ``(len(vocab), dim)`` float32 table for ``keras.layers.Embedding``, and coverage.

    Row 0 (padding) is zeros; a word with a GloVe vector (looked up lower-cased when
    ``lowercase``) gets it; every other row, ``<oov>`` included, gets
    :func:`truncated_normal` with the loaded rows' mean and std (``oov="truncated_normal"``)
    or zeros (``oov="zeros"``). A GloVe row holding nan or inf raises ``ValueError``.
    """
    _objects(vocab, glove)
    _checks.choice(oov, "oov", ("truncated_normal", "zeros"))
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


def _units(glove: GloveVectors, k: int, *words: str) -> list[np.ndarray]:
    k = _checks.count(k, "k")
    missing = [w for w in words if w not in glove.index]
    if missing:
        raise KeyError(f"{missing[0]!r} is not among the {len(glove)} loaded GloVe words")
    return [glove.vectors[glove.index[w]] / max(np.linalg.norm(glove[w]), 1e-12) for w in words]


def nearest(glove: GloveVectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """``[(word, cosine), ...]``: the ``k`` words nearest ``word`` (itself excluded)."""
    return _top(glove, _units(glove, k, word)[0], [word], k)


def analogy(glove: GloveVectors, a: str, b: str, c: str, k: int = 1
            ) -> list[tuple[str, float]]:
    """``a : b :: c : ?`` by 3CosAdd: the words nearest ``b - a + c`` (unit vectors), the
    query words excluded (Mikolov et al. 2013): ``analogy(g, "man", "king", "woman")``."""
    ua, ub, uc = _units(glove, k, a, b, c)
    return _top(glove, ub - ua + uc, [a, b, c], k)


def projection_2d(glove: GloveVectors, words: Sequence[str]) -> np.ndarray:
    """PCA of the vectors of ``words`` to 2-D (SVD, centred), ``(len(words), 2)``."""
    words = _checks.token_lists([words], "words")[0]
    if len(words) < 2:
        _checks.fail("words", f"needs at least 2 words, got {words!r}")
    x = np.stack([glove[w] for w in words]).astype(np.float64)
    x -= x.mean(axis=0)
    return x @ np.linalg.svd(x, full_matrices=False)[2][:2].T

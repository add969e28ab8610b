"""Reading GloVe text files (``word v1 ... vd`` per line) into :class:`GloveVectors`: the
lines of the wanted words first, then their numbers, with ``pyarrow.csv``. The embedding
matrix and the vectors' geometry: :mod:`rnncourse.embeddings`."""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from rnncourse import _checks, progress, text

__all__ = ["GloveVectors", "read_glove"]
_CHUNK, _NUMBER = 1 << 26, re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf", re.I)


@dataclass
class GloveVectors:
    """``vectors[i]`` (float32, ``(n, dim)``) is the vector of ``words[i]``; a word listed
    twice keeps its first row. ``index``: word -> row."""

    words: list[str]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        self.words = _checks.strings(self.words, "words")
        self.vectors = np.asarray(_checks.array(self.vectors, "vectors", ndim=2, kinds="iuf"), "f4")
        _checks.fail_if(len(self.vectors) != len(self.words), "vectors", "needs one row per word")
        self.index = dict(zip(self.words, range(len(self.words)), strict=True))
        if len(self.index) < len(self.words):  # a repeated word: its first row wins
            rows = sorted({w: i for i, w in reversed(list(enumerate(self.words)))}.values())
            self.words, self.vectors = [self.words[i] for i in rows], self.vectors[rows]
            self.index = {word: i for i, word in enumerate(self.words)}

    dim = property(lambda self: int(self.vectors.shape[1]), doc="Vector size ``dim``.")
    mean = property(lambda self: self.vectors.mean(0, dtype=np.float64), doc="``(dim,)``.")
    std = property(lambda self: self.vectors.std(0, dtype=np.float64), doc="``(dim,)``.")
    def __len__(self) -> int: return len(self.words)
    def __contains__(self, word: str) -> bool: return word in self.index
    def __getitem__(self, word: str) -> np.ndarray:
        if word not in self.index:
            raise KeyError(f"{word!r} is not among the {len(self)} loaded GloVe words")
        return self.vectors[self.index[word]]

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1, ``(n, dim)`` float32."""
        return self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True).clip(1e-12)


@_checks.arguments(path=_checks.path, vocabulary=_checks.optional(_checks.strings),
                   max_words=_checks.optional_count, encoding=_checks.encoding)
def read_glove(path: str | os.PathLike, vocabulary: Iterable[str] | None = None, *,
               lowercase: bool = True, max_words: int | None = None,
               encoding: str = "utf-8") -> GloveVectors:
    """Read a GloVe text file into words and float32 rows (``np.asarray(fields, "float32")``),
    showing a progress bar on files over 64 MiB. Also read: a word2vec header, a byte-order
    mark, blank lines, CRLF, a repeated word (its first line wins), words with spaces
    (``glove.840B``: a line arrow refuses sends the file to a line-by-line reader, which
    names the file and line of a malformed one in a ``ValueError``).

    Args:
        path: the text file, e.g. ``rnncourse.data.glove_path(50)``.
        vocabulary: words to keep (list, set, :class:`rnncourse.text.Vocabulary`); ``None``: all.
        lowercase: look the vocabulary up lower-cased, as the embedding matrix does.
        max_words: keep only words among the file's first ``max_words`` vectors.
        encoding: bytes that do not decode raise ``ValueError`` naming the file, the line and
            the encoding they look like."""
    wanted = None if vocabulary is None else {w.lower() if lowercase else w for w in vocabulary}
    if not path.is_file():
        raise FileNotFoundError(f"no GloVe text file at {path}; data.glove_path(50) gives one")
    with open(path, "rb") as f:  # mapped, not copied: arrow parses the pages in place
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
    if encoding != "utf-8":  # arrow reads UTF-8
        data, encoding = text.decode(data[:], path, encoding).encode(), "utf-8"
    if data[:6].startswith((b"PK\3\4", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or b"\0" in data[:4096]:
        raise ValueError(f"{path} is an archive, binary (word2vec .bin?) or UTF-16, not GloVe"
                         " text: extract it (unzip glove.6B.zip), convert it or set encoding=")
    start = 3 if data[:3] == b"\xef\xbb\xbf" else 0  # a UTF-8 byte-order mark
    header = int(re.match(rb"\d+ \d+\s*$", data[start:start + 99], re.M) is not None)
    first = next((x for x in data[start:start + 65536].splitlines()[header:] if x.strip()), b"")
    if not first:
        raise ValueError(f"{path} holds no vectors (it is empty or blank)")
    dim, start = len(first.split()) - 1, data.find(b"\n", start) + 1 if header else start
    try:
        words, vectors = _arrow(path, data, start, dim, wanted, max_words)
    except pa.ArrowInvalid:  # a line arrow refuses: read line by line, which names it
        words, vectors = _lines(path, text.decode(data[:], path, encoding).split("\n"),
                                header, dim, wanted, max_words)
    return GloveVectors(words, vectors)


def _arrow(path: Path, data, start: int, dim: int, wanted: set[str] | None,
           max_words: int | None) -> tuple[list[str], np.ndarray]:
    """Blocks of ``_CHUNK`` bytes: the lines of wanted words (all: ``None``), then numbers."""
    names, tables, left = [f"f{i}" for i in range(dim + 1)], [], max_words or len(data)
    numbers = (csv.ReadOptions(column_names=names),
               csv.ParseOptions(delimiter=" ", quote_char=False), csv.ConvertOptions(
                   column_types={"f0": pa.string()} | dict.fromkeys(names[1:], pa.float32()),
                   null_values=[]))
    lines = (csv.ReadOptions(column_names=["line"]), csv.ParseOptions(delimiter="\x1f",
             quote_char=False), csv.ConvertOptions(column_types={"line": pa.string()}))  # UTF-8
    heads = pa.array(list({w.split(" ")[0] for w in wanted or ()}), pa.string())
    with progress.progress(total=len(data) - start, unit="B", unit_scale=True,
                           desc=f"read {path.name}", disable=len(data) - start < _CHUNK) as bar:
        while start < len(data) and left > 0:
            end = (data.find(b"\n", start + _CHUNK) + 1) or len(data)
            block = pa.py_buffer(memoryview(data)[start:end])
            if wanted is None:
                tables.append(csv.read_csv(block, *numbers).slice(0, left))
                left -= len(tables[-1])
            else:  # filter first: split off each line's first word, keep the wanted lines
                rows = csv.read_csv(block, *lines)["line"].slice(0, left)
                word = pc.struct_field(pc.extract_regex(rows, r"^(?P<w>[^ ]*)"), [0])
                rows, left = rows.filter(pc.is_in(word, heads)), left - len(rows)
                tables += [csv.read_csv(pa.py_buffer("\n".join(rows.to_pylist()).encode()),
                                        *numbers)] if len(rows) else []
            bar.update(end - start)
            start = end
    table = pa.concat_tables(tables) if tables else pa.table({n: [] for n in names})
    vectors, row = np.empty((len(table), dim), np.float32), 0
    for batch in table.to_batches():  # column by column, one block of rows at a time
        for j in range(dim):
            vectors[row:row + len(batch), j] = batch.column(j + 1).to_numpy()
        row += len(batch)
    return table.column(0).to_pylist(), vectors


def _lines(path: Path, lines: list[str], header: int, dim: int, wanted: set[str] | None,
           max_words: int | None) -> tuple[list[str], np.ndarray]:
    """Line by line: words containing spaces; names the file and line of a bad one."""
    heads, found = {w.split(" ")[0] for w in wanted or ()}, []
    for n, line in [(n, x) for n, x in enumerate(lines, 1) if x.strip()][header:][:max_words]:
        if wanted is not None and line.split(" ")[0] not in heads:
            continue
        word, *values = line.rstrip().rsplit(" ", dim)
        try:
            if len(values) < dim or " " in word and _NUMBER.fullmatch(word.split(" ")[-1]):
                raise ValueError(f"expected a word and {dim} numbers")
            found += [(word, np.array(values, np.float32))] if word in (wanted or [word]) else []
        except ValueError as error:
            raise ValueError(f"{path}:{n}: {error}: {line[:60]!r}") from None
    return [w for w, _ in found], np.array([r for _, r in found], np.float32).reshape(-1, dim)

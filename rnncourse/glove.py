"""GloVe vectors: the text-format reader, the embedding matrix with OOV rows, neighbours.

In the order a project uses them:

1. :func:`read_glove` - the standard GloVe text format (``word v1 ... vD`` per line),
   streamed in blocks; with ``vocabulary=`` only the kept rows are parsed and stored. A
   binary cache makes the second load take milliseconds.
2. :func:`embedding_matrix` - the ``(len(vocab), dim)`` matrix for
   :func:`rnncourse.models.embedding`: GloVe rows for known words, a seeded
   truncated-normal vector per out-of-vocabulary word (the same word always gets the same
   draw; its vector is that draw scaled by the mean and standard deviation of the loaded
   rows, so it is the same for the same loaded rows), zeros for padding; plus a
   :class:`CoverageReport`.
3. :func:`nearest`, :func:`analogy`, :func:`projection_2d` - cosine neighbours,
   ``a : b :: c : ?`` and a 2-D view.

The vocabulary is :class:`rnncourse.text.Vocabulary` (id 0 padding, 1 out-of-vocabulary).
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnncourse import config
from rnncourse.text import Vocabulary

__all__ = ["GloveVectors", "read_glove", "cache_files", "content_fingerprint", "CACHE_FOLDER",
           "CoverageReport", "coverage", "word_seed", "truncated_normal", "embedding_matrix",
           "nearest", "analogy", "projection_2d"]

_CACHE_VERSION = 1
_BLOCK_BYTES = 1 << 22  # 4 MiB per read: bounded memory, few Python-level steps
_NUMBER = re.compile(rb"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf)$", re.I)


# =========================================================================== GloVe reader
@dataclass
class GloveVectors:
    """Word vectors read by :func:`read_glove`.

    Attributes:
        words: list of ``n`` words, in file order (GloVe files are sorted by frequency).
        vectors: ``(n, dim)`` float32, row ``i`` is the vector of ``words[i]``.
        path: the text file read.
        duplicates: lines whose word had appeared before (the first occurrence wins).
        skipped: line numbers of malformed lines skipped (``on_error="skip"``).
        blank_lines: empty lines ignored.
        decode_errors: words that were not valid UTF-8 (kept distinct: the bad bytes are
            decoded with ``surrogateescape``, so ``word.encode("utf-8",
            "surrogateescape")`` gives the file's bytes back).
        undecodable: up to 20 of those words, for the report.
        header: ``(count, dim)`` of a word2vec-style first line, or ``None``.
        from_cache: whether an existing binary cache answered this call.
    """

    words: list[str]
    vectors: np.ndarray
    path: Path | None = None
    duplicates: int = 0
    skipped: list[int] = field(default_factory=list)
    blank_lines: int = 0
    decode_errors: int = 0
    header: tuple[int, int] | None = None
    from_cache: bool = False
    undecodable: list[str] = field(default_factory=list)
    _index: dict[str, int] | None = field(default=None, repr=False)
    _unit: np.ndarray | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def index(self) -> dict[str, int]:
        """Word -> row of :attr:`vectors`."""
        if self._index is None:
            self._index = {word: i for i, word in enumerate(self.words)}
        return self._index

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        """The ``(dim,)`` vector of ``word``; ``KeyError`` when it is not loaded."""
        try:
            return self.vectors[self.index[word]]
        except KeyError:
            raise KeyError(f"{word!r} is not among the {len(self)} loaded GloVe words") from None

    def get(self, word: str, default=None):
        row = self.index.get(word)
        return default if row is None else self.vectors[row]

    @property
    def mean(self) -> np.ndarray:
        """Per-dimension mean over the loaded rows, ``(dim,)`` float64."""
        return self.vectors.mean(axis=0, dtype=np.float64)

    @property
    def std(self) -> np.ndarray:
        """Per-dimension standard deviation over the loaded rows, ``(dim,)`` float64."""
        return self.vectors.std(axis=0, dtype=np.float64)

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1 (computed once), ``(n, dim)`` float32."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = (self.vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return self._unit


CACHE_FOLDER = "glove-cache"
"""Sub-folder of :func:`rnncourse.config.cache_dir` that holds :func:`read_glove`'s caches."""

_FINGERPRINT_BYTES = 1 << 20  # the first and the last MiB identify the content
_UNWRITABLE: set[Path] = set()  # cache folders a write failed in (this process)
_CACHE_SUFFIXES = {"vectors": ".npy", "words": ".words", "sorted": ".sorted.npy",
                   "order": ".order.npy", "meta": ".json"}


def _cache_folder() -> Path | None:
    """``cache_dir()/glove-cache``, or ``None`` when it cannot be created."""
    try:
        folder = config.cache_dir() / CACHE_FOLDER
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder


def _cache_paths(path: Path, folder: Path | None = None) -> dict[str, Path]:
    """Cache files of ``path``: named after the file and a hash of its resolved path,
    size and modification time, so two files never share a cache and an edited file
    gets a new one."""
    folder = folder if folder is not None else (config.cache_dir() / CACHE_FOLDER)
    resolved = path.resolve()
    stat = resolved.stat()
    key = hashlib.blake2b(f"{resolved}\x00{stat.st_size}\x00{stat.st_mtime_ns}\x00"
                          f"{_CACHE_VERSION}".encode("utf-8", "surrogateescape"),
                          digest_size=8).hexdigest()
    stem = f"{path.name}.{key}"
    return {k: folder / (stem + suffix) for k, suffix in _CACHE_SUFFIXES.items()}


def cache_files(path: str | os.PathLike) -> list[Path]:
    """The binary-cache files :func:`read_glove` keeps for ``path`` (may not exist).

    They live in ``rnncourse.config.cache_dir() / "glove-cache"`` (``RNNCOURSE_CACHE``
    moves it), never beside the text file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}; cache_files takes a GloVe text file")
    return list(_cache_paths(path).values())


def content_fingerprint(path: str | os.PathLike) -> str:
    """A hash of a file's size, first MiB and last MiB (reads at most 2 MiB).

    :func:`read_glove` stores it with its cache and compares it on every load, so a
    file whose content changed under the same size and modification time (a copy
    with preserved times, say) is not answered from a stale cache.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        digest.update(f.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            f.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            digest.update(f.read())
    return digest.hexdigest()


def _source_key(path: Path) -> dict:
    stat = path.stat()
    return {"version": _CACHE_VERSION, "source": str(path.resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns, "content": content_fingerprint(path)}


def _load_cache(path: Path, folder: Path, on_error: str, wanted: set[str] | None,
                max_words: int | None) -> GloveVectors | None:
    """Kept rows from the cache, or ``None`` when it is missing or stale.

    With ``wanted``, the words are found by binary search in the sorted word array, so
    neither the 400k-word list nor a dictionary is built; only kept rows are copied.
    """
    try:
        files = _cache_paths(path, folder)
        meta = json.loads(files["meta"].read_text(encoding="utf-8"))
        key = _source_key(path)
        if {k: meta.get(k) for k in key} != key:
            return None
        if meta["skipped"] and on_error == "raise":
            return None  # built while skipping bad lines; this caller wants the error
        vectors = np.load(files["vectors"], mmap_mode="r")
        if vectors.shape != (meta["count"], meta["dim"]):
            return None
        limit = meta["count"] if max_words is None else min(max_words, meta["count"])
        if wanted is None:
            words = files["words"].read_text(encoding="utf-8",
                                             errors="surrogateescape").split("\n")[:limit]
            rows = np.arange(limit)
        else:
            sorted_words = np.load(files["sorted"], mmap_mode="r")
            order = np.load(files["order"], mmap_mode="r")
            query = np.array(sorted(_encode(w) for w in wanted) or [b""],
                             dtype=sorted_words.dtype)
            query_fits = np.array([len(_encode(w)) <= sorted_words.dtype.itemsize
                                   for w in sorted(wanted, key=_encode)] or [False])
            pos = np.minimum(np.searchsorted(sorted_words, query), len(sorted_words) - 1)
            hit = (sorted_words[pos] == query) & query_fits
            rows = np.asarray(order[pos[hit]])
            keep = rows < limit
            rows, found = rows[keep], query[hit][keep]
            by_row = np.argsort(rows, kind="stable")
            rows = rows[by_row]
            words = [w.decode("utf-8", "surrogateescape") for w in found[by_row].tolist()]
        kept = np.array(vectors[rows], dtype=np.float32)  # copies only the kept rows
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return GloveVectors(words, kept, path, meta["duplicates"], list(meta["skipped"]),
                        meta["blank_lines"], meta["decode_errors"],
                        tuple(meta["header"]) if meta["header"] else None, from_cache=True,
                        undecodable=list(meta.get("undecodable", [])))


def _write_cache(glove: GloveVectors, folder: Path) -> bool:
    """Write the cache into ``folder``; ``False`` (silently) when that fails."""
    suffix = f".part-{os.getpid()}"
    files: dict[str, Path] = {}
    try:
        files = _cache_paths(glove.path, folder)
        meta = {**_source_key(glove.path), "count": len(glove), "dim": glove.dim,
                "duplicates": glove.duplicates, "skipped": glove.skipped,
                "blank_lines": glove.blank_lines, "decode_errors": glove.decode_errors,
                "undecodable": glove.undecodable,
                "header": list(glove.header) if glove.header else None}
        encoded = np.array([_encode(w) for w in glove.words] or [b""])[:len(glove)]
        order = np.argsort(encoded, kind="stable")
        contents = {"vectors": np.ascontiguousarray(glove.vectors, dtype=np.float32),
                    "sorted": encoded[order], "order": order.astype(np.int64)}
        files["meta"].unlink(missing_ok=True)  # the json is the commit marker: remove it first
        for key, final in files.items():
            tmp = final.with_name(final.name + suffix)
            if key in contents:
                with open(tmp, "wb") as f:
                    np.save(f, contents[key])
            elif key == "words":
                tmp.write_text("\n".join(glove.words), encoding="utf-8",
                               errors="surrogateescape")
            else:
                tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, final)
    except (OSError, ValueError, TypeError):
        for final in files.values():
            try:
                final.with_name(final.name + suffix).unlink(missing_ok=True)
            except OSError:
                pass
        return False
    _remove_older_caches(glove.path, folder, files["meta"])
    return True


def _remove_older_caches(path: Path, folder: Path, current: Path) -> None:
    """Delete caches of an earlier version of ``path`` (same file, other size/mtime)."""
    source = str(path.resolve())
    for meta_file in folder.glob(f"{glob.escape(path.name)}.*.json"):
        if meta_file == current:
            continue
        try:
            if json.loads(meta_file.read_text(encoding="utf-8")).get("source") != source:
                continue
            stem = meta_file.name[:-len(".json")]
            meta_file.unlink(missing_ok=True)
            for suffix in _CACHE_SUFFIXES.values():
                (folder / (stem + suffix)).unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            continue


def _encode(word: str) -> bytes:
    return word.encode("utf-8", "surrogateescape")


def _select(glove: GloveVectors, wanted: set[str] | None, max_words: int | None
            ) -> GloveVectors:
    """The rows of ``glove`` that a filtered read would have kept."""
    limit = len(glove) if max_words is None else min(max_words, len(glove))
    rows = [i for i, w in enumerate(glove.words[:limit]) if wanted is None or w in wanted]
    return GloveVectors([glove.words[i] for i in rows], glove.vectors[rows], glove.path,
                        glove.duplicates, glove.skipped, glove.blank_lines,
                        glove.decode_errors, glove.header, undecodable=glove.undecodable)


def read_glove(path: str | os.PathLike, vocabulary: Iterable[str] | None = None,
               on_error: str = "raise", cache: bool = True, dim: int | None = None,
               max_words: int | None = None, lowercase: bool = True) -> GloveVectors:
    """Read a GloVe (or word2vec text) file into words and a float32 matrix.

    The file is read in 4 MiB blocks. For each block, NumPy finds the line starts and the
    first word of every line and compares a 16-byte fingerprint of each word with those of
    ``vocabulary``; only matching lines are split and parsed. So a 20k-word vocabulary
    costs little more than reading the bytes, and memory holds only the kept rows.

    What real files contain, and what the reader does with it:

    * a word2vec header ``"<count> <dim>"`` on the first line: detected and skipped;
    * a UTF-8 byte-order mark at the start: dropped (the first word stays ``the``);
    * blank lines: skipped (counted in ``blank_lines``); CRLF line ends: accepted;
    * words containing spaces (``glove.840B``): the last ``dim`` fields are the vector,
      everything before them is the word;
    * a word seen twice: the first line wins (counted in ``duplicates``);
    * bytes that are not UTF-8: kept, decoded with ``surrogateescape`` so two such words
      stay distinct (counted in ``decode_errors``, listed in ``undecodable``);
    * a compressed archive (``glove.6B.zip``, ``.gz``) or a binary word2vec file:
      ``ValueError`` saying to extract or convert it first;
    * a line with the wrong number of floats, or a field that is not a number:
      ``ValueError`` naming the file and line, or with ``on_error="skip"`` the line is
      skipped and its number recorded in ``skipped``. With ``vocabulary``, only the
      kept lines are parsed, so only they are checked.

    Args:
        path: the text file, e.g. ``rnncourse.data.glove_path(50)``.
        vocabulary: words to keep (any iterable of ``str``, e.g. a :class:`Vocabulary`);
            ``None`` keeps every word.
        on_error: ``"raise"`` or ``"skip"``.
        cache: keep a binary copy under ``rnncourse.config.cache_dir() / "glove-cache"``
            (never beside the file), named by a hash of the file's resolved path, size and
            modification time and checked against a hash of its first and last MiB
            (:func:`content_fingerprint`). When it is missing, the whole file is parsed
            once and the cache written; later calls memory-map it and copy the kept rows.
            When the cache folder is not writable, the file is read directly (once per
            call) and no cache is attempted again in this process.
        dim: vector size; by default taken from the header or the first lines (a given
            ``dim`` bypasses the cache).
        max_words: keep only words among the first ``max_words`` entries of the file
            (the most frequent ones, for GloVe).
        lowercase: look the ``vocabulary`` words up lower-cased, as
            :func:`embedding_matrix` and :func:`coverage` do by default (GloVe 6B is
            lower-case); ``False`` matches exactly (for a cased file such as 840B, with
            ``embedding_matrix(..., lowercase=False)``).

    Returns:
        :class:`GloveVectors` with ``words`` (n,) and ``vectors`` (n, dim) float32.

    Raises:
        TypeError: a ``path`` or ``vocabulary`` of the wrong type.
        ValueError: a bad ``on_error``, ``dim`` or ``max_words``; an empty, compressed or
            binary file; a malformed line (with ``on_error="raise"``).
        FileNotFoundError, IsADirectoryError: ``path`` is missing or a folder.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming a GloVe text file, got "
                        f"{type(path).__name__}")
    path = Path(path)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    for name, value in (("dim", dim), ("max_words", max_words)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    dim = None if dim is None else int(dim)
    max_words = None if max_words is None else int(max_words)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; pass the GloVe text file inside it, "
                                "e.g. glove.6B.50d.txt")
    if not path.is_file():
        raise FileNotFoundError(f"no GloVe file at {path}; rnncourse.data.glove_path(50) "
                                "returns the path of the 50d vectors")
    wanted = None
    if vocabulary is not None:
        if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, Iterable):
            what = ("one string" if isinstance(vocabulary, (str, bytes))
                    else type(vocabulary).__name__)
            raise TypeError("vocabulary must be an iterable of words (e.g. a list or a "
                            f"Vocabulary), not {what}")
        wanted = set()
        for word in vocabulary:
            if not isinstance(word, str):
                raise TypeError(f"vocabulary holds {word!r} ({type(word).__name__}); "
                                "it must hold words as str")
            if word and word == word.strip():
                wanted.add(word.lower() if lowercase else word)
    folder = _cache_folder() if cache and dim is None else None
    if folder is not None:
        glove = _load_cache(path, folder, on_error, wanted, max_words)
        if glove is not None:
            return glove
        if folder not in _UNWRITABLE:
            full = _parse(path, None, on_error, dim, None)
            if _write_cache(full, folder):
                glove = _load_cache(path, folder, on_error, wanted, max_words)
                if glove is not None:
                    glove.from_cache = False  # built just now
                    return glove
            else:
                _UNWRITABLE.add(folder)
            return _select(full, wanted, max_words)  # no second parse
    return _parse(path, wanted, on_error, dim, max_words)


def _line_error(path: Path, line_no: int, message: str) -> ValueError:
    return ValueError(f"{path}:{line_no}: {message}. Fix or delete that line, or pass "
                      "on_error='skip' to skip malformed lines.")


def _parse_fields(fields: list[bytes], dim: int) -> tuple[bytes, list[float]] | str:
    """Split one line's fields into word and floats, or return what is wrong."""
    if len(fields) < dim + 1:
        return f"expected a word and {dim} floats, found {len(fields) - 1} fields after the word"
    head = fields[:-dim]
    if len(head) > 1 and all(_NUMBER.match(f) for f in head[1:]):
        return f"expected a word and {dim} floats, found {len(fields) - 1} numbers"
    try:
        values = [float(v) for v in fields[-dim:]]
    except ValueError:
        bad = next(v for v in fields[-dim:] if not _NUMBER.match(v))
        return f"{bad[:30]!r} is not a number"
    return b" ".join(head), values


def _fingerprint(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A uint64 per line from its first 8 bytes, last 8 bytes and length (vectorised)."""
    width = np.arange(8)
    length = ends - starts
    last = len(arr) - 1
    head = np.minimum(starts[:, None] + width, last)
    head_bytes = np.where(width < length[:, None], arr[head], 0).astype(np.uint8)
    tail = np.clip(ends[:, None] - 8 + width, 0, last)
    tail_bytes = np.where(width >= 8 - length[:, None], arr[tail], 0).astype(np.uint8)
    a = np.ascontiguousarray(head_bytes).view(np.uint64).ravel()
    b = np.ascontiguousarray(tail_bytes).view(np.uint64).ravel()
    with np.errstate(over="ignore"):
        return a * np.uint64(0x9E3779B97F4A7C15) ^ b ^ length.astype(np.uint64) << np.uint64(40)


def _word_fingerprints(words: Iterable[bytes]) -> np.ndarray:
    blob = b"\n".join(words) + b"\n"
    arr = np.frombuffer(blob, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return np.unique(_fingerprint(arr, starts, ends))


def _head_ends(chunk: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               window: int = 24) -> np.ndarray:
    """Position of each line's first space (or its end): a vectorised look at its first
    ``window`` bytes, and ``bytes.find`` for the rare longer words."""
    idx = np.minimum(starts[:, None] + np.arange(window), len(arr) - 1)
    is_space = arr[idx] == 32
    found = is_space.any(axis=1)
    head_end = np.where(found, starts + is_space.argmax(axis=1), ends)
    head_end = np.minimum(head_end, ends)
    for i in np.flatnonzero(~found & (ends - starts > window)).tolist():
        cut = chunk.find(b" ", int(starts[i]), int(ends[i]))
        head_end[i] = ends[i] if cut < 0 else cut
    return head_end


_BOM = b"\xef\xbb\xbf"
_COMPRESSED = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")  # zip, gzip, bz2, xz


def _blocks(f, size: int):
    """Blocks of whole lines (the last one completed with a newline); a UTF-8 byte-order
    mark at the start of the file is dropped, so the first word is ``the``, not
    ``\\ufeffthe``."""
    rest = b""
    first = True
    while True:
        block = f.read(size)
        if first:
            first = False
            if block.startswith(_BOM):
                block = block[len(_BOM):]
        if not block:
            if rest:
                yield rest + b"\n"
            return
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]


def _sniff(path: Path, dim: int | None) -> tuple[int, tuple[int, int] | None]:
    """Vector size and word2vec header from the first lines of the file."""
    with open(path, "rb") as f:
        lines = [f.readline() for _ in range(200)]
    if lines[0].startswith(_COMPRESSED):
        raise ValueError(f"{path} is a compressed archive (zip, gzip, bz2 or xz), not a GloVe "
                         "text file; extract it and pass the .txt file inside "
                         "(e.g. unzip glove.6B.zip)")
    if any(b"\x00" in line for line in lines):
        raise ValueError(f"{path} holds binary data (a word2vec .bin file?), not GloVe text "
                         "lines 'word v1 ... vD'; convert it to the text format first")
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][len(_BOM):]
    lines = [line.split() for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"{path}: the file holds no vectors (it is empty or blank); pass a "
                         "GloVe text file of lines 'word v1 ... vD', e.g. data.glove_path(50)")
    header = None
    first = lines[0]
    if len(first) == 2 and first[0].isdigit() and first[1].isdigit():
        header = (int(first[0]), int(first[1]))
        lines = lines[1:]
    if dim is None:
        if header is not None:
            dim = header[1]
        elif lines:
            dim = Counter(len(fields) - 1 for fields in lines).most_common(1)[0][0]
    if not dim or dim < 1:
        raise ValueError(f"{path}: cannot tell the vector size; pass dim=")
    return dim, header


def _parse(path: Path, wanted: set[str] | None, on_error: str, dim: int | None,
           max_words: int | None) -> GloveVectors:
    dim, header = _sniff(path, dim)
    wanted_bytes = None if wanted is None else {_encode(w) for w in wanted}
    wanted_keys = None
    if wanted_bytes is not None:
        wanted_keys = _word_fingerprints(w.split(b" ", 1)[0] for w in wanted_bytes)
    words: list[bytes] = []
    blocks: list[np.ndarray] = []
    line_nos: list[int] = []
    skipped: list[int] = []
    blank = 0
    line_offset = 0  # lines before the current block
    entries = 0  # non-blank lines seen (for max_words)
    skip_header = header is not None
    with open(path, "rb") as f:
        for chunk in _blocks(f, _BLOCK_BYTES):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            ends = np.flatnonzero(arr == 10)  # every chunk ends with "\n"
            starts = np.concatenate([[0], ends[:-1] + 1])
            n_lines = len(ends)
            ends = ends - (arr[np.maximum(ends - 1, 0)] == 13) * (ends > starts)  # CRLF
            head_end = _head_ends(chunk, arr, starts, ends)
            nonblank = ends > starts
            if skip_header:
                nonblank[0] = False
                skip_header = False
            blank += int(np.count_nonzero(~nonblank)) - (1 if line_offset == 0 and header else 0)
            if max_words is not None:
                rank = entries + np.cumsum(nonblank)
                nonblank &= rank <= max_words
                entries = int(rank[-1]) if n_lines else entries
            keep = nonblank & (head_end > starts)
            if wanted_keys is not None:
                keys = _fingerprint(arr, starts, head_end)
                pos = np.minimum(np.searchsorted(wanted_keys, keys), len(wanted_keys) - 1)
                keep &= wanted_keys[pos] == keys
            if (wanted_keys is None and keep.all() and b"\r" not in chunk
                    and (fast := _parse_chunk(chunk, dim)) is not None
                    and len(fast) == n_lines):
                words.extend(chunk[s:h] for s, h in zip(starts.tolist(), head_end.tolist(),
                                                         strict=True))
                blocks.append(fast)
                line_offset += n_lines
                continue
            rows: list[bytes] = []
            for i in np.flatnonzero(keep).tolist():
                line_no = line_offset + i + 1
                s, e, h = int(starts[i]), int(ends[i]), int(head_end[i])
                if chunk.count(b" ", s, e) == dim:
                    word = chunk[s:h]
                    if wanted_bytes is not None and word not in wanted_bytes:
                        continue
                    words.append(word)
                    rows.append(chunk[h + 1:e])
                    line_nos.append(line_no)
                    continue
                parsed = _parse_fields(chunk[s:e].split(), dim)
                if isinstance(parsed, str):
                    if wanted_bytes is not None and chunk[s:h] not in wanted_bytes:
                        continue  # a fingerprint collision, not a kept word
                    if on_error == "raise":
                        raise _line_error(path, line_no, parsed)
                    skipped.append(line_no)
                    continue
                word, values = parsed
                if wanted_bytes is not None and word not in wanted_bytes:
                    continue
                words.append(word)
                rows.append(b" ".join(repr(v).encode() for v in values))
                line_nos.append(line_no)
            if rows:
                blocks.append(_parse_rows(rows, dim, path, line_nos[-len(rows):], on_error,
                                          skipped, words))
            line_offset += n_lines
            if max_words is not None and entries >= max_words:
                break
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
    words = [w for w in words if w is not None]
    text_words, decode_errors, undecodable = _decode(words)
    first: dict[str, int] = {}
    for i, word in enumerate(text_words):
        first.setdefault(word, i)
    duplicates = len(text_words) - len(first)
    if duplicates:
        rows_kept = np.fromiter(first.values(), dtype=np.int64)
        vectors = vectors[rows_kept]
        text_words = list(first)
    return GloveVectors(text_words, vectors, path, duplicates, skipped, blank, decode_errors,
                        header, undecodable=undecodable)


def _parse_chunk(chunk: bytes, dim: int) -> np.ndarray | None:
    """All value columns of a block of regular lines at once, or ``None`` if irregular.

    Every line must hold exactly ``dim`` spaces (checked by the total: ``loadtxt`` already
    rejects a line with fewer columns), so a word with a space or an extra float falls
    back to the line-by-line path, which reports it.
    """
    if chunk.count(b" ") != chunk.count(b"\n") * dim:
        return None
    try:
        values = np.loadtxt(io.BytesIO(chunk), dtype=np.float32, delimiter=" ",
                            usecols=range(1, dim + 1), comments=None, ndmin=2)
    except ValueError:
        return None
    return values if values.shape[1] == dim else None


def _parse_rows(rows: list[bytes], dim: int, path: Path, line_nos: list[int], on_error: str,
                skipped: list[int], words: list) -> np.ndarray:
    """Parse the value fields of ``rows`` at once; fall back per line to locate an error."""
    try:
        values = np.loadtxt(rows, dtype=np.float32, comments=None, ndmin=2)
        if values.shape == (len(rows), dim):
            return values
    except ValueError:
        pass
    good = []
    first_word = len(words) - len(rows)
    for k, (row, line_no) in enumerate(zip(rows, line_nos, strict=True)):
        parsed = _parse_fields([b"w", *row.split()], dim)
        if isinstance(parsed, str):
            if on_error == "raise":
                raise _line_error(path, line_no, parsed)
            skipped.append(line_no)
            words[first_word + k] = None
            continue
        good.append(parsed[1])
    return np.asarray(good, dtype=np.float32).reshape(len(good), dim)


def _decode(words: list[bytes]) -> tuple[list[str], int, list[str]]:
    """Words as ``str``; bytes that are not UTF-8 kept distinct with ``surrogateescape``."""
    try:
        return (b"\n".join(words).decode("utf-8").split("\n") if words else []), 0, []
    except UnicodeDecodeError:
        out, bad = [], []
        for word in words:
            try:
                out.append(word.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(word.decode("utf-8", errors="surrogateescape"))
                bad.append(out[-1])
        return out, len(bad), bad[:20]


# =========================================================================== matrix
def _check_vocab(vocab) -> None:
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a rnncourse.text.Vocabulary, got "
                        f"{type(vocab).__name__}; build one with Vocabulary.from_tokens(...)")


def _check_glove(glove) -> None:
    if not isinstance(glove, GloveVectors):
        raise TypeError(f"glove must be GloveVectors, got {type(glove).__name__}; "
                        "read the file with read_glove(path)")


@dataclass
class CoverageReport:
    """How much of a vocabulary (and of the text it came from) GloVe covers.

    Attributes:
        found_types, total_types: vocabulary words (excluding ``<pad>``/``<oov>``)
            with a GloVe vector, and all of them.
        found_tokens, total_tokens: corpus tokens whose word has a GloVe vector, and all
            tokens counted by the vocabulary (including words cut by ``max_size``).
        missing: ``[(word, count), ...]`` the most frequent vocabulary words without a vector.
    """

    found_types: int
    total_types: int
    found_tokens: int
    total_tokens: int
    missing: list[tuple[str, int]]

    @property
    def type_coverage(self) -> float:
        return self.found_types / self.total_types if self.total_types else 0.0

    @property
    def token_coverage(self) -> float:
        return self.found_tokens / self.total_tokens if self.total_tokens else 0.0

    def __str__(self) -> str:
        top = ", ".join(f"{w} ({c})" for w, c in self.missing[:10]) or "none"
        return (f"types found:  {self.found_types:,} / {self.total_types:,} "
                f"({self.type_coverage:.1%})\n"
                f"tokens found: {self.found_tokens:,} / {self.total_tokens:,} "
                f"({self.token_coverage:.1%})\n"
                + textwrap.fill(f"most frequent missing: {top}", width=88,
                                subsequent_indent="  ", break_long_words=False))


def coverage(vocab: Vocabulary, glove: GloveVectors, lowercase: bool = True,
             top: int = 20) -> CoverageReport:
    """:class:`CoverageReport` of ``vocab`` against ``glove`` (look-ups lower-cased if asked).

    ``top``: how many of the most frequent missing words to list (an int >= 0).
    """
    _check_vocab(vocab)
    _check_glove(glove)
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"top must be an int >= 0 (missing words to list), got {top!r}")
    index = glove.index
    found_types = found_tokens = 0
    missing = []
    for word in vocab.words[2:]:
        count = vocab.counts.get(word, 0)
        if (word.lower() if lowercase else word) in index:
            found_types += 1
            found_tokens += count
        else:
            missing.append((word, count))
    missing.sort(key=lambda item: -item[1])  # stable: ties keep vocabulary order
    return CoverageReport(found_types, len(vocab) - 2, found_tokens,
                          sum(vocab.counts.values()), missing[:top])


def word_seed(word: str, seed: int = 0) -> int:
    """A stable 64-bit seed for ``word`` (BLAKE2b, unlike Python's salted ``hash``)."""
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    digest = hashlib.blake2b(f"{seed}\x00{word}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little")


def truncated_normal(word: str, mean: np.ndarray, std: np.ndarray, seed: int = 0,
                     limit: float = 2.0) -> np.ndarray:
    """A ``(dim,)`` float32 vector for ``word``: ``mean + std * z``, ``|z| <= limit``.

    ``z`` is standard normal, re-drawn where ``|z| > limit`` (the truncation of
    ``keras.initializers.TruncatedNormal``), from a generator seeded by
    :func:`word_seed`, so a word gets the same ``z`` in every run and every vocabulary.
    With the same ``mean`` and ``std`` (the same loaded GloVe rows) it gets the same vector;
    ``read_glove(vocabulary=...)`` with another vocabulary loads other rows, whose mean and
    standard deviation differ slightly, and so gives a slightly different vector.
    """
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if mean.ndim != 1 or mean.shape != std.shape:
        raise ValueError(f"mean and std must be (dim,) arrays of the same shape, got "
                         f"{mean.shape} and {std.shape}; pass glove.mean and glove.std")
    if not (np.isfinite(std).all() and (std >= 0).all()):
        raise ValueError("std must hold finite values >= 0 (a standard deviation per dimension)")
    if not limit > 0:
        raise ValueError(f"limit must be > 0 (in standard deviations), got {limit!r}")
    rng = np.random.default_rng(word_seed(word, seed))
    z = rng.standard_normal(len(mean))
    while (bad := np.abs(z) > limit).any():
        z[bad] = rng.standard_normal(int(bad.sum()))
    return (mean + std * z).astype(np.float32)


def embedding_matrix(vocab: Vocabulary, glove: GloveVectors, oov: str = "truncated_normal",
                     lowercase: bool = True, seed: int = 0
                     ) -> tuple[np.ndarray, CoverageReport]:
    """The ``(len(vocab), dim)`` float32 matrix for ``keras.layers.Embedding``.

    Row 0 (padding) is zeros. A word with a GloVe vector (looked up lower-cased when
    ``lowercase``; GloVe 6B is lower-case) gets it. Every other row, ``<oov>`` included:

    * ``oov="truncated_normal"``: :func:`truncated_normal` with GloVe's per-dimension
      mean and standard deviation (over ``glove``'s rows), seeded by the word and ``seed``;
    * ``oov="zeros"``: zeros, as in many tutorials (every unknown word looks the same).

    Returns:
        ``(matrix, report)``: the matrix and a :class:`CoverageReport`.

    Raises:
        ValueError: a bad ``oov``; an empty ``glove``; a GloVe row holding nan or inf.
    """
    _check_vocab(vocab)
    _check_glove(glove)
    if oov not in ("truncated_normal", "zeros"):
        raise ValueError(f"oov must be 'truncated_normal' or 'zeros', not {oov!r}")
    if len(glove) == 0:
        raise ValueError("glove holds no vectors; was it read with a vocabulary that "
                         "matched nothing (GloVe 6B words are lower-case)?")
    finite = np.isfinite(glove.vectors).all(axis=1)
    if not finite.all():
        bad = [glove.words[i] for i in np.flatnonzero(~finite)[:5]]
        raise ValueError(f"{int((~finite).sum())} GloVe rows hold nan or inf (e.g. {bad}); "
                         "fix or delete those lines of the file, or drop the words with "
                         "read_glove(vocabulary=...)")
    matrix = np.zeros((len(vocab), glove.dim), dtype=np.float32)
    index = glove.index
    mean, std = glove.mean, glove.std
    for i, word in enumerate(vocab.words[1:], start=1):
        row = index.get(word.lower() if lowercase else word)
        if row is not None and i != Vocabulary.OOV:
            matrix[i] = glove.vectors[row]
        elif oov == "truncated_normal":
            matrix[i] = truncated_normal(word, mean, std, seed)
    return matrix, coverage(vocab, glove, lowercase)


# =========================================================================== similarity
def _check_words(glove: GloveVectors, *words: str) -> None:
    _check_glove(glove)
    for word in words:
        if word not in glove:
            raise KeyError(f"{word!r} is not among the {len(glove)} loaded GloVe words; "
                           "read the file without a vocabulary or add it to the vocabulary")


def _top(glove: GloveVectors, query: np.ndarray, exclude: set[str], k: int
         ) -> list[tuple[str, float]]:
    unit = glove.unit_vectors()
    scores = unit @ (query / max(float(np.linalg.norm(query)), 1e-12))
    excluded = [glove.index[w] for w in exclude if w in glove.index]
    scores[excluded] = -np.inf
    k = min(k, len(glove) - len(excluded))
    best = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.array([], dtype=int)
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(glove.words[i], float(scores[i])) for i in best]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int (how many words to return), got {k!r}")


def nearest(glove: GloveVectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` words with the highest cosine similarity to ``word`` (itself excluded).

    Returns ``[(word, cosine), ...]``, best first.
    """
    _check_words(glove, word)
    _check_k(k)
    return _top(glove, glove.unit_vectors()[glove.index[word]], {word}, k)


def analogy(glove: GloveVectors, a: str, b: str, c: str, k: int = 1
            ) -> list[tuple[str, float]]:
    """``a : b :: c : ?`` by 3CosAdd: words nearest to ``b - a + c`` (unit vectors).

    The three query words are excluded, as in Mikolov et al. (2013); without that, the
    answer is often ``b`` or ``c`` itself. ``analogy(g, "man", "king", "woman")`` ->
    ``[("queen", ...)]``.
    """
    _check_words(glove, a, b, c)
    _check_k(k)
    unit, index = glove.unit_vectors(), glove.index
    query = unit[index[b]] - unit[index[a]] + unit[index[c]]
    return _top(glove, query, {a, b, c}, k)


def projection_2d(glove: GloveVectors, words: Sequence[str]) -> np.ndarray:
    """PCA of the vectors of ``words`` to 2-D, ``(len(words), 2)`` (SVD, centred)."""
    if isinstance(words, str) or len(words) < 2:
        raise ValueError(f"projection_2d needs a list of at least 2 words, got {words!r}")
    _check_words(glove, *words)
    x = np.stack([glove[w] for w in words]).astype(np.float64)
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T

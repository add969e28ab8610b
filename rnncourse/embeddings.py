"""Word embeddings: a GloVe reader, a vocabulary, the embedding matrix, similarities.

The pieces of the chapter *Embeddings and GloVe*, in the order a project uses them:

1. :class:`Vocabulary` - token lists to integer ids. Index 0 is padding (``<pad>``),
   index 1 is out-of-vocabulary (``<oov>``), then words by descending frequency.
2. :func:`read_glove` - the standard GloVe text format (``word v1 ... vD`` per line),
   streamed in blocks; with ``vocabulary=`` only the kept rows are parsed and stored. An
   optional binary cache next to the text file makes the second load take milliseconds.
3. :func:`embedding_matrix` - the ``(len(vocab), dim)`` matrix for
   ``keras.layers.Embedding``: GloVe rows for known words, a seeded truncated-normal vector
   per out-of-vocabulary word (the same word always gets the same vector), zeros for
   padding; plus a :class:`CoverageReport`.
4. :func:`nearest` and :func:`analogy` - cosine neighbours and ``a : b :: c : ?``.

The sentiment experiment of the chapter (GloVe-initialised vs random vs frozen) is
:func:`compare_initialisations`, sized by :class:`SentimentSettings`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnncourse import config

PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
_CACHE_VERSION = 1
_BLOCK_BYTES = 1 << 22  # 4 MiB per read: bounded memory, few Python-level steps
_NUMBER = re.compile(rb"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf)$", re.I)


# =========================================================================== vocabulary
class Vocabulary:
    """Words to integer ids: ``0`` padding, ``1`` out-of-vocabulary, then by frequency.

    Build one with :meth:`from_tokens`. ``words[i]`` is the word of id ``i``;
    :meth:`encode` maps tokens to ids, unknown tokens to :attr:`OOV`.

    Attributes:
        words: list of words, index = id; ``words[0] == "<pad>"``, ``words[1] == "<oov>"``.
        counts: ``collections.Counter`` of every token seen while building (also the
            ones left out by ``max_size``/``min_count``), after lower-casing if ``lower``.
        lower: whether tokens are lower-cased before lookup.
    """

    PAD = 0
    OOV = 1

    def __init__(self, words: Sequence[str], counts: Counter | None = None,
                 lower: bool = False) -> None:
        words = list(words)
        if words[:2] != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"a Vocabulary starts with {PAD_TOKEN!r}, {OOV_TOKEN!r}; got "
                             f"{words[:2]!r}. Build it with Vocabulary.from_tokens(...).")
        if len(set(words)) != len(words):
            raise ValueError("vocabulary words must be unique")
        self.words = words
        self.counts = Counter(counts or {})
        self.lower = lower
        self._ids = {word: i for i, word in enumerate(words)}

    @classmethod
    def from_tokens(cls, token_lists: Iterable[Sequence[str]], max_size: int | None = None,
                    min_count: int = 1, lower: bool = False) -> Vocabulary:
        """Count tokens and index them by descending frequency.

        Ties are broken by first appearance in ``token_lists`` (deterministic).

        Args:
            token_lists: iterable of token lists (one per sentence), e.g.
                ``[text.split() for text in texts]``. A plain string is rejected.
            max_size: at most this many entries *including* ``<pad>`` and ``<oov>``
                (as ``keras.layers.TextVectorization(max_tokens=...)`` counts them).
            min_count: keep words seen at least this many times.
            lower: lower-case tokens (when building and when encoding).
        """
        if isinstance(token_lists, str):
            raise ValueError("token_lists must be a list of token lists, e.g. "
                             "[text.split() for text in texts], not a string")
        if max_size is not None and max_size < 2:
            raise ValueError(f"max_size counts <pad> and <oov>, so it must be >= 2, "
                             f"got {max_size}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts: Counter = Counter()
        for tokens in token_lists:
            if isinstance(tokens, str):
                raise ValueError("each item of token_lists must be a list of tokens, got the "
                                 f"string {tokens[:40]!r}; split it first (text.split())")
            counts.update([t.lower() for t in tokens] if lower else tokens)
        ranked = [w for w, c in counts.most_common() if c >= min_count
                  and w not in (PAD_TOKEN, OOV_TOKEN)]  # most_common: stable for ties
        if max_size is not None:
            ranked = ranked[:max_size - 2]
        return cls([PAD_TOKEN, OOV_TOKEN, *ranked], counts, lower)

    def __len__(self) -> int:
        return len(self.words)

    def __iter__(self):
        return iter(self.words)

    def __contains__(self, word: str) -> bool:
        return (word.lower() if self.lower else word) in self._ids

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} entries, {sum(self.counts.values())} tokens counted)"

    def index(self, word: str) -> int:
        """Id of ``word``; unknown words give :attr:`OOV` (1)."""
        return self._ids.get(word.lower() if self.lower else word, self.OOV)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token list -> id list, ``(timesteps,)``. Unknown tokens -> 1."""
        if isinstance(tokens, str):
            raise ValueError("encode takes a list of tokens, not a string; "
                             "use vocab.encode(text.split())")
        get, oov = self._ids.get, self.OOV
        if self.lower:
            return [get(t.lower(), oov) for t in tokens]
        return [get(t, oov) for t in tokens]

    def encode_batch(self, token_lists: Iterable[Sequence[str]]) -> list[list[int]]:
        """Many token lists -> ragged id lists (pad them with ``keras.utils.pad_sequences``)."""
        return [self.encode(tokens) for tokens in token_lists]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words (padding ids skipped)."""
        return [self.words[int(i)] for i in ids if int(i) != self.PAD]


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
        decode_errors: words that were not valid UTF-8 (decoded with U+FFFD).
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


def _cache_paths(path: Path) -> dict[str, Path]:
    stem = path.name + ".rnncourse"
    names = {"vectors": ".npy", "words": ".words", "sorted": ".sorted.npy",
             "order": ".order.npy", "meta": ".json"}
    return {key: path.with_name(stem + suffix) for key, suffix in names.items()}


def cache_files(path: str | os.PathLike) -> list[Path]:
    """The binary-cache files :func:`read_glove` keeps next to ``path`` (may not exist)."""
    return list(_cache_paths(Path(path)).values())


def _source_key(path: Path) -> dict:
    stat = path.stat()
    return {"version": _CACHE_VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _load_cache(path: Path, on_error: str, wanted: set[str] | None,
                max_words: int | None) -> GloveVectors | None:
    """Kept rows from the cache, or ``None`` when it is missing or stale.

    With ``wanted``, the words are found by binary search in the sorted word array, so
    neither the 400k-word list nor a dictionary is built; only kept rows are copied.
    """
    files = _cache_paths(path)
    try:
        meta = json.loads(files["meta"].read_text(encoding="utf-8"))
        if {k: meta.get(k) for k in ("version", "size", "mtime_ns")} != _source_key(path):
            return None
        if meta["skipped"] and on_error == "raise":
            return None  # built while skipping bad lines; this caller wants the error
        vectors = np.load(files["vectors"], mmap_mode="r")
        if vectors.shape != (meta["count"], meta["dim"]):
            return None
        limit = meta["count"] if max_words is None else min(max_words, meta["count"])
        if wanted is None:
            words = files["words"].read_text(encoding="utf-8").split("\n")[:limit]
            rows = np.arange(limit)
        else:
            sorted_words = np.load(files["sorted"], mmap_mode="r")
            order = np.load(files["order"], mmap_mode="r")
            query = np.array(sorted(w.encode("utf-8") for w in wanted) or [b""],
                             dtype=sorted_words.dtype)
            pos = np.minimum(np.searchsorted(sorted_words, query), len(sorted_words) - 1)
            hit = sorted_words[pos] == query
            rows = np.asarray(order[pos[hit]])
            keep = rows < limit
            rows, found = rows[keep], query[hit][keep]
            by_row = np.argsort(rows, kind="stable")
            rows = rows[by_row]
            words = [w.decode("utf-8") for w in found[by_row].tolist()]
        kept = np.array(vectors[rows], dtype=np.float32)  # copies only the kept rows
    except (OSError, ValueError, KeyError):
        return None
    return GloveVectors(words, kept, path, meta["duplicates"], list(meta["skipped"]),
                        meta["blank_lines"], meta["decode_errors"],
                        tuple(meta["header"]) if meta["header"] else None, from_cache=True)


def _write_cache(glove: GloveVectors) -> bool:
    """Write the cache next to the text file; ``False`` (silently) when it is not writable."""
    files = _cache_paths(glove.path)
    meta = {**_source_key(glove.path), "count": len(glove), "dim": glove.dim,
            "duplicates": glove.duplicates, "skipped": glove.skipped,
            "blank_lines": glove.blank_lines, "decode_errors": glove.decode_errors,
            "header": list(glove.header) if glove.header else None}
    encoded = np.array([w.encode("utf-8") for w in glove.words] or [b""])[:len(glove)]
    order = np.argsort(encoded, kind="stable")
    contents = {"vectors": np.ascontiguousarray(glove.vectors, dtype=np.float32),
                "sorted": encoded[order], "order": order.astype(np.int64)}
    suffix = f".part-{os.getpid()}"
    try:
        files["meta"].unlink(missing_ok=True)  # the json is the commit marker: remove it first
        for key, final in files.items():
            tmp = final.with_name(final.name + suffix)
            if key in contents:
                with open(tmp, "wb") as f:
                    np.save(f, contents[key])
            elif key == "words":
                tmp.write_text("\n".join(glove.words), encoding="utf-8")
            else:
                tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, final)
        return True
    except OSError:
        for final in files.values():
            final.with_name(final.name + suffix).unlink(missing_ok=True)
        return False


def read_glove(path: str | os.PathLike, vocabulary: Iterable[str] | None = None,
               on_error: str = "raise", cache: bool = True, dim: int | None = None,
               max_words: int | None = None) -> GloveVectors:
    """Read a GloVe (or word2vec text) file into words and a float32 matrix.

    The file is read in 4 MiB blocks. For each block, NumPy finds the line starts and the
    first word of every line and compares a 16-byte fingerprint of each word with those of
    ``vocabulary``; only matching lines are split and parsed. So a 20k-word vocabulary
    costs little more than reading the bytes, and memory holds only the kept rows.

    What real files contain, and what the reader does with it:

    * a word2vec header ``"<count> <dim>"`` on the first line: detected and skipped;
    * blank lines: skipped (counted in ``blank_lines``); CRLF line ends: accepted;
    * words containing spaces (``glove.840B``): the last ``dim`` fields are the vector,
      everything before them is the word;
    * a word seen twice: the first line wins (counted in ``duplicates``);
    * bytes that are not UTF-8: decoded with U+FFFD (counted in ``decode_errors``);
    * a line with the wrong number of floats, or a field that is not a number:
      ``ValueError`` naming the file and line, or with ``on_error="skip"`` the line is
      skipped and its number recorded in ``skipped``. With ``vocabulary``, only the
      kept lines are parsed, so only they are checked.

    Args:
        path: the text file, e.g. ``rnncourse.data.load_glove(50)``.
        vocabulary: words to keep (any iterable of ``str``, e.g. a :class:`Vocabulary`);
            ``None`` keeps every word. Matching is exact (GloVe 6B is lower-case).
        on_error: ``"raise"`` or ``"skip"``.
        cache: use a binary cache next to the file (``<file>.rnncourse.npy``/``.words``/
            ``.json``, keyed by the file's size and modification time). When it is
            missing, the whole file is parsed once and the cache written (silently skipped
            if the folder is read-only); later calls memory-map it and copy the kept rows.
        dim: vector size; by default taken from the header or the first lines.
        max_words: keep only words among the first ``max_words`` entries of the file
            (the most frequent ones, for GloVe).

    Returns:
        :class:`GloveVectors` with ``words`` (n,) and ``vectors`` (n, dim) float32.
    """
    path = Path(path)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no GloVe file at {path}; rnncourse.data.load_glove(50) "
                                "returns the path of the 50d vectors")
    wanted = None
    if vocabulary is not None:
        if isinstance(vocabulary, str):
            raise ValueError("vocabulary must be an iterable of words, not one string")
        wanted = {w for w in vocabulary if w and w == w.strip()}
    if cache and dim is None:
        glove = _load_cache(path, on_error, wanted, max_words)
        if glove is not None:
            return glove
        if _write_cache(_parse(path, None, on_error, dim, None)):
            glove = _load_cache(path, on_error, wanted, max_words)
            if glove is not None:
                glove.from_cache = False  # built just now
                return glove
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


def _blocks(f, size: int):
    rest = b""
    while True:
        block = f.read(size)
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
    lines = [line.split() for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"{path}: the file holds no vectors")
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
    wanted_bytes = None if wanted is None else {w.encode("utf-8") for w in wanted}
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
    text_words, decode_errors = _decode(words)
    first: dict[str, int] = {}
    for i, word in enumerate(text_words):
        first.setdefault(word, i)
    duplicates = len(text_words) - len(first)
    if duplicates:
        rows_kept = np.fromiter(first.values(), dtype=np.int64)
        vectors = vectors[rows_kept]
        text_words = list(first)
    return GloveVectors(text_words, vectors, path, duplicates, skipped, blank, decode_errors,
                        header)


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


def _decode(words: list[bytes]) -> tuple[list[str], int]:
    try:
        return b"\n".join(words).decode("utf-8").split("\n") if words else [], 0
    except UnicodeDecodeError:
        out, errors = [], 0
        for word in words:
            try:
                out.append(word.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(word.decode("utf-8", errors="replace"))
                errors += 1
        return out, errors


def dictionary_loader(path: str | os.PathLike, max_lines: int | None = None
                      ) -> dict[str, np.ndarray]:
    """The loader found in many tutorials: one ``dict`` entry per line, every word.

    Kept as the baseline of the chapter's benchmark, and correct: the classic version
    ends with ``return coefs`` (the last line's vector) instead of the dictionary.

    Args:
        path: a GloVe text file.
        max_lines: stop after this many lines (``None``: the whole file).
    """
    embeddings_index = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            if max_lines is not None and line_no >= max_lines:
                break
            values = line.split()
            word = values[0]
            coefs = np.asarray(values[1:], dtype="float32")
            embeddings_index[word] = coefs
    return embeddings_index


def compare_loaders(path: str | os.PathLike, words: Iterable[str],
                    max_lines: int | None = None) -> dict[str, float]:
    """Time the dictionary loop vs :func:`read_glove` (streaming, then cached) for ``words``.

    Both read the first ``max_lines`` lines (all when ``None``). The cached time is that
    of a second call once the cache exists (it is built first when missing, untimed).

    Returns:
        ``{"dictionary": s, "streaming": s, "cached": s, "same_vectors": 1.0 or 0.0,
        "kept": n}``; ``same_vectors`` says the three gave identical float32 rows.
    """
    import time

    words = list(dict.fromkeys(words))
    start = time.perf_counter()
    table = dictionary_loader(path, max_lines)
    reference = {w: table[w] for w in words if w in table}
    dictionary = time.perf_counter() - start
    del table
    start = time.perf_counter()
    streamed = read_glove(path, vocabulary=words, cache=False, max_words=max_lines)
    streaming = time.perf_counter() - start
    read_glove(path, vocabulary=words[:1], cache=True)  # builds the cache if missing
    start = time.perf_counter()
    cached = read_glove(path, vocabulary=words, cache=True, max_words=max_lines)
    cached_s = time.perf_counter() - start
    same = (streamed.words == cached.words and set(streamed.words) == set(reference)
            and np.array_equal(streamed.vectors, cached.vectors)
            and all(np.array_equal(reference[w], v)
                    for w, v in zip(streamed.words, streamed.vectors, strict=True)))
    return {"dictionary": dictionary, "streaming": streaming, "cached": cached_s,
            "same_vectors": float(same), "kept": float(len(streamed))}


# =========================================================================== matrix
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
                f"most frequent missing: {top}")


def coverage(vocab: Vocabulary, glove: GloveVectors, lowercase: bool = True,
             top: int = 20) -> CoverageReport:
    """:class:`CoverageReport` of ``vocab`` against ``glove`` (look-ups lower-cased if asked)."""
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
    digest = hashlib.blake2b(f"{seed}\x00{word}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little")


def truncated_normal(word: str, mean: np.ndarray, std: np.ndarray, seed: int = 0,
                     limit: float = 2.0) -> np.ndarray:
    """A ``(dim,)`` float32 vector for ``word``: ``mean + std * z``, ``|z| <= limit``.

    ``z`` is standard normal, re-drawn where ``|z| > limit`` (the truncation of
    ``keras.initializers.TruncatedNormal``), from a generator seeded by
    :func:`word_seed`, so a word gets the same vector in every run and every vocabulary.
    """
    rng = np.random.default_rng(word_seed(word, seed))
    z = rng.standard_normal(len(mean))
    while (bad := np.abs(z) > limit).any():
        z[bad] = rng.standard_normal(int(bad.sum()))
    return (np.asarray(mean) + np.asarray(std) * z).astype(np.float32)


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
    """
    if oov not in ("truncated_normal", "zeros"):
        raise ValueError(f"oov must be 'truncated_normal' or 'zeros', not {oov!r}")
    if len(glove) == 0:
        raise ValueError("glove holds no vectors; was it read with a vocabulary that "
                         "matched nothing (GloVe 6B words are lower-case)?")
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


def nearest(glove: GloveVectors, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` words with the highest cosine similarity to ``word`` (itself excluded)."""
    _check_words(glove, word)
    return _top(glove, glove.unit_vectors()[glove.index[word]], {word}, k)


def analogy(glove: GloveVectors, a: str, b: str, c: str, k: int = 1
            ) -> list[tuple[str, float]]:
    """``a : b :: c : ?`` by 3CosAdd: words nearest to ``b - a + c`` (unit vectors).

    The three query words are excluded, as in Mikolov et al. (2013); without that, the
    answer is often ``b`` or ``c`` itself. ``analogy(g, "man", "king", "woman")`` ->
    ``[("queen", ...)]``.
    """
    _check_words(glove, a, b, c)
    unit, index = glove.unit_vectors(), glove.index
    query = unit[index[b]] - unit[index[a]] + unit[index[c]]
    return _top(glove, query, {a, b, c}, k)


def projection_2d(glove: GloveVectors, words: Sequence[str]) -> np.ndarray:
    """PCA of the vectors of ``words`` to 2-D, ``(len(words), 2)`` (SVD, centred)."""
    _check_words(glove, *words)
    x = np.stack([glove[w] for w in words]).astype(np.float64)
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


# =========================================================================== Keras layer
def embedding_layer(matrix: np.ndarray, trainable: bool = True, mask_zero: bool = True):
    """``keras.layers.Embedding`` initialised with ``matrix`` ``(vocab_size, dim)``.

    Keras 3 has no ``input_length`` argument (the sequence length comes from the input)
    and no ``weights=[matrix]``; the matrix goes in through
    ``keras.initializers.Constant``.
    """
    config.quiet_tensorflow()
    import keras

    return keras.layers.Embedding(matrix.shape[0], matrix.shape[1],
                                  embeddings_initializer=keras.initializers.Constant(matrix),
                                  trainable=trainable, mask_zero=mask_zero)


def lookup_vs_one_hot(matrix: np.ndarray, ids: np.ndarray) -> float:
    """Max abs difference between ``Embedding(ids)`` and ``one_hot(ids) @ matrix``.

    ``ids``: ``(batch, timesteps)`` int. A lookup is a one-hot product without the zeros.
    """
    config.quiet_tensorflow()
    import keras

    looked_up = np.asarray(embedding_layer(matrix, mask_zero=False)(ids))
    one_hot = np.asarray(keras.ops.one_hot(ids, matrix.shape[0]))
    return float(np.abs(looked_up - one_hot @ matrix).max())


def input_length_warning() -> str | None:
    """What Keras says to ``Embedding(..., input_length=10)`` (Keras 2 code), or ``None``.

    Keras 3 ignores the argument with a deprecation warning (caught here, not shown):
    the sequence length comes from the input, so ``keras.Input(shape=(None,))`` works.
    """
    import warnings

    config.quiet_tensorflow()
    import keras

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            keras.layers.Embedding(10, 2, input_length=10)
        except (TypeError, ValueError) as error:
            return str(error)
    messages = [str(w.message) for w in caught if "input_length" in str(w.message)]
    return messages[0] if messages else None


# =========================================================================== memory
def one_hot_vs_dense_bytes(vocab_size: int, dim: int, batch_size: int, timesteps: int
                           ) -> dict[str, int]:
    """float32 bytes of one batch fed as one-hot vectors vs ids + an embedding table.

    Returns ``{"one_hot": batch*timesteps*vocab*4, "ids": batch*timesteps*4,
    "table": vocab*dim*4, "dense_batch": batch*timesteps*dim*4}``.
    """
    tokens = batch_size * timesteps
    return {"one_hot": tokens * vocab_size * 4, "ids": tokens * 4,
            "table": vocab_size * dim * 4, "dense_batch": tokens * dim * 4}


# =========================================================================== sentiment
@dataclass(frozen=True)
class SentimentSettings:
    """Sizes of the sentiment experiment for the current scale (``config.by_scale``).

    ``train_size`` labelled sentences are kept from the 80% training split (``None``: all
    3,200); validation always uses the other 800 sentences.
    """

    seeds: tuple[int, ...] = field(default_factory=lambda: config.by_scale(ci=(0,),
                                                                           full=(0, 1, 2)))
    epochs: int = field(default_factory=lambda: config.by_scale(ci=4, full=10))
    units: int = 32
    batch_size: int = 32
    max_len: int = 50
    validation_fraction: float = 0.2
    dropout: float = 0.3
    learning_rate: float = 2e-3
    split_seed: int = 0
    vocabulary_from_all: bool = True
    train_size: int | None = 1000


VARIANTS = ("glove", "random", "glove_frozen")


def split_sentences(texts: Sequence[str], labels: np.ndarray, fraction: float = 0.2,
                    seed: int = 0):
    """Shuffle and split into ``(train_tokens, train_labels), (val_tokens, val_labels)``."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = int(round(len(texts) * (1 - fraction)))
    tokens = [texts[i].split() for i in order]
    labels = np.asarray(labels)[order]
    return (tokens[:cut], labels[:cut]), (tokens[cut:], labels[cut:])


def sentiment_data(texts: Sequence[str], labels: np.ndarray, glove_path,
                   settings: SentimentSettings | None = None):
    """Vocabulary, GloVe matrix and padded id arrays for the sentiment experiment.

    The vocabulary comes from the text of both splits when
    ``settings.vocabulary_from_all`` (labels are never used), else from training only.

    Returns:
        dict with ``vocab``, ``matrix`` (len(vocab), dim), ``report``, ``glove``,
        ``x_train``/``x_val`` (n, max_len) int32 right-padded, ``y_train``/``y_val`` (n,).
    """
    config.quiet_tensorflow()
    import keras

    settings = settings or SentimentSettings()
    (tr_tokens, y_train), (va_tokens, y_val) = split_sentences(
        texts, labels, settings.validation_fraction, settings.split_seed)
    if settings.train_size is not None:  # few labels: the case pretrained vectors are for
        tr_tokens, y_train = tr_tokens[:settings.train_size], y_train[:settings.train_size]
    # The vocabulary may use all the text (no labels): words seen only in validation then
    # get GloVe vectors with GloVe, random untrained ones without it.
    vocab = Vocabulary.from_tokens(tr_tokens + va_tokens if settings.vocabulary_from_all
                                   else tr_tokens)
    glove = read_glove(glove_path, vocabulary={w.lower() for w in vocab.words})
    matrix, report = embedding_matrix(vocab, glove)

    def pad(tokens):
        return keras.utils.pad_sequences(vocab.encode_batch(tokens), maxlen=settings.max_len,
                                         padding="post", truncating="post").astype(np.int32)

    return {"vocab": vocab, "glove": glove, "matrix": matrix, "report": report,
            "x_train": pad(tr_tokens), "y_train": y_train.astype(np.float32),
            "x_val": pad(va_tokens), "y_val": y_val.astype(np.float32)}


def sentiment_model(variant: str, matrix: np.ndarray, settings: SentimentSettings,
                    recurrent_dropout: float = 0.0):
    """LSTM classifier: ``"glove"`` (fine-tuned), ``"random"`` or ``"glove_frozen"``."""
    from rnncourse import models

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if not recurrent_dropout:
        return models.sequence_classifier(
            len(matrix), embedding_dim=matrix.shape[1], units=settings.units,
            embeddings=None if variant == "random" else matrix,
            trainable_embeddings=variant != "glove_frozen", dropout=settings.dropout,
            name=f"{variant}_lstm")
    import keras

    inputs = keras.Input(shape=(None,), dtype="int32")
    init = "uniform" if variant == "random" else keras.initializers.Constant(matrix)
    x = keras.layers.Embedding(len(matrix), matrix.shape[1], embeddings_initializer=init,
                               mask_zero=True, trainable=variant != "glove_frozen")(inputs)
    x = keras.layers.LSTM(settings.units, recurrent_dropout=recurrent_dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=f"{variant}_lstm_recurrent_dropout")


def train_sentiment(data: dict, variant: str, seed: int,
                    settings: SentimentSettings | None = None) -> dict[str, list[float]]:
    """Train one variant from ``seed``; return the Keras history (per-epoch metrics)."""
    import keras

    settings = settings or SentimentSettings()
    config.set_seed(seed)
    model = sentiment_model(variant, data["matrix"], settings)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(data["x_train"], data["y_train"], batch_size=settings.batch_size,
                        epochs=settings.epochs, validation_data=(data["x_val"], data["y_val"]),
                        verbose=0)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def compare_initialisations(data: dict, settings: SentimentSettings | None = None,
                            variants: Sequence[str] = VARIANTS
                            ) -> dict[str, list[dict[str, list[float]]]]:
    """Train every variant at every seed: ``{variant: [history per seed]}``."""
    from rnncourse.progress import progress

    settings = settings or SentimentSettings()
    runs = [(v, s) for v in variants for s in settings.seeds]
    results: dict[str, list] = {v: [] for v in variants}
    for variant, seed in progress(runs, desc="sentiment runs", unit="run"):
        results[variant].append(train_sentiment(data, variant, seed, settings))
    return results


def best_val_accuracy(results: dict[str, list[dict[str, list[float]]]]) -> dict[str, float]:
    """Mean over seeds of each run's best validation accuracy, per variant."""
    return {v: float(np.mean([max(h["val_accuracy"]) for h in runs]))
            for v, runs in results.items()}

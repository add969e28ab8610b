"""Text to integer ids: your files, tokens, vocabularies, the reserved ids, padding, splits.

* your own files: :func:`read_labelled` (CSV/TSV of texts and labels) and :func:`decode`
  (a byte that is not in the file's encoding names the line and the likely encoding);
* :func:`tokenize` splits words from punctuation, as GloVe's corpus was split.

One home for the conventions every chapter relies on:

* id ``0`` (:data:`PAD`, token ``"<pad>"``) is padding, so ``Embedding(mask_zero=True)`` can
  skip it; id ``1`` (:data:`OOV`, token ``"<oov>"``) is a word outside the vocabulary; real
  words start at id ``2``, most frequent first (:class:`Vocabulary`).
* characters get ids by sorted order, with no reserved id (:class:`CharVocabulary`), the
  convention of a character language model whose every position is a real character.
* tags get ids with ``"O"`` first (:func:`tag_vocabulary`), so a padded tag position reads
  as "outside" and the mask removes it from the loss.
* one split for every experiment: :func:`split_indices`.

``keras.layers.StringLookup`` does the same word-to-id job inside a model (with
``mask_token="<pad>"`` and ``num_oov_indices=1`` it reserves the same two ids); this class
keeps the counts, which the GloVe coverage report and the chapters' tables need, and works
on plain Python lists before any tensor exists.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnncourse import _checks

__all__ = [
    "PAD", "OOV", "PAD_TOKEN", "OOV_TOKEN", "OUTSIDE", "tokenize", "decode", "read_labelled",
    "Vocabulary", "CharVocabulary", "char_vocabulary", "tag_vocabulary", "pad",
    "encode_tagging", "split_indices",
]

PAD = 0
"""Id of padding: ``Embedding(mask_zero=True)`` masks it."""
OOV = 1
"""Id of every word outside the vocabulary."""
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
OUTSIDE = "O"
"""The BIO tag of a token outside every entity; tag id 0."""
PADDING = ("post", "pre")
"""Where :func:`pad` puts the padding (and which end ``truncating`` cuts)."""


TOKEN = re.compile(r"n't|(?<=\w)'\w+|\w+(?=n't)|\w+(?:-\w+)*|[^\w\s\u200b-\u200d\u2060\ufeff]")
"""What :func:`tokenize` keeps: words (hyphenated ones whole), the clitics ``n't`` and
``'s``/``'re``/... after a word, and every other non-space character on its own, as
GloVe's corpus was tokenised (``"don't"`` -> ``do``, ``n't``); invisible characters
(zero-width spaces and joiners, a byte-order mark) are no tokens."""


@_checks.arguments(s=str)
def tokenize(s: str, lowercase: bool = False) -> list[str]:
    """Split a text into words and punctuation (:data:`TOKEN`), e.g. for GloVe look-ups.

    ``tokenize("It's great, isn't it?", lowercase=True)`` ->
    ``['it', "'s", 'great', ',', 'is', "n't", 'it', '?']``. ``str.split`` would keep
    ``great,`` and ``it?``, words no vector file has. The text is put in Unicode NFC
    first, so a decomposed ``"cafe\u0301"`` is the one word ``"café"``, as in GloVe.
    """
    s = unicodedata.normalize("NFC", s)
    return TOKEN.findall(s.lower() if lowercase else s)


def decode(data: bytes, path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The bytes of the text file ``path`` as ``str`` (a byte-order mark dropped).

    Bytes that are not ``encoding`` raise ``ValueError`` (argument ``encoding``) naming the
    file, the line and the encoding they look like, instead of losing rows.
    """
    try:
        return data.decode(encoding).removeprefix("\ufeff")  # a BOM (utf-8, utf-16-le, ...)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        utf16 = data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        guess = next(e for e in (["utf-16"] if utf16 else []) + ["utf-8", "cp1252", "latin-1"]
                     if e != encoding and _decodes(data, e))
        _checks.fail("encoding", f"{path}, line {line}: {data[error.start:error.end + 3]!r} "
                                 f"is not {encoding}; pass encoding={guess!r}")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


@_checks.arguments(path=_checks.path, encoding=_checks.encoding)
def read_labelled(path: str | os.PathLike, text_column: str | int = "text",
                  label_column: str | int = "label", encoding: str = "utf-8",
                  delimiter: str | None = None) -> tuple[list[str], list[str]]:
    """Texts and labels from your own CSV or TSV file.

    Args:
        path: the file; quoted fields may hold delimiters and line breaks (``csv`` rules).
        text_column, label_column: column names from the header line, or 0-based
            positions in a file without a header line.
        encoding: the file's encoding (a UTF-8 byte-order mark is dropped); bytes that do
            not decode raise ``ValueError`` naming the line and the likely encoding.
        delimiter: ``None`` takes a tab if the first line holds one, else a comma.

    Returns:
        ``(texts, labels)``: two lists of ``str``, one item per data row (blank lines
        skipped). Map the labels to ids yourself, e.g. ``sorted(set(labels))``.

    Raises:
        ValueError: a named column missing from the header, a row without that column
            (named by file and line), a file that does not decode.
    """
    columns = (text_column, label_column)
    by_name = all(isinstance(c, str) for c in columns)
    if not by_name:
        columns = tuple(_checks.count(c, n, minimum=0) for c, n in
                        zip(columns, ("text_column", "label_column"), strict=True))
    content = decode(path.read_bytes(), path, encoding)
    if delimiter is None:
        delimiter = "\t" if "\t" in content.partition("\n")[0] else ","
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    if by_name:
        header = next(reader, [])
        for column, name in zip(columns, ("text_column", "label_column"), strict=True):
            _checks.fail_if(column not in header, name, f"{column!r} is not in the header")
        columns = tuple(header.index(c) for c in columns)
    texts, labels = [], []
    for row in reader:
        if not any(field.strip() for field in row):
            continue
        if len(row) <= max(columns):
            raise ValueError(f"{path}:{reader.line_num}: no column {max(columns)} ({delimiter=})")
        texts.append(row[columns[0]])
        labels.append(row[columns[1]])
    return texts, labels


class Vocabulary:
    """Words to integer ids: ``0`` padding, ``1`` out-of-vocabulary, then by frequency.

    Build one with :meth:`from_tokens`; keep it with :meth:`save` and :meth:`load`.
    ``words[i]`` is the word of id ``i``; :meth:`encode` maps tokens to ids, unknown tokens
    to :attr:`OOV`.

    Attributes:
        words: list of words, index = id; ``words[0] == "<pad>"``, ``words[1] == "<oov>"``.
        counts: ``collections.Counter`` of every token seen while building (also the
            ones left out by ``max_size``/``min_count``), after lower-casing if ``lowercase``.
        lowercase: whether tokens are lower-cased before lookup.
    """

    PAD = 0
    OOV = 1

    def __init__(self, words: Sequence[str], counts: Counter | None = None,
                 lowercase: bool = False) -> None:
        words = list(words)
        if words[:2] != [PAD_TOKEN, OOV_TOKEN] or len(set(words)) != len(words):
            _checks.fail("words", "must be unique, from '<pad>', '<oov>': use from_tokens")
        self.words = words
        self.counts = Counter(counts or {})
        self.lowercase = _checks.boolean(lowercase, "lowercase")
        self._ids = {word: i for i, word in enumerate(words)}

    @classmethod
    @_checks.arguments(token_lists=_checks.token_lists, min_count=_checks.count,
                       max_size=_checks.optional(_checks.at_least(2)))
    def from_tokens(cls, token_lists: Iterable[Sequence[str]], max_size: int | None = None,
                    min_count: int = 1, lowercase: bool = False) -> Vocabulary:
        """Count tokens and index them by descending frequency.

        Ties are broken by first appearance in ``token_lists`` (deterministic).

        Args:
            token_lists: one token list per text, e.g. ``[tokenize(t) for t in texts]``.
                A plain string (or a list of strings) is refused: it would be counted
                character by character.
            max_size: at most this many entries *including* ``<pad>`` and ``<oov>``
                (as ``keras.layers.TextVectorization(max_tokens=...)`` counts them): an
                int >= 2, or ``None`` for no limit.
            min_count: keep words seen at least this many times (an int >= 1).
            lowercase: lower-case tokens (when building and when encoding).
        """
        counts: Counter = Counter()
        for tokens in token_lists:
            counts.update([t.lower() for t in tokens] if lowercase else tokens)
        ranked = [w for w, c in counts.most_common() if c >= min_count
                  and w not in (PAD_TOKEN, OOV_TOKEN)]  # most_common: stable for ties
        if max_size is not None:
            ranked = ranked[:max_size - 2]
        return cls([PAD_TOKEN, OOV_TOKEN, *ranked], counts, lowercase)

    @_checks.arguments(path=_checks.path)
    def save(self, path: str | os.PathLike) -> Path:
        """Write words, counts and ``lowercase`` to a UTF-8 JSON file; returns its path."""
        path.write_text(json.dumps({"words": self.words, "counts": dict(self.counts),
                                    "lowercase": self.lowercase}, ensure_ascii=False),
                        encoding="utf-8")
        return path

    @classmethod
    @_checks.arguments(path=_checks.path)
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """The vocabulary :meth:`save` wrote (same ids, counts and ``lowercase``)."""
        try:
            saved = json.loads(path.read_text(encoding="utf-8-sig"))
            return cls(saved["words"], Counter(saved["counts"]), saved["lowercase"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not a vocabulary written by Vocabulary.save") from None

    def __len__(self) -> int:
        return len(self.words)

    def __iter__(self):
        return iter(self.words)

    def __contains__(self, word: str) -> bool:
        return (word.lower() if self.lowercase else word) in self._ids

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} entries, {sum(self.counts.values())} tokens counted)"

    @_checks.arguments(word=str)
    def index(self, word: str) -> int:
        """Id of ``word``; unknown words give :attr:`OOV` (1)."""
        return self._ids.get(word.lower() if self.lowercase else word, self.OOV)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token list -> id list, ``(timesteps,)``. Unknown tokens -> 1."""
        tokens = _checks.token_lists([tokens], "tokens")[0]
        get, oov = self._ids.get, self.OOV
        if self.lowercase:
            return [get(t.lower(), oov) for t in tokens]
        return [get(t, oov) for t in tokens]

    def encode_batch(self, token_lists: Iterable[Sequence[str]]) -> list[list[int]]:
        """Many token lists -> ragged id lists (pad them with :func:`pad`)."""
        get, oov, lowercase = self._ids.get, self.OOV, self.lowercase
        return [[get(t.lower() if lowercase else t, oov) for t in tokens]
                for tokens in _checks.token_lists(token_lists, "token_lists")]

    def mapping(self) -> dict[str, int]:
        """``{word: id}`` for the real words (ids ``2 ..``), e.g. for a Keras ``StringLookup``."""
        return {word: i for i, word in enumerate(self.words) if i >= 2}

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words (padding ids skipped); an id outside ``0 .. len(vocab) - 1`` raises
        ``ValueError`` (a negative id would otherwise silently index from the end)."""
        ids = _checks.ids(ids, "ids", ndim=1, below=len(self.words))
        return [self.words[i] for i in ids.tolist() if i != self.PAD]


@_checks.arguments(sequences=_checks.sequences, maxlen=_checks.optional_count,
                   padding=PADDING, truncating=_checks.optional(PADDING))
def pad(sequences, maxlen: int | None = None, padding: str = "post",
        truncating: str | None = None) -> np.ndarray:
    """Id sequences of any lengths -> ``(batch, timesteps)`` int32, padded with :data:`PAD`.

    The book's one pad function: ``keras.utils.pad_sequences`` after the inputs are
    normalised (lists, ragged lists, arrays, tensors, pandas columns of lists). Post-padding
    (the default) keeps an LSTM/GRU cuDNN-eligible under a mask (see
    :func:`rnncourse.devices.cudnn_eligibility`).

    Args:
        sequences: ``batch`` sequences of non-negative integer ids, none empty, none holding
            the padding id 0 (it would be masked like padding).
        maxlen: ``timesteps`` of the result; ``None``: the longest sequence.
        padding: ``"post"`` (zeros after the tokens) or ``"pre"``.
        truncating: ``None`` refuses to cut a sequence longer than ``maxlen``; ``"post"``
            keeps its first ``maxlen`` ids, ``"pre"`` its last ones.

    Raises:
        TypeError: text instead of ids, float or bool ids, a flat list (one sequence).
        ValueError: no sequences, an empty sequence, id 0 or a negative id inside a
            sequence, a sequence longer than ``maxlen`` without ``truncating``.
    """
    from keras.utils import pad_sequences

    holding_pad = [i for i, ids in enumerate(sequences) if (ids == PAD).any()]
    _checks.fail_if(holding_pad, "sequences", "holds the padding id 0 (padded already?)")
    if maxlen is not None and truncating is None and max(map(len, sequences)) > maxlen:
        _checks.fail("maxlen", "is shorter than a sequence; pass truncating='post' or 'pre'")
    return pad_sequences(sequences, maxlen=maxlen, padding=padding,
                         truncating=truncating or "post", value=PAD, dtype="int32")


@dataclass
class CharVocabulary:
    """Characters of a text, sorted; id ``i`` is ``chars[i]`` (no reserved ids)."""

    chars: str
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _checks.fail_if(len(set(self.chars)) != len(self.chars), "chars", "must be unique")
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    @_checks.arguments(text=str)
    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``(len(text),)`` int32 ids; an unknown character raises ``ValueError``."""
        unknown = set(text) - self.index.keys()
        _checks.fail_if(unknown, "text", lambda: f"{sorted(unknown)[:5]} are not in the vocabulary")
        return np.fromiter((self.index[c] for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        """``(n,)`` ids -> text; an id outside ``0 .. len - 1`` raises ``ValueError``,
        a non-integer id (``0.5``: probabilities, not ids) ``TypeError``."""
        flat = _checks.ids(ids, "ids", below=len(self.chars)).reshape(-1)
        return "".join(self.chars[i] for i in flat.tolist())


@_checks.arguments(text=str)
def char_vocabulary(text: str) -> CharVocabulary:
    """The sorted set of characters of ``text``."""
    _checks.fail_if(not text, "text", "is empty; load some with rnncourse.data.load_shakespeare()")
    return CharVocabulary("".join(sorted(set(text))))


def tag_vocabulary(tag_lists: Iterable[Sequence[str]]) -> list[str]:
    """Tag names with ``"O"`` first (id 0), then the others sorted by entity type.

    Args:
        tag_lists: one list of BIO tags per sentence (a string is refused: it would be
            split into characters).

    Returns:
        list of tag names; ``names.index(tag)`` is a tag's id.
    """
    tags = {tag for tags in _checks.token_lists(tag_lists, "tag_lists") for tag in tags}
    others = sorted(tags - {OUTSIDE}, key=lambda t: (t.split("-", 1)[-1], t))
    return [OUTSIDE, *others]


@_checks.arguments(token_lists=_checks.token_lists, tag_lists=_checks.token_lists,
                   vocab=Vocabulary, tag_names=_checks.strings, maxlen=_checks.optional_count)
def encode_tagging(token_lists: Sequence[Sequence[str]], tag_lists: Sequence[Sequence[str]],
                   vocab: Vocabulary, tag_names: Sequence[str], maxlen: int | None = None,
                   truncate: bool = False, padded: bool = True):
    """Token and tag lists -> id matrices (or ragged id lists) for a tagger.

    Args:
        token_lists: ``n`` sentences, each a list of tokens (not a string).
        tag_lists: ``n`` lists of BIO tags, one per token.
        vocab: a :class:`Vocabulary` (id 0 padding, 1 out-of-vocabulary).
        tag_names: tag vocabulary from :func:`tag_vocabulary` (``"O"`` is tag id 0).
        maxlen: at most this many steps (default: the longest sentence).
        truncate: allow cutting sentences longer than ``maxlen`` (else ``ValueError``).
        padded: ``True`` returns padded matrices; ``False`` returns one int32 array per
            sentence for tokens and tags alike, the input of
            ``batching.bucketed_dataset(x, y)``, which pads both with 0 per batch.

    Returns:
        ``padded=True``: ``x`` ``(n, timesteps)`` int32 token ids, 0 after the end of a
        sentence, and ``y`` ``(n, timesteps)`` int32 tag ids, 0 (``"O"``) at padded
        positions, which the model's mask removes from loss and metrics.
        ``padded=False``: ``x`` and ``y`` as two lists of ``n`` int32 arrays
        ``(timesteps_i,)``.
    """
    _checks.fail_if(len(token_lists) != len(tag_lists), "tag_lists", "needs one per sentence")
    tag_id = {tag: i for i, tag in enumerate(tag_names)}
    for i, (tokens, tags) in enumerate(zip(token_lists, tag_lists, strict=True)):
        _checks.fail_if(not tokens, "token_lists", f"sentence {i} is empty: drop it")
        _checks.fail_if(len(tokens) != len(tags), "tag_lists", f"sentence {i}: one tag per token")
        _checks.fail_if(set(tags) - tag_id.keys(), "tag_names", f"lacks tags of sentence {i}")
    x = vocab.encode_batch(token_lists)
    y = [[tag_id[t] for t in tags] for tags in tag_lists]
    if not padded:
        if maxlen is not None and not truncate and max(map(len, x)) > maxlen:
            _checks.fail("maxlen", "is shorter than a sentence; raise it or pass truncate=True")
        return ([np.asarray(ids[:maxlen], np.int32) for ids in x],
                [np.asarray(ids[:maxlen], np.int32) for ids in y])
    from keras.utils import pad_sequences

    x = pad(x, maxlen, truncating="post" if truncate else None)
    return x, pad_sequences(y, x.shape[1], dtype="int32", padding="post", truncating="post",
                            value=0)


@_checks.arguments(n=_checks.at_least(2), validation_fraction=_checks.share)
def split_indices(n: int, validation_fraction: float = 0.2, seed: int = 0,
                  shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices for ``n`` examples: the one split of every chapter.

    Args:
        n: number of examples (at least 2).
        validation_fraction: share held out, in ``(0, 1)``; at least one example.
        seed: shuffling seed (ignored when ``shuffle=False``).
        shuffle: draw the validation examples at random; ``False`` holds out the last
            share in order (for a text stream whose sequences continue one another).

    Returns:
        ``(train, validation)``: sorted int64 index arrays that partition ``range(n)``.
    """
    n_val = min(n - 1, max(1, round(n * validation_fraction)))
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    validation = order[n - n_val:] if not shuffle else order[:n_val]
    train = order[:n - n_val] if not shuffle else order[n_val:]
    return np.sort(train), np.sort(validation)

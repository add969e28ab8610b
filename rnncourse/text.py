"""Text to integer ids: vocabularies, the reserved ids, padding and splits.

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

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rnncourse import _checks

__all__ = [
    "PAD", "OOV", "PAD_TOKEN", "OOV_TOKEN", "OUTSIDE", "Vocabulary", "CharVocabulary",
    "char_vocabulary", "tag_vocabulary", "pad", "encode_tagging", "split_indices",
]

PAD = 0
"""Id of padding: ``Embedding(mask_zero=True)`` masks it."""
OOV = 1
"""Id of every word outside the vocabulary."""
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
OUTSIDE = "O"
"""The BIO tag of a token outside every entity; tag id 0."""


def _is_int(value) -> bool:
    """An int (NumPy ints too), but not a bool: ``True`` is no size."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


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
                (as ``keras.layers.TextVectorization(max_tokens=...)`` counts them): an
                int >= 2, or ``None`` for no limit.
            min_count: keep words seen at least this many times (an int >= 1).
            lower: lower-case tokens (when building and when encoding).

        Raises:
            ValueError: a string instead of token lists, or a size that is not an int in
                range.
        """
        if isinstance(token_lists, str):
            raise ValueError("token_lists must be a list of token lists, e.g. "
                             "[text.split() for text in texts], not a string")
        if max_size is not None and (not _is_int(max_size) or max_size < 2):
            raise ValueError(f"max_size counts <pad> and <oov>, so it must be an int >= 2 "
                             f"or None, got {max_size!r}")
        if not _is_int(min_count) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
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
        """Many token lists -> ragged id lists (pad them with :func:`pad`)."""
        if isinstance(token_lists, str):
            raise ValueError("encode_batch takes a list of token lists, not a string; "
                             "use vocab.encode_batch([text.split() for text in texts])")
        return [self.encode(tokens) for tokens in token_lists]

    def mapping(self) -> dict[str, int]:
        """``{word: id}`` for the real words (ids ``2 ..``), e.g. for a Keras ``StringLookup``."""
        return {word: i for i, word in enumerate(self.words) if i >= 2}

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words (padding ids skipped).

        Raises:
            ValueError: an id outside ``0 .. len(vocab) - 1`` (a negative id would
                otherwise silently index from the end).
        """
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.words)]
        if bad:
            raise ValueError(f"ids must be in 0..{len(self.words) - 1} (this vocabulary), got "
                             f"{bad[0]}; decode with the Vocabulary that encoded them")
        return [self.words[i] for i in ids if i != self.PAD]


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

    arrays = _checks.sequences(sequences, "sequences")
    if not arrays:
        _checks.fail("sequences", "is empty; pass at least one id sequence")
    maxlen = _checks.optional_count(maxlen, "maxlen")
    _checks.choice(padding, "padding", ("post", "pre"))
    if truncating is not None:
        _checks.choice(truncating, "truncating", ("post", "pre"))
    holding_pad = [i for i, ids in enumerate(arrays) if (ids == PAD).any()]
    if holding_pad:
        _checks.fail("sequences", f"sequence {holding_pad[0]} holds the padding id {PAD}; "
                                  "real ids start at 1 (already padded? pass the unpadded lists)")
    longest = max(ids.size for ids in arrays)
    if maxlen is not None and longest > maxlen and truncating is None:
        _checks.fail("maxlen", f"{sum(ids.size > maxlen for ids in arrays)} sequences are longer "
                               f"than maxlen={maxlen} (longest {longest}); raise maxlen or pass "
                               "truncating='post' (keep the start) or 'pre' (keep the end)")
    return pad_sequences(arrays, maxlen=maxlen, padding=padding,
                         truncating=truncating or "post", value=PAD, dtype="int32")


@dataclass
class CharVocabulary:
    """Characters of a text, sorted; id ``i`` is ``chars[i]`` (no reserved ids)."""

    chars: str
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharVocabulary chars must be unique; build it with "
                             "char_vocabulary(text)")
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``(len(text),)`` int32 ids; an unknown character raises ``ValueError``."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary; build it "
                             "with char_vocabulary() from text that contains it") from None

    def decode(self, ids) -> str:
        """``(n,)`` ids -> text; an id outside ``0 .. len - 1`` raises ``ValueError``,
        a non-integer id (``0.5``) ``TypeError``."""
        flat = np.asarray(ids).reshape(-1)
        if flat.size and flat.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {flat.dtype}; pass the ids "
                            "from encode (or argmax of the logits), not probabilities")
        if flat.size and (flat.min() < 0 or flat.max() >= len(self.chars)):
            raise ValueError(f"ids must be in 0..{len(self.chars) - 1}, got "
                             f"{int(flat.min())}..{int(flat.max())}")
        return "".join(self.chars[int(i)] for i in flat)


def char_vocabulary(text: str) -> CharVocabulary:
    """The sorted set of characters of ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is empty; load some with rnncourse.data.load_shakespeare()")
    return CharVocabulary("".join(sorted(set(text))))


def tag_vocabulary(tag_lists: Iterable[Sequence[str]]) -> list[str]:
    """Tag names with ``"O"`` first (id 0), then the others sorted by entity type.

    Args:
        tag_lists: one list of BIO tags per sentence.

    Returns:
        list of tag names; ``names.index(tag)`` is a tag's id.

    Raises:
        ValueError: a string instead of the lists (or one sentence's tags given as a
            string, which would be split into characters), or no tag at all.
    """
    if isinstance(tag_lists, str):
        raise ValueError("tag_lists must be one list of tags per sentence, not a string")
    tag_lists = list(tag_lists)
    strings = [i for i, tags in enumerate(tag_lists) if isinstance(tags, str)]
    if strings:
        raise ValueError(f"tag_lists[{strings[0]}] is the string {tag_lists[strings[0]]!r}, "
                         "not a list of tags; pass one list per sentence, e.g. "
                         "[['B-person', 'O'], ['O']]")
    tags = {tag for tags in tag_lists for tag in tags}
    if not tags:
        raise ValueError("no tags found: pass one list of BIO tags per sentence")
    others = sorted(tags - {OUTSIDE}, key=lambda t: (t.split("-", 1)[-1], t))
    return [OUTSIDE, *others]


def encode_tagging(token_lists: Sequence[Sequence[str]], tag_lists: Sequence[Sequence[str]],
                   vocab: Vocabulary, tag_names: Sequence[str], maxlen: int | None = None,
                   truncate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Token and tag lists -> padded id matrices for a tagger.

    Args:
        token_lists: ``n`` sentences, each a list of tokens.
        tag_lists: ``n`` lists of BIO tags, one per token.
        vocab: a :class:`Vocabulary` (id 0 padding, 1 out-of-vocabulary).
        tag_names: tag vocabulary from :func:`tag_vocabulary`.
        maxlen: pad to this many steps (default: the longest sentence).
        truncate: allow cutting sentences longer than ``maxlen``.

    Returns:
        ``x``: (n, timesteps) int32 token ids, 0 after the end of a sentence;
        ``y``: (n, timesteps) int32 tag ids, 0 (``"O"``) at padded positions, which the
        model's mask removes from loss and metrics.
    """
    if len(token_lists) != len(tag_lists):
        raise ValueError(f"{len(token_lists)} sentences but {len(tag_lists)} tag lists; "
                         "pass one tag list per sentence")
    tag_id = {tag: i for i, tag in enumerate(tag_names)}
    for i, (tokens, tags) in enumerate(zip(token_lists, tag_lists, strict=True)):
        if len(tokens) == 0:
            raise ValueError(f"sentence {i} is empty; drop empty sentences before encoding "
                             "(an all-padding row has nothing to learn from)")
        if len(tokens) != len(tags):
            raise ValueError(f"sentence {i} has {len(tokens)} tokens but {len(tags)} tags; "
                             "every token needs exactly one tag")
        unknown = set(tags) - tag_id.keys()
        if unknown:
            raise ValueError(f"sentence {i} has tags {sorted(unknown)} missing from tag_names; "
                             "build tag_names from all tag lists with tag_vocabulary()")
    from keras.utils import pad_sequences

    x = pad(vocab.encode_batch([list(tokens) for tokens in token_lists]), maxlen,
            truncating="post" if truncate else None)
    y = pad_sequences([[tag_id[t] for t in tags] for tags in tag_lists], x.shape[1],
                      dtype="int32", padding="post", truncating="post", value=0)
    return x, y


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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an int >= 2 (one example to train, one to validate), "
                         f"got {n!r}")
    if isinstance(validation_fraction, bool) or not isinstance(
            validation_fraction, (int, float, np.number)) or not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), a number (the share held "
                         f"out), got {validation_fraction!r}")
    n_val = min(n - 1, max(1, round(n * validation_fraction)))
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    validation = order[n - n_val:] if not shuffle else order[:n_val]
    train = order[:n - n_val] if not shuffle else order[n_val:]
    return np.sort(train), np.sort(validation)

"""The one place where the library turns what a caller passes into what it computes on.

Every public function of :mod:`rnncourse` normalises its arguments through these helpers, so
the same kind of value is accepted (or refused) the same way everywhere:

* counts, sizes, seeds and ids: Python or NumPy ints (and 0-d integer arrays or tensors);
  never a bool, never a float, however whole;
* numbers: any finite real (Python, NumPy, 0-d tensor), never a bool;
* arrays and sequences: lists, ragged lists, NumPy arrays, ``tf.Tensor``/``tf.RaggedTensor``
  and pandas columns;
* token lists: lists of strings, never a bare string (which would be split into characters);
* flags: ``True``/``False`` (NumPy bools, 0 and 1 too), never ``"no"``, which is true;
* text encodings: a name :mod:`codecs` knows, as its canonical name;
* paths: ``str`` or ``os.PathLike``, with ``~`` expanded;
* environment flags: ``0/false/no/off`` and ``1/true/yes/on`` in any case.

A public function declares its arguments' kinds in one line with :func:`arguments`::

    @_checks.arguments(units=_checks.count, rate=_checks.fraction, seed=_checks.natural,
                       model=keras.Model, padding=("post", "pre"))
    def build(units, rate=0.0, seed=None, model=None, padding="post"): ...

and keeps in its body only the checks that relate arguments to each other or to the data.
Two kinds need no spec, the signature declares them: a parameter whose default is a bool is
a flag (:func:`boolean`), and one named ``seed`` or ``..._seed`` is a :func:`natural` or
``None`` (which the function then treats as it documents).

A wrong *kind* of value raises :class:`TypeError`, a value of the right kind out of range
:class:`ValueError`. Both carry the argument's name in ``.argument`` (and in the message),
so a test asserts the type and the name, never the wording.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

__all__ = ["ArgumentTypeError", "ArgumentValueError", "fail", "fail_if", "arguments", "optional",
           "count", "optional_count", "natural", "at_least", "number", "real", "fraction",
           "share", "choice", "boolean", "encoding", "array", "ids", "sequences", "strings",
           "token_lists", "path", "flag"]

_INT64_MAX = 2**63 - 1
"""No count beyond it fits a NumPy or TensorFlow integer: refused here, not deep inside."""
_INT32_MAX = 2**31 - 1
"""Ids beyond it do not fit the int32 batches an ``Embedding`` reads (they would wrap)."""


class ArgumentTypeError(TypeError):
    """A value of the wrong kind; ``argument`` names the parameter."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class ArgumentValueError(ValueError):
    """A value of the right kind but out of range; ``argument`` names the parameter."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


def fail(argument: str, message: str, kind: type = ValueError) -> NoReturn:
    """Raise :class:`ArgumentValueError` (or :class:`ArgumentTypeError` for ``TypeError``)."""
    raise (ArgumentTypeError if issubclass(kind, TypeError) else ArgumentValueError)(
        argument, message)


def fail_if(condition: Any, argument: str, message: str | Callable[[], str],
            kind: type = ValueError) -> None:
    """:func:`fail` when ``condition`` is true: a check that relates values, in one line.

    ``message`` may be a callable, built only on failure (for a message that computes
    something only a failing input has, such as the largest id of a non-empty array).
    """
    if condition:
        fail(argument, message() if callable(message) else message, kind)


def _scalar(value: Any) -> Any:
    """A 0-d NumPy array or tensor as its Python scalar; anything else unchanged.

    A symbolic tensor (inside ``tf.function``) has no value yet and is left as it is.
    """
    if hasattr(value, "numpy") and callable(value.numpy) and getattr(value, "shape", None) == ():
        try:
            value = value.numpy()
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def count(value: Any, argument: str, minimum: int = 1, *,
          maximum: int | None = None) -> int:
    """``value`` as a Python int in ``minimum..maximum`` (a size, a number of steps, a seed).

    Python and NumPy ints of any width and 0-d integer arrays or tensors are accepted;
    bools and floats (even ``3.0``) are refused with :class:`TypeError`, and an int beyond
    int64 (which no array or tensor holds) with :class:`ValueError`.
    """
    value = _scalar(value)
    wanted = f"an int >= {minimum}" if maximum is None else f"an int in {minimum}..{maximum}"
    maximum = _INT64_MAX if maximum is None else maximum
    if not _is_int(value):
        fail(argument, f"must be {wanted}, got {value!r} ({type(value).__name__})", TypeError)
    if value < minimum or value > maximum:
        fail(argument, f"must be {wanted}, got {int(value)}")
    return int(value)


def natural(value: Any, argument: str) -> int:
    """:func:`count` from 0: a seed, an offset, a number of items that may be none."""
    return count(value, argument, minimum=0)


def at_least(minimum: int) -> Callable[[Any, str], int]:
    """The spec of :func:`count` from ``minimum`` (e.g. ``at_least(2)`` for classes)."""
    return lambda value, argument: count(value, argument, minimum)


def optional_count(value: Any, argument: str, minimum: int = 1, *,
                   maximum: int | None = None) -> int | None:
    """:func:`count`, or ``None`` passed through (``None``: any size)."""
    return None if value is None else count(value, argument, minimum, maximum=maximum)


def number(value: Any, argument: str, *, low: float | None = 0.0,
           low_inclusive: bool = False, high: float | None = None,
           high_inclusive: bool = True) -> float:
    """``value`` as a finite Python float within ``(low, high]`` (by default: positive)."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        fail(argument, f"must be a real number, got {value!r} ({type(value).__name__})",
             TypeError)
    value = float(value)
    if not math.isfinite(value):
        fail(argument, f"must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        fail(argument, f"must be {'>=' if low_inclusive else '>'} {low}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        fail(argument, f"must be {'<=' if high_inclusive else '<'} {high}, got {value}")
    return value


def real(value: Any, argument: str) -> float:
    """:func:`number` without bounds: any finite real (a bias, a factor)."""
    return number(value, argument, low=None)


def fraction(value: Any, argument: str) -> float:
    """A rate in ``[0, 1)``, such as a dropout rate."""
    return number(value, argument, low=0.0, low_inclusive=True, high=1.0,
                  high_inclusive=False)


def share(value: Any, argument: str) -> float:
    """A share strictly between 0 and 1, such as the validation share of a split."""
    return number(value, argument, low=0.0, high=1.0, high_inclusive=False)


def choice(value: Any, argument: str, options: Iterable[str]) -> str:
    """One of ``options`` (compared as given; strings only)."""
    options = tuple(options)
    if not isinstance(value, str):
        fail(argument, f"must be one of {options}, got {value!r}", TypeError)
    if value not in options:
        fail(argument, f"must be one of {options}, got {value!r}")
    return str(value)  # a plain str, also for numpy.str_


def boolean(value: Any, argument: str) -> bool:
    """A flag as a Python bool: ``bool``, ``numpy.bool_``, a 0-d bool array or tensor, or the
    ints 0 and 1; a string (``"no"`` is true), ``None`` or another number is refused."""
    value = _scalar(value)
    if not (isinstance(value, (bool, np.bool_)) or (_is_int(value) and value in (0, 1))):
        fail(argument, f"must be True or False, got {value!r} ({type(value).__name__})",
             TypeError)
    return bool(value)


def encoding(value: Any, argument: str) -> str:
    """A text encoding :mod:`codecs` knows (``"UTF8"``, ``"latin-1"``), by its canonical name."""
    try:
        return codecs.lookup(value).name
    except (LookupError, TypeError):
        fail(argument, f"{value!r} is not a text encoding (e.g. 'utf-8', 'cp1252', 'utf-16')",
             TypeError if not isinstance(value, str) else ValueError)


Spec = Any  # a normaliser (value, name) -> value, a class or tuple of classes, or str options


def optional(spec: Spec) -> Callable[[Any, str], Any]:
    """The spec ``spec``, or ``None`` passed through (``None``: the default behaviour)."""
    return lambda value, argument: None if value is None else _apply(spec, value, argument)


def _name(kind: type) -> str:
    """``int``, ``numpy.bool``, ``keras.Model``: a class as a reader knows it."""
    return kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__.split('.')[0]}.{kind.__qualname__}")


def _apply(spec: Spec, value: Any, argument: str) -> Any:
    if isinstance(spec, tuple) and spec and all(isinstance(o, str) for o in spec):
        return choice(value, argument, spec)
    if isinstance(spec, (type, tuple)):
        if not isinstance(value, spec):
            names = " or ".join(_name(t) for t in (spec if isinstance(spec, tuple) else (spec,)))
            fail(argument, f"must be a {names}, got {_name(type(value))}", TypeError)
        return value
    return spec(value, argument)


def arguments(**specs: Spec) -> Callable[[Callable], Callable]:
    """Decorator: normalise the named arguments of every call before the body runs.

    Each keyword names a parameter of the decorated function and gives its spec:

    * a normaliser ``(value, name) -> value`` of this module (:func:`count`,
      :func:`fraction`, :func:`token_lists`, ... or :func:`optional` of one);
    * a class or tuple of classes: ``isinstance`` or :class:`TypeError`;
    * a tuple of strings: one of them (:func:`choice`).

    The body receives the normalised values (a NumPy int as a Python int, a path with
    ``~`` expanded, ...). A default the caller leaves out is not checked. The signature
    is bound with :mod:`inspect`, so positional and keyword calls are treated alike.
    A parameter with a bool default is a :func:`boolean`, one named ``seed`` or
    ``..._seed`` an :func:`optional` :func:`natural`, unless ``specs`` says otherwise.
    """
    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        unknown = sorted(set(specs) - set(signature.parameters))
        if unknown:
            raise TypeError(f"{function.__qualname__} has no parameter {unknown}")
        for name, parameter in signature.parameters.items():
            if isinstance(parameter.default, bool):
                specs.setdefault(name, boolean)
            elif name == "seed" or name.endswith("_seed"):
                specs.setdefault(name, optional(natural))

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            for name, spec in specs.items():
                if name in bound.arguments:
                    bound.arguments[name] = _apply(spec, bound.arguments[name], name)
            return function(*bound.args, **bound.kwargs)

        checked.__signature__ = signature  # also for getfullargspec (Keras' Operation)
        return checked

    return decorate


def _to_numpy(value: Any) -> Any:
    """Tensors, ragged tensors and pandas columns as NumPy arrays or lists; an iterator
    (a generator, a ``map``) as the list of its items."""
    if isinstance(value, Iterator):
        return list(value)
    if hasattr(value, "to_list") and type(value).__name__ == "RaggedTensor":
        return value.to_list()
    if hasattr(value, "numpy") and callable(value.numpy):
        return value.numpy()
    if hasattr(value, "to_numpy") and callable(value.to_numpy):  # pandas Series / Index
        return value.to_numpy()
    return value


def array(value: Any, argument: str, *, ndim: int | None = None,
          kinds: str | None = None, finite: bool = False) -> np.ndarray:
    """A rectangular NumPy array from a list, array, tensor or pandas column.

    Args:
        ndim: the number of dimensions required, if any.
        kinds: the allowed ``dtype.kind`` letters (``"iu"`` integers, ``"f"`` floats,
            ``"b"`` bools); by default any numbers or bools (never text or objects).
        finite: refuse NaN and infinite values (a NaN label or weight makes the loss NaN).

    A ragged nesting raises :class:`ValueError` (the kind is right, the shape is not);
    text, ``None`` or mixed objects raise :class:`TypeError`.
    """
    if value is None or isinstance(value, (str, bytes)):
        fail(argument, f"must be an array of numbers, got {type(value).__name__}", TypeError)
    try:
        result = np.asarray(_to_numpy(value))
    except ValueError as error:  # NumPy >= 1.24 refuses ragged nesting
        fail(argument, f"must be rectangular (pad it first): {error}")
    if result.dtype.kind in "OUSV":
        fail(argument, f"must hold numbers, got dtype {result.dtype} (text, None or mixed "
                       "objects; encode text to ids first)", TypeError)
    if kinds is not None and result.dtype.kind not in kinds:
        fail(argument, f"has dtype {result.dtype}; expected kind {kinds!r}", TypeError)
    if ndim is not None and result.ndim != ndim:
        fail(argument, f"must have {ndim} dimension(s), got shape {result.shape}")
    if finite and result.dtype.kind in "fc" and not np.isfinite(result).all():
        fail(argument, "holds NaN or infinite values; drop or fill them")
    return result


def ids(value: Any, argument: str, *, ndim: int | None = None,
        below: int | None = None) -> np.ndarray:
    """Non-negative integer ids as an ``int64`` array (floats and bools are refused).

    ``below``: the number of rows the ids index (a vocabulary's size, an Embedding's
    ``input_dim``, a model's classes); an id ``>= below`` is refused, since an
    out-of-range look-up fails deep inside TensorFlow on a CPU and returns zeros on a GPU.
    """
    result = array(value, argument, ndim=ndim)
    if result.size and result.dtype.kind not in "iu":
        fail(argument, f"must hold integer ids, got dtype {result.dtype}", TypeError)
    result = result.astype(np.int64, copy=False)
    if result.size and result.min() < 0:
        fail(argument, f"holds a negative id ({int(result.min())}); ids start at 0")
    if below is not None and result.size and result.max() >= below:
        fail(argument, f"holds the id {int(result.max())}; ids here go up to {below - 1}")
    return result


def _rows(value: Any, argument: str, what: str) -> list[tuple[int, Any]]:
    """The rows of a batch (list, array, tensor, ragged tensor, pandas column), each row
    converted like the batch; a string or a non-iterable is refused as not ``what``."""
    value = _to_numpy(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or getattr(
            value, "ndim", 1) == 0:  # a 0-d array is iterable, but not over rows
        fail(argument, f"must be {what}, got {type(value).__name__}", TypeError)
    return [(i, _to_numpy(row)) for i, row in enumerate(value)]


def sequences(value: Any, argument: str, *, allow_empty: bool = False,
              below: int = _INT32_MAX + 1) -> list[np.ndarray]:
    """Sequences of integer ids of any lengths, each as a 1-D ``int64`` array.

    Accepts a list of lists (ragged), a 2-D array or tensor (every row full length), a
    ``tf.RaggedTensor`` or a pandas column of lists. Refuses a string, a flat list of ints
    (one sequence, not a batch: wrap it in a list), floats, negative ids and ids ``>=
    below`` (see :func:`ids`; by default ids beyond int32, which the int32 batches of an
    ``Embedding`` would wrap around). An empty sequence, and a batch of no sequence, are refused
    unless ``allow_empty``: an empty sequence has no last step to predict from.
    """
    result = []
    for i, row in _rows(value, argument, "a batch of id sequences"):
        if isinstance(row, (str, bytes)):
            fail(argument, f"sequence {i} is text ({row[:30]!r}); encode it to ids first "
                           "(rnncourse.text.Vocabulary.encode)", TypeError)
        if _is_int(_scalar(row)):
            fail(argument, "must be a batch of sequences, got a flat sequence of ids; "
                           "wrap one sequence in a list: [ids]", TypeError)
        try:
            result.append(ids(row, argument, ndim=1, below=below))
        except (ArgumentTypeError, ArgumentValueError) as error:
            detail = str(error).split(": ", 1)[1]
            raise type(error)(argument, f"sequence {i} {detail}") from None
        if not allow_empty and result[-1].size == 0:
            fail(argument, f"sequence {i} is empty; drop empty sequences first")
    if not allow_empty and not result:
        fail(argument, "holds no sequence; pass at least one")
    return result


def token_lists(value: Any, argument: str) -> list[list[str]]:
    """Sentences as lists of string tokens; a bare string or non-string token is refused."""
    result = []
    for i, tokens in _rows(value, argument, "a list of token lists"):
        if isinstance(tokens, (str, bytes)):
            fail(argument, f"item {i} is the string {tokens[:30]!r}, not a list of tokens; "
                           "split it first (e.g. rnncourse.text.tokenize)", TypeError)
        if not isinstance(tokens, Iterable):
            fail(argument, f"item {i} is a {type(tokens).__name__}, not a list of tokens",
                 TypeError)
        tokens = list(tokens)
        for token in tokens:
            if not isinstance(token, str):
                fail(argument, f"item {i} holds a {type(token).__name__} ({token!r}); "
                               "tokens are strings", TypeError)
        result.append(tokens)
    return result


def strings(value: Any, argument: str) -> list[str]:
    """One list of strings (tag names, words, layer names); a bare string is refused, since
    it would be read character by character."""
    return token_lists([value], argument)[0]


def path(value: Any, argument: str) -> Path:
    """A :class:`~pathlib.Path` from ``str`` or ``os.PathLike``, with ``~`` expanded."""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, (str, os.PathLike)):
        fail(argument, f"must be a path, got {type(value).__name__}", TypeError)
    text = os.fspath(value)
    if isinstance(text, bytes):  # an os.PathLike may return bytes
        text = os.fsdecode(text)
    if not text.strip():
        fail(argument, "is an empty path")
    if "\0" in text:
        fail(argument, f"holds a NUL character: {text!r}")
    try:
        return Path(text).expanduser()
    except RuntimeError as error:  # "~someone" with no such user
        fail(argument, f"{text!r}: cannot expand ~ ({error})")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def flag(name: str, default: bool) -> bool:
    """The environment variable ``name`` as a bool; unset or blank gives ``default``."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    fail(name, f"environment variable is {os.environ[name]!r}; use one of "
               f"{sorted(_TRUE)} or {sorted(_FALSE)}")

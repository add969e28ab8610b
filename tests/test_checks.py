"""rnncourse._checks over classes of input: what each helper accepts, and how it refuses.

Every table row is ``(input, expected)``: an expected value (compared with ``==`` and by
type) or ``TYPE``/``VALUE`` for :class:`TypeError`/:class:`ValueError` subclasses that
carry ``.argument``. The classes: Python and NumPy ints of every width, 0-d arrays and
tensors, bools, floats (whole or not), strings, bytes, ``None``, lists, ragged lists, NumPy
arrays, ``tf.Tensor``, ``tf.RaggedTensor``, a pandas-like column (pandas is not a
dependency: :class:`Column` stands in, with the one method the helpers use) and paths.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from rnncourse import _checks, config

config.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

TYPE, VALUE = "TypeError", "ValueError"


class Column:
    """A pandas ``Series`` as the helpers see it: ``to_numpy()`` (object dtype for lists)."""

    def __init__(self, values):
        self.values = list(values)

    def to_numpy(self):
        if any(isinstance(v, (list, tuple, np.ndarray)) for v in self.values):
            out = np.empty(len(self.values), dtype=object)
            out[:] = self.values
            return out
        return np.asarray(self.values)


class PathLike:
    def __init__(self, text):
        self.text = text

    def __fspath__(self):
        return self.text


INT_KINDS = [int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
             np.uint64]
INTS = ([pytest.param(kind(3), id=f"{kind.__name__}") for kind in INT_KINDS]
        + [pytest.param(np.array(3), id="0d-array"),
           pytest.param(tf.constant(3), id="0d-tensor-int32"),
           pytest.param(tf.constant(3, tf.int64), id="0d-tensor-int64"),
           pytest.param(tf.Variable(3), id="0d-variable")])
NOT_INTS = [pytest.param(v, id=name) for name, v in [
    ("bool", True), ("np-bool", np.bool_(True)), ("0d-bool-array", np.array(True)),
    ("bool-tensor", tf.constant(True)), ("float", 2.5), ("whole-float", 3.0),
    ("np-float32", np.float32(3.0)), ("float-tensor", tf.constant(3.0)), ("str", "3"),
    ("bytes", b"3"), ("None", None), ("list", [3]), ("1d-array", np.array([3])),
    ("1d-tensor", tf.constant([3])), ("column", Column([3])), ("complex", 3 + 0j)]]


def check(call, expected, argument="x"):
    """Run ``call``; compare with ``expected`` or assert the error kind and argument."""
    if isinstance(expected, str) and expected in (TYPE, VALUE):
        error = (_checks.ArgumentTypeError if expected == TYPE else
                 _checks.ArgumentValueError)
        with pytest.raises(error) as info:
            call()
        assert isinstance(info.value, TypeError if expected == TYPE else ValueError)
        assert info.value.argument == argument and str(info.value).startswith(argument)
        return None
    result = call()
    if isinstance(expected, np.ndarray):
        assert isinstance(result, np.ndarray) and result.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected)
    else:
        assert result == expected and type(result) is type(expected), (result, expected)
    return result


# --------------------------------------------------------------------------- fail
@pytest.mark.parametrize("kind, error, base", [
    (TypeError, _checks.ArgumentTypeError, TypeError),
    (ValueError, _checks.ArgumentValueError, ValueError),
    (IndexError, _checks.ArgumentValueError, ValueError),  # anything else: out of range
])
def test_fail_raises_the_subclass_with_the_argument(kind, error, base):
    with pytest.raises(error) as info:
        _checks.fail("units", "must be positive", kind)
    assert isinstance(info.value, base) and info.value.argument == "units"
    assert str(info.value) == "units: must be positive"


# --------------------------------------------------------------------------- count
@pytest.mark.parametrize("value", INTS)
def test_count_accepts_every_int_kind_as_a_python_int(value):
    check(lambda: _checks.count(value, "x"), 3)
    check(lambda: _checks.optional_count(value, "x"), 3)


@pytest.mark.parametrize("value", NOT_INTS)
def test_count_refuses_every_other_kind(value):
    check(lambda: _checks.count(value, "x"), TYPE)
    if value is not None:
        check(lambda: _checks.optional_count(value, "x"), TYPE)


@pytest.mark.parametrize("value, minimum, maximum, expected", [
    (0, 1, None, VALUE), (-1, 0, None, VALUE), (0, 0, None, 0), (np.int8(-5), -5, None, -5),
    (np.uint64(2**63 - 1), 1, None, 2**63 - 1), (np.uint64(2**63), 1, None, VALUE),
    (2**70, 1, None, VALUE), (999, 0, 999, 999), (1000, 0, 999, VALUE),
    (np.array(1000), 0, 999, VALUE), (tf.constant(-1), 0, None, VALUE),
])
def test_count_range(value, minimum, maximum, expected):
    check(lambda: _checks.count(value, "x", minimum, maximum=maximum), expected)


def test_optional_count_passes_none_and_a_symbolic_tensor_is_refused():
    assert _checks.optional_count(None, "x") is None

    @tf.function(input_signature=[tf.TensorSpec((), tf.int32)])
    def inside(n):
        check(lambda: _checks.count(n, "x"), TYPE)  # no value to check while tracing
        return n

    inside(tf.constant(3))


# --------------------------------------------------------------------------- number
@pytest.mark.parametrize("value, expected", [
    (2, 2.0), (np.int64(2), 2.0), (np.uint8(2), 2.0), (0.5, 0.5), (np.float16(0.5), 0.5),
    (np.float32(0.25), 0.25), (np.array(0.5), 0.5), (tf.constant(0.5), 0.5),
    (tf.constant(2, tf.int64), 2.0), (3.0, 3.0),
    (True, TYPE), (np.bool_(False), TYPE), ("0.5", TYPE), (b"1", TYPE), (None, TYPE),
    ([0.5], TYPE), (np.array([0.5]), TYPE), (Column([0.5]), TYPE), (1j, TYPE),
    (math.nan, VALUE), (np.float32("inf"), VALUE), (-math.inf, VALUE),
    (0, VALUE), (-1.5, VALUE),  # the default range is (0, inf)
])
def test_number_kinds(value, expected):
    check(lambda: _checks.number(value, "x"), expected)


@pytest.mark.parametrize("value, bounds, expected", [
    (0.0, {"low": 0.0, "low_inclusive": True}, 0.0),
    (-3, {"low": None}, -3.0),
    (1.0, {"high": 1.0}, 1.0),
    (1.0, {"high": 1.0, "high_inclusive": False}, VALUE),
    (1.5, {"high": 1.0}, VALUE),
])
def test_number_bounds(value, bounds, expected):
    check(lambda: _checks.number(value, "x", **bounds), expected)


@pytest.mark.parametrize("value, expected", [
    (0, 0.0), (0.5, 0.5), (np.float32(0.5), 0.5), (tf.constant(0.25), 0.25), (1.0, VALUE),
    (20, VALUE), (-0.1, VALUE), ("0.5", TYPE), (True, TYPE), (None, TYPE)])
def test_fraction(value, expected):
    check(lambda: _checks.fraction(value, "x"), expected)


# --------------------------------------------------------------------------- choice
@pytest.mark.parametrize("value, expected", [
    ("post", "post"), (np.str_("pre"), "pre"), ("POST", VALUE), ("", VALUE), (None, TYPE),
    (b"post", TYPE), (0, TYPE), (["post"], TYPE), (True, TYPE)])
def test_choice(value, expected):
    result = check(lambda: _checks.choice(value, "x", ("post", "pre")), expected)
    assert result is None or isinstance(result, str)


# --------------------------------------------------------------------------- array, ids
RECT = np.array([[1, 2], [3, 4]])
ARRAYS = [pytest.param(v, id=name) for name, v in [
    ("list", [[1, 2], [3, 4]]), ("tuple", ((1, 2), (3, 4))), ("ndarray", RECT),
    ("int8-array", RECT.astype(np.int8)), ("uint16-array", RECT.astype(np.uint16)),
    ("tensor", tf.constant(RECT)), ("uniform-ragged-tensor", tf.ragged.constant(RECT.tolist())),
    ("column", Column([1, 2, 3, 4])), ("list-of-arrays", [np.array([1, 2]), np.array([3, 4])])]]
NOT_ARRAYS = [pytest.param(v, e, id=name) for name, v, e in [
    ("str", "12", TYPE), ("bytes", b"12", TYPE), ("None", None, TYPE),
    ("list-of-str", ["a", "b"], TYPE), ("mixed", [1, "a"], TYPE), ("objects", [None, 1], TYPE),
    ("str-tensor", tf.constant(["a"]), TYPE),
    ("ragged-list", [[1, 2], [3]], VALUE), ("ragged-arrays", [np.ones(2), np.ones(3)], VALUE),
    ("ragged-tensor", tf.ragged.constant([[1, 2], [3]]), VALUE)]]


@pytest.mark.parametrize("value", ARRAYS)
def test_array_accepts_rectangular_numbers_of_every_container(value):
    result = _checks.array(value, "x")
    assert isinstance(result, np.ndarray) and result.dtype.kind in "iu"
    np.testing.assert_array_equal(result.reshape(-1), [1, 2, 3, 4])


@pytest.mark.parametrize("value, expected", NOT_ARRAYS)
def test_array_refuses_text_objects_and_ragged_rows(value, expected):
    check(lambda: _checks.array(value, "x"), expected)


@pytest.mark.parametrize("value, options, expected", [
    (RECT, {"ndim": 2}, RECT), (RECT, {"ndim": 1}, VALUE), (5, {"ndim": 0}, np.array(5)),
    (RECT, {"kinds": "f"}, TYPE), ([0.5, 1.0], {"kinds": "f"}, np.array([0.5, 1.0])),
    ([True, False], {"kinds": "b"}, np.array([True, False])), ([True], {"kinds": "iu"}, TYPE),
])
def test_array_ndim_and_kinds(value, options, expected):
    check(lambda: _checks.array(value, "x", **options), expected)


@pytest.mark.parametrize("value, expected", [
    ([1, 2], np.array([1, 2])), (np.array([1, 2], np.uint8), np.array([1, 2])),
    (tf.constant([1, 2], tf.int32), np.array([1, 2])), (Column([1, 2]), np.array([1, 2])),
    ([], np.array([], np.int64)), (np.array(3), np.array(3)),
    ([1.0, 2.0], TYPE), (np.array([1.5]), TYPE), ([True, False], TYPE), (["1"], TYPE),
    (None, TYPE), ("12", TYPE), ([1, -2], VALUE), ([[1], [2, 3]], VALUE),
])
def test_ids_are_non_negative_int64(value, expected):
    result = check(lambda: _checks.ids(value, "x"), expected)
    assert result is None or result.dtype == np.int64


@pytest.mark.parametrize("value, below, expected", [
    ([0, 4], 5, np.array([0, 4])), ([0, 5], 5, VALUE), ([], 1, np.array([], np.int64)),
    (np.array([[1], [2]]), np.int64(3), np.array([[1], [2]])), ([2], 2, VALUE)])
def test_ids_below_a_bound(value, below, expected):
    check(lambda: _checks.ids(value, "x", below=below), expected)
    if expected is VALUE:  # also inside a batch of sequences, naming the sequence
        with pytest.raises(_checks.ArgumentValueError, match="sequence 1"):
            _checks.sequences([[0], value], "x", below=below, allow_empty=True)


# --------------------------------------------------------------------------- sequences
RAGGED = [[1, 2, 3], [4]]
SEQUENCES = [pytest.param(v, expected, id=name) for name, v, expected in [
    ("ragged-lists", RAGGED, RAGGED), ("tuples", ((1, 2, 3), (4,)), RAGGED),
    ("arrays", [np.array([1, 2, 3]), np.array([4], np.int8)], RAGGED),
    ("tensors", [tf.constant([1, 2, 3]), tf.constant([4])], RAGGED),
    ("ragged-tensor", tf.ragged.constant(RAGGED), RAGGED),
    ("column-of-lists", Column(RAGGED), RAGGED),
    ("2d-array", np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
    ("2d-tensor", tf.constant([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
    ("generator", (row for row in RAGGED), RAGGED)]]
NOT_SEQUENCES = [pytest.param(v, e, id=name) for name, v, e in [
    ("str", "a b", TYPE), ("bytes", b"ab", TYPE), ("None", None, TYPE), ("int", 3, TYPE),
    ("flat-list", [1, 2, 3], TYPE), ("flat-array", np.array([1, 2]), TYPE),
    ("flat-tensor", tf.constant([1, 2]), TYPE), ("texts", ["a b", "c"], TYPE),
    ("floats", [[1.0, 2.0]], TYPE), ("bools", [[True]], TYPE), ("nested", [[[1], [2]]], VALUE),
    ("negative", [[1, -1]], VALUE), ("empty-sequence", [[1], []], VALUE),
    ("empty-batch", [], VALUE), ("empty-tensor", tf.zeros((0, 3), tf.int32), VALUE),
    ("none-row", [[1], None], TYPE)]]


@pytest.mark.parametrize("value, expected", SEQUENCES)
def test_sequences_accept_ragged_batches_of_every_container(value, expected):
    result = _checks.sequences(value, "x")
    assert all(isinstance(r, np.ndarray) and r.dtype == np.int64 and r.ndim == 1
               for r in result)
    assert [r.tolist() for r in result] == expected


@pytest.mark.parametrize("value, expected", NOT_SEQUENCES)
def test_sequences_refuse(value, expected):
    check(lambda: _checks.sequences(value, "x"), expected)


def test_sequences_allow_empty_on_request_and_name_the_row():
    assert [r.size for r in _checks.sequences([[1], []], "x", allow_empty=True)] == [1, 0]
    assert _checks.sequences([], "x", allow_empty=True) == []
    with pytest.raises(_checks.ArgumentValueError, match="sequence 1"):
        _checks.sequences([[1], [2, -3]], "x")


# --------------------------------------------------------------------------- token_lists
@pytest.mark.parametrize("value, expected", [
    ([["a", "b"], ["c"]], [["a", "b"], ["c"]]), ((("a",), ("b",)), [["a"], ["b"]]),
    ([[np.str_("a")]], [["a"]]), ([np.array(["a", "b"])], [["a", "b"]]),
    (Column([["a"], ["b", "c"]]), [["a"], ["b", "c"]]), ([[]], [[]]), ([], []),
    ("a b", TYPE), (b"a b", TYPE), (None, TYPE), (3, TYPE), (["a b", "c"], TYPE),
    ([[b"a"]], TYPE), ([b"ab"], TYPE), ([["a", 1]], TYPE), ([None], TYPE), ([["a"], 3], TYPE),
])
def test_token_lists(value, expected):
    check(lambda: _checks.token_lists(value, "x"), expected)


# --------------------------------------------------------------------------- path
HOME = Path.home()


@pytest.mark.parametrize("value, expected", [
    ("data/x.txt", Path("data/x.txt")), (Path("x"), Path("x")), (b"x", Path("x")),
    (PathLike("y"), Path("y")), (PathLike(b"y"), Path("y")), ("~/x", HOME / "x"),
    (Path("~"), HOME), (b"~/x", HOME / "x"),
    (None, TYPE), (3, TYPE), (["x"], TYPE), ("", VALUE), ("  ", VALUE), (b"", VALUE),
    ("a\0b", VALUE), ("~no-such-user-rnncourse/x", VALUE),
])
def test_path(value, expected):
    result = check(lambda: _checks.path(value, "x"), expected)
    assert result is None or "~" not in str(result)


# --------------------------------------------------------------------------- flag
@pytest.mark.parametrize("raw, expected", [
    ("0", False), ("false", False), ("False", False), ("NO", False), ("off", False),
    (" Off ", False), ("1", True), ("TRUE", True), ("yes", True), ("On", True),
    ("", "default"), ("  ", "default"), (None, "default"), ("maybe", VALUE), ("2", VALUE),
])
@pytest.mark.parametrize("default", [True, False])
def test_flag(monkeypatch, raw, expected, default):
    if raw is None:
        monkeypatch.delenv("RNNCOURSE_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("RNNCOURSE_TEST_FLAG", raw)
    expected = default if expected == "default" else expected
    check(lambda: _checks.flag("RNNCOURSE_TEST_FLAG", default), expected,
          argument="RNNCOURSE_TEST_FLAG")


# --------------------------------------------------------------------------- specs
@pytest.mark.parametrize("spec, value, expected", [
    (_checks.natural, np.int8(0), 0), (_checks.natural, -1, VALUE), (_checks.natural, 1.0, TYPE),
    (_checks.at_least(2), np.uint16(2), 2), (_checks.at_least(2), 1, VALUE),
    (_checks.at_least(2), True, TYPE), (_checks.real, np.float32(-2.5), -2.5),
    (_checks.real, math.inf, VALUE), (_checks.real, "1", TYPE), (_checks.share, 0.5, 0.5),
    (_checks.share, 0.0, VALUE), (_checks.share, 1.0, VALUE), (_checks.share, np.nan, VALUE),
    (_checks.optional(_checks.count), None, None), (_checks.optional(_checks.count), 0, VALUE),
    (_checks.optional(("a", "b")), "b", "b"), (_checks.optional(("a", "b")), "c", VALUE),
])
def test_specs(spec, value, expected):
    check(lambda: spec(value, "x"), expected)


def test_fail_if_raises_only_on_a_true_condition_and_builds_a_callable_message_then():
    built = []

    def message():
        built.append(1)
        return "too big"

    _checks.fail_if(False, "x", message)
    _checks.fail_if(np.bool_(False), "x", "never")
    assert built == []
    with pytest.raises(_checks.ArgumentValueError, match="x: too big") as info:
        _checks.fail_if(np.array([1, 2]).max() > 1, "x", message)
    assert built == [1] and info.value.argument == "x"
    with pytest.raises(_checks.ArgumentTypeError):
        _checks.fail_if(True, "x", "wrong kind", TypeError)


@_checks.arguments(units=_checks.count, rate=_checks.fraction, seed=_checks.optional_count,
                   kind=("lstm", "gru"), path=_checks.path, array=np.ndarray)
def _declared(units, rate=0.0, *, seed=None, kind="lstm", path="~", array=None):
    return units, rate, seed, kind, path, array


def test_arguments_normalise_by_name_positional_or_keyword():
    assert _declared(np.int64(3)) == (3, 0.0, None, "lstm", "~", None)  # defaults unchecked
    units, rate, seed, kind, path, _ = _declared(np.int32(2), np.float32(0.5), seed=np.int8(1),
                                                 kind="gru", path="~/x")
    assert (units, rate, seed, kind) == (2, 0.5, 1, "gru") and type(units) is int
    assert isinstance(path, Path) and "~" not in str(path)
    assert _declared(units=1, rate=0.25)[:2] == (1, 0.25)


@pytest.mark.parametrize("call, error, argument", [
    (lambda: _declared(0), VALUE, "units"), (lambda: _declared(2.0), TYPE, "units"),
    (lambda: _declared(1, 1.5), VALUE, "rate"), (lambda: _declared(1, seed=True), TYPE, "seed"),
    (lambda: _declared(1, kind="rnn"), VALUE, "kind"), (lambda: _declared(1, kind=1), TYPE, "kind"),
    (lambda: _declared(1, array=[1, 2]), TYPE, "array"),
    (lambda: _declared(1, path=3), TYPE, "path"),
])
def test_arguments_refuse_with_the_parameter_name(call, error, argument):
    check(call, error, argument=argument)


def test_arguments_keep_the_signature_and_refuse_unknown_names():
    import inspect

    assert list(inspect.signature(_declared).parameters) == ["units", "rate", "seed", "kind",
                                                             "path", "array"]
    assert inspect.getfullargspec(_declared).args == ["units", "rate"]  # Keras reads this
    with pytest.raises(TypeError):
        _declared()  # a missing argument is Python's own TypeError
    with pytest.raises(TypeError, match="no parameter"):
        _checks.arguments(nothing=_checks.count)(lambda units: units)


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), (np.bool_(True), True), (np.array(False), False),
    (tf.constant(True), True), (1, True), (np.int8(0), False),
    ("no", TYPE), ("False", TYPE), ("", TYPE), (None, TYPE), (2, TYPE), (0.0, TYPE),
    (np.array([True]), TYPE),
])
def test_boolean(value, expected):
    check(lambda: _checks.boolean(value, "x"), expected)


@pytest.mark.parametrize("value, expected", [
    ("utf-8", "utf-8"), ("UTF8", "utf-8"), ("latin-1", "iso8859-1"), ("cp1252", "cp1252"),
    ("utf-16-le", "utf-16-le"), ("utf-9", VALUE), ("", VALUE), (None, TYPE), (8, TYPE),
    (b"utf-8", TYPE),
])
def test_encoding(value, expected):
    check(lambda: _checks.encoding(value, "x"), expected)


@pytest.mark.parametrize("value, expected", [
    (["a", "b"], ["a", "b"]), (("a",), ["a"]), (iter(["a"]), ["a"]), ({"a": 1}, ["a"]),
    (np.array(["a", "b"]), ["a", "b"]), ([], []),
    ("ab", TYPE), (b"ab", TYPE), ([b"a"], TYPE), ([1], TYPE), (3, TYPE), (None, TYPE),
])
def test_strings(value, expected):
    check(lambda: _checks.strings(value, "x"), expected)


@_checks.arguments()
def _conventions(shuffle=True, *, seed=0, shuffle_seed=None, other=0):
    return shuffle, seed, shuffle_seed, other


def test_arguments_declared_by_the_signature_flags_and_seeds():
    assert _conventions() == (True, 0, None, 0)
    assert _conventions(np.bool_(False), seed=np.uint8(3), shuffle_seed=None, other=-5) == (
        False, 3, None, -5)
    assert type(_conventions(1)[0]) is bool and type(_conventions(seed=np.int64(2))[1]) is int
    assert _conventions(seed=None)[1] is None  # None: the function's own default behaviour
    for call, error, argument in [(lambda: _conventions("no"), TYPE, "shuffle"),
                                  (lambda: _conventions(seed=-1), VALUE, "seed"),
                                  (lambda: _conventions(seed=1.5), TYPE, "seed"),
                                  (lambda: _conventions(shuffle_seed="1"), TYPE, "shuffle_seed")]:
        check(call, error, argument=argument)
    explicit = _checks.arguments(seed=_checks.real)(lambda seed=0: seed)
    assert explicit(-1.5) == -1.5  # a spec given wins over the convention


def test_sequences_refuse_a_0d_array_and_ids_beyond_int32():
    check(lambda: _checks.sequences(np.array(3), "x"), TYPE)
    check(lambda: _checks.sequences([[2, 2**31]], "x"), VALUE)
    assert _checks.sequences([[2, 2**31 - 1]], "x")[0].tolist() == [2, 2**31 - 1]
    assert _checks.sequences([[2**40]], "x", below=2**41)[0].tolist() == [2**40]


def test_array_finite_and_iterators():
    assert _checks.array(iter([1.0, 2.0]), "x", finite=True).tolist() == [1.0, 2.0]
    assert _checks.array([1, 2], "x", finite=True).dtype.kind == "i"
    for bad in ([1.0, np.nan], [[np.inf]], np.array([-np.inf], np.float32)):
        check(lambda bad=bad: _checks.array(bad, "x", finite=True), VALUE)
    assert np.isnan(_checks.array([np.nan], "x")).all()  # only on request
    assert _checks.ids((i for i in (3, 1)), "x").tolist() == [3, 1]


def test_every_public_helper_is_tested():
    tested = {"fail", "count", "optional_count", "number", "fraction", "choice", "array",
              "ids", "sequences", "token_lists", "path", "flag", "fail_if", "arguments",
              "optional", "natural", "at_least", "real", "share", "boolean", "encoding",
              "strings"}
    helpers = {name for name in _checks.__all__ if not name.startswith("Argument")}
    assert helpers == tested, helpers ^ tested
    assert os.path.basename(_checks.__file__) == "_checks.py"

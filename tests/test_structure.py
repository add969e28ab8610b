"""The package's shape: an acyclic import graph, the library apart from the chapters, and
chapters whose two scales differ in sizes only."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from rnncourse import chapters

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


@pytest.mark.parametrize("name", chapters.CHAPTERS)
def test_chapter_follows_the_contract(name):
    module = importlib.import_module(f"rnncourse.chapters.{name}")
    assert set(module.SIZES) == {"ci", "full"}, f"{name}.SIZES needs exactly ci and full"
    for scale, sizes in module.SIZES.items():
        assert isinstance(sizes, module.Sizes), f"{name}.SIZES[{scale!r}] is not a Sizes"
    assert dataclasses.is_dataclass(module.RECIPE) and module.Sizes.__dataclass_params__.frozen
    assert module.Recipe.__dataclass_params__.frozen, f"{name}.Recipe must be frozen"
    assert callable(module.settings)


@pytest.mark.parametrize("name", chapters.CHAPTERS)
def test_scales_differ_in_sizes_only(name, monkeypatch):
    """Sizes hold counts (ints), named as counts; everything else is the one recipe."""
    module = importlib.import_module(f"rnncourse.chapters.{name}")
    for field in dataclasses.fields(module.Sizes):
        assert SIZE_NAME.search(field.name) and not NOT_A_SIZE.search(field.name), (
            f"{name}.Sizes.{field.name} is not a size (examples, epochs, units, repeats, "
            "seeds, ...); move it to the Recipe so both scales share it")
        for scale, sizes in module.SIZES.items():
            value = getattr(sizes, field.name)
            values = value if isinstance(value, tuple) else (value,)
            assert all(isinstance(v, int) and not isinstance(v, bool) for v in values), (
                f"{name}.SIZES[{scale!r}].{field.name} = {value!r}: sizes are ints")
    got = {}
    for scale in ("ci", "full"):
        monkeypatch.setenv("RNNCOURSE_SCALE", scale)
        got[scale] = module.settings()
        assert got[scale].sizes == module.SIZES[scale]
    assert got["ci"].recipe == got["full"].recipe


def test_settings_read_the_seed_knob(monkeypatch):
    from rnncourse import config

    monkeypatch.setenv("RNNCOURSE_SEED", "3")
    module = importlib.import_module("rnncourse.chapters.ch00_setup")
    assert module.settings().seed == 3 and config.seed(2) == 3002

"""``make recipe-coverage``: how much of what a chapter executes is on its page.

The page shows the recipe (issue 22): the chapter's module under ``rnncourse/chapters`` keeps
only what a reader need not see, so its executed lines should be a small share (<= 10 %) of
what the chapter executes, and no training call (``fit``, ``compile``, ``GradientTape``,
``apply``, ``apply_gradients``, ``train_on_batch``) should run off the page.

Each notebook's code cells run in a fresh Python process at CI scale, in-process under
``coverage`` (IPython magics are translated as IPython does; the cells execute in one
namespace, in order, from ``book/``). Per chapter it prints the executed lines of the
chapter modules and of the notebook, the off-page share, the executed library lines (for
information), and every executed training call off the page. Code run in other processes
(``process.run_fresh``, ``distributed`` workers) is not counted.

    python tests/recipe_coverage.py                       # every notebook
    python tests/recipe_coverage.py book/05_tbptt.ipynb   # one

Exit code 1 when a notebook fails to run, when a training call ran off the page, or when
more than ``--limit`` (10 %) of what a chapter executes is in its own module
(``chNN_*.py``) off the page. The rest of ``rnncourse/chapters`` a chapter executes is the
package's ``__init__``: the settings container, ``glue`` and ``headline`` that every
chapter shares; it is reported in the "chapter" column, not bounded.

``make test`` checks the own-module bound without running anything
(tests/test_notebooks.py): every statement of ``rnncourse/chapters/chNN_*.py`` but its
imports and ``__all__`` (constants, dataclass fields, functions and their bodies) that the
page does not show with a ``literalinclude`` counts as off the page, whether it runs or not,
against the statements of the page's code cells (:func:`static_share`). That bound is
stricter than this measurement and costs no run; running the notebooks under coverage
would slow ``make notebooks`` by about a quarter.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "rnncourse" / "chapters"
LIBRARY = ROOT / "rnncourse"
TRAINING = {"fit", "compile", "apply_gradients", "train_on_batch"}


def training_lines(path: Path) -> dict[int, str]:
    """Line -> call for the training calls in ``path`` (the rule of
    tests/test_notebooks.py::test_chapter_modules_do_not_train)."""
    found: dict[int, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in TRAINING or name == "GradientTape":
                found[node.lineno] = name
            elif name == "apply" and isinstance(func, ast.Attribute):
                owner = func.value
                owner = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if "optimizer" in owner.lower() or owner.lower() in {"opt", "optim"}:
                    found[node.lineno] = "apply"
    return found


def body_lines(path: Path) -> set[int]:
    """First lines of the statements inside function bodies (the work a call does), as
    opposed to what runs once at import: imports, constants, class and dataclass fields,
    ``def`` lines."""
    return statement_lines(ast.parse(path.read_text(encoding="utf-8")), inside_functions=True)


def included_lines(notebook: Path) -> dict[Path, set[int]]:
    """Lines of chapter modules the page shows with a ``literalinclude`` (those are on the
    page, though they run from the module): a whole file, a ``:pyobject:``, or the range of
    ``:start-at:`` / ``:start-after:`` / ``:end-at:`` / ``:end-before:`` (as Sphinx reads
    them: the first line containing the text, the end searched after the start)."""
    import re

    import nbformat

    shown: dict[Path, set[int]] = {}
    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)[ \t]*\n((?:[ \t]*:[\w-]+:[^\n]*\n)*)")
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for target, block in pattern.findall(cell.source + "\n"):
            path = (notebook.parent / target).resolve()
            if CHAPTERS not in path.parents:
                continue
            options = dict(re.findall(r"^[ \t]*:([\w-]+):[ \t]*(.*?)[ \t]*$", block, re.M))
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            first, last = 1, len(lines)
            if "pyobject" in options:
                nodes, found = ast.parse(source).body, None
                for part in options["pyobject"].split("."):
                    found = next((n for n in nodes if getattr(n, "name", None) == part), None)
                    nodes = getattr(found, "body", [])
                if found is None:
                    continue
                first, last = found.lineno, found.end_lineno
            for key, after in (("start-at", 0), ("start-after", 1)):
                if key in options:
                    hit = next(n for n, line in enumerate(lines, 1) if options[key] in line)
                    first = hit + after
            for key, before in (("end-at", 0), ("end-before", 1)):
                if key in options:
                    hit = next(n for n, line in enumerate(lines, 1)
                               if n >= first and options[key] in line)
                    last = hit - before
            shown.setdefault(path, set()).update(range(first, last + 1))
    return shown


def notebook_script(notebook: Path, script: Path) -> list[tuple[int, str]]:
    """Write the notebook's code cells, magics translated, to ``script``; return each
    cell's first line and code (so each cell compiles with its line numbers in the file)."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    cells, lines = [], []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        code = transform(cell.source)
        cells.append((len(lines), code))
        lines += code.splitlines() + [""]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cells


def _run_cells(_cells: list[tuple[int, str]], _file: str, _namespace: dict) -> None:
    """Execute the cells in order. Its locals are underscored: IPython expands a magic's
    ``{name}`` from the calling frame's locals before the user namespace."""
    for _first, _code in _cells:
        importlib.invalidate_caches()  # a module a cell wrote (%%writefile) is found
        exec(compile("\n" * _first + _code, _file, "exec"), _namespace)


def run_one(notebook: Path, out: Path) -> None:
    """In this process: execute the notebook under coverage, write the counts to ``out``."""
    import coverage
    import matplotlib

    matplotlib.use("Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{notebook.stem}.py"
        cells = notebook_script(notebook, script)
        shell = InteractiveShell.instance()
        namespace = shell.user_ns
        namespace.update(__name__="__main__", display=display, get_ipython=lambda: shell)
        cov = coverage.Coverage(data_file=None, include=[str(LIBRARY / "*"), str(script)])
        os.chdir(notebook.parent)
        sys.path.insert(0, str(notebook.parent))  # as a kernel started in book/ (%%writefile)
        start = time.perf_counter()
        cov.start()
        try:
            _run_cells(cells, str(script), namespace)
        finally:
            cov.stop()
        data = cov.get_data()
        executed = {name: sorted(data.lines(name) or []) for name in data.measured_files()}
    chapter, library, page, off_page, work, own = 0, 0, 0, [], 0, 0
    shown = included_lines(notebook)
    for name, lines in executed.items():
        path = Path(name)
        if path == script:
            page += len(lines)
        elif CHAPTERS in path.parents:
            hidden = set(lines) - shown.get(path, set())
            page += len(set(lines) & shown.get(path, set()))
            chapter += len(hidden)
            work += len(hidden & body_lines(path))
            if path.name.startswith(f"ch{notebook.name[:2]}_"):
                own += len(hidden)
            calls = training_lines(path)
            source = path.read_text(encoding="utf-8").splitlines()
            off_page += [f"{path.relative_to(ROOT)}:{n}: {calls[n]}: {source[n - 1].strip()}"
                         for n in lines if n in calls]
        else:
            library += len(lines)
    out.write_text(json.dumps({"page": page, "chapter": chapter, "library": library,
                               "work": work, "own": own,
                               "off_page": off_page,
                               "seconds": time.perf_counter() - start}))


def page_statements(notebook: Path) -> int:
    """The statements in the notebook's code cells (magics translated as IPython does),
    counted as coverage counts executed lines: one per statement, at its first line."""
    with tempfile.TemporaryDirectory() as tmp:
        cells = notebook_script(notebook, Path(tmp) / "page.py")
    return sum(len(statement_lines(ast.parse(code))) for _, code in cells)


def statement_lines(tree: ast.AST, inside_functions: bool = False) -> set[int]:
    """First lines of the statements in ``tree`` (docstrings apart), or only of those inside
    function bodies."""
    roots = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
             ] if inside_functions else [tree]
    lines = set()
    for root in roots:
        for node in ast.walk(root):
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            if isinstance(node, ast.stmt) and node is not root and not docstring:
                lines.add(node.lineno)
    return lines


def module_lines(path: Path) -> set[int]:
    """First lines of a module's statements a reader could miss: everything but imports,
    ``__all__`` and docstrings (constants, dataclass fields, ``def`` lines and bodies)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            or (isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                  for t in n.targets))}
    return statement_lines(tree) - skip


def static_share(notebook: Path, module: Path) -> tuple[int, int]:
    """``(off_page, page)``: the statements of ``module`` (:func:`module_lines`) that the
    page does not show with a ``literalinclude``, and the page's statements (with those
    shown)."""
    lines = module_lines(module)
    shown = included_lines(notebook).get(module.resolve(), set())
    return len(lines - shown), page_statements(notebook) + len(lines & shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")))
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=0.10,
                        help="largest share of a chapter's own module's lines off the page")
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one.resolve(), args.out)
        return 0
    env = dict(os.environ, RNNCOURSE_SCALE=os.environ.get("RNNCOURSE_SCALE", "ci"),
               RNNCOURSE_PROGRESS="0", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    failed = []
    print(f"{'notebook':<36}{'chapter':>9}{'page':>7}{'off page':>10}{'in bodies':>10}"
          f"{'off page':>10}{'own':>6}{'off page':>10}{'library':>9}{'seconds':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for notebook in args.notebooks:
            out = Path(tmp) / f"{notebook.stem}.json"
            done = subprocess.run([sys.executable, __file__, "--one", str(notebook.resolve()),
                                   "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                                  text=True)
            if done.returncode != 0 or not out.exists():
                failed.append(notebook.name)
                print(f"{notebook.name:<36} FAILED\n{(done.stdout + done.stderr)[-2000:]}")
                continue
            r = json.loads(out.read_text())
            share = r["chapter"] / max(1, r["chapter"] + r["page"])
            work = r["work"] / max(1, r["work"] + r["page"])
            own = r["own"] / max(1, r["own"] + r["page"])
            print(f"{notebook.name:<36}{r['chapter']:>9}{r['page']:>7}{share:>10.0%}"
                  f"{r['work']:>10}{work:>10.0%}{r['own']:>6}{own:>10.0%}{r['library']:>9}"
                  f"{r['seconds']:>9.0f}", flush=True)
            for line in r["off_page"]:
                print(f"    training off the page: {line}")
            if r["off_page"] or own > args.limit:
                failed.append(notebook.name)
    print("chapter / page: executed lines of rnncourse/chapters/*.py not shown on the page "
          "and executed lines of the notebook (with the chapter-module lines a "
          "literalinclude shows); off page = chapter / (chapter + page); in bodies: the "
          "chapter lines inside function bodies (without what runs once at import: "
          "imports, constants, dataclass fields, def lines); own: "
          "the executed lines of the chapter's own module (chNN_*.py) off the page, "
          f"imports included, at most {args.limit:.0%} (else exit 1); the rest of "
          "'chapter' is rnncourse/chapters/__init__.py, the settings container and glue "
          "every chapter shares")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

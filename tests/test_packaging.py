"""pyproject.toml and environment.yml must list the same dependencies; the Makefile wiring;
the install cells pin the package's version; every chapter is registered everywhere; the
GitHub workflows call the Makefile; `make book` re-executes after a change to the package."""

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + extras["book"] + extras["test"]
    return {_normalise(r) for r in wanted}


def environment_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    return {_normalise(r) for r in pip}


def test_environment_yml_mirrors_pyproject():
    in_pyproject, in_environment = pyproject_requirements(), environment_requirements()
    assert in_pyproject == in_environment, (
        f"only in pyproject.toml: {sorted(in_pyproject - in_environment)}; "
        f"only in environment.yml: {sorted(in_environment - in_pyproject)}")


def test_environment_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = (int(p) for p in python.split("=")[1].split(".")[:2])
    floor = tuple(int(p) for p in required.lstrip(">=").split("."))
    assert (major, minor) >= floor


def test_book_and_test_toolchain_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert all("==" in r for r in extras["book"] + extras["test"])
    assert any(r.startswith("tensorflow[and-cuda]") for r in extras["gpu"])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()[:15]
    ci = (ROOT / ".ci" / "run").read_text()
    assert any("make test" in line for line in readme)
    assert any("make book" in line for line in readme)
    assert re.search(r"^\s*make test\b", ci, re.M)


def test_every_toc_entry_exists_and_every_notebook_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]} | {c["file"] for part in toc["parts"] for c in part["chapters"]}
    for name in files:
        assert any((ROOT / f"{name}{ext}").exists() for ext in (".md", ".ipynb")), name
    notebooks = {str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "book").glob("*.ipynb")}
    assert notebooks <= files, f"notebooks missing from _toc.yml: {sorted(notebooks - files)}"


def test_notebooks_are_committed_without_outputs():
    import json

    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
                assert not cell.get("outputs"), f"{path.name}: a code cell has outputs"
                assert cell.get("execution_count") is None, f"{path.name}: execution count set"


def install_cell_source() -> str:
    """The first code cell of every chapter, built from the repository URL of _config.yml
    (its one home) and the package version: run where the launch buttons send a reader
    (Colab, Binder), it installs the version of the package that built the page."""
    import rnncourse

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    return ("# In Colab or Binder, install the book's companion package first: the version\n"
            "# that built this page. (A local checkout after `make book` already has it.)\n"
            "# If pip replaces TensorFlow or Keras, it says so: restart the runtime then.\n"
            "try:\n"
            "    import rnncourse  # noqa: F401\n"
            "except ModuleNotFoundError:\n"
            "    import importlib.metadata as md\n"
            "\n"
            "    def tf_keras():\n"
            "        return [d.version for name in ('tensorflow', 'keras')\n"
            "                for d in md.distributions(name=name)]\n"
            "\n"
            "    before = tf_keras()\n"
            f'    %pip install --quiet "rnncourse @ git+{url}@v{rnncourse.__version__}"\n'
            "    if tf_keras() != before:\n"
            "        print('pip replaced TensorFlow or Keras: restart the runtime (Colab: '\n"
            "              'Runtime > Restart session), then run this notebook from the top.')")


def test_every_chapter_starts_with_the_install_cell():
    import json

    expected = install_cell_source()
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert "".join(cells[0]["source"]) == expected, (
            f"{path.name}: the first code cell must be the install cell; regenerate it with "
            "`python tests/test_packaging.py`")


def test_install_cells_pin_the_package_version():
    """The release step: the tag is v<rnncourse.__version__>, and every install cell asks
    for that tag (CONTRIBUTING.md, "Releasing")."""
    import rnncourse

    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        pins = re.findall(r"@v([0-9][\w.]*)\b", "".join(cells[0]["source"]))
        assert pins == [rnncourse.__version__], (
            f"{path.name}: the install cell pins {pins}, the package is "
            f"{rnncourse.__version__}; run `python tests/test_packaging.py`")


def test_every_chapter_is_registered(monkeypatch):
    """The places CONTRIBUTING.md lists: each numbered notebook has a row in the intro's
    table with its run time, and each chapter module in CHAPTERS has its notebook."""
    from rnncourse import chapters

    intro = (ROOT / "book" / "intro.md").read_text()
    notebooks = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    for path in notebooks:
        row = re.search(rf"^\| {{doc}}`{path.stem}` \|.*\| {{{{ nb_time_{path.stem[:2]} }}}} \|$",
                        intro, re.M)
        assert row, f"book/intro.md has no table row for {path.stem} with its run time"
    monkeypatch.syspath_prepend(str(ROOT / "book" / "_ext"))
    from parallel_execution import TYPICAL_SECONDS

    ci_seconds = re.search(r"^CI_SECONDS = \{(.*?)\}", (ROOT / "conftest.py").read_text(),
                           re.M | re.S).group(1)
    for path in notebooks:  # the longest-first orders of `make notebooks` and `make book`
        assert path.name in TYPICAL_SECONDS, f"{path.name} is not in TYPICAL_SECONDS"
        assert f'"{path.name}"' in ci_seconds, f"{path.name} is not in conftest.CI_SECONDS"
    numbers = {p.name[:2] for p in notebooks}
    for name in chapters.CHAPTERS:
        assert re.fullmatch(r"ch\d\d_\w+", name), name
        assert name[2:4] in numbers, f"chapters.CHAPTERS has {name} but no book/{name[2:4]}_*.ipynb"
        assert (ROOT / "rnncourse" / "chapters" / f"{name}.py").exists(), name


WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_call_the_makefile_and_nothing_more():
    names = {p.stem for p in WORKFLOWS}
    assert {"test", "website", "robustness"} <= names, names
    commands = {}
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
        runs = [s["run"].strip() for s in steps if "run" in s]
        assert all(r.startswith("make ") and "\n" not in r for r in runs), (path.name, runs)
        commands[path.stem] = runs
    assert commands["test"] == ["make test"]
    assert commands["website"] == ["make notebooks book"]  # the intro's times, the site
    assert re.fullmatch(r'make robustness SEEDS="0( \d+)+"', commands["robustness"][0])
    assert len(commands["robustness"][0].split("SEEDS=")[1].split()) == 20
    website = yaml.safe_load((ROOT / ".github" / "workflows" / "website.yml").read_text())
    assert website[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads `on` as True
    uses = [s.get("uses", "") for job in website["jobs"].values() for s in job["steps"]]
    assert any(u.startswith("actions/deploy-pages@") for u in uses)


def test_workflows_match_the_github_schema():
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]')")
    done = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows",
                           *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def tiny_notebook(name: str) -> dict:
    """A page that prints the tiny package's value and when its kernel ran (start, end)."""
    source = ["import time\n", "import tinypkg\n", "start = time.time()\n",
              "time.sleep(3)  # long enough for the other page's kernel to start\n",
              f"print('{name} value', tinypkg.VALUE, 'ran', start, time.time())"]
    return {
        "cells": [
            {"cell_type": "markdown", "id": "title", "metadata": {}, "source": [f"# {name}\n"]},
            {"cell_type": "code", "execution_count": None, "id": "value", "metadata": {},
             "outputs": [], "source": source},
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


@pytest.mark.slow
def test_book_reexecutes_after_a_package_change(tmp_path):
    """`make book` on a two-page book whose notebooks print a value from a tiny package:
    after the package changes (the notebooks do not), the pages show the new value. The
    book's extension book/_ext/parallel_execution.py runs the two notebooks at once (their
    kernels' run times overlap) and myst-nb then takes both from the cache."""
    if not (ROOT / ".venv" / "bin" / "jupyter-book").exists():
        pytest.skip("no .venv with jupyter-book: run `make venv` first")
    book = tmp_path / "book"
    (book / "tinypkg").mkdir(parents=True)
    (book / "_config.yml").write_text(
        "title: Tiny\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: cache\n"
        f"sphinx:\n  local_extensions:\n    parallel_execution: {ROOT / 'book' / '_ext'}\n")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: page\nchapters:\n- file: other\n- file: times\n")
    (book / "times.md").write_text("# Times\n\n```{nb-exec-table}\n```\n")
    for name in ("page", "other"):
        (book / f"{name}.ipynb").write_text(json.dumps(tiny_notebook(name)))
    module = book / "tinypkg" / "__init__.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}

    def build(value: int) -> dict[str, str]:
        module.write_text(f"VALUE = {value}\n")
        done = subprocess.run(
            ["make", "--no-print-directory", "-o", "data", "book", f"BOOK_DIR={book}",
             f"PACKAGE={book / 'tinypkg'}", "WORKERS=2"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=600)
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-3000:]
        assert "executing 2 notebooks, 2 at a time" in log, log[-3000:]
        assert "Executing notebook" not in log, "myst-nb executed a notebook itself"
        return {name: (book / "_build" / "html" / f"{name}.html").read_text()
                for name in ("page", "other")}

    assert all(f"{name} value 1" in html for name, html in build(1).items())
    pages = build(2)
    assert all(f"{name} value 2" in html for name, html in pages.items()), \
        "a page still shows the old package's output"
    (s1, e1), (s2, e2) = (map(float, re.search(rf"{name} value 2 ran (\S+) (\S+)",
                                               pages[name]).groups()) for name in ("page", "other"))
    assert max(s1, s2) < min(e1, e2), "the two notebooks did not run at the same time"
    seconds = json.loads((book / "_build" / "execution-seconds.json").read_text())
    assert set(seconds) == {"page.ipynb", "other.ipynb"}
    assert all(v >= 3 for v in seconds.values()), seconds
    # the execution table (the intro's full-scale run times) lists the pages with a run time
    times = (book / "_build" / "html" / "times.html").read_text()
    body = re.search(r"<tbody>(.*?)</tbody>", times, re.S)
    assert body and 'href="page.html"' in body.group(1), times[-3000:]
    assert 'href="other.html"' in body.group(1), times[-3000:]
    assert len(re.findall(r"<p>\d+(\.\d+)?</p>", body.group(1))) >= 2, body.group(1)


@pytest.mark.slow
def test_a_failing_notebook_stops_the_build_and_is_not_cached(tmp_path, monkeypatch):
    """The parallel execution (book/_ext/parallel_execution.py), called as Sphinx calls it,
    on a good and a broken notebook: both run; the good one is cached with its run time, and
    the error names the broken notebook and its exception (nothing cached for it)."""
    monkeypatch.syspath_prepend(str(ROOT / "book" / "_ext"))
    import nbformat
    import parallel_execution
    from jupyter_cache import get_cache
    from sphinx.errors import ExtensionError

    broken = tiny_notebook("broken")
    broken["cells"][1]["source"] = ["raise ValueError('the broken page')"]
    for name, notebook in (("page", tiny_notebook("page")), ("broken", broken)):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "tinypkg").mkdir()
    (tmp_path / "tinypkg" / "__init__.py").write_text("VALUE = 1\n")
    cache_dir = tmp_path / "_build" / ".jupyter_cache"
    config = types.SimpleNamespace(execution_mode="cache", execution_cache_path=str(cache_dir),
                                   execution_in_temp=False, execution_timeout=120,
                                   execution_allow_errors=False)
    env = types.SimpleNamespace(mystnb_config=config,
                                doc2path=lambda docname: str(tmp_path / f"{docname}.ipynb"))
    monkeypatch.setenv("RNNCOURSE_BOOK_WORKERS", "2")
    with pytest.raises(ExtensionError) as error:
        parallel_execution._execute_uncached(None, env, ["page", "broken"])
    assert "broken.ipynb" in str(error.value) and "ValueError: the broken page" in str(
        error.value), str(error.value)[-2000:]
    cache = get_cache(str(cache_dir))
    cache.match_cache_notebook(nbformat.read(tmp_path / "page.ipynb", as_version=4))
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(tmp_path / "broken.ipynb", as_version=4))
    seconds = json.loads((tmp_path / "_build" / "execution-seconds.json").read_text())
    assert set(seconds) == {"page.ipynb"} and seconds["page.ipynb"] >= 3, seconds


def test_the_version_has_one_home():
    import rnncourse

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rnncourse.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", rnncourse.__version__)


def write_install_cells() -> None:
    """Insert or refresh the install cell at the top of every chapter notebook."""
    import json

    source = install_cell_source().splitlines(keepends=True)
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        if code and "".join(code[0]["source"]).startswith("# In Colab or Binder"):
            code[0]["source"] = source
        else:
            first = notebook["cells"].index(code[0]) if code else len(notebook["cells"])
            notebook["cells"].insert(first, {"cell_type": "code", "execution_count": None,
                                             "id": "install-rnncourse", "metadata": {},
                                             "outputs": [], "source": source})
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # python tests/test_packaging.py: refresh the install cells
    write_install_cells()

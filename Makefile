# The two commands of the README: `make book` builds the website, `make test` runs every test.
# Both bootstrap .venv and the data cache on first use and skip that work when run again.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rnncourse-installed
NBVAL  := -o norecursedirs="_build .* .venv" --nbval-lax --nbval-current-env -p no:cacheprovider
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book test quick venv data lint unit notebooks strict site-test wheel-check benchmarks \
	robustness recipe-coverage fresh-cache clean

# jupyter-cache keys each notebook on its code cells alone, so after a change to the package
# a second `make book` would execute nothing and show the old numbers. The hash of the
# package's sources is stamped in the build folder; when it differs, the execution cache and
# Sphinx's environment are cleared and every notebook runs again. (BOOK_DIR and PACKAGE are
# variables so that tests/test_packaging.py can check this on a tiny book.)
BOOK_DIR ?= .
PACKAGE  ?= rnncourse
BOOK_OUT  = $(BOOK_DIR)/_build
HASH := $(shell command -v sha256sum >/dev/null && echo sha256sum || echo "shasum -a 256")
SOURCES_HASH = $(shell find $(PACKAGE) -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort \
	| xargs $(HASH) | $(HASH) | cut -c1-16)
# Seconds per notebook of the last `make notebooks`, shown in the intro's table.
TIMES := $(CURDIR)/_build/notebook-times.json

# The notebooks that need executing run WORKERS at a time, longest first, before Sphinx reads
# them (book/_ext/parallel_execution.py); myst-nb then takes them from the cache.
book: data fresh-cache
	RNNCOURSE_NOTEBOOK_TIMES=$(TIMES) RNNCOURSE_BOOK_WORKERS=$(WORKERS) $(BIN)/jupyter-book build $(BOOK_DIR) -W -n --keep-going
	@echo "Website: $(BOOK_OUT)/html/index.html"

fresh-cache:
	@mkdir -p $(BOOK_OUT)
	@if [ "$$(cat $(BOOK_OUT)/.package-hash 2>/dev/null)" != "$(SOURCES_HASH)" ]; then \
		echo "book: $(PACKAGE)/ changed since the last build: every notebook executes again"; \
		rm -rf $(BOOK_OUT)/.jupyter_cache $(BOOK_OUT)/.doctrees $(BOOK_OUT)/jupyter_execute; \
		echo "$(SOURCES_HASH)" > $(BOOK_OUT)/.package-hash; fi

# Every test, phase by phase, each phase's seconds printed as it ends; unit tests and
# notebooks run two at a time (the target: ten minutes on two idle cores).
PHASES := lint unit notebooks strict site-test wheel-check
test:
	@for phase in $(PHASES); do start=$$(date +%s); \
		$(MAKE) --no-print-directory $$phase || exit 1; \
		echo "make test: $$phase took $$(( $$(date +%s) - start )) s"; done

# The fast tier: lint and the unit tests not marked slow (no notebook, no test that starts
# worker processes, trains on a corpus or builds a book; tests/conftest.py lists them).
quick: lint
	RNNCOURSE_SCALE=ci RNNCOURSE_PROGRESS=0 $(BIN)/python -m pytest tests --ignore=tests/site \
		-m "not slow" $(XDIST) $(if $(XDIST),--dist loadfile)

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[book,test]"
	touch $@

data: $(STAMP)
	$(BIN)/python -m rnncourse fetch all

lint: $(STAMP)
	$(BIN)/ruff check .

# Tests run in WORKERS processes (pytest-xdist, from the test extra; WORKERS=0 or no xdist: one),
# a file at a time (--dist loadfile): a notebook's cells share one kernel, and a test
# module's module-scoped fixtures (trained models, worker runs) are computed once. The unit
# phase ends with its 15 slowest tests: where its time goes.
WORKERS ?= 2
XDIST = $(shell $(BIN)/python -c "import xdist" 2>/dev/null && echo "-n $(WORKERS)")

unit: data
	RNNCOURSE_SCALE=ci RNNCOURSE_PROGRESS=0 $(BIN)/python -m pytest tests --ignore=tests/site \
		$(XDIST) $(if $(XDIST),--dist loadfile) --durations=15

# nbval runs every notebook at CI scale; the root conftest.py keeps the executed copies and
# writes each notebook's seconds to _build/notebook-times.json (the intro's table shows them)
# and hands the notebooks out longest first (by those seconds).
notebooks: data
	rm -rf _build/executed
	RNNCOURSE_SCALE=ci RNNCOURSE_PROGRESS=0 RNNCOURSE_EXECUTED_DIR=_build/executed \
		RNNCOURSE_NOTEBOOK_TIMES=$(TIMES) \
		$(BIN)/python -m pytest $(NBVAL) $(XDIST) $(if $(XDIST),--dist loadfile --no-loadscope-reorder) book

# Strict build without execution (-W -n: a broken reference, citation or toc entry fails it).
# It renders the notebooks nbval just executed (else the sources), so the CI-scale site in
# _build/site/_build/html shows real outputs without running any notebook twice.
SITE := _build/site
strict: $(STAMP)
	rm -rf $(SITE) && mkdir -p $(SITE)/src/book
	sed 's/execute_notebooks: cache/execute_notebooks: "off"/' _config.yml > $(SITE)/src/_config.yml
	grep -q 'execute_notebooks: "off"' $(SITE)/src/_config.yml
	cp _toc.yml $(SITE)/src/ && cp -r book/*.md book/*.svg book/references.bib book/_ext book/_static $(SITE)/src/book/
	cp -r rnncourse $(SITE)/src/  # the chapters literalinclude ../rnncourse/*.py
	for nb in book/*.ipynb; do \
		if [ _build/executed/$$nb -nt $$nb ]; then cp _build/executed/$$nb $(SITE)/src/$$nb; \
		else cp $$nb $(SITE)/src/$$nb; fi; done
	RNNCOURSE_NOTEBOOK_TIMES=$(TIMES) \
		$(BIN)/jupyter-book build $(SITE)/src -W -n --keep-going --path-output $(SITE)

# The CI-scale site in a real browser (headless Chromium); skipped with the reason printed
# when Chromium is not installed (.ci/run installs it). After `make book`, check the full
# site with: RNNCOURSE_SITE=_build/html .venv/bin/python -m pytest tests/site
# Two test processes (each with its own server and Chromium): the tests wait on the browser.
site-test: $(STAMP)
	RNNCOURSE_SITE=$(SITE)/_build/html \
	RNNCOURSE_SITE_REQUIRED=$$(command -v chromium >/dev/null && echo 1 || echo 0) \
		$(BIN)/python -m pytest tests/site -rs $(XDIST)

# Where the launch buttons send a reader, the package is installed, not checked out: build the
# wheel, install it (not editable) into a fresh venv that borrows only the dependencies of
# .venv (no second TensorFlow download), and run the setup chapter from an empty directory
# outside the repository, so `import rnncourse` can only find the wheel.
WHEEL := _build/wheel
wheel-check: data
	rm -rf $(WHEEL) && mkdir -p $(WHEEL)
	$(BIN)/python -m pip wheel -q --no-deps -w $(WHEEL) .
	$(PYTHON) -m venv $(WHEEL)/venv
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
		> "$$($(WHEEL)/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/rnncourse-deps.pth"
	$(WHEEL)/venv/bin/python -m pip install -q --no-deps $(WHEEL)/rnncourse-*.whl
	run=$$(mktemp -d) && cp book/00_setup.ipynb $$run/ && cd $$run && \
		$(CURDIR)/$(WHEEL)/venv/bin/python -c "import rnncourse, sys; \
		assert '/$(WHEEL)/venv/' in rnncourse.__file__, rnncourse.__file__" && \
		RNNCOURSE_SCALE=ci RNNCOURSE_PROGRESS=0 $(CURDIR)/$(WHEEL)/venv/bin/python -m pytest \
		-p no:cacheprovider --nbval-lax --nbval-current-env -q 00_setup.ipynb; \
		status=$$?; rm -rf $$run; exit $$status

# Every notebook for RNNCOURSE_SEED=0..4 at CI scale (SCALE=full SEEDS="0 1 2" for the full
# scale): a notebook x seed table and the spread of each chapter's headline numbers.
# JOBS runs at a time (default WORKERS).
SCALE ?= ci
SEEDS ?= 0 1 2 3 4
JOBS ?= $(WORKERS)
robustness: data
	$(BIN)/python tests/robustness.py --scale $(SCALE) --seeds $(SEEDS) --jobs $(JOBS)

benchmarks: data
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

# Per chapter: how many of the lines it executes are on its page and how many in its module
# under rnncourse/chapters, and any training call executed off the page (each notebook run
# in-process under coverage; NOTEBOOKS=book/05_tbptt.ipynb for one). Fails over 10 % or on a
# training call off the page; `make test` checks a stricter static bound (test_notebooks.py).
recipe-coverage: data
	RNNCOURSE_SCALE=ci RNNCOURSE_PROGRESS=0 $(BIN)/python tests/recipe_coverage.py $(NOTEBOOKS)

clean:
	rm -rf _build

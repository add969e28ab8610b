# The two commands of the README: `make book` builds the website, `make test` runs every test.
# Both bootstrap .venv and the data cache on first use and skip that work when run again.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rnncourse-installed
NBVAL  := -o norecursedirs="_build .* .venv" --nbval-lax --nbval-current-env -p no:cacheprovider
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book test venv data lint unit notebooks strict benchmarks clean

book: data
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Website: _build/html/index.html"

test: lint unit notebooks strict

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

unit: data
	RNNCOURSE_SCALE=ci $(BIN)/python -m pytest tests

notebooks: data
	RNNCOURSE_SCALE=ci RNNCOURSE_PROGRESS=0 $(BIN)/python -m pytest $(NBVAL) book

# Strict build without execution: broken references, citations or toc entries fail it.
strict: $(STAMP)
	mkdir -p _build
	sed 's/execute_notebooks: cache/execute_notebooks: "off"/' _config.yml > _build/_config_noexec.yml
	grep -q 'execute_notebooks: "off"' _build/_config_noexec.yml
	$(BIN)/jupyter-book build . -W -n --keep-going --config _build/_config_noexec.yml \
		--path-output _build/strict

benchmarks: data
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build

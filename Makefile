# Netra — the developer entry points. Every target creates .venv and installs on first use;
# reinstall happens only when pyproject.toml changes, so repeated runs are fast.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/demo.toml
PYTEST_ARGS ?=

.PHONY: demo test lint format bench install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/netra demo --config $(CONFIG)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check pipeline collectors classifiers tests bench
	$(BIN)/ruff format --check pipeline collectors classifiers tests bench

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix pipeline collectors classifiers tests bench
	$(BIN)/ruff format pipeline collectors classifiers tests bench

bench: $(VENV)/.installed-dev
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf out data/demo.db* .pytest_cache .ruff_cache

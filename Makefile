# Quick start on a fresh machine with Python 3.11+:  make run  /  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Written beside the tracked folder, which is replaced only when more than the wall time changed.
run: $(STAMP)
	rm -rf reports/.baseline-new
	$(BIN)/hn005-sim run scenarios/baseline.toml --replicates 200 --seed 20230901 --jobs 2 --out reports/.baseline-new
	$(BIN)/python -m hn005_sim.refresh reports/.baseline-new reports/baseline

# One line per test file with its progress, then the ten slowest tests (pyproject addopts).
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# borderrisk — the two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BR := $(VENV)/bin/borderrisk
export BORDERRISK_DATA_DIR ?= data
DATA := $(BORDERRISK_DATA_DIR)
ROWS ?= 100000

.PHONY: run test install demo-data models serve lint format bench clean help

help:
	@echo "make run    install, generate demo history, train both models, serve on 127.0.0.1:8000"
	@echo "make test   install and run the whole test suite"
	@echo "make lint   ruff (lint + format check) and mypy"
	@echo "make bench  benchmarks, written to BENCHMARKS.md"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "borderrisk needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

$(DATA)/history/cargo.parquet: | $(VENV)/.installed
	$(BR) generate cargo --rows $(ROWS) --seed 7 --out $@

$(DATA)/history/passenger.parquet: | $(VENV)/.installed
	$(BR) generate passenger --rows $(ROWS) --seed 11 --out $@

demo-data: $(DATA)/history/cargo.parquet $(DATA)/history/passenger.parquet

# A stamp per domain: retrain only when the history changed (or the data folder was wiped).
$(DATA)/.trained-%: $(DATA)/history/%.parquet
	$(BR) train $* --data $<
	@touch $@

models: $(DATA)/.trained-cargo $(DATA)/.trained-passenger

run: install demo-data models
	$(BR) keys demo
	$(BR) serve

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy borderrisk features models training service

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench

# KCS benchmark: train on 2020, evaluate on 2021-Q1 (BORDERRISK_KCS_DIR, default ../shared/datasets/kcs).
.PHONY: bench-kcs
bench-kcs: install
	$(PY) -m bench.kcs

clean:
	rm -rf $(DATA) .pytest_cache .mypy_cache

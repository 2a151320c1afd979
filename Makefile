# Two commands from a fresh clone with only Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
export TRAINPIPE_HOME ?= $(CURDIR)/.trainpipe
export DAGSTER_HOME ?= $(TRAINPIPE_HOME)/dagster

.PHONY: demo test install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	touch $@

install: $(VENV)/.installed

demo: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/trainpipe demo

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

dev: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev

clean:
	rm -rf $(TRAINPIPE_HOME)

# The two commands the README opens with, and the checks CI runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

demo: $(STAMP)
	$(VENV)/bin/canopy demo

test: lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

unit: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/idl_compile.py
	$(PY) bench/inprocess_call.py
	$(PY) bench/stream_call.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache

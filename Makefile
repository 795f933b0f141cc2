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
	$(VENV)/bin/ruff check src tests bench fuzz
	$(VENV)/bin/ruff format --check src tests bench fuzz

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

unit: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/idl_compile.py
	$(PY) bench/inprocess_call.py
	$(PY) bench/stream_call.py
	$(PY) bench/call_cpu.py

# Canopy, the raw floors and (bench-peers) grpcio, RPyC, Pyro5 and pycapnp in one run;
# bench-peers installs the peers into bench/.venv-peers first. See bench/suite.py.
.PHONY: bench-suite bench-peers
bench-suite: $(STAMP)
	$(PY) bench/suite.py --out BENCHMARKS-latest.md

bench-peers: $(STAMP)
	$(PY) bench/suite.py --peers --out BENCHMARKS-latest.md

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache

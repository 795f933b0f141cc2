# The two commands the README opens with, and the checks CI runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-web test lint typecheck unit chromium bench clean

demo: $(STAMP)
	$(VENV)/bin/canopy demo

demo-web: $(STAMP)
	$(VENV)/bin/canopy demo --web

test: lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench fuzz
	$(VENV)/bin/ruff format --check src tests bench fuzz

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

# One worker per core, each taking the next test when it is done (the suite's tests
# differ a thousandfold in length). A single file: .venv/bin/pytest tests/...
unit: $(STAMP) chromium
	$(PY) -m pytest -n auto --dist worksteal

# tests/test_demo_web.py drives Debian's Chromium (never a browser download of its own);
# as root, install it when missing. Without it that test skips, saying why.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make: not root, so Chromium is not installed: the browser test will skip"; \
	  else \
	    echo "make: installing Debian's chromium for the browser test"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || \
	    echo "make: apt-get could not install chromium: the browser test will skip"; \
	  fi; \
	fi

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

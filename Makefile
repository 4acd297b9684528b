# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all lint bench bench-deps clean

venv: $(STAMP)

# torch goes in first, pinned, so no dependency can pull a different (CUDA) build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch
	$(PIP) install -c constraints.txt -e ".[test]"
	touch $(STAMP)

# Registers a synthetic X-ray of the embedded phantom (start ~10 deg / 20 mm off) and renders the example CT.
demo: $(STAMP)
	$(VENV)/bin/drreg register --config recipes/register.yaml
	$(VENV)/bin/drreg render --output outputs/render

test: $(STAMP)
	$(VENV)/bin/ruff check drreg tests benchmarks
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check drreg tests benchmarks
	$(VENV)/bin/ruff format --check drreg tests benchmarks

# Peers for the benchmarks only (drreg never imports them).
bench-deps: $(STAMP)
	$(PIP) install -c constraints.txt --no-deps diffdrr==0.6.1 fastcore nanodrr==0.1.7

bench: $(STAMP)
	$(PY) benchmarks/render.py

clean:
	rm -rf $(VENV) outputs lightning_logs

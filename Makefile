# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all lint doctest docs bench bench-deps diffdrr-fixtures spectra clean

venv: $(STAMP)

# torch goes in first, pinned, so no dependency can pull a different (CUDA) build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch
	$(PIP) install -c constraints.txt -e ".[test,docs]"
	touch $(STAMP)

# Registers a synthetic X-ray of the embedded phantom (start ~10 deg / 20 mm off) and renders the example CT.
demo: $(STAMP)
	$(VENV)/bin/drreg register --config recipes/register.yaml
	$(VENV)/bin/drreg render --output outputs/render

# What CI runs: lint (ruff, format, mypy), the tests and the doctests of drreg/, and the docs site (--strict).
test: lint $(STAMP)
	$(PY) -m pytest -q tests drreg --doctest-modules
	$(MAKE) --no-print-directory docs

test-all: lint $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow" tests drreg --doctest-modules
	$(MAKE) --no-print-directory docs

lint: $(STAMP)
	$(VENV)/bin/ruff check drreg tests benchmarks
	$(VENV)/bin/ruff format --check drreg tests benchmarks
	$(VENV)/bin/mypy

doctest: $(STAMP)
	$(PY) -m pytest -q --doctest-modules drreg

# The documentation site (mkdocs-material + mkdocstrings); --strict turns a broken reference into an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Peers for the benchmarks only (drreg never imports them).
bench-deps: $(STAMP)
	$(PIP) install -c constraints.txt --no-deps diffdrr==0.6.1 fastcore nanodrr==0.1.7
	$(PIP) install -c constraints.txt "easypytorch3d>=0.7.9,<0.8"

# Regenerate the DiffDRR 0.6.1 fixtures the compatibility tests read (tests/fixtures/diffdrr/*.pt).
diffdrr-fixtures: bench-deps
	for script in tests/fixtures/diffdrr/make_*.py; do $(PY) $$script || exit 1; done

# Regenerate the committed tube spectra (drreg/physics/data/spectra*.csv) with SpekPy.
spectra: $(STAMP)
	$(PIP) install -c constraints.txt spekpy
	$(PY) scripts/make_spectra.py

bench: $(STAMP)
	$(PY) benchmarks/render.py

clean:
	rm -rf $(VENV) outputs lightning_logs site

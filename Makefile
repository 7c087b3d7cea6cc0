# One task runner: `make demo`, `make test`, `make bench`; each sets up what it needs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test unit lint types proto check-proto bench postgres clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	scripts/ensure-venv $(VENV) $(PYTHON)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(PY) -m demo

test: $(STAMP) postgres check-proto lint types
	$(PY) -m pytest -q

unit: $(STAMP)
	HDX_TEST_DB=sqlite $(PY) -m pytest -q -x

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

types: $(STAMP)
	$(VENV)/bin/mypy

proto: $(STAMP)
	PY=$(PY) scripts/gen-proto

check-proto: $(STAMP)
	PY=$(PY) scripts/gen-proto --check

bench: $(STAMP) postgres
	$(PY) -m bench

postgres:
	scripts/ensure-postgres

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates the virtualenv and installs the project first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agentops demo

lint: $(STAMP)
	$(BIN)/ruff check src flows tests benchmarks

# The suite runs once on SQLite and once on PostgreSQL (AGENTOPS_TEST_POSTGRES_URL,
# default postgresql+psycopg://postgres@127.0.0.1:5432/test).
test: lint
	AGENTOPS_TEST_DATABASE=sqlite $(BIN)/python -m pytest -q
	AGENTOPS_TEST_DATABASE=postgresql $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/detection.py
	$(BIN)/python benchmarks/demo_timings.py

clean:
	rm -rf $(VENV) .agentops

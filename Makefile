# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates the virtualenv and installs the project first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-integration lint bench bench-production bench-scale docs settings-doc clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agentops demo

lint: $(STAMP)
	$(BIN)/ruff check src flows tests benchmarks
	$(BIN)/python -m mypy src

# The suite runs once on SQLite and once on PostgreSQL (AGENTOPS_TEST_POSTGRES_URL,
# default postgresql+psycopg://postgres@127.0.0.1:5432/test), then the integration tests.
test: lint
	AGENTOPS_TEST_DATABASE=sqlite $(BIN)/python -m pytest -q
	AGENTOPS_TEST_DATABASE=postgresql $(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -m integration

# The production path (a Prefect server on PostgreSQL, prefect.yaml, a process worker
# restarted mid-wait) and the wheel installed in a clean venv running `agentops demo`.
test-integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration

bench: $(STAMP)
	$(BIN)/python benchmarks/detection.py
	$(BIN)/python benchmarks/demo_timings.py

bench-production: $(STAMP)
	$(BIN)/python benchmarks/production_latency.py

# Fleet scale (issue 11): a long run with 1M-record stores; add ARGS=--quick for minutes.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py $(ARGS)

# The documentation site (mkdocs-material) into site/; --strict fails on a broken link.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# Rewrite docs/operators/settings.md from the Settings class (a test checks it is current).
settings-doc: $(STAMP)
	$(BIN)/python -m agentops.settings_doc

clean:
	rm -rf $(VENV) .agentops site

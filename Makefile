# `make run` and `make test` set up everything they need (CONTRACT.md, Commands); `make bench` measures.
# Everything runs from .venv, built from the committed lock file.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint format install clean-test-dbs

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv >/dev/null 2>&1 || $(BIN)/python -m pip install -q uv
	@$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@bash scripts/run.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# PostgreSQL and Redis reachable (one line naming which, if not), Chromium for the browser tests (installed with
# apt-get when missing and run as root; otherwise one line saying how), then lint and the whole suite.
test: $(STAMP)
	@$(BIN)/python scripts/preflight.py --check
	@bash scripts/ensure_chromium.sh
	@$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-test-dbs:
	@psql -h 127.0.0.1 -U postgres -Atc "select datname from pg_database where datname like 'test_erasure_%'" | \
		xargs -r -I{} psql -h 127.0.0.1 -U postgres -qc 'DROP DATABASE IF EXISTS "{}"'

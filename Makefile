# meetpunt: `make demo` sets up and runs the main job; `make test` sets up and runs
# every check (lint, types, tests on SQLite and PostgreSQL). Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench bench-ingest bench-ingest-memory bench-fuzz bench-fuzz-meterfiles bench-p1 bench-gate bench-register bench-mqtt bench-mqtt-restarts fault-modes clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meetpunt needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meetpunt demo

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks
	$(BIN)/mypy

test: $(STAMP) lint
	scripts/ensure-services
	$(BIN)/python -m pytest -n auto --dist loadgroup --durations=25

bench: $(STAMP)
	$(BIN)/python benchmarks/twin_generate.py

bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/ingest_quarter_hours.py

bench-ingest-memory: $(STAMP)
	$(BIN)/python benchmarks/ingest_memory.py

bench-fuzz-meterfiles: $(STAMP)
	$(BIN)/python benchmarks/fuzz_meterfiles.py --inputs 1000000

bench-p1: $(STAMP)
	$(BIN)/python benchmarks/p1_parse.py

bench-gate: $(STAMP)
	$(BIN)/python benchmarks/gate_decisions.py

bench-register: $(STAMP)
	$(BIN)/python benchmarks/register_import.py

bench-mqtt: $(STAMP)
	$(BIN)/python benchmarks/mqtt_ingest_rate.py

bench-mqtt-restarts: $(STAMP)
	$(BIN)/python benchmarks/mqtt_restarts.py

bench-fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz_parsers.py

fault-modes: $(STAMP)
	$(BIN)/python scripts/fault_modes.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

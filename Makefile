# Two commands on a fresh machine: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## set up and run the pipeline on generated demo data
	$(BIN)/cdp run

test: $(STAMP)  ## set up and run the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  ## benchmarks (not tests): ingest throughput, identity stage, exports
	$(BIN)/python benchmarks/ingest_throughput.py
	$(BIN)/python benchmarks/identity_stage.py
	$(BIN)/python benchmarks/export_segment.py
	$(BIN)/python benchmarks/ticket_classifier_accuracy.py

clean:
	rm -rf $(VENV) data dbt_project/target dbt_project/logs

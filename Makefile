# Two commands on a fresh machine: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# mypy needs a venv of its own (see [dependency-groups] in pyproject.toml).
MYPY_VENV := .venv-mypy
MYPY_STAMP := $(MYPY_VENV)/.installed
# Debian packages the tests need: Chromium for everything a person looks at (the Airflow UI).
CHROMIUM := /usr/bin/chromium
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: run test lint bench airflow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(MYPY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(MYPY_VENV)
	$(MYPY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MYPY_VENV)/bin/python -m pip install --quiet --group mypy
	touch $(MYPY_STAMP)

$(CHROMIUM):
	$(APT_GET) install -y -q --no-install-recommends chromium \
	  || ($(APT_GET) update -q && $(APT_GET) install -y -q --no-install-recommends chromium)

run: $(STAMP)  ## set up and run the pipeline on generated demo data
	$(BIN)/cdp run

test: lint $(CHROMIUM)  ## set up, lint and run the test suite (one worker per core)
	$(BIN)/python -m pytest -n auto --durations=30

lint: $(STAMP) $(MYPY_STAMP)  ## ruff and mypy (packages and settings: [tool.mypy] in pyproject.toml)
	$(BIN)/ruff check .
	$(MYPY_VENV)/bin/mypy --python-executable $(BIN)/python

AIRFLOW_PORT ?= 8080
airflow: $(STAMP)  ## Airflow (scheduler, DAG processor, triggerer, UI) on 127.0.0.1:$(AIRFLOW_PORT)
	$(BIN)/cdp airflow standalone --port $(AIRFLOW_PORT)

bench: $(STAMP)  ## benchmarks (not tests): ingest throughput, identity stage, exports, erasure
	$(BIN)/python benchmarks/ingest_throughput.py
	$(BIN)/python benchmarks/identity_stage.py
	$(BIN)/python benchmarks/export_segment.py
	$(BIN)/python benchmarks/ticket_classifier_accuracy.py
	$(BIN)/python benchmarks/privacy_forget.py

clean:
	rm -rf $(VENV) $(MYPY_VENV) .mypy_cache data dbt_project/target dbt_project/logs

# satmodel: run `make help` for the list of targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SATMODEL := $(VENV)/bin/satmodel
STAMP := $(VENV)/.installed
DB := data/satmodel.duckdb

.DEFAULT_GOAL := help
.PHONY: help install demo report test test-fast lint format lab bench clean

help: ## show this list of targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,spark,postgres]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install satmodel with its dev, spark and postgres extras

$(DB): | $(STAMP)
	$(SATMODEL) demo --out data/demo --duckdb $(DB)

demo: $(DB) ## create the demo data in data/satmodel.duckdb (if missing)

report: $(STAMP) $(DB) ## the main job: set up, demo data if missing, validate, monthly report
	$(SATMODEL) validate --data $(DB)
	$(SATMODEL) features --data $(DB) --out data/processed/panel.parquet
	$(SATMODEL) report --data $(DB) --out reports

test: $(STAMP) ## run the whole test suite (what CI runs), slow tests and the wheel test included
	$(PY) -m pytest

test-fast: $(STAMP) ## the inner loop: every test not marked slow or spark (a JVM start)
	$(PY) -m pytest -m "not slow and not spark"

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## format the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The notebooks ask for the "satmodel" kernel; it is registered inside .venv (--sys-prefix).
# Jupyter refuses to run as root (containers) without --allow-root.
lab: $(STAMP) ## JupyterLab on notebooks/ with the project kernel (satmodel) registered
	$(PY) -m ipykernel install --sys-prefix --name satmodel --display-name "Python (satmodel)"
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

bench: $(STAMP) ## run the benchmarks in bench/ and print ratios against their baselines
	$(PY) bench/run_all.py

clean: ## remove generated data and reports (keeps .venv)
	rm -rf data/demo data/processed $(DB) $(DB).wal reports/20*

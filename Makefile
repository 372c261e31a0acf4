# ditio-images: every command a user or CI needs. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AUDIT_STAMP := $(VENV)/.audit-installed

.PHONY: help install test lint format demo airflow bench bench-smoke audit clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip check
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the pinned requirements

test: install  ## Lint, then run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: install  ## Sync three sandbox hours into a local S3 and print a summary
	$(BIN)/python include/demo.py

PORT ?= 8080

airflow: install  ## Run Airflow on the sandbox; UI on 127.0.0.1:8080 (change with PORT=...)
	$(BIN)/python include/local_airflow.py --port $(PORT)

$(AUDIT_STAMP): $(STAMP) requirements-audit.txt
	$(BIN)/python -m pip install --quiet -r requirements-audit.txt -c requirements.txt
	$(BIN)/python -m pip check
	@touch $(AUDIT_STAMP)

audit: $(AUDIT_STAMP)  ## Check the pinned requirements against PyPI's vulnerability data
	$(BIN)/pip-audit --requirement requirements.txt --no-deps --disable-pip \
		--vulnerability-service pypi --strict --aliases on --progress-spinner off

bench: install  ## Benchmark against the vendor loop and HttpToS3Operator (about 6 min)
	PYTHONPATH=include:plugins $(BIN)/python -m ditio_bench

bench-smoke: install  ## The benchmark on tiny sizes: checks that it runs and reports
	PYTHONPATH=include:plugins $(BIN)/python -m ditio_bench --smoke

clean:  ## Remove the virtualenv and local state
	rm -rf $(VENV) .demo .airflow .pytest_cache .ruff_cache

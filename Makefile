# The two commands of the README. Each creates .venv on first use and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo triage-example test system-deps lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: the game day: lab up -> triage -> plan -> respond -> hunt -> recover -> prevention proof -> report -> lab down
SCENARIO ?= iam-user
demo: $(STAMP)
	$(BIN)/eksir gameday --scenario $(SCENARIO) --cases-dir cases

## triage-example: triage the bundled example finding (no lab, no Go needed) and verify its case
triage-example: $(STAMP)
	$(BIN)/eksir triage examples/finding-eventbridge.json --config examples/triage-config.yaml --cases-dir cases
	$(BIN)/eksir case verify --cases-dir cases $$($(BIN)/eksir triage examples/finding-eventbridge.json --config examples/triage-config.yaml --cases-dir cases --output json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["case"]["id"])')

## test: lint, type-check and run the whole test suite (builds the lab's kube-apiserver/etcd on first use; needs Go)
test: $(STAMP) system-deps lint typecheck unit

# Chromium for the HTML report test (Debian package; does nothing when already installed).
system-deps:
	sh scripts/install-test-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

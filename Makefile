# The two commands of the README. Each creates .venv on first use and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

LOCK := requirements/dev.lock
STAGE := sh scripts/stage.sh

.PHONY: demo triage-example test test-aws system-deps build lint typecheck unit lock bench clean

# The environment comes from the hash-checked lock only (see scripts/install-locked.sh); `make lock` refreshes it.
$(STAMP): $(LOCK) pyproject.toml
	$(STAGE) install sh scripts/install-locked.sh $(PYTHON) $(VENV) $(LOCK)
	@touch $(STAMP)

## lock: refresh requirements/dev.lock (hash-pinned, every platform); then run `make clean test` before committing
lock:
	sh scripts/lock.sh

## demo: the game day: lab up -> triage -> plan -> respond -> hunt -> recover -> prevention proof -> report -> lab down
SCENARIO ?= iam-user
demo: $(STAMP)
	$(BIN)/eksir gameday --scenario $(SCENARIO) --cases-dir cases

## triage-example: triage the bundled example finding (no lab, no Go needed) and verify its case
triage-example: $(STAMP)
	$(BIN)/eksir triage examples/finding-eventbridge.json --config examples/triage-config.yaml --cases-dir cases
	$(BIN)/eksir case verify --cases-dir cases $$($(BIN)/eksir triage examples/finding-eventbridge.json --config examples/triage-config.yaml --cases-dir cases --output json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["case"]["id"])')

## test: lint, type-check and run the whole test suite (builds the lab's kube-apiserver/etcd on first use; needs Go)
test: $(STAMP) system-deps build lint typecheck unit

## test-aws: opt-in tests against a real AWS sandbox account and EKS cluster (README "Real AWS, opt-in"); never
## part of `make test` or CI. Stops unless the credentials resolve to EKSIR_TEST_AWS_ACCOUNT.
test-aws: $(STAMP)
	EKSIR_TEST_AWS=1 $(BIN)/pytest -q -rs tests/aws_real

# Chromium for the HTML report test (Debian package; does nothing when already installed).
system-deps:
	$(STAGE) system-deps sh scripts/install-test-deps.sh

# The lab's kube-apiserver and etcd, built from the official Go modules (cached in ~/.cache/eksir/bin).
build: $(STAMP)
	$(STAGE) build $(BIN)/eksir lab build

lint: $(STAMP)
	$(STAGE) lint sh -c '$(BIN)/ruff check src tests bench && $(BIN)/ruff format --check src tests bench && $(BIN)/lint-imports'

typecheck: $(STAMP)
	$(STAGE) typecheck $(BIN)/mypy

# Both cores: a file's tests (and its module fixtures, e.g. a lab per scenario) stay on one worker.
PYTEST_WORKERS ?= 2
unit: $(STAMP)
	$(STAGE) tests $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) .venv-lock .pytest_cache .mypy_cache .ruff_cache

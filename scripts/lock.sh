#!/bin/sh
# lock.sh: refresh requirements/dev.lock, the hash-locked environment that `make test`, `make demo` and CI install,
# and requirements/runtime.lock, its run-time part that the worker image (Dockerfile) installs.
#
# Why uv: it resolves for every platform and Python eksir supports in one pass (--universal) and writes every
# distribution's sha256, in the requirements format plain pip installs with --require-hashes. uv itself comes
# hash-checked from requirements/uv.txt into .venv-lock, so the resolver is pinned too. The result depends only
# on pyproject.toml, requirements/build.in, requirements/constraints.txt and what the registry serves: running it
# twice gives the same file. After a refresh, run `make clean test` before committing the new lock.
set -eu
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
tools=.venv-lock

[ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$tools/bin/python" -m pip install --quiet --require-hashes --no-deps \
    -r requirements/uv.txt
"$tools/bin/uv" pip compile pyproject.toml requirements/build.in \
    --extra dev --extra lab --extra bench --extra fast \
    --constraint requirements/constraints.txt \
    --upgrade --generate-hashes --universal --python-version 3.11 \
    --custom-compile-command "make lock" \
    --output-file requirements/dev.lock
"$python" scripts/runtime_lock.py
echo "lock: requirements/dev.lock refreshed; check it with 'make clean test' before committing"

#!/bin/sh
# install-locked.sh PYTHON VENV LOCK: create VENV (if needed) and install exactly the LOCK into it, hash-checked.
#
# Why: a fresh machine must get the versions the suite last passed with, not whatever the registry serves today
# (a botocore release inside pyproject's range once broke every CI run). Every package comes from the lock with
# its sha256 checked (--require-hashes), nothing is resolved (--no-deps), and eksir itself is installed editable
# without build isolation, so its build backend (hatchling) also comes from the lock. `pip check` then proves the
# locked set is consistent with eksir's own declared ranges.
set -eu
python=$1
venv=$2
lock=$3

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install --quiet --require-hashes --no-deps -r "$lock"
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
"$venv/bin/python" -m pip check
echo "install-locked: $("$venv/bin/python" --version) in $venv, from $lock:"
"$venv/bin/python" -m pip freeze --all --exclude-editable | sed 's/^/  /'

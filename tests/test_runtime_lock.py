"""requirements/runtime.lock, the worker image's lock: current, a cut of the dev lock, and complete.

Complete is checked against what pip installed from the dev lock: every run-time requirement of every package
in the runtime lock (extras aside, markers evaluated for this platform) is in the runtime lock too, so
`pip install --require-hashes --no-deps -r requirements/runtime.lock` in the Dockerfile lacks nothing eksir
imports.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def _names(path: Path) -> set[str]:
    return {canonicalize_name(name) for name in ENTRY.findall(path.read_text(encoding="utf-8"))}


def test_the_runtime_lock_is_what_the_script_derives_from_the_dev_lock() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/runtime_lock.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_entry_is_the_dev_locks_entry_with_its_pins_and_hashes() -> None:
    dev = (REPO / "requirements" / "dev.lock").read_text(encoding="utf-8")
    runtime = (REPO / "requirements" / "runtime.lock").read_text(encoding="utf-8")
    entries = re.split(r"(?m)^(?=[A-Za-z0-9])", runtime)[1:]
    assert len(entries) == len(_names(REPO / "requirements" / "runtime.lock"))
    assert all(entry in dev for entry in entries)
    assert all("--hash=sha256:" in entry for entry in entries)


def test_it_holds_every_run_time_requirement_and_no_test_tool() -> None:
    locked = _names(REPO / "requirements" / "runtime.lock")
    missing = set()
    for name in [*locked, "eksir"]:
        try:
            declared = requires(name) or []
        except PackageNotFoundError:  # a platform-only package not installed here (colorama on Windows)
            continue
        for requirement in map(Requirement, declared):
            marker = requirement.marker
            needed = marker is None or ("extra" not in str(marker) and marker.evaluate())
            if needed and canonicalize_name(requirement.name) not in locked:
                missing.add(f"{name} -> {requirement.name}")
    assert missing == set()
    assert not locked & {"moto", "pytest", "cfn-lint", "mypy", "ruff", "duckdb", "pyarrow", "awscli"}

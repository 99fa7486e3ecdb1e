"""Tests that need the lab node's real containerd say so through `require_node_runtime()`.

Why fail in CI: CI installs containerd, runc and busybox-static (scripts/install-test-deps.sh) and runs as
root, so a missing runtime there is a broken CI machine, not a reason to go green while testing nothing.
Elsewhere (a laptop without root) the test skips with the reason.
"""

from __future__ import annotations

import os

import pytest

from eksir.lab import node_runtime


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_node_runtime() -> None:
    """Skip (fail in CI, env CI=true) when this machine cannot run the lab node's containerd."""
    why = node_runtime.reason()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"CI must run the lab node's containerd: {why}", pytrace=False)
    pytest.skip(f"needs the lab node's containerd: {why}")

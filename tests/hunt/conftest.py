"""Fixtures for the hunt tests: the real data folders, the generated tree, and a moto server of our own."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"
DATA = REPO / "tests" / "data" / "hunt"


@pytest.fixture(scope="session")
def stratus_dir() -> Path:
    folder = SHARED_REAL / "cloudtrail" / "stratus-red-team-detonation-logs"
    if not folder.is_dir():
        pytest.skip("shared real data (../shared/data/real) is not present")
    return folder


@pytest.fixture(scope="session")
def k8s_audit_dir() -> Path:
    folder = SHARED_REAL / "k8s-audit"
    if not folder.is_dir():
        pytest.skip("shared real data (../shared/data/real) is not present")
    return folder


@pytest.fixture(scope="session")
def tree() -> Path:
    return DATA / "tree"


@pytest.fixture(scope="session")
def truth() -> dict[str, Any]:
    return dict(json.loads((DATA / "ground_truth.json").read_text()))


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto as a real HTTP server on loopback; boto3 reaches it by endpoint_url."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so boto3 signs requests to moto and never finds real ones."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

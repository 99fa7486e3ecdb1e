"""Fixtures for the hunt tests: the real data folders, the generated tree, and a moto server of our own."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.hunt import orgtrail

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


BUCKET = "org-trail-cost"
SOURCE = f"s3://{BUCKET}/AWSLogs/{orgtrail.ORG}/"
KEY = re.compile(r"AWSLogs/o-[a-z0-9]+/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4}/\d{2}/\d{2})/")
FIRST, LAST = "2023/12/30", "2024/01/03"


@pytest.fixture(scope="session")
def org_trail(tmp_path_factory: pytest.TempPathFactory) -> orgtrail.OrgTrail:
    """The generated org trail, built once per session."""
    return orgtrail.build(tmp_path_factory.mktemp("org-s3"))


@pytest.fixture(scope="module")
def org_bucket(moto_url: str, org_trail: orgtrail.OrgTrail) -> orgtrail.OrgTrail:
    """The generated org trail's 5 days around the new year in moto's S3 (moto lists slowly: not all 40),
    plus a folder under the org that is not an account.

    Per module, uploaded when absent: this moto runs in the test process, and moto's state is the process's,
    so a `/moto-api/reset` by another directory's fixture (on the same pytest-xdist worker) empties it too."""
    trail = org_trail
    s3 = boto3.client(
        "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    if BUCKET in {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}:
        return trail
    s3.create_bucket(Bucket=BUCKET)
    for path in trail.root.rglob("*.json.gz"):
        found = KEY.search(path.as_posix())
        if found and FIRST <= found.group(3) <= LAST:
            s3.put_object(Bucket=BUCKET, Key=path.relative_to(trail.root).as_posix(), Body=path.read_bytes())
    s3.put_object(
        Bucket=BUCKET, Key=f"AWSLogs/{orgtrail.ORG}/444444444444-not-an-account/x.json.gz", Body=b"x"
    )
    return trail


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

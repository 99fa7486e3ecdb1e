"""The hunt in the incident's member account: its trail bucket (organisation-trail layout) through the role.

moto as a real server: the bucket is created with the member account's assumed keys, so the caller's own
account cannot see it (moto keeps one backend per account). moto does not evaluate the role's trust policy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eksir.clients.assume import AssumedRole
from eksir.clients.aws import AwsClients
from eksir.errors import ExitCode
from eksir.hunt.queries import athena_ddl
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import trail_location
from eksir.models.finding import Actor, ActorKind
from eksir.store import CaseStore
from tests.factories import make_finding

pytestmark = pytest.mark.usefixtures("aws_env")

MEMBER = "111122223333"
ROLE = f"arn:aws:iam::{MEMBER}:role/eksir-responder"
ORG = "o-abcdef1234"


def _eksir(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from eksir.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _member_trail(moto_url: str, bucket: str, tree: Path) -> None:
    """The tree's CloudTrail files under `AWSLogs/<o-id>/<account>/...` in a bucket of the member account."""
    s3 = AwsClients("us-east-1", endpoint_url=moto_url, role=AssumedRole(ROLE, "seed"))("s3")
    s3.create_bucket(Bucket=bucket)
    for path in (tree / "AWSLogs").rglob("*.json.gz"):
        key = f"AWSLogs/{ORG}/{path.relative_to(tree / 'AWSLogs').as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def test_hunt_with_the_role_reads_the_member_accounts_org_trail(
    moto_url: str, tree: Path, truth: dict[str, Any]
) -> None:
    _member_trail(moto_url, "org-trail-member", tree)
    window = ["--since", truth["since"], "--until", truth["until"], "-p", truth["principal"]]
    source = ["-s", f"s3://org-trail-member/AWSLogs/{ORG}/", "--endpoint-url", moto_url, "-o", "json"]

    done = _eksir("hunt", *window, *source, "--assume-role", ROLE)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {e["event_id"] for e in result["events"]} == set(truth["event_ids"])
    ddl = next(q["text"] for q in result["queries"] if q["kind"] == "athena-ddl")
    assert f"LOCATION 's3://org-trail-member/AWSLogs/{ORG}/'" in ddl
    # moto serves a bucket to any account that names it (S3 bucket names are global and moto does not
    # enforce bucket policies), so which account read it is proven on the hunt's clients themselves:
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url, role=AssumedRole(ROLE, "eksir-hunt"))
    assert access.client("sts").get_caller_identity()["Account"] == MEMBER
    assert (
        AwsAccess(region="us-east-1", endpoint_url=moto_url).client("sts").get_caller_identity()["Account"]
        != MEMBER
    )


def test_hunt_of_a_member_accounts_case_without_a_role_is_refused(
    moto_url: str, tmp_path: Path, tree: Path, truth: dict[str, Any]
) -> None:
    finding = make_finding(
        account_id=MEMBER,
        event_first_seen=datetime(2024, 8, 3, 23, 0, tzinfo=UTC),
        actor=Actor(kind=ActorKind.IAM_USER, username="kubernetes-admin", access_key_id=truth["principal"]),
    )
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(finding, b"{}", "test")
    handle.write_document("finding.json", finding.model_dump_json().encode(), "normalised-finding")
    _member_trail(moto_url, "org-trail-case", tree)
    args = ["hunt", str(handle.path), "--until", truth["until"], "--endpoint-url", moto_url, "-o", "json"]
    args += ["-s", f"s3://org-trail-case/AWSLogs/{ORG}/"]

    refused = _eksir(*args)
    assert refused.returncode == ExitCode.REFUSED, refused.stderr
    assert f"the finding is in account {MEMBER}" in refused.stderr
    assert not [item for item in handle.load().evidence if item.name == "hunt.json"]

    done = _eksir(*args, "--assume-role", "arn:aws:iam::{account}:role/eksir-responder")
    assert done.returncode == 0, done.stderr
    assert set(truth["event_ids"]) <= {e["event_id"] for e in json.loads(done.stdout)["events"]}

    local = _eksir("hunt", str(handle.path), "--until", truth["until"], "-s", str(tree), "-o", "json")
    assert local.returncode == 0, local.stderr  # local files: no account question, no AWS call


def test_organisation_trail_prefixes_are_recognised_and_put_in_the_athena_table() -> None:
    assert trail_location(f"s3://b/AWSLogs/{ORG}/{MEMBER}/CloudTrail/").org_id == ORG
    assert trail_location(f"s3://b/trails/AWSLogs/{ORG}").org_id == ORG
    assert trail_location(f"s3://b/AWSLogs/{MEMBER}/CloudTrail/").org_id is None
    ddl = athena_ddl("t", "s3://b/p", [MEMBER], ["us-east-1"], ORG)
    assert f"LOCATION 's3://b/p/AWSLogs/{ORG}/'" in ddl
    assert f"'storage.location.template'='s3://b/p/AWSLogs/{ORG}/${{account}}/CloudTrail/" in ddl

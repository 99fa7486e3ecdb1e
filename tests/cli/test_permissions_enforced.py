"""The policy's actions under moto's IAM enforcement: granted, a step works; one action removed, exit 8.

moto enforces IAM once `/moto-api/reset-auth` sets the number of unauthenticated requests (here 0, after
seeding), for requests signed by an IAM principal that exists in moto. It matches resource ARNs only for
S3/IAM/STS/SQS and ignores conditions (shared/DESIGN.md), so the policy tested is the *unscoped variant* of
`eksir permissions` (every action on `*`, no conditions): this proves the actions; the scoping is checked
offline in test_permissions_scoping.py. Enforcement is process-wide in moto, so this test runs its own moto
server in a subprocess, never the session's shared one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from eksir.actions.permissions import all_specs, iam_policy
from eksir.errors import ExitCode
from eksir.lab.iam_enforcement import unscoped_policy

REPO = Path(__file__).resolve().parents[2]
TREE = REPO / "tests" / "data" / "hunt" / "tree"
TRUTH = json.loads((REPO / "tests" / "data" / "hunt" / "ground_truth.json").read_text())


def _unscoped(without: str | None = None) -> dict[str, Any]:
    """Every action of `eksir permissions` on `*` without conditions (plus moto's aliases), less `without`:
    the variant the cross-account lab deploys (lab/iam_enforcement.py)."""
    return unscoped_policy(iam_policy(all_specs()), [without] if without else [])


@pytest.fixture(scope="module")
def enforcing_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto-enforced") / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _client(url: str, service: str, keys: dict[str, str] | None = None) -> Any:
    keys = keys or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", **keys)


def _user(iam: Any, name: str, policy: dict[str, Any]) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="eksir", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def _hunt(url: str, keys: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"], "AWS_REGION": "us-east-1"}
    env["AWS_SECRET_ACCESS_KEY"] = keys["aws_secret_access_key"]
    args = ["hunt", "-p", TRUTH["principal"], "--since", TRUTH["since"], "--until", TRUTH["until"]]
    args += ["-s", "s3://enforced-trail/", "--endpoint-url", url, "-o", "json"]
    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_unscoped_policy_lets_the_hunt_run_and_removing_one_action_denies_it(enforcing_moto: str) -> None:
    url = enforcing_moto
    iam = _client(url, "iam")
    responder = _user(iam, "responder", _unscoped())
    admin = _user(
        iam,
        "admin",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    )
    s3 = _client(url, "s3")
    s3.create_bucket(Bucket="enforced-trail")
    for path in TREE.rglob("*.json.gz"):
        s3.put_object(Bucket="enforced-trail", Key=path.relative_to(TREE).as_posix(), Body=path.read_bytes())
    urllib.request.urlopen(
        urllib.request.Request(
            f"{url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
    ).close()
    with pytest.raises(Exception, match=r"InvalidAccessKeyId|AccessDenied|SignatureDoesNotMatch"):
        _client(url, "s3").list_objects_v2(Bucket="enforced-trail")  # enforcement is on

    granted = _hunt(url, responder)
    assert granted.returncode == 0, granted.stderr
    assert {e["event_id"] for e in json.loads(granted.stdout)["events"]} == set(TRUTH["event_ids"])

    _client(url, "iam", admin).put_user_policy(
        UserName="responder",
        PolicyName="eksir",
        PolicyDocument=json.dumps(_unscoped(without="s3:ListBucket")),
    )
    denied = _hunt(url, responder)
    assert denied.returncode == ExitCode.PERMISSION_DENIED, denied.stderr
    assert "access denied" in denied.stderr

"""Build the small CloudTrail tree fixture with its ground truth (run once; the output is committed).

Layout and record shapes follow a real trail (`AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`,
`{"Records": [...]}`, field names and values as CloudTrail writes them). The attacker's story:
a stolen IAM user key does discovery, assumes `ops-admin` (session `evil`, key ASIACHAINED…), and that
session creates a backdoor user, stops the trail and assumes a second role (key ASIADOUBLE…) that reads a
secret. Decoys: an admin's UpdateAccessKey naming the stolen key in requestParameters (not the attacker's
call), and an attacker call before the window. `ground_truth.json` lists the event ids a hunt must return.

    python tests/data/hunt/make_tree.py
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).parent
ACCOUNT = "111122223333"
REGION = "us-east-1"
ATTACKER_KEY = "AKIAATTACKER00000001"
ATTACKER_ARN = f"arn:aws:iam::{ACCOUNT}:user/ci-deployer"
CHAINED_KEY = "ASIACHAINED000000001"
DOUBLE_KEY = "ASIADOUBLE0000000001"
rng = random.Random(7)


def _id() -> str:
    return "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}".format(
        *tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
    )


def user_identity(kind: str) -> dict[str, object]:
    if kind == "attacker":
        return {
            "type": "IAMUser",
            "principalId": "AIDAATTACKER00000001",
            "arn": ATTACKER_ARN,
            "accountId": ACCOUNT,
            "accessKeyId": ATTACKER_KEY,
            "userName": "ci-deployer",
        }
    if kind in ("chained", "double"):
        role, session, key = (
            ("ops-admin", "evil", CHAINED_KEY)
            if kind == "chained"
            else ("secrets-reader", "evil2", DOUBLE_KEY)
        )
        return {
            "type": "AssumedRole",
            "principalId": f"AROAOPSADMIN00000001:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAOPSADMIN00000001",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                },
                "attributes": {"creationDate": "2024-08-02T10:00:00Z", "mfaAuthenticated": "false"},
            },
        }
    n = rng.randrange(40)
    return {
        "type": "AssumedRole",
        "principalId": f"AROANODE{n:012d}:i-0{n:016x}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/eks-node-role/i-0{n:016x}",
        "accountId": ACCOUNT,
        "accessKeyId": f"ASIANOISE{n:011d}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROANODE000000000000",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/eks-node-role",
                "accountId": ACCOUNT,
                "userName": "eks-node-role",
            }
        },
    }


def record(
    when: datetime,
    kind: str,
    source: str,
    name: str,
    request: object = None,
    response: object = None,
    error: str | None = None,
) -> dict[str, object]:
    body: dict[str, object] = {
        "eventVersion": "1.09",
        "userIdentity": user_identity(kind),
        "eventTime": f"{when:%Y-%m-%dT%H:%M:%SZ}",
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.66" if kind != "noise" else f"10.0.1.{rng.randrange(250)}",
        "userAgent": "aws-cli/2.15.0" if kind != "noise" else "aws-sdk-go/1.44.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": _id(),
        "eventID": _id(),
        "readOnly": name.startswith(("Get", "List", "Describe")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error:
        body["errorCode"], body["errorMessage"] = error, "User is not authorized"
    return body


def noise(when: datetime) -> dict[str, object]:
    name = rng.choice(
        ["DescribeInstances", "GetObject", "AssumeRole", "DescribeNetworkInterfaces", "Decrypt"]
    )
    source = {
        "GetObject": "s3.amazonaws.com",
        "AssumeRole": "sts.amazonaws.com",
        "Decrypt": "kms.amazonaws.com",
    }.get(name, "ec2.amazonaws.com")
    return record(when, "noise", source, name, {"maxResults": 100})


def assume(when: datetime, kind: str, role: str, session: str, key: str) -> dict[str, object]:
    return record(
        when,
        kind,
        "sts.amazonaws.com",
        "AssumeRole",
        {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "roleSessionName": session},
        {
            "credentials": {
                "accessKeyId": key,
                "expiration": "Aug 2, 2024, 11:00:00 AM",
                "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE",
            },
            "assumedRoleUser": {
                "assumedRoleId": f"AROAOPSADMIN00000001:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            },
        },
    )


def story() -> dict[datetime, list[tuple[dict[str, object], bool]]]:
    """Attacker records per delivery time, each flagged with whether the hunt must find it."""
    t = datetime(2024, 8, 2, 9, 58, tzinfo=UTC)
    early = datetime(2024, 7, 20, 12, 0, tzinfo=UTC)
    return {
        early + timedelta(minutes=5): [
            (record(early, "attacker", "sts.amazonaws.com", "GetCallerIdentity"), False)
        ],
        t + timedelta(minutes=5): [
            (record(t, "attacker", "sts.amazonaws.com", "GetCallerIdentity"), True),
            (record(t, "attacker", "s3.amazonaws.com", "ListBuckets"), True),
            (
                record(
                    t + timedelta(seconds=30),
                    "attacker",
                    "iam.amazonaws.com",
                    "ListUsers",
                    error="AccessDenied",
                ),
                True,
            ),
            (assume(t + timedelta(minutes=1), "attacker", "ops-admin", "evil", CHAINED_KEY), True),
        ],
        t + timedelta(minutes=35): [
            (
                record(
                    t + timedelta(minutes=30),
                    "chained",
                    "iam.amazonaws.com",
                    "CreateUser",
                    {"userName": "backup-svc"},
                    {"user": {"userName": "backup-svc"}},
                ),
                True,
            ),
            (
                record(
                    t + timedelta(minutes=31),
                    "chained",
                    "iam.amazonaws.com",
                    "CreateAccessKey",
                    {"userName": "backup-svc"},
                ),
                True,
            ),
            (
                record(
                    t + timedelta(minutes=32),
                    "chained",
                    "cloudtrail.amazonaws.com",
                    "StopLogging",
                    {"name": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/org-trail"},
                ),
                True,
            ),
            (assume(t + timedelta(minutes=33), "chained", "secrets-reader", "evil2", DOUBLE_KEY), True),
        ],
        t + timedelta(hours=3): [
            (
                record(
                    t + timedelta(hours=2, minutes=55),
                    "double",
                    "secretsmanager.amazonaws.com",
                    "GetSecretValue",
                    {"secretId": "prod/db"},
                ),
                True,
            ),
            (
                record(
                    t + timedelta(hours=2, minutes=56),
                    "noise",
                    "iam.amazonaws.com",
                    "UpdateAccessKey",
                    {"accessKeyId": ATTACKER_KEY, "status": "Inactive", "userName": "ci-deployer"},
                ),
                False,
            ),
        ],
    }


def main() -> None:
    root = HERE / "tree" / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION
    truth: list[str] = []
    planted = story()
    deliveries = sorted(
        {
            datetime(2024, 7, 20, 12, 5, tzinfo=UTC),
            *planted,
            *(datetime(2024, 8, d, h, 5, tzinfo=UTC) for d in (1, 2, 3) for h in (0, 6, 12, 18)),
        }
    )
    for delivered in deliveries:
        records = [noise(delivered - timedelta(minutes=rng.randrange(5))) for _ in range(30)]
        for body, expected in planted.get(delivered, []):
            records.insert(rng.randrange(len(records) + 1), body)
            if expected:
                truth.append(str(body["eventID"]))
        folder = root / f"{delivered:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{ACCOUNT}_CloudTrail_{REGION}_{delivered:%Y%m%dT%H%M}Z_{rng.getrandbits(64):016x}.json.gz"
        payload = json.dumps({"Records": records}, separators=(",", ":")).encode()
        (folder / name).write_bytes(gzip.compress(payload, mtime=0))
    (HERE / "ground_truth.json").write_text(
        json.dumps(
            {
                "principal": ATTACKER_KEY,
                "since": "2024-08-01T00:00:00Z",
                "until": "2024-08-03T23:59:59Z",
                "chained": [CHAINED_KEY, DOUBLE_KEY],
                "event_ids": sorted(truth),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

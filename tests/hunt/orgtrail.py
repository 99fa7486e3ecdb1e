"""A small organisation trail: 3 accounts x 3 regions x 40 days, across a month and a year boundary.

Layout and records come from the lab's CloudTrail generator (`AWSLogs/<org>/<account>/CloudTrail/<region>/
YYYY/MM/DD/...json.gz`, real field names and order). Each day holds a few routine calls per account and
region (tiny files: the whole tree is a few hundred KB). The attacker's story crosses accounts: a stolen user
key in the first account assumes a role in the second (cross-account), that session assumes a role in the
third; calls land in every region, some at 23:5x UTC (delivered after midnight, in the next day's folder),
some on the first and last days of the months. Decoys: an admin's call naming the stolen key in its request,
another user with a look-alike key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eksir.lab.cloudtrail_gen import Principal, api_call, log_files, write_tree

ORG = "o-a1b2c3d4e5"
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
FIRST_DAY = datetime(2023, 12, 5, tzinfo=UTC)
DAYS = 40  # 2023-12-05 .. 2024-01-13
STOLEN_KEY = "AKIAORGSTOLEN0000001"
CROSS_KEY = "ASIAORGCROSS00000001"
THIRD_KEY = "ASIAORGTHIRD00000001"
NODE = "i-0a1b2c3d4e5f60718"
NODE_IPS = ("10.0.1.5",)


@dataclass
class OrgTrail:
    """The generated tree and what a hunt must find in it."""

    root: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    attacker_ids: set[str] = field(default_factory=set)
    stolen_node_ids: set[str] = field(default_factory=set)
    """Calls of the node's instance-role session made off the node (IMDS credentials used elsewhere)."""


def _user(account: str, name: str, key: str) -> Principal:
    return Principal(
        kind="IAMUser",
        account_id=account,
        source_ip="198.51.100.7",
        user_agent="aws-cli/2.15.0",
        arn=f"arn:aws:iam::{account}:user/{name}",
        principal_id=f"AIDA{name.upper()[:8]:0<16}",
        access_key_id=key,
        user_name=name,
    )


def _session(account: str, role: str, session: str, key: str, created: datetime) -> Principal:
    return Principal(
        kind="AssumedRole",
        account_id=account,
        source_ip="203.0.113.50",
        user_agent="Boto3/1.34.0",
        arn=f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        principal_id=f"AROA{role.upper()[:8]:0<16}:{session}",
        access_key_id=key,
        issuer_arn=f"arn:aws:iam::{account}:role/{role}",
        issuer_principal_id=f"AROA{role.upper()[:8]:0<16}",
        session_created=created,
    )


def _assume(
    who: Principal, when: datetime, target: str, role: str, session: str, key: str, rng: random.Random
) -> dict[str, Any]:
    arn = f"arn:aws:sts::{target}:assumed-role/{role}/{session}"
    return api_call(
        who,
        when,
        "sts.amazonaws.com",
        "AssumeRole",
        region="us-east-1",
        rng=rng,
        request={"roleArn": f"arn:aws:iam::{target}:role/{role}", "roleSessionName": session},
        response={
            "credentials": {
                "accessKeyId": key,
                "expiration": "Jan 1, 2030, 12:00:00 AM",
                "sessionToken": "x",
            },
            "assumedRoleUser": {"assumedRoleId": f"AROA{role.upper()[:8]:0<16}:{session}", "arn": arn},
        },
    )


def _attack(rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """(account, region, record) of the attacker's calls, chain included."""
    stolen = _user(ACCOUNTS[0], "build-bot", STOLEN_KEY)
    chain_at = FIRST_DAY + timedelta(days=20, hours=23, minutes=56)  # 2023-12-25 23:56, delivered 12-26
    cross = _session(ACCOUNTS[1], "org-admin", "x1", CROSS_KEY, chain_at)
    third_at = FIRST_DAY + timedelta(days=27, hours=23, minutes=58)  # 2024-01-01 23:58, after the new year
    third = _session(ACCOUNTS[2], "data-reader", "x2", THIRD_KEY, third_at)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for day in (0, 3, 11, 26, 39):
        for n, region in enumerate(REGIONS):
            when = FIRST_DAY + timedelta(days=day, hours=1 + 7 * n, minutes=rng.randrange(50))
            out.append(
                (
                    ACCOUNTS[0],
                    region,
                    api_call(
                        stolen,
                        when,
                        "ec2.amazonaws.com",
                        "DescribeInstances",
                        region=region,
                        rng=rng,
                        read_only=True,
                    ),
                )
            )
    out.append(
        (ACCOUNTS[0], "us-east-1", _assume(stolen, chain_at, ACCOUNTS[1], "org-admin", "x1", CROSS_KEY, rng))
    )
    for hours, region in ((1, "us-west-2"), (30, "eu-west-1"), (24 * 6 + 23, "us-east-1")):
        when = chain_at + timedelta(hours=hours, minutes=1)
        out.append(
            (
                ACCOUNTS[1],
                region,
                api_call(
                    cross,
                    when,
                    "iam.amazonaws.com",
                    "CreateUser",
                    region=region,
                    rng=rng,
                    request={"userName": f"backdoor{hours}"},
                ),
            )
        )
    out.append(
        (ACCOUNTS[1], "us-east-1", _assume(cross, third_at, ACCOUNTS[2], "data-reader", "x2", THIRD_KEY, rng))
    )
    for days, region in ((1, "eu-west-1"), (9, "us-west-2"), (11, "us-east-1")):
        when = third_at + timedelta(days=days, minutes=3)
        out.append(
            (
                ACCOUNTS[2],
                region,
                api_call(
                    third,
                    when,
                    "secretsmanager.amazonaws.com",
                    "GetSecretValue",
                    region=region,
                    rng=rng,
                    request={"secretId": "db"},
                ),
            )
        )
    return out


def _node(source_ip: str, created: datetime) -> Principal:
    node = _session(ACCOUNTS[0], "eks-node-role", NODE, "ASIANODE000000000001", created)
    return Principal(
        **{**node.__dict__, "source_ip": source_ip, "access_key_id": f"ASIANODE{source_ip[-1]}00000000001"}
    )


def _node_calls(
    day: datetime, region: str, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the node's own calls, the same session's calls from elsewhere) on one day in the first account."""
    own = [
        api_call(
            _node(NODE_IPS[0], day),
            day + timedelta(hours=h),
            "ec2.amazonaws.com",
            "DescribeInstances",
            region=region,
            rng=rng,
            read_only=True,
        )
        for h in (2, 14)
    ]
    stolen = [
        api_call(
            _node("198.51.100.99", day),
            day + timedelta(hours=23, minutes=57),
            "s3.amazonaws.com",
            "ListBuckets",
            region=region,
            rng=rng,
            read_only=True,
        )
    ]
    return own, stolen


def _routine(account: str, region: str, day: datetime, rng: random.Random) -> list[dict[str, Any]]:
    ops = _user(account, "ops-alice", f"AKIAOPS{account[:3]}{region[:2].upper()}0000001"[:20])
    lookalike = _user(account, "build-bot2", STOLEN_KEY[:-1] + "2")
    calls = []
    for hour in (3, 11, 19):
        when = day + timedelta(hours=hour, minutes=rng.randrange(60))
        calls.append(
            api_call(ops, when, "s3.amazonaws.com", "ListBuckets", region=region, rng=rng, read_only=True)
        )
    calls.append(
        api_call(
            lookalike,
            day + timedelta(hours=9),
            "ec2.amazonaws.com",
            "DescribeVpcs",
            region=region,
            rng=rng,
            read_only=True,
        )
    )
    if day.day == 1 and region == "us-east-1":
        calls.append(
            api_call(
                ops,
                day + timedelta(hours=12),
                "iam.amazonaws.com",
                "UpdateAccessKey",
                region=region,
                rng=rng,
                request={"accessKeyId": STOLEN_KEY, "status": "Inactive"},
            )
        )
    return calls


def build(root: Path, seed: int = 21) -> OrgTrail:
    """Write the org trail under `root`; the records and the attacker's event ids."""
    rng = random.Random(seed)
    trail = OrgTrail(root)
    by_place: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for account in ACCOUNTS:
        for region in REGIONS:
            for offset in range(DAYS):
                day = FIRST_DAY + timedelta(days=offset)
                by_place.setdefault((account, region), []).extend(_routine(account, region, day, rng))
    for account, region, record in _attack(rng):
        by_place[(account, region)].append(record)
        trail.attacker_ids.add(record["eventID"])
    for offset, region in ((8, "us-east-1"), (26, "eu-west-1")):  # 12-13 and 12-31, late in the day
        own, stolen = _node_calls(FIRST_DAY + timedelta(days=offset), region, rng)
        by_place[(ACCOUNTS[0], region)].extend([*own, *stolen])
        trail.stolen_node_ids.update(r["eventID"] for r in stolen)
    for (account, region), records in by_place.items():
        files = log_files(records, account, region, rng)
        write_tree(
            {f"AWSLogs/{ORG}/{key.removeprefix('AWSLogs/')}": body for key, body in files.items()}, root
        )
        trail.records.extend(records)
    return trail

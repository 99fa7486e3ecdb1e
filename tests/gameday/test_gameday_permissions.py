"""Every AWS call of a full game day is granted by the policy `eksir permissions` prints.

The calls are recorded by the product's own clients (clients/call_log.py: botocore's `before-call` on every
client `AwsClients` and the hunt's `AwsAccess` make, in this process and in the hunt's workers); the lab's
clients (seeding, the attacker) are not eksir's and are not recorded. moto does not evaluate resource scoping
or conditions outside S3/IAM/STS/SQS, so this proves the policy's *actions*; the scoping is checked offline
(tests/cli/test_permissions_scoping.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eksir.actions.permissions import all_specs, iam_policy
from eksir.clients.call_log import RECORD_CALLS_ENV
from eksir.lab import node_runtime
from tests.gameday.test_gameday import _run_day

pytestmark = pytest.mark.lab


def _granted() -> set[str]:
    return {a for st in iam_policy(all_specs())["Statement"] for a in st["Action"]}


def test_every_aws_call_of_a_game_day_is_in_the_generated_policy(tmp_path: Path) -> None:
    record = tmp_path / "calls.txt"
    # The node is simulated: the machine's one containerd is shared with other labs, and which calls eksir
    # makes does not depend on it (capture is still sent through SSM, the isolation still applied).
    env = {RECORD_CALLS_ENV: str(record), node_runtime.FORCE_SIMULATED_ENV: "simulated"}
    day = _run_day("iam-user", tmp_path, **env)
    called = set(record.read_text().split())
    assert sorted(called - _granted()) == []
    assert {"eks:DescribeCluster", "ec2:DescribeInstances", "ssm:SendCommand"} <= called
    assert day.returncode == 0, day.stderr[-3000:]

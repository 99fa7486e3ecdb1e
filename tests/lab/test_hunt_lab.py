"""The hunt scored against each lab scenario's ground truth: recall and precision of 100 %.

The lab's CloudTrail mixes the attacker's calls into ordinary traffic of other principals, and its
kube-apiserver wrote a real audit log; the hunt starts only from what the finding names, as a responder
would (plus the node's instance-role session used off the node, which the privileged pod could steal),
and must follow role chaining (AssumeRole, web identity) by itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eksir.findings import read_findings_from_path
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.result import HuntResult
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.window import TimeWindow
from eksir.lab.lab import LabState

pytestmark = pytest.mark.lab


def _hunt(state: LabState, principals: PrincipalSet) -> HuntResult:
    now = datetime.now(UTC)
    return run_hunt(
        principals,
        [state.cloudtrail_dir],
        TimeWindow(now - timedelta(days=2), now + timedelta(hours=1)),
        options=HuntOptions(audit_logs=(Path(state.audit_log),), workers=1),
    )


def _split(result: HuntResult) -> tuple[set[str | None], set[str | None]]:
    """(CloudTrail event ids, Kubernetes audit ids) of what the hunt reported."""
    audit = {e.event_id for e in result.events if (e.found_in or "").endswith("audit.log")}
    return {e.event_id for e in result.events if not (e.found_in or "").endswith("audit.log")}, audit


def _node_session(state: LabState, instance_id: str) -> PrincipalSet:
    """The attacked node's instance-role session, with the node's own addresses as moto reports them."""
    ec2 = state.endpoint.client("ec2")
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    own = [
        address["PrivateIpAddress"]
        for eni in reservation["Instances"][0]["NetworkInterfaces"]
        for address in eni["PrivateIpAddresses"]
    ]
    assert own
    return PrincipalSet.for_instance(instance_id, own)


def test_the_hunt_finds_every_attacker_call_and_nothing_else(lab: LabState) -> None:
    truth = json.loads(Path(lab.ground_truth).read_text(encoding="utf-8"))
    (finding,) = read_findings_from_path(lab.finding)
    # What `eksir hunt CASE` hunts: the finding's principals, plus the node's instance-role session used
    # off the node (a privileged pod can read those credentials from IMDS).
    principals = PrincipalSet.from_finding(finding).union(_node_session(lab, truth["pod"]["instance_id"]))

    result = _hunt(lab, principals)

    cloudtrail, audit = _split(result)
    assert cloudtrail == set(truth["cloudtrail_event_ids"])
    assert set(truth["audit_ids"]) <= audit
    assert not result.skipped

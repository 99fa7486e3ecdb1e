"""The hunt scored against each lab scenario's ground truth: recall and precision of 100 %.

The lab's CloudTrail mixes the attacker's calls into ordinary traffic of other principals, and its
kube-apiserver wrote a real audit log; the hunt starts only from what the finding names, as a responder
would (plus the node's instance-role session, which the privileged pod could use), and must follow role
chaining (AssumeRole, web identity) by itself.
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
from eksir.lab.pytest_lab_fixtures import lab  # noqa: F401 - the parametrised lab fixture

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


def test_the_hunt_finds_every_attacker_call_and_nothing_else(lab: LabState) -> None:  # noqa: F811
    truth = json.loads(Path(lab.ground_truth).read_text(encoding="utf-8"))
    (finding,) = read_findings_from_path(lab.finding)
    principals = PrincipalSet.from_finding(finding)
    node_session = f"session:{truth['pod']['instance_id']}"
    if finding.actor is not None and finding.actor.access_key_id is None:
        # No AWS principal in the finding (OIDC user): the privileged pod held its node's instance-role
        # credentials (IMDS), so the responder hunts the node's role session, named after the instance.
        principals = principals.union(PrincipalSet.from_values([node_session]))

    result = _hunt(lab, principals)

    cloudtrail, audit = _split(result)
    assert set(truth["audit_ids"]) <= audit
    assert not result.skipped
    if node_session[len("session:") :] not in result.principals:
        assert cloudtrail == set(truth["cloudtrail_event_ids"])
        return
    # The node's own calls under that session are found too (same principal); every one of them comes
    # from the node's private address, every attacker call from elsewhere.
    assert set(truth["cloudtrail_event_ids"]) <= cloudtrail
    trail = [e for e in result.events if e.event_id in cloudtrail]
    node_ips = {e.source_ip for e in trail if e.event_id not in truth["cloudtrail_event_ids"]}
    attacker_ips = {e.source_ip for e in trail if e.event_id in truth["cloudtrail_event_ids"]}
    assert attacker_ips == {truth["attacker"]["source_ip"]}
    assert all(ip and ip.startswith("10.") for ip in node_ips), node_ips

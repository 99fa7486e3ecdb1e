"""`kubectl debug node` pods: recognised for both profiles, authorized only with a change record or an
allow-listed admin group, with a suppression filter bounded by actor, name pattern and time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from eksir.findings import read_findings
from eksir.models.finding import Finding
from eksir.triage import Decision, TriageConfig, triage_finding
from eksir.triage.config import ChangeRecord, NodeDebugPolicy
from tests.new_findings import debug_pod_finding

NODE = "ip-10-0-1-23.eu-west-1.compute.internal"
RECORD = ChangeRecord(
    id="CHG-4711",
    principals=["sre-bob"],
    namespaces=["default"],
    window_start=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    window_end=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
)


def _finding(wire: dict[str, Any]) -> Finding:
    [finding] = read_findings(json.dumps(wire).encode())
    return finding


@pytest.mark.parametrize("sysadmin", [True, False])
def test_without_a_record_or_admin_group_it_stays_suspicious_with_the_reason(sysadmin: bool) -> None:
    verdict = triage_finding(_finding(debug_pod_finding(NODE, "x7k2p", sysadmin=sysadmin)), TriageConfig())
    assert verdict.decision is Decision.SUSPICIOUS
    profile = "sysadmin" if sysadmin else "general"
    assert verdict.reasons[0].startswith(f"kubectl debug node/{NODE} pod (profile {profile}) by sre-bob")
    assert "no change record or allow-listed admin group" in verdict.reasons[0]
    assert verdict.debug_pod is not None
    assert verdict.debug_pod["genuine"] is True
    assert verdict.suppression_filter is None


@pytest.mark.parametrize("sysadmin", [True, False])
def test_a_matching_change_record_authorizes_it_with_a_bounded_filter(sysadmin: bool) -> None:
    finding = _finding(debug_pod_finding(NODE, "x7k2p", sysadmin=sysadmin))
    verdict = triage_finding(finding, TriageConfig(change_records=[RECORD]))
    assert verdict.decision is Decision.AUTHORIZED_CHANGE
    assert verdict.change_record == RECORD
    assert "covered by approved change CHG-4711" in verdict.reasons[0]
    criterion = (verdict.suppression_filter or {})["FindingCriteria"]["Criterion"]
    assert criterion["resource.kubernetesDetails.kubernetesWorkloadDetails.name"] == {
        "Matches": ["node-debugger-*"]
    }
    assert criterion["resource.kubernetesDetails.kubernetesUserDetails.username"] == {"Equals": ["sre-bob"]}
    assert criterion["updatedAt"] == {
        "GreaterThanOrEqual": int(RECORD.window_start.timestamp() * 1000),
        "LessThan": int(RECORD.window_end.timestamp() * 1000),
    }


def test_an_allow_listed_admin_group_authorizes_it_for_the_configured_window() -> None:
    finding = _finding(debug_pod_finding(NODE, "x7k2p", sysadmin=True))
    config = TriageConfig(node_debug=NodeDebugPolicy(admin_groups=["sre-admins"], window_hours=2))
    verdict = triage_finding(finding, config)
    assert verdict.decision is Decision.AUTHORIZED_CHANGE
    assert "allow-listed admin group sre-admins" in verdict.reasons[0]
    window = (verdict.suppression_filter or {})["FindingCriteria"]["Criterion"]["updatedAt"]
    assert window["LessThan"] - window["GreaterThanOrEqual"] == 2 * 3600 * 1000


def test_an_actor_outside_the_admin_groups_stays_suspicious() -> None:
    finding = _finding(debug_pod_finding(NODE, "x7k2p", sysadmin=True, groups=("developers",)))
    config = TriageConfig(node_debug=NodeDebugPolicy(admin_groups=["sre-admins"]))
    verdict = triage_finding(finding, config)
    assert verdict.decision is Decision.SUSPICIOUS
    assert any(c.name == "node-debug-admin" and c.status.value == "fail" for c in verdict.checks)


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"userAgent": "python-requests/2.32"}, "created by kubectl"),
        ({"hostPID": False}, "host namespaces"),
        ({"volumes": []}, "mounted at /host"),
    ],
)
def test_a_copied_name_without_the_traits_is_never_authorized_by_the_admin_group(
    change: dict[str, Any], missing: str
) -> None:
    wire = debug_pod_finding(NODE, "x7k2p", sysadmin=True)
    workload = wire["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    call = wire["service"]["action"]["kubernetesApiCallAction"]
    for key, value in change.items():
        (call if key == "userAgent" else workload)[key] = value
    config = TriageConfig(node_debug=NodeDebugPolicy(admin_groups=["sre-admins"]))
    verdict = triage_finding(_finding(wire), config)
    assert verdict.decision is Decision.SUSPICIOUS
    assert any("a name can be copied" in reason and missing in reason for reason in verdict.reasons)


def test_an_ordinary_privileged_pod_is_not_touched_by_the_rule() -> None:
    wire = debug_pod_finding(NODE, "x7k2p", sysadmin=True)
    wire["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["name"] = "node-debugger-x"
    verdict = triage_finding(_finding(wire), TriageConfig())
    assert verdict.debug_pod is None


def test_the_bounded_filter_is_a_valid_create_filter_request_for_botocore() -> None:
    """Validated against GuardDuty's own service model (the `Matches` and `updatedAt` range included)."""
    finding = _finding(debug_pod_finding(NODE, "x7k2p", sysadmin=True))
    request = triage_finding(finding, TriageConfig(change_records=[RECORD])).suppression_filter
    assert request is not None
    model = botocore.session.get_session().get_service_model("guardduty")
    report = ParamValidator().validate(request, model.operation_model("CreateFilter").input_shape)
    assert not report.has_errors(), report.generate_report()

"""What a queue message is: a handled finding, a continuation, or a reject whose reason says why."""

from __future__ import annotations

import json

import pytest

from eksir.clients.sqs import continuation
from eksir.serve.intake import ContinueIntake, FindingIntake, Reject, classify
from tests.cli.helpers import FIXTURES


def test_an_eventbridge_finding_is_a_handled_finding_with_its_bytes() -> None:
    body = (FIXTURES / "iam-user.eventbridge.json").read_text()
    intake = classify(body)
    assert isinstance(intake, FindingIntake)
    assert len(intake.findings) == 1
    assert intake.raw == body.encode()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("{not json", "unreadable"),
        ("", "unreadable"),
        ("null", "unreadable"),
        (
            json.dumps({"detail-type": "GuardDuty Runtime Protection Unhealthy", "detail": {}}),
            "not-a-finding",
        ),
        ("x" * (300 * 1024), "too-large"),
    ],
)
def test_garbage_and_health_events_are_rejected_with_a_reason(body: str, kind: str) -> None:
    intake = classify(body)
    assert isinstance(intake, Reject)
    assert intake.kind == kind, intake.reason
    assert len(intake.reason) < 400


def test_another_finding_type_is_rejected_as_not_handled() -> None:
    event = json.loads((FIXTURES / "iam-user.eventbridge.json").read_text())
    event["detail"]["type"] = "Recon:EC2/PortProbeUnprotectedPort"
    event["detail"]["resource"] = {"resourceType": "Instance"}
    intake = classify(json.dumps(event))
    assert isinstance(intake, Reject)
    assert intake.kind == "not-handled"
    assert "Recon:EC2/PortProbeUnprotectedPort" in intake.reason


def test_a_continuation_names_its_case_and_a_forged_path_is_not_one() -> None:
    intake = classify(continuation("eksir-20260101-abcdef0123", "alice"))
    assert intake == ContinueIntake("eksir-20260101-abcdef0123", "alice")
    forged = classify(json.dumps({"kind": "eksir.continue-case", "case_id": "../etc"}))
    assert isinstance(forged, Reject)

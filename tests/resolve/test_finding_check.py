"""Confirming a finding file with GuardDuty GetFindings (Stubber: moto has no GetFindings), on the detector
and in the region its ARN names, and naming what a forged file changed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from eksir.errors import BadInputError, PermissionDeniedError
from eksir.findings import read_findings
from eksir.resolve.finding_check import confirm_finding

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "findings" / "iam-user.boto3.json"
DETECTOR = "4cb9a4f1e2d3c4b5a6978877665544aa"
FINDING_ID = "5ec0de007c1e4a9b2d3f4e5a6b7c8d9e"


def _genuine() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())["Findings"][0]


def _file(finding: dict[str, Any]) -> Any:
    return read_findings(json.dumps({"Findings": [finding]}).encode())[0]


def _stubbed(response: dict[str, Any]) -> tuple[Any, Stubber, list[str]]:
    regions: list[str] = []
    client = boto3.client("guardduty", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_response("get_findings", response, {"DetectorId": DETECTOR, "FindingIds": [FINDING_ID]})
    stub.activate()

    def client_for(region: str) -> Any:
        regions.append(region)
        return client

    return client_for, stub, regions


def test_a_finding_guardduty_returns_unchanged_is_confirmed_on_the_detector_and_region_of_its_arn() -> None:
    client_for, stub, regions = _stubbed({"Findings": [_genuine()]})

    check = confirm_finding(_file(_genuine()), client_for)

    assert check.confirmed
    assert (check.detector_id, check.region) == (DETECTOR, "eu-west-1")
    assert regions == ["eu-west-1"]
    stub.assert_no_pending_responses()


def test_a_forged_file_pointing_at_another_principal_and_pod_is_not_confirmed_and_says_what_differs() -> None:
    forged = copy.deepcopy(_genuine())
    details = forged["Resource"]["KubernetesDetails"]
    details["KubernetesUserDetails"]["Username"] = "legitimate-admin"
    details["KubernetesWorkloadDetails"]["Uid"] = "00000000-1111-2222-3333-444444444444"
    client_for, _, _ = _stubbed({"Findings": [_genuine()]})

    check = confirm_finding(_file(forged), client_for)

    assert not check.confirmed
    assert "actor username differs from the file's" in check.differences
    assert "workload uid differs from the file's" in check.differences
    assert "legitimate-admin" not in check.detail  # the file's text is not echoed back


def test_a_finding_guardduty_does_not_know_is_not_confirmed() -> None:
    client_for, _, _ = _stubbed({"Findings": []})

    check = confirm_finding(_file(_genuine()), client_for)

    assert not check.confirmed
    assert check.differences == ("does not know this finding",)


def test_a_denied_get_findings_is_a_permission_error_not_a_confirmation() -> None:
    client = boto3.client("guardduty", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_client_error("get_findings", "AccessDeniedException", "no guardduty:GetFindings", 403)
    stub.activate()

    with pytest.raises(PermissionDeniedError, match="GetFindings"):
        confirm_finding(_file(_genuine()), lambda _region: client)


def test_a_finding_without_arn_or_detector_cannot_be_confirmed_and_says_how_to_proceed() -> None:
    bare = copy.deepcopy(_genuine())
    finding = _file(bare).model_copy(update={"arn": None, "detector_id": None})

    with pytest.raises(BadInputError, match="--trust-finding-file"):
        confirm_finding(finding, lambda _region: None)

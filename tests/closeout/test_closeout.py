"""Close-out in AWS: snapshots and GuardDuty filters on moto, Security Hub/GuardDuty findings via Stubber."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import orjson
import pytest
from botocore.stub import Stubber

from eksir.actions.base import ActionContext
from eksir.actions.prevention.suppression import params_from_triage
from eksir.engine import ApprovalPolicy, PolicyGate, StateStore, StepStatus, rollback
from eksir.engine.runner import ContextFactory
from eksir.engine.tracks import CLOSEOUT, PREVENTION
from eksir.errors import RefusedError, StepFailedError
from eksir.phases.closeout import CloseoutRequest, closeout, snapshot_ids
from eksir.phases.prevention import create_suppression_filter
from eksir.report import generate_report
from eksir.triage.config import ChangeRecord
from eksir.triage.verdict import suppression_filter_for
from tests.factories import make_finding
from tests.report.case_builder import build_case

FORENSICS = "210987654321"
ARN = "arn:aws:guardduty:us-east-1:123456789012:detector/d1/finding/7ac6b1a0f3e04b5c9d2e8f1a2b3c4d5e"


APPROVE_ALL = PolicyGate(ApprovalPolicy.ALL, "lead@soc")


def _ctx(handle, factory) -> ContextFactory:
    return lambda: ActionContext(case_id=handle.load().id, aws=factory, k8s=lambda: None, dry_run=False)


def _volume_snapshot(ec2: Any, **volume: Any) -> str:
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, **volume)
    return str(ec2.create_snapshot(VolumeId=vol["VolumeId"])["SnapshotId"])


def test_a_snapshot_is_shared_with_the_forensics_account_and_rollback_unshares_it(tmp_path, aws):
    handle = build_case(tmp_path)
    ec2 = aws.client("ec2")
    snap = _volume_snapshot(ec2)
    ctx = _ctx(handle, aws.client)
    request = CloseoutRequest(
        note="closed",
        securityhub=False,
        archive=False,
        feedback=None,
        forensics_account=FORENSICS,
        snapshots=(snap,),
    )
    [outcome] = closeout(handle, ctx, request, APPROVE_ALL)
    assert outcome.status is StepStatus.VERIFIED
    assert "unencrypted" in outcome.applied["kms_caveat"]
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert perms["CreateVolumePermissions"] == [{"UserId": FORENSICS}]
    state = rollback(handle, ctx, f"closeout-share-{snap}", track=CLOSEOUT)
    assert state.steps[f"closeout-share-{snap}"].status is StepStatus.ROLLED_BACK
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert perms["CreateVolumePermissions"] == []


def test_a_snapshot_under_the_aws_managed_default_key_is_refused_with_the_kms_caveat(tmp_path, aws):
    """moto reports its alias/aws/ebs key as KeyManager CUSTOMER, so KMS answers through a Stubber here."""
    handle = build_case(tmp_path)
    ec2 = aws.client("ec2")
    key = aws.client("kms").create_key(Description="stand-in for aws/ebs")["KeyMetadata"]["Arn"]
    snap = _volume_snapshot(ec2, Encrypted=True, KmsKeyId=key)
    kms, stub = _stubbed("kms")
    stub.add_response(
        "describe_key", {"KeyMetadata": {"KeyId": key, "Arn": key, "KeyManager": "AWS"}}, {"KeyId": key}
    )
    request = CloseoutRequest(
        note="n",
        securityhub=False,
        archive=False,
        feedback=None,
        forensics_account=FORENSICS,
        snapshots=(snap,),
    )
    factory = lambda service: kms if service == "kms" else aws.client(service)  # noqa: E731
    with stub, pytest.raises(StepFailedError, match="cannot be shared; copy the snapshot"):
        closeout(handle, _ctx(handle, factory), request, APPROVE_ALL)
    perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert perms["CreateVolumePermissions"] == []


def test_a_cmk_encrypted_snapshot_is_shared_with_the_key_policy_caveat(tmp_path, aws):
    handle = build_case(tmp_path)
    key = aws.client("kms").create_key(Description="evidence")["KeyMetadata"]["Arn"]
    snap = _volume_snapshot(aws.client("ec2"), Encrypted=True, KmsKeyId=key)
    request = CloseoutRequest(
        note="n",
        securityhub=False,
        archive=False,
        feedback=None,
        forensics_account=FORENSICS,
        snapshots=(snap,),
    )
    [outcome] = closeout(handle, _ctx(handle, aws.client), request, APPROVE_ALL)
    assert "customer managed key" in outcome.applied["kms_caveat"]
    assert FORENSICS in outcome.applied["kms_caveat"]


def test_snapshot_ids_are_found_in_the_cases_evidence_steps(tmp_path):
    handle = build_case(tmp_path, steps=False)
    handle.append(
        "step.applied",
        {
            "step_id": "snap",
            "phase": "evidence",
            "applied": {"snapshots": [{"SnapshotId": "snap-0123456789abcdef0"}]},
        },
    )
    assert snapshot_ids(handle) == ["snap-0123456789abcdef0"]


def _stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_security_hub_is_resolved_and_guardduty_archived_with_feedback(tmp_path):
    handle = build_case(tmp_path)
    sh, sh_stub = _stubbed("securityhub")
    gd, gd_stub = _stubbed("guardduty")
    ident = {"Id": ARN, "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}
    query = {"Filters": {"Id": [{"Value": ARN, "Comparison": "EQUALS"}]}, "MaxResults": 1}
    for status in ("NEW", "NEW"):
        sh_stub.add_response("get_findings", {"Findings": [_asff(status)]}, query)
    sh_stub.add_response(
        "batch_update_findings",
        {"ProcessedFindings": [ident], "UnprocessedFindings": []},
        {
            "FindingIdentifiers": [ident],
            "Workflow": {"Status": "RESOLVED"},
            "Note": {"Text": "contained and prevented", "UpdatedBy": "responder@host"},
        },
    )
    sh_stub.add_response("get_findings", {"Findings": [_asff("RESOLVED")]}, query)
    finding = {"DetectorId": "d1", "FindingIds": ["7ac6b1a0f3e04b5c9d2e8f1a2b3c4d5e"]}
    for archived in (False, False):
        gd_stub.add_response("get_findings", {"Findings": [_gd(archived)]}, finding)
    gd_stub.add_response("archive_findings", {}, finding)
    gd_stub.add_response("get_findings", {"Findings": [_gd(True)]}, finding)
    gd_stub.add_response(
        "update_findings_feedback",
        {},
        {**finding, "Feedback": "USEFUL", "Comments": "contained and prevented"},
    )
    clients = {"securityhub": sh, "guardduty": gd}
    with sh_stub, gd_stub:
        outcomes = closeout(
            handle,
            _ctx(handle, clients.__getitem__),
            CloseoutRequest(note="contained and prevented"),
            APPROVE_ALL,
        )
        sh_stub.assert_no_pending_responses()
        gd_stub.assert_no_pending_responses()
    assert [o.step_id for o in outcomes] == [
        "closeout-securityhub",
        "closeout-guardduty-archive",
        "closeout-guardduty-feedback",
    ]
    assert outcomes[0].applied["before"] == {"workflow": "NEW"}


def test_an_unprocessed_security_hub_update_fails_the_step(tmp_path):
    handle = build_case(tmp_path)
    sh, stub = _stubbed("securityhub")
    ident = {"Id": ARN, "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}
    stub.add_response("get_findings", {"Findings": [_asff("NEW")]})
    stub.add_response("get_findings", {"Findings": [_asff("NEW")]})
    stub.add_response(
        "batch_update_findings",
        {
            "ProcessedFindings": [],
            "UnprocessedFindings": [
                {
                    "FindingIdentifier": ident,
                    "ErrorCode": "FindingNotFound",
                    "ErrorMessage": "no such finding",
                }
            ],
        },
    )
    with stub, pytest.raises(StepFailedError, match="FindingNotFound"):
        closeout(
            handle,
            _ctx(handle, lambda _s: sh),
            CloseoutRequest(note="n", archive=False, feedback=None),
            APPROVE_ALL,
        )
    assert [e.type for e in handle.log.events() if e.type.startswith("step.")][-1] == "step.failed"
    assert StateStore(handle, CLOSEOUT).load().steps["closeout-securityhub"].status is StepStatus.FAILED


def _asff(status: str) -> dict[str, Any]:
    return {
        "SchemaVersion": "2018-10-08",
        "Id": ARN,
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": "g",
        "AwsAccountId": "123456789012",
        "CreatedAt": "2026-11-20T10:30:00Z",
        "UpdatedAt": "2026-11-20T10:30:00Z",
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": "x"}],
        "Workflow": {"Status": status},
    }


def _gd(archived: bool) -> dict[str, Any]:
    return {
        "AccountId": "123456789012",
        "Arn": ARN,
        "CreatedAt": "2026-11-20T10:30:00Z",
        "Id": "7ac6b1a0f3e04b5c9d2e8f1a2b3c4d5e",
        "Region": "us-east-1",
        "Resource": {},
        "SchemaVersion": "2.0",
        "Severity": 8.0,
        "Type": "t",
        "UpdatedAt": "2026-11-20T10:30:00Z",
        "Service": {"Archived": archived},
    }


def test_the_suppression_filter_is_created_on_approval_and_rolled_back(tmp_path, aws):
    handle = build_case(tmp_path)
    gd = aws.client("guardduty")
    detector = gd.create_detector(Enable=True)["DetectorId"]
    _force_authorized(handle)
    ctx = _ctx(handle, aws.client)
    outcome = create_suppression_filter(handle, ctx, APPROVE_ALL, detector_id=detector)
    stored = gd.get_filter(DetectorId=detector, FilterName=outcome.applied["after"]["name"])
    assert stored["Action"] == "ARCHIVE"
    assert stored["FindingCriteria"]["Criterion"]["type"]["Equals"] == [handle.load().finding_type]

    params = params_from_triage(_triage(handle)["verdict"]["suppression_filter"], detector)
    assert StateStore(handle, PREVENTION).load().steps[outcome.step_id].applied == outcome.applied
    rollback(handle, ctx, outcome.step_id, track=PREVENTION)
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.get_filter(DetectorId=detector, FilterName=params.name)


def test_a_suppression_filter_is_refused_for_a_verdict_other_than_authorized_change(tmp_path, aws):
    handle = build_case(tmp_path)
    with pytest.raises(RefusedError, match="authorized-change"):
        create_suppression_filter(handle, _ctx(handle, aws.client), APPROVE_ALL, "d1")


def _triage(handle) -> dict[str, Any]:

    return orjson.loads((handle.path / "triage.json").read_bytes())


def _force_authorized(handle) -> None:
    """Rewrite triage.json through the store (logged) as an authorized-change verdict with its filter."""

    document = _triage(handle)
    record = ChangeRecord.model_construct(
        id="CHG-1",
        image_prefixes=("123456789012.dkr.ecr.us-east-1.amazonaws.com/platform",),
        window_start=datetime(2026, 11, 20, 8, tzinfo=UTC),
        window_end=datetime(2026, 11, 20, 18, tzinfo=UTC),
    )
    document["verdict"]["decision"] = "authorized-change"
    document["verdict"]["suppression_filter"] = suppression_filter_for(make_finding(), record)
    handle.write_document("triage.json", orjson.dumps(document), "triage")


def test_generate_report_still_works_after_closeout_steps(tmp_path, aws):
    handle = build_case(tmp_path)
    snap = _volume_snapshot(aws.client("ec2"))
    closeout(
        handle,
        _ctx(handle, aws.client),
        CloseoutRequest(
            note="n",
            securityhub=False,
            archive=False,
            feedback=None,
            forensics_account=FORENSICS,
            snapshots=(snap,),
        ),
        APPROVE_ALL,
    )
    report, _ = generate_report(handle, ["md"])
    assert any(s.action_id == "ec2.share_snapshot" and s.status == "verified" for s in report.steps)

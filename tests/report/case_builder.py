"""A realistic case built with the real CaseStore: triage a fixture finding, add hunt and step events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import orjson

from eksir.hunt.classify import load_rules
from eksir.hunt.events import cloudtrail_event
from eksir.lab.cloudtrail_gen import Principal, api_call
from eksir.store import CaseHandle, CaseStore
from eksir.triage import load_triage_config
from eksir.triage.case import triage_one
from tests.factories import make_finding

HUNT = {
    "since": "2026-11-20T09:00:00Z",
    "until": "2026-11-20T12:00:00Z",
    "principals": ["system:serviceaccount:argocd:argocd-application-controller"],
    "events": [
        {
            "origin": "cloudtrail",
            "event_time": "2026-11-20T10:05:00Z",
            "service": "s3",
            "action": "GetObject",
            "principal": "arn:aws:sts::123456789012:assumed-role/node/i-1",
            "category": "data-access",
            "rule_id": "s3-read",
            "resources": [{"arn": "arn:aws:s3:::payroll/x", "owner": "payroll-team"}],
        },
        {
            "origin": "kubernetes",
            "event_time": "2026-11-20T10:29:30Z",
            "service": "kubernetes",
            "action": "list secrets",
            "principal": "system:serviceaccount:argocd:argocd-application-controller",
            "category": "secret-access",
            "rule_id": "k8s-secrets",
        },
    ],
    "owners": [
        {
            "owner": "payroll-team",
            "applications": ["payroll"],
            "resources": ["arn:aws:s3:::payroll/x"],
            "events": 1,
        }
    ],
}


BACKDOOR_USER = "svc-backup-3f9a1c"
DATA_OBJECT = "arn:aws:s3:::lab-payments-data/exports/customers-2024-q3.csv"


ATTACKER = Principal(
    kind="AssumedRole",
    account_id="123456789012",
    source_ip="203.0.113.66",
    user_agent="Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.12.7",
    arn="arn:aws:sts::123456789012:assumed-role/node/i-1",
    principal_id="AROAEXAMPLE:i-1",
    access_key_id="ASIAEXAMPLEATTACKER1",
)
LAB_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("sts.amazonaws.com", "GetCallerIdentity", {"read_only": True}),
    (
        "s3.amazonaws.com",
        "GetObject",
        {
            "read_only": True,
            "data_event": True,
            "request": {"bucketName": "lab-payments-data", "key": "exports/customers-2024-q3.csv"},
            "resources": [{"type": "AWS::S3::Object", "ARN": DATA_OBJECT}],
        },
    ),
    ("iam.amazonaws.com", "CreateUser", {"request": {"userName": BACKDOOR_USER}}),
    ("iam.amazonaws.com", "CreateAccessKey", {"request": {"userName": BACKDOOR_USER}}),
    (
        "iam.amazonaws.com",
        "AttachUserPolicy",
        {"request": {"userName": BACKDOOR_USER, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}},
    ),
    ("cloudtrail.amazonaws.com", "DeleteTrail", {"request": {"name": "org-trail"}}),
]
"""The lab scenario's AWS attack (lab/attack_aws.py `persist`): who am I, the customer file read, the backdoor
admin user with a key, the trail deleted; with the request parameters the lab records."""


def incident_hunt() -> dict[str, Any]:
    """The hunt document for LAB_CALLS: lab-shaped CloudTrail records classified by the shipped rules."""
    book = load_rules("cloudtrail")
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    events = [
        cloudtrail_event(
            api_call(
                ATTACKER, start + timedelta(minutes=n), source, name, region="us-east-1", rng=Random(n), **kw
            ),
            book,
            "access key",
            "lab",
        )
        for n, (source, name, kw) in enumerate(LAB_CALLS, start=1)
    ]
    return {**HUNT, "events": [orjson.loads(e.model_dump_json()) for e in events]}


INCIDENT_HUNT = incident_hunt()


def add_recovery(handle: CaseHandle, final: str = "verified") -> None:
    """A recovery plan deleting the backdoor user, and its step's events ending in `final`."""
    plan = {
        "steps": [
            {
                "id": "delete-user",
                "action_id": "iam.delete_user",
                "phase": "recovery",
                "params": {"user_name": BACKDOOR_USER},
            }
        ]
    }
    handle.write_document("recovery-plan.json", orjson.dumps(plan), "recovery-plan")
    worklist = {"worklist": [{"resource": "AWS::CloudTrail::Trail org-trail", "todo": "recreate the trail"}]}
    handle.write_document("recovery/worklist.json", orjson.dumps(worklist), "recovery-worklist")
    add_step(handle, "delete-user", "iam.delete_user", "recovery", final)


def build_case(
    root: Path,
    *,
    hunt: bool = True,
    steps: bool = True,
    hunt_doc: dict[str, Any] | None = None,
    **finding: Any,
) -> CaseHandle:
    """A case opened by triage, with a hunt document (`hunt_doc`, else HUNT) and engine-shaped step events."""
    store = CaseStore(root, actor="responder@host")
    found = make_finding(**finding)
    document = triage_one(found, load_triage_config(None), store, b'{"finding": "raw"}', "finding.json")
    handle = store.get(document["case"]["id"])
    if hunt:
        handle.write_document("hunt.json", orjson.dumps(hunt_doc or HUNT), "hunt")
    if steps:
        add_step(
            handle,
            "isolate-pod",
            "k8s.isolate_pod",
            "containment",
            "verified",
            before={"labels": {}},
            after={"labels": {"eksir.io/quarantine": "true"}},
        )
        add_step(handle, "restore-service", "k8s.scale_owner", "recovery", "verified")
    return handle


def add_step(handle: CaseHandle, step_id: str, action: str, phase: str, final: str, **applied: Any) -> None:
    """The engine's event shape: `step.<status>` with `record` holding action id, approval and applied."""
    for status in ("approved", "applied", final):
        record = {
            "step_id": step_id,
            "action_id": action,
            "status": status,
            "phase": phase,
            "approval": {
                "approved": True,
                "approver": "lead@soc",
                "at": "2026-11-20T11:00:00Z",
                "how": "tty",
            },
            "applied": applied or None,
        }
        handle.append(f"step.{status}", {"step_id": step_id, "status": status, "record": record})


def add_declined_step(handle: CaseHandle, step_id: str, action: str, phase: str) -> None:
    """The engine's shape for a step its approver declined: `step.skipped` with `approval.approved` false."""
    approval = {"approved": False, "approver": "lead@soc", "at": "2026-11-20T11:00:00Z", "how": "tty"}
    record = {
        "step_id": step_id,
        "action_id": action,
        "status": "skipped",
        "phase": phase,
        "approval": approval,
    }
    handle.append("step.skipped", {"step_id": step_id, "status": "skipped", "record": record})

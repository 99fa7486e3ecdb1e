"""A realistic case built with the real CaseStore: triage a fixture finding, add hunt and step events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

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


def _ct(minute: int, service: str, action: str, category: str, **extra: Any) -> dict[str, Any]:
    """A classified CloudTrail call as the hunt records it (`HuntEvent`), by the lab's stolen node role."""
    return {
        "origin": "cloudtrail",
        "event_time": f"2026-11-20T10:{minute:02d}:00Z",
        "service": f"{service}.amazonaws.com",
        "action": action,
        "principal": "arn:aws:sts::123456789012:assumed-role/node/i-1",
        "category": category,
        "rule_id": f"ct.{category}",
        **extra,
    }


INCIDENT_HUNT = {
    **HUNT,
    "events": [
        _ct(1, "sts", "GetCallerIdentity", "discovery"),
        _ct(
            2, "s3", "GetObject", "data-access", resources=[{"arn": DATA_OBJECT}, {"arn": "arn:aws:s3:::lab"}]
        ),
        _ct(
            3,
            "iam",
            "CreateUser",
            "identity-persistence",
            raw={"requestParameters": {"userName": BACKDOOR_USER}},
        ),
        _ct(
            4,
            "iam",
            "AttachUserPolicy",
            "identity-persistence",
            raw={"requestParameters": {"userName": BACKDOOR_USER}},
        ),
        _ct(
            6,
            "cloudtrail",
            "DeleteTrail",
            "defense-evasion",
            raw={"requestParameters": {"name": "org-trail"}},
        ),
    ],
}
"""The lab scenario's AWS attack (lab/attack_aws.py): the customer file read, the backdoor admin user, the
trail deleted; with the recovery plan that removes the user (`add_recovery`)."""


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

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


def build_case(root: Path, *, hunt: bool = True, steps: bool = True, **finding: Any) -> CaseHandle:
    """A case opened by triage, with a hunt document and engine-shaped step events."""
    store = CaseStore(root, actor="responder@host")
    found = make_finding(**finding)
    document = triage_one(found, load_triage_config(None), store, b'{"finding": "raw"}', "finding.json")
    handle = store.get(document["case"]["id"])
    if hunt:
        handle.write_document("hunt.json", orjson.dumps(HUNT), "hunt")
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

"""`eksir watch` names what releases a step the outage check holds or whose fallback was declined, and the
next command carries that option (the record's shapes are the engine's: engine/guards.py)."""

from __future__ import annotations

from pathlib import Path

import orjson

from eksir.cli.watch_cmd import snapshot
from eksir.engine.guards import FALLBACK_DECLINED, OUTAGE_BLOCKED
from eksir.store import CaseHandle
from tests.report.case_builder import build_case

PLAN = {
    "steps": [
        {"id": "s03-k8s.isolate_pod", "action_id": "k8s.isolate_pod", "phase": "containment"},
        {
            "id": "s16-ec2.isolate_instance",
            "action_id": "ec2.isolate_instance",
            "phase": "containment",
            "fallback": {"approval_id": "s16-ec2.isolate_instance:without-evidence"},
        },
    ]
}


def _blocked(handle: CaseHandle, step_id: str, action: str, kind: str) -> None:
    record = {"step_id": step_id, "action_id": action, "status": "blocked", "error_kind": kind}
    handle.append("step.blocked", {"step_id": step_id, "status": "blocked", "record": record})


def test_an_outage_blocked_step_waits_for_the_override_and_resume_carries_it(tmp_path: Path) -> None:
    handle = build_case(tmp_path)
    handle.write_document("plan.json", orjson.dumps(PLAN), "plan")
    _blocked(handle, "s03-k8s.isolate_pod", "k8s.isolate_pod", OUTAGE_BLOCKED)
    _blocked(handle, "s16-ec2.isolate_instance", "ec2.isolate_instance", FALLBACK_DECLINED)
    snap = snapshot(handle)
    assert snap.pending == [
        "s03-k8s.isolate_pod (k8s.isolate_pod, response): needs --override-outage REASON",
        "s16-ec2.isolate_instance (ec2.isolate_instance, response): needs "
        "--approve-step s16-ec2.isolate_instance:without-evidence",
    ]
    assert snap.next_command == f"eksir resume {handle.path.name} --override-outage REASON"
    assert "s03-k8s.isolate_pod (k8s.isolate_pod) blocked" in snap.risks

"""Page 1's "who approved what" names who overrode a guard: an outage accepted with its reason, and node
isolation approved without volatile evidence (the event shapes are the engine's: engine/runner.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from eksir.report import generate_report
from tests.report.case_builder import INCIDENT_HUNT, add_step, build_case

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_page_one_names_who_accepted_an_outage_and_who_isolated_without_evidence(tmp_path: Path) -> None:
    handle = build_case(tmp_path, hunt_doc=INCIDENT_HUNT)
    handle.append(
        "step.outage-overridden",
        {"step_id": "s03-k8s.isolate_pod", "approver": "alice", "reason": "traffic drained to region B",
         "items": ["pod default/web-1: the only ready replica"]},
    )  # fmt: skip
    add_step(handle, "s03-k8s.isolate_pod", "k8s.isolate_pod", "containment", "verified")
    approval = {"approved": True, "approver": "bob", "at": "2026-11-20T11:00:00Z", "how": "approve-step"}
    handle.append(
        "step.fallback",
        {"step_id": "s16-ec2.isolate_instance", "approval_id": "s16-ec2.isolate_instance:without-evidence",
         "without": ["s01-ssm.capture_volatile"], "approval": approval},
    )  # fmt: skip
    add_step(handle, "s16-ec2.isolate_instance", "ec2.isolate_instance", "containment", "verified")
    generate_report(handle, now=NOW)
    approvals = orjson.loads((handle.path / "report.json").read_bytes())["briefing"]["approvals"]
    assert (
        "alice accepted the outage the check predicted for s03-k8s.isolate_pod: traffic drained to region B"
        in (approvals)
    )
    assert (
        "bob approved s16-ec2.isolate_instance without its volatile evidence "
        "(s16-ec2.isolate_instance:without-evidence)"
    ) in approvals

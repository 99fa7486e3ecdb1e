"""The report says what kind of node the case ran on and what replaced the steps that cannot work there,
from the plan the case recorded (README, "Node kinds")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from eksir.report import generate_report
from tests.report.case_builder import build_case

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def test_the_plans_node_kind_and_replacement_notes_reach_the_report(tmp_path: Path) -> None:
    handle = build_case(tmp_path)
    plan = {
        "playbook": "privileged-container",
        "finding_id": "f",
        "created_at": "2026-12-07T15:00:00Z",
        "steps": [],
        "notes": [
            {
                "subject": "node-kind",
                "message": "node n1 is auto-mode (bottlerocket): label ...",
                "level": "info",
            },
            {"subject": "node", "message": "EKS Auto Mode: ... no SSM capture ...", "level": "info"},
            {"subject": "pod", "message": "not about the node", "level": "warning"},
        ],
    }
    handle.write_document("plan.json", orjson.dumps(plan), "plan")

    report, _ = generate_report(handle, formats=["md"], now=NOW)

    assert "plan, node-kind: node n1 is auto-mode (bottlerocket): label ..." in report.notes
    assert "plan, node: EKS Auto Mode: ... no SSM capture ..." in report.notes
    assert not [n for n in report.notes if "not about the node" in n]
    assert "no SSM capture" in (Path(handle.path) / "report.md").read_text()

"""Verdicts have a history: a re-triage never silently downgrades an incident (issue: a re-run without
--config turned "unauthorized" into "suspicious" and the report called the incident suspicious)."""

from __future__ import annotations

import json
from pathlib import Path

from eksir.report import generate_report
from eksir.store import CaseStore, verify_case
from tests.cli.helpers import REPO, run_eksir

FINDING = REPO / "examples" / "finding-eventbridge.json"
CONFIG = REPO / "examples" / "triage-config.yaml"


def test_a_milder_re_triage_is_kept_as_history_flagged_and_the_case_keeps_the_severe_verdict(
    tmp_path: Path,
) -> None:
    cases = str(tmp_path / "cases")
    first = run_eksir("triage", str(FINDING), "--config", str(CONFIG), "-o", "json", "--cases-dir", cases)
    assert json.loads(first.stdout)["verdict"]["decision"] == "unauthorized"
    again = run_eksir("triage", str(FINDING), "-o", "json", "--cases-dir", cases)
    document = json.loads(again.stdout)
    assert document["verdict"]["decision"] == "suspicious"
    assert document["verdict_history"]["kept"] == "unauthorized"
    shown = run_eksir("triage", str(FINDING), "--cases-dir", cases)
    assert "milder than the recorded unauthorized" in shown.stdout

    handle = CaseStore(tmp_path / "cases").get(document["case"]["id"])
    assert handle.load().verdict == "unauthorized"
    runs = sorted(p.name for p in (handle.path / "triage-runs").iterdir())
    assert runs == ["001.json", "002.json", "003.json"]
    events = [e.data for e in handle.log.events() if e.type == "triage.completed"]
    assert [e["decision"] for e in events] == ["unauthorized", "suspicious", "suspicious"]
    assert events[0]["config_sha256"] != events[1]["config_sha256"]
    assert events[1]["milder_than_recorded"] == "unauthorized"
    report, _ = generate_report(handle, ["json"])
    assert report.verdict == "unauthorized"
    assert any("milder than the recorded unauthorized" in line for line in report.summary)
    assert verify_case(handle).ok


def test_a_more_severe_re_triage_raises_the_verdict_without_a_flag(tmp_path: Path) -> None:
    cases = str(tmp_path / "cases")
    run_eksir("triage", str(FINDING), "-o", "json", "--cases-dir", cases)
    raised = json.loads(
        run_eksir("triage", str(FINDING), "--config", str(CONFIG), "-o", "json", "--cases-dir", cases).stdout
    )
    assert "verdict_history" not in raised
    assert CaseStore(tmp_path / "cases").get(raised["case"]["id"]).load().verdict == "unauthorized"

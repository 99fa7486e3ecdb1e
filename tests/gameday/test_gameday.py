"""The game day end to end through `python -m eksir gameday`, on the real lab, one scenario."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eksir.lab import lab as lab_module

pytestmark = pytest.mark.lab


def test_gameday_writes_a_report_listing_every_ground_truth_call_and_leaves_the_lab_down(tmp_path: Path):
    lab_dir, cases_dir = tmp_path / "lab", tmp_path / "cases"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksir",
            "gameday",
            "--scenario",
            "iam-user",
            "--lab-dir",
            str(lab_dir),
            "--cases-dir",
            str(cases_dir),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert [p["name"] for p in result["phases"]] == [
        "lab up",
        "triage",
        "plan",
        "respond",
        "hunt",
        "recover",
        "prevention proof",
        "report",
        "lab down",
    ]
    assert all(p["status"] == "ok" for p in result["phases"])
    report = Path(result["report"])
    assert report.is_file()
    assert report.name == "report.html"
    case = Path(result["case_dir"])
    truth = json.loads((lab_dir / "ground-truth.json").read_text())
    (hunt_file,) = case.glob("evidence/*-hunt.json")  # stored as hashed evidence by the hunt phase
    hunt = json.loads(hunt_file.read_text())
    by_id = {e["event_id"]: e for e in hunt["events"]}
    expected_ids = truth["cloudtrail_event_ids"] + truth["audit_ids"]
    assert set(expected_ids) <= set(by_id)
    report_json = json.loads((case / "report.json").read_text())
    titles = [e["title"] for e in report_json["timeline"] if e["lane"] == "attacker"]
    times = [e["at"] for e in report_json["timeline"] if e["lane"] == "attacker"]
    for event_id in expected_ids:
        event = by_id[event_id]
        action = " ".join(p for p in (event["service"], event["action"]) if p)
        assert action in titles, f"{action} ({event_id}) missing from the report timeline"
    assert len(times) >= len(expected_ids)
    assert "node-debugger-7f9c" in report.read_text()
    assert lab_module.process_status(lab_dir) == [] or all(
        s.state is not lab_module.processes.ProcState.RUNNING for s in lab_module.process_status(lab_dir)
    )
    assert result["lab_down"] is True


def test_gameday_refuses_an_unknown_scenario_before_starting_anything(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "eksir", "gameday", "--scenario", "nope", "--lab-dir", str(tmp_path / "lab")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "unknown lab scenario" in done.stderr
    assert not (tmp_path / "lab").exists()

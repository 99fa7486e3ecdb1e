"""The game day end to end through `python -m eksir gameday`, on the real lab, in every scenario.

Each scenario's day runs once (a module-scoped fixture) and the tests below read what it left: its JSON
summary, the case (through `eksir status`), the report and the lab folder. The failure path injects a real
fault: the suspect node's EC2 instance is terminated in the lab's moto after the plan is built and before
containment runs, so the steps that need it fail or are blocked exactly as they would against AWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from eksir.cli import gameday_run as gameday_module
from eksir.cli.gameday_run import GameDay, Phase
from eksir.cli.gameday_summary import StepLine
from eksir.cli.gameday_view import render_summary
from eksir.lab import lab as lab_module
from eksir.lab import node_runtime
from eksir.lab.limits import simulated_node_reason
from eksir.lab.scenarios import SINGLE_ACCOUNT
from tests.cli.helpers import run_in_process
from tests.node_runtime import require_node_runtime

pytestmark = pytest.mark.lab
SCENARIOS = [s.value for s in SINGLE_ACCOUNT]  # cross-account: tests/lab/test_cross_account_lab.py
PHASES = ["lab up", "triage", "plan", "respond", "hunt", "recover", "prevention proof", "report", "lab down"]
CAPTURE = "ssm.capture_volatile"
ISOLATE = "ec2.isolate_instance"
SIMULATED = simulated_node_reason(
    f"the node runtime was turned off with {node_runtime.FORCE_SIMULATED_ENV}=simulated"
)


@dataclass(frozen=True)
class Day:
    scenario: str
    lab_dir: Path
    returncode: int
    result: dict[str, Any]
    stderr: str

    def steps(self, phase: str) -> list[dict[str, str]]:
        return next(p["steps"] for p in self.result["phases"] if p["name"] == phase)

    def step(self, action: str) -> dict[str, str]:
        return next(s for s in self.result["containment"] if s["action"] == action)


def _eksir(*args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400", **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def _run_day(scenario: str, tmp: Path, **env: str) -> Day:
    lab_dir, cases_dir = tmp / "lab", tmp / "cases"
    done = _eksir(
        "gameday",
        *("--scenario", scenario, "--lab-dir", str(lab_dir), "--cases-dir", str(cases_dir)),
        *("--output", "json"),
        **env,
    )
    return Day(scenario, lab_dir, done.returncode, json.loads(done.stdout), done.stderr)


@pytest.fixture(scope="module", params=SCENARIOS)
def day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Day:
    """The game day as this machine runs it (the attacked node's containerd is real when it can be)."""
    return _run_day(request.param, tmp_path_factory.mktemp(f"gameday-{request.param}"))


@pytest.fixture(scope="module")
def simulated_day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """One game day with the attacked node simulated on purpose: the lab-mode path (no root, say)."""
    env = {node_runtime.FORCE_SIMULATED_ENV: "simulated"}
    return _run_day("iam-user", tmp_path_factory.mktemp("gameday-simulated"), **env)


def test_the_game_day_exits_0_with_every_phase_ok_no_step_failed_or_blocked_and_the_lab_down(
    day: Day,
) -> None:
    assert day.returncode == 0, day.stderr[-2000:]
    assert [p["name"] for p in day.result["phases"]] == PHASES
    assert [p["status"] for p in day.result["phases"]] == ["ok"] * len(PHASES)
    every_step = [s for p in day.result["phases"] for s in p["steps"]]
    assert not [s for s in every_step if s["status"] in ("failed", "blocked", "rollback-failed")]
    assert day.result["clean"] is True
    assert day.result["lab_down"] is True
    assert all(
        s.state is not lab_module.processes.ProcState.RUNNING for s in lab_module.process_status(day.lab_dir)
    )


def test_the_prevention_proof_is_an_admission_rejection_of_the_attackers_own_pod_spec(day: Day) -> None:
    prevention = day.result["prevention"]
    assert prevention["result"] == "proven"
    assert prevention["status"] == 403
    assert "PodSecurity" in prevention["message"]
    assert prevention["pod_source"] == "audit requestObject (hunt)"
    assert prevention["replayed_by"] == "eksir-admin"
    proof = json.loads((Path(day.result["case_dir"]) / "prevention" / "proof.json").read_text())
    assert proof["request"]["dryRun"] == "All"


def test_capture_is_verified_on_the_real_node_and_the_case_holds_the_attackers_process(day: Day) -> None:
    require_node_runtime()
    capture = day.step(CAPTURE)
    assert capture["status"] == "verified", capture["reason"]
    assert "(1 archive(s))" in capture["reason"]
    evidence = Path(day.result["case_dir"]) / "evidence"
    (archive,) = evidence.glob("*-volatile-*.tar.gz")
    (sidecar,) = evidence.glob("*-volatile-*.tar.gz.sha256")
    assert sidecar.read_text().split()[0] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        cmdlines = [
            tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.name.startswith("files/container-") and m.name.endswith("/cmdline")
        ]
    assert any("sleep infinity" in c for c in cmdlines), cmdlines
    for expected in ("/ctr-info.json", "/mountinfo.txt", "/sockets.txt", "host/proc-table.tsv", "SHA256SUMS"):
        assert any(n.endswith(expected) for n in names), expected
    respond = next(p for p in day.result["phases"] if p["name"] == "respond")
    assert "unavailable-in-lab" not in respond["detail"]


def test_the_container_is_paused_and_the_node_isolated_after_the_verified_capture_without_a_waiver(
    day: Day,
) -> None:
    require_node_runtime()
    isolate, capture, pause = day.step(ISOLATE), day.step(CAPTURE), day.step("ssm.pause_container")
    assert capture["status"] == "verified"
    assert pause["status"] == "verified"
    assert pause["reason"].endswith("PAUSED (read back)")
    assert isolate["status"] == "verified"
    assert "ran without" not in isolate["reason"]


def test_a_simulated_node_makes_capture_unavailable_in_lab_with_its_reason_never_failed(
    simulated_day: Day,
) -> None:
    day = simulated_day
    assert day.returncode == 0, day.stderr[-2000:]
    capture = day.step(CAPTURE)
    assert capture["status"] == "unavailable-in-lab"
    assert capture["reason"].startswith(f"unavailable-in-lab: {SIMULATED}")
    respond = next(p for p in day.result["phases"] if p["name"] == "respond")
    assert "1 unavailable-in-lab" in respond["detail"]
    assert "failed" not in respond["detail"]
    isolate = day.step(ISOLATE)
    assert isolate["status"] == "verified"
    assert f"ran without {capture['step']}" in isolate["reason"]


def test_eksir_status_reports_the_simulated_capture_as_unavailable_in_lab_with_its_reason(
    simulated_day: Day,
) -> None:
    day = simulated_day
    case_dir, capture = day.result["case_dir"], day.step(CAPTURE)
    as_json = _eksir("status", case_dir, "--output", "json", timeout=60)
    records = {r["step_id"]: r for r in json.loads(as_json.stdout)["steps"]}
    assert records[capture["step"]]["status"] == "unavailable-in-lab"
    assert records[capture["step"]]["lab_reason"] == SIMULATED
    assert records[day.step(ISOLATE)["step"]]["ran_without"] == {capture["step"]: SIMULATED}
    table = _eksir("status", case_dir, timeout=60)
    row = next(line for line in table.stdout.splitlines() if capture["step"] in line)
    assert "unavailable-in-lab" in row
    assert "the lab's attacked node is simulated" in row
    summary = " ".join(json.loads((Path(case_dir) / "report.json").read_text())["summary"])
    assert f"Not performed in the lab: {capture['step']} (unavailable-in-lab: " in summary
    assert f"Step {day.step(ISOLATE)['step']} ran without a step that is unavailable in the lab." in summary


def test_the_report_lists_every_ground_truth_call_and_the_capture_as_it_ended(day: Day) -> None:
    case, report = Path(day.result["case_dir"]), Path(day.result["report"])
    assert report.name == "report.html"
    assert report.is_file()
    truth = json.loads((day.lab_dir / "ground-truth.json").read_text())
    (hunt_file,) = case.glob("evidence/*-hunt.json")  # stored as hashed evidence by the hunt phase
    by_id = {e["event_id"]: e for e in json.loads(hunt_file.read_text())["events"]}
    expected_ids = truth["cloudtrail_event_ids"] + truth["audit_ids"]
    assert set(expected_ids) <= set(by_id)
    report_json = json.loads((case / "report.json").read_text())
    titles = [e["title"] for e in report_json["timeline"] if e["lane"] == "attacker"]
    for event_id in expected_ids:
        event = by_id[event_id]
        action = " ".join(p for p in (event["service"], event["action"]) if p)
        if event["failed"]:  # a refused call stays in the timeline, marked (service-account: list nodes)
            action += f" (failed: {event['error_code']})"
        assert action in titles, f"{action} ({event_id}) missing from the report timeline"
    summary = " ".join(report_json["summary"])
    statuses = {s["step_id"]: s["status"] for s in report_json["steps"]}
    assert statuses[day.step(CAPTURE)["step"]] == day.step(CAPTURE)["status"]
    assert ("Not performed in the lab" in summary) is (day.step(CAPTURE)["status"] == "unavailable-in-lab")
    assert "Prevention proven" in summary
    assert day.result["hunt"]["calls"] == len(by_id)


def test_the_summary_shows_the_verdict_the_containment_steps_the_hunt_highlights_and_the_report(
    day: Day,
) -> None:
    console = Console(record=True, width=400)
    render_summary(console, _game_day(day.result))
    text = console.export_text()
    assert f"verdict  {day.result['verdict']['decision']}" in text
    for step in day.result["containment"]:
        assert f"{step['step']}: " in text
    capture = day.step(CAPTURE)
    assert ("unavailable-in-lab" in text) is (capture["status"] == "unavailable-in-lab")
    assert f"hunt   {day.result['hunt']['calls']} call(s)" in text
    assert all(highlight in text for highlight in day.result["hunt"]["highlights"])
    assert day.result["hunt"]["highlights"]
    assert "prevention proven: Pod Security admission rejected" in text
    assert f"report {day.result['report']}" in text


def test_the_standalone_attackers_pod_isolation_is_named_not_effective_with_its_reason_never_ok(
    day: Day,
) -> None:
    """The lab's VPC CNI enforces nothing and `kubectl run` leaves a standalone pod: the day says so, under
    the respond phase and in the containment list, and still ends clean (not-effective is no failure)."""
    isolate = day.step("k8s.isolate_pod")
    assert isolate["status"] == "not-effective"
    assert "standalone pod" in isolate["reason"]
    console = Console(record=True, width=400)
    render_summary(console, _game_day(day.result))
    text = console.export_text()
    respond_line = next(line for line in text.splitlines() if line.startswith("respond"))
    assert "not-effective" in respond_line
    assert f"{isolate['step']}: applied but not effective" in text


def _game_day(result: dict[str, Any]) -> GameDay:
    """The day's JSON summary back as the object the table renderer takes."""
    phases = [
        Phase(p["name"], p["seconds"], p["status"], p["detail"], [StepLine(**s) for s in p["steps"]])
        for p in result["phases"]
    ]
    return GameDay(
        result["scenario"],
        phases,
        result["case"],
        result["case_dir"],
        result["report"],
        result["lab_down"],
        result["verdict"],
        result["hunt"],
        result["prevention"],
    )


def test_a_step_that_fails_makes_its_phase_not_ok_names_it_with_its_reason_and_the_day_exits_9(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminated: list[str] = []
    real_plan = gameday_module._plan

    def plan_then_terminate_the_node(day: Any) -> Any:
        plan = real_plan(day)
        instance = next(s.params["instance_id"] for s in plan.steps if s.action_id == ISOLATE)
        day.aws("ec2").terminate_instances(InstanceIds=[instance])  # a real change in the lab's moto
        terminated.append(instance)
        return plan

    monkeypatch.setattr(gameday_module, "_plan", plan_then_terminate_the_node)
    args = [
        "gameday",
        "--scenario",
        "iam-user",
        "--lab-dir",
        str(tmp_path / "lab"),
        "--cases-dir",
        str(tmp_path),
    ]
    code, out, err = run_in_process(args, capsys, monkeypatch)
    assert terminated
    assert code == 9
    assert "eksir: error: game day finished with failed phase(s): respond (" in err
    respond = next(line for line in out.splitlines() if line.startswith("respond "))
    assert respond.split()[1] == "failed"
    assert f"{ISOLATE} blocked: " in respond
    assert f"{terminated[0]} has no EBS volume to snapshot" in respond
    named = [line.strip() for line in out.splitlines() if line.startswith(" " * 20)]
    assert any(ISOLATE in line and ": blocked: " in line for line in named)
    assert any("ec2.snapshot_volumes: failed: precondition failed" in line for line in named)
    # the node is gone: capture fails its check on a real node, or is unavailable on a simulated one
    capture_end = "failed: precondition failed" if node_runtime.reason() is None else "unavailable-in-lab: "
    assert any(f"{CAPTURE}: {capture_end}" in line for line in named)
    assert out.count("prevention proven") == 1
    assert "lab    down" in out


def test_gameday_refuses_an_unknown_scenario_before_starting_anything(tmp_path: Path) -> None:
    done = _eksir("gameday", "--scenario", "nope", "--lab-dir", str(tmp_path / "lab"), timeout=60)
    assert done.returncode == 3
    assert done.stderr.startswith("eksir: error: unknown lab scenario")
    assert not (tmp_path / "lab").exists()


def test_a_first_run_shows_the_lab_build_progress_in_the_game_days_own_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an empty cache and a stand-in `go` (builds in 0.3 s, binaries that cannot serve), the day shows
    every build line, then reports lab up failed, exits 11 (the lab could not start) and leaves nothing
    running."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text(
        '#!/bin/sh\nif [ "$1" = env ]; then echo go1.26.0; exit 0; fi\n'
        'while [ "$#" -gt 0 ]; do if [ "$1" = -o ]; then out="$2"; fi; shift; done\n'
        'sleep 0.3; printf "#!/bin/sh\\nexit 1\\n" > "$out"; chmod +x "$out"\n'
    )
    go.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("EKSIR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "400")
    args = ["gameday", "--lab-dir", str(tmp_path / "lab"), "--cases-dir", str(tmp_path / "cases")]
    code, _, err = run_in_process(args, capsys, monkeypatch)
    assert "s first run: building etcd v" in err
    assert "from the pinned Go modules, about 9 min on 2 cores" in err
    assert "s building kube-apiserver v1.34.4 with Go, expected about 6 min; log: " in err
    assert "s built etcd v" in err
    assert "lab up: failed" in err
    assert code == 11
    assert all(
        s.state is not lab_module.processes.ProcState.RUNNING
        for s in lab_module.process_status(tmp_path / "lab")
    )

"""`eksir watch CASE`: a live view of a case read from its record only, on cases built with the real CaseStore
(the report tests' case builder)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from eksir.cli.watch_cmd import read_events, snapshot
from eksir.store import CaseHandle
from tests.cli.helpers import run_in_process
from tests.report.case_builder import add_declined_step, add_step, build_case

PLAN = {
    "steps": [
        {"id": "isolate-pod", "action_id": "k8s.isolate_pod", "phase": "containment"},
        {"id": "restore-service", "action_id": "k8s.scale_owner", "phase": "recovery"},
        {
            "id": "cordon-node",
            "action_id": "k8s.cordon_node",
            "phase": "containment",
            "requires_approval": True,
        },
    ]
}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def _case(tmp_path: Path) -> CaseHandle:
    handle = build_case(tmp_path)
    handle.write_document("plan.json", orjson.dumps(PLAN), "plan")
    return handle


def _digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_once_shows_each_planned_step_with_its_state_and_what_waits_for_approval(
    tmp_path, capsys, monkeypatch
):
    handle = _case(tmp_path)
    code, out, err = run_in_process(
        ["watch", handle.path.name, "--cases-dir", str(tmp_path), "--once"], capsys, monkeypatch
    )
    assert code == 0, err
    steps = out.split("steps:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[:3] for line in steps] == [
        ["response", "isolate-pod", "verified"],
        ["response", "restore-service", "verified"],
        ["response", "cordon-node", "pending"],
    ]
    assert "waiting for approval:\n  cordon-node (k8s.cordon_node, response)\n" in out
    assert "restore-service -> verified" in out.split("recent changes:")[1]
    assert out.rstrip().endswith(f"next: eksir resume {handle.path.name} --approve-step cordon-node")


def test_watch_never_writes_to_the_case(tmp_path, capsys, monkeypatch):
    handle = _case(tmp_path)
    before = _digest(handle.path)
    code, _, err = run_in_process(["watch", str(handle.path), "--once", "-o", "json"], capsys, monkeypatch)
    assert code == 0, err
    assert _digest(handle.path) == before


def test_json_snapshot_names_phase_failures_as_risks_and_the_command_that_carries_on(
    tmp_path, capsys, monkeypatch
):
    handle = _case(tmp_path)
    add_step(handle, "cordon-node", "k8s.cordon_node", "containment", "failed")
    code, out, _ = run_in_process(["watch", str(handle.path), "--once", "-o", "json"], capsys, monkeypatch)
    assert code == 0
    snap = json.loads(out)
    assert snap["phase"] == "response: containment"
    assert {s["step_id"]: s["status"] for s in snap["steps"]}["cordon-node"] == "failed"
    assert snap["risks"] == ["cordon-node (k8s.cordon_node) failed"]
    assert snap["pending"] == []
    assert snap["next_command"] == f"eksir resume {handle.path.name}"


def test_a_finished_response_points_to_the_next_playbook_command(tmp_path):
    handle = build_case(tmp_path, hunt=False)
    assert snapshot(handle).next_command == "eksir respond FINDING"
    handle.write_document("plan.json", orjson.dumps({"steps": PLAN["steps"][:2]}), "plan")
    assert snapshot(handle).next_command == f"eksir hunt {handle.path.name}"


def test_a_half_written_last_event_line_waits_for_the_next_refresh(tmp_path):
    handle = _case(tmp_path)
    count = len(read_events(handle.path / "events.jsonl"))
    with (handle.path / "events.jsonl").open("ab") as log:
        log.write(b'{"seq": 999, "type": "step.appl')
    assert len(read_events(handle.path / "events.jsonl")) == count


def test_hostile_step_ids_cannot_drive_the_terminal(tmp_path, capsys, monkeypatch):
    handle = _case(tmp_path)
    add_step(handle, "evil\x1b[2J\x1b]0;owned\x07[red]x[/]", "k8s.isolate_pod", "containment", "verified")
    code, out, _ = run_in_process(["watch", str(handle.path), "--once"], capsys, monkeypatch)
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "evil\\x1b[2J\\x1b]0;owned\\x07[red]x[/]" in out


def _append_later(handle: CaseHandle, started: threading.Event) -> None:
    started.wait(30)
    time.sleep(0.3)
    add_step(handle, "cordon-node", "k8s.cordon_node", "containment", "verified")


@contextlib.contextmanager
def _ctrl_c_as_at_a_terminal() -> Iterator[None]:
    """Children started here get SIGINT as a terminal gives it. A suite started as a background job of a
    non-interactive shell (CI, `make test &`) ignores SIGINT, every child inherits that, and Python then keeps
    it ignored; a handled signal is reset to its default at exec, so handle it here while the child starts."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _exit_code_after_ctrl_c(watcher: subprocess.Popen[str], seen: list[str]) -> int | None:
    """The watch's exit code within 30 s of Ctrl-C; a watch still running then fails with what it printed
    and its state."""
    try:
        return watcher.wait(30)
    except subprocess.TimeoutExpired:
        status = Path(f"/proc/{watcher.pid}/status").read_text(encoding="utf-8", errors="replace")
        stack = Path(f"/proc/{watcher.pid}/wchan").read_text(encoding="utf-8", errors="replace")
        watcher.kill()
        _, err = watcher.communicate(timeout=10)
        signals = [line for line in status.splitlines() if line.startswith(("State", "Sig", "Shd"))]
        pytest.fail(
            f"watch ignored Ctrl-C for 30 s; {signals}; wchan {stack!r}; stderr {err[-2000:]!r}; "
            f"last lines {''.join(seen)[-1000:]!r}"
        )


def test_the_live_view_shows_steps_a_background_writer_changes_and_stops_on_ctrl_c(tmp_path):
    handle = _case(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with _ctrl_c_as_at_a_terminal():
        watcher = subprocess.Popen(
            [sys.executable, "-m", "eksir", "watch", str(handle.path), "--interval", "0.2"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    started = threading.Event()
    writer = threading.Thread(target=_append_later, args=(handle, started))
    writer.start()
    seen: list[str] = []
    guard = threading.Timer(60, watcher.kill)  # a watch that never shows the change fails, it does not hang
    guard.start()
    try:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            seen.append(line)
            if line.split()[:3] == ["response", "cordon-node", "pending"]:
                started.set()
            if line.split()[:3] == ["response", "cordon-node", "verified"]:
                break
    finally:
        started.set()
        writer.join(30)
        watcher.send_signal(signal.SIGINT)
        code = _exit_code_after_ctrl_c(watcher, seen)
        guard.cancel()
    states = [line.split()[2] for line in seen if line.split()[:2] == ["response", "cordon-node"]]
    assert states[0] == "pending"
    assert states[-1] == "verified", "".join(seen)[-2000:]
    assert code == 0, watcher.stderr.read() if watcher.stderr else ""


def test_a_declined_step_waits_for_approval_and_resume_is_the_next_command(tmp_path):
    handle = _case(tmp_path)
    add_declined_step(handle, "cordon-node", "k8s.cordon_node", "containment")
    snap = snapshot(handle)
    assert snap.pending == ["cordon-node (k8s.cordon_node, response): declined by lead@soc"]
    assert snap.next_command == f"eksir resume {handle.path.name} --approve-step cordon-node"


def test_an_unknown_case_is_one_line_and_exit_not_found(tmp_path, capsys, monkeypatch):
    code, out, err = run_in_process(
        ["watch", "no-such-case", "--cases-dir", str(tmp_path), "--once"], capsys, monkeypatch
    )
    assert (code, out) == (10, "")
    assert err.count("\n") == 1


def test_a_not_effective_step_is_a_risk_but_not_a_reason_to_resume(tmp_path):
    handle = build_case(tmp_path, hunt=False)
    handle.write_document("plan.json", orjson.dumps({"steps": PLAN["steps"][:1]}), "plan")
    add_step(handle, "isolate-pod", "k8s.isolate_pod", "containment", "not-effective")
    snap = snapshot(handle)
    assert snap.risks == ["isolate-pod (k8s.isolate_pod) not-effective"]
    assert snap.next_command == f"eksir hunt {handle.path.name}"

"""A closed case is frozen: commands that would change it (or act on the world for it) refuse with exit 12,
until `--reopen --reason TEXT`, which is recorded and opens the case again. Run through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from eksir.errors import RefusedError
from eksir.models.case import CaseStatus
from eksir.phases.closeout import close_case, waive_step
from eksir.report import generate_report
from eksir.store import CaseHandle, verify_case
from tests.cli.helpers import run_eksir
from tests.report.case_builder import build_case


def _closed_case(root: Path) -> CaseHandle:
    handle = build_case(root)
    generate_report(handle)
    close_case(handle)
    assert handle.load().status is CaseStatus.CLOSED
    return handle


def _events(handle: CaseHandle) -> list[str]:
    return [event.type for event in handle.log.events()]


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["rollback", "--yes"],
        ["rollback", "--track", "recovery", "--yes"],
        ["resume", "--approve", "none"],
        ["recover"],
        ["prevent", "--kubeconfig", "/nonexistent"],
        ["case", "closeout", "--note", "n", "--yes"],
    ],
    ids=lambda args: " ".join(args[:3]),
)
def test_a_command_that_would_change_a_closed_case_refuses_and_writes_nothing(tmp_path, command):
    handle = _closed_case(tmp_path / "cases")
    before = _events(handle)
    verb, rest = (command[:2], command[2:]) if command[0] == "case" else (command[:1], command[1:])
    done = run_eksir(*verb, handle.path.name, *rest, "--cases-dir", str(tmp_path / "cases"))
    assert done.returncode == 12, done.stderr
    assert f"case {handle.load().id} is closed" in done.stderr
    assert "--reopen --reason" in done.stderr
    assert done.stderr.count("\n") == 1  # one line, no traceback
    assert _events(handle) == before
    assert handle.load().status is CaseStatus.CLOSED


def test_reopen_needs_a_reason_and_a_reason_needs_reopen(tmp_path):
    handle = _closed_case(tmp_path / "cases")
    common = (handle.path.name, "--cases-dir", str(tmp_path / "cases"))
    assert run_eksir("report", *common, "--reopen").returncode == 2
    assert run_eksir("report", *common, "--reason", "why").returncode == 2
    assert handle.load().status is CaseStatus.CLOSED


def test_reopening_is_recorded_and_the_case_must_be_closed_again(tmp_path):
    handle = _closed_case(tmp_path / "cases")
    common = (handle.path.name, "--cases-dir", str(tmp_path / "cases"))
    done = run_eksir("report", *common, "--reopen", "--reason", "legal asked for the PDF again")
    assert done.returncode == 0, done.stderr
    assert handle.load().status is CaseStatus.OPEN
    reopened = [e for e in handle.log.events() if e.type == "case.reopened"]
    assert [(e.data["reason"], e.data["command"]) for e in reopened] == [
        ("legal asked for the PDF again", "eksir report")
    ]
    assert verify_case(handle).ok
    # open again: the next command needs no --reopen, and the case closes again with a fresh report
    assert run_eksir("report", *common).returncode == 0
    assert not close_case(handle).already_closed


def test_a_repeat_of_the_finding_and_a_waiver_are_refused_on_a_closed_case(tmp_path):
    handle = _closed_case(tmp_path / "cases")
    before = _events(handle)
    with pytest.raises(RefusedError, match="is closed"):
        waive_step(handle, "isolate-pod", "late")
    with pytest.raises(RefusedError, match="is closed"):
        build_case(tmp_path / "cases")  # triage of the same finding again: it would join the closed case
    assert _events(handle) == before


def test_export_verify_and_close_again_still_work_on_a_closed_case(tmp_path):
    handle = _closed_case(tmp_path / "cases")
    common = ("--cases-dir", str(tmp_path / "cases"))
    before = _events(handle)
    closed_again = run_eksir("case", "close", handle.path.name, *common)
    assert closed_again.returncode == 0, closed_again.stderr
    assert "was already closed" in closed_again.stdout
    assert run_eksir("case", "verify", handle.path.name, *common).returncode == 0
    exported = run_eksir("case", "export", handle.path.name, *common, "--out", str(tmp_path / "case.tar"))
    assert exported.returncode == 0, exported.stderr
    assert _events(handle)[: len(before)] == before

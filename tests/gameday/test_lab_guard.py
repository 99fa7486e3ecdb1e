"""The game day's lab guard: every auto-approved phase (respond, recover, the Pod Security enforcement of the
prevention proof) runs only against the lab's loopback servers with every recorded lab process running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksir.cli.gameday_run import GameDay, _Day, require_lab
from eksir.errors import RefusedError
from eksir.lab import lab, processes
from eksir.store import CaseStore
from tests.factories import make_finding


def _state(lab_dir: Path, aws: str = "http://127.0.0.1:9", k8s: str = "https://127.0.0.1:9") -> lab.LabState:
    return lab.LabState(
        lab_dir=str(lab_dir), scenario="iam-user", cluster="c", account_id="123456789012", region="us-east-1",
        aws_endpoint=aws, aws_access_key_id="x", aws_secret_access_key="y", k8s_server=k8s,
        admin_kubeconfig="a", responder_kubeconfig="r", audit_log="l", finding="f", ground_truth="g",
        cloudtrail_dir="d", cloudtrail_bucket="b", evidence_bucket="e", log_group="lg", topic_arn="t",
        created_at="2026-12-07T00:00:00Z",
    )  # fmt: skip


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    """A lab whose etcd runs and whose kube-apiserver has died (real processes, recorded as the lab does)."""
    root = tmp_path / "lab"
    workdir = root / "k8s"
    workdir.mkdir(parents=True)
    processes.start_process(workdir, "etcd", ["/bin/sleep", "60"], 1, workdir / "etcd.log")
    processes.start_process(workdir, "kube-apiserver", ["/bin/sh", "-c", "exit 3"], 2, workdir / "api.log")
    deadline = time.monotonic() + 10
    while any(s.state is processes.ProcState.RUNNING for s in lab.process_status(root)[1:]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield root
    processes.stop_all(workdir)


def test_a_lab_with_one_server_down_is_refused_naming_it(lab_dir: Path) -> None:
    with pytest.raises(RefusedError, match=r"kube-apiserver not running"):
        require_lab(_state(lab_dir), lab_dir)


def test_endpoints_that_are_not_loopback_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RefusedError, match="refusing to respond"):
        require_lab(_state(tmp_path, aws="https://ec2.us-east-1.amazonaws.com"), tmp_path)


@pytest.mark.parametrize("phase", ["respond", "recover", "prevention proof"])
def test_every_auto_approved_phase_of_the_game_day_is_refused_before_it_touches_anything(
    lab_dir: Path, tmp_path: Path, phase: str
) -> None:
    from eksir.cli.gameday_run import PHASES, run_phase

    case, _ = CaseStore(tmp_path / "cases").open_for_finding(make_finding(), b"{}", "finding.json")
    before = [e.type for e in case.log.events()]
    day = _Day(GameDay("iam-user"), lambda _line: None, state=_state(lab_dir), case=case)

    record = run_phase(day, phase, dict(PHASES)[phase], lab_dir)

    assert record.status == "failed"
    assert record.detail.startswith("auto-approval is only allowed against a running local lab")
    assert f"refusing to {phase}" in record.detail
    assert [e.type for e in case.log.events()] == before  # nothing ran, nothing was recorded

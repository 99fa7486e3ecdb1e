"""The fleet end to end in the lab: EventBridge PutEvents -> rule -> SQS -> two `eksir serve` processes, one
killed with SIGKILL mid-burst and started again, the other stopped with SIGTERM mid-burst (exit 0, its case
handed over) and started again (issue 20's CI test: a smaller burst than the bench). The incidents are in two
member accounts' clusters (half each), and each case must act in its own account.

Asserted from the records: every incident has exactly one case whose automatic (non-destructive) steps are
done, no step was applied twice (the case logs), every non-finding is in the dead-letter queue with its
reason, destructive steps wait for approval, and both workers exit 0 on SIGTERM. The attacked node is
simulated (capture is unavailable-in-lab), as in the cross-account test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eksir.lab import fleet_run, lab, node_runtime
from tests.lab_plugin import lab_disabled

pytestmark = pytest.mark.lab
INCIDENTS = 6


@pytest.fixture(scope="module")
def flab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.LabState]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("fleet")
    previous = os.environ.get(node_runtime.FORCE_SIMULATED_ENV)
    os.environ[node_runtime.FORCE_SIMULATED_ENV] = "simulated"
    try:
        yield lab.up(lab_dir, "fleet", seed=20240611, fleet_incidents=INCIDENTS)
    finally:
        lab.down(lab_dir)
        if previous is None:
            os.environ.pop(node_runtime.FORCE_SIMULATED_ENV, None)
        else:
            os.environ[node_runtime.FORCE_SIMULATED_ENV] = previous


def _burst(fleet: dict[str, Any]) -> list[dict[str, Any]]:
    """Each incident's first finding, then repeats and joins up to 36 events, then 4 non-findings."""
    firsts = [e for e in fleet["events"] if e["kind"] == "finding"]
    later = [e for e in fleet["events"] if e["kind"] in ("repeat", "join")][: 36 - len(firsts)]
    noise = [e for e in fleet["events"] if e["kind"] == "non-finding"][:4]
    return firsts + later + noise


def test_two_workers_and_a_kill_give_one_case_per_incident_and_nothing_applied_twice(
    flab: lab.LabState, tmp_path: Path
) -> None:
    lab_dir = Path(flab.lab_dir)
    fleet = json.loads((lab_dir / "fleet.json").read_text())
    burst = _burst(fleet)
    security = fleet_run.security(flab)
    cases = tmp_path / "cases"
    env = fleet_run.worker_env(flab)
    workers = fleet_run.Workers(env, fleet, cases, lab_dir, tmp_path / "logs", flab.responder_kubeconfig)
    with workers:
        workers.start(0)
        workers.start(1)
        half = len(burst) // 2
        sent = fleet_run.put_events(security, burst[:half])
        time.sleep(2.0)
        workers.kill(1)  # SIGKILL mid-burst: its messages come back after the visibility timeout
        workers.start(1)
        _wait_until_working(tmp_path / "logs", deadline=time.time() + 30)
        sent += fleet_run.put_events(security, burst[half:])
        terminated = workers.terminate(0)  # SIGTERM mid-burst: running steps finish, the rest is handed over
        workers.start(0)
        fleet_run.send_garbage(security, fleet["queue_url"], fleet["garbage"])
        deadline = time.time() + 100
        while time.time() < deadline and not (
            fleet_run.responded(cases) >= INCIDENTS and fleet_run.queue_empty(security, fleet["queue_url"])
        ):
            time.sleep(1)
        continued = _approve_one_step(cases, fleet, fleet_run.worker_env(flab))
        codes = workers.stop_all()
    dlq = fleet_run.drain(security, fleet["dlq_url"])
    scored = fleet_run.report(
        {**fleet, "events": burst}, sent, fleet_run.cases_of(cases), dlq, len(fleet["garbage"])
    )
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "logs").iterdir())
    assert terminated == 0, logs
    assert codes == {0: 0, 1: 0}, logs
    assert scored["incidents_with_exactly_one_case"] == INCIDENTS, (scored, logs)
    assert scored["cases"] == INCIDENTS
    assert scored["responded"] == INCIDENTS, logs
    assert scored["applied_twice"] == {}
    assert scored["auto_steps_not_done"] == {}, scored
    assert scored["cases_without_auto_steps"] == []
    _each_case_in_its_own_account(fleet, scored)
    # at-least-once: a worker killed between the DLQ send and the delete dead-letters a message again;
    # each source message is there, counted once by its source message id
    assert scored["dead_lettered_distinct"] == scored["non_findings_sent"] == 4 + len(fleet["garbage"])
    assert fleet_run.queue_empty(security, fleet["queue_url"])
    _destructive_steps_wait(cases, skip=continued)
    state = json.loads((cases / continued / "plan-state.json").read_text())
    cordon = next(r for r in state["steps"].values() if r["action_id"] == "k8s.cordon_node")
    assert cordon["status"] == "verified", cordon
    assert cordon["approval"]["approver"] == "alice"


def _wait_until_working(logs: Path, deadline: float) -> None:
    """Until worker 0 reports received messages (so the SIGTERM is likely to find it mid-case)."""
    while time.time() < deadline:
        for log in logs.glob("worker-0.*.log"):
            lines = [line for line in log.read_bytes().splitlines() if line.startswith(b'{"eksir-serve"')]
            if lines and json.loads(lines[-1])["eksir-serve"]["received"] > 0:
                return
        time.sleep(0.3)


def _approve_one_step(cases: Path, fleet: dict[str, Any], env: dict[str, str]) -> str:
    """`eksir approve CASE --step <cordon> --yes --queue-url`: a worker continues the case and runs it."""
    case = next(p for p in sorted(cases.iterdir()) if p.name.startswith("eksir-"))
    state = json.loads((case / "plan-state.json").read_text())
    step = next(sid for sid, r in state["steps"].items() if r["action_id"] == "k8s.cordon_node")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksir",
            "approve",
            case.name,
            "--step",
            step,
            "--yes",
            "--approver",
            "alice",
            "--cases-dir",
            str(cases),
            "--queue-url",
            fleet["queue_url"],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.time() + 60
    while time.time() < deadline and b'"serve.continued"' not in (case / "events.jsonl").read_bytes():
        time.sleep(0.5)
    return case.name


def _destructive_steps_wait(cases: Path, skip: str) -> None:
    """No destructive step ran unapproved: each waits, saying the command that approves it."""
    for case in cases.iterdir():
        if not case.name.startswith("eksir-") or case.name == skip:
            continue
        state = json.loads((case / "plan-state.json").read_text())
        waiting = [
            r for r in state["steps"].values() if (r.get("approval") or {}).get("how") == "awaiting-approval"
        ]
        assert waiting, case.name
        assert all(r["status"] == "skipped" for r in waiting)
        assert all(f"eksir approve {case.name} --step" in r["approval"]["reason"] for r in waiting)


def test_workers_on_an_s3_store_and_a_dynamodb_lease_give_one_verified_case_per_incident(
    flab: lab.LabState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fleet with the shared store (issue 20, items 4-5) and the path real workers take to the
    clusters of both member accounts (each account's responder role and an EKS token, no kubeconfig): cases
    in S3, one DynamoDB lease per case, a worker killed with SIGKILL while it holds leases; every case acted
    in its own account and verifies from S3 alone."""
    lab_dir = Path(flab.lab_dir)
    fleet = json.loads((lab_dir / "fleet.json").read_text())
    security = fleet_run.security(flab)
    store = fleet_run.create_s3_store(security)
    env = fleet_run.s3_worker_env(flab, tmp_path / "workers")
    for name, value in fleet_run.reader_env(env, tmp_path / "reader").items():
        monkeypatch.setenv(name, value)
    firsts = [e for e in fleet["events"] if e["kind"] == "finding"]
    burst = firsts + [e for e in fleet["events"] if e["kind"] in ("repeat", "join")][:6]
    logs = tmp_path / "logs"
    workers = fleet_run.Workers(
        env, fleet, store.url, lab_dir, logs, kubeconfig="", lock_table=store.table
    )  # no kubeconfig: each worker assumes the finding's account's role and authenticates with an EKS token
    with workers:
        workers.start(0)
        workers.start(1)
        sent = fleet_run.put_events(security, burst[: len(firsts)])
        time.sleep(2.0)
        workers.kill(1)  # SIGKILL while it may hold leases: they expire, another worker resumes the case
        workers.start(1)
        sent += fleet_run.put_events(security, burst[len(firsts) :])
        deadline = time.time() + 150
        while time.time() < deadline and not (
            fleet_run.queue_empty(security, fleet["queue_url"])
            and fleet_run.responded(fleet_run.s3_case_copies(store)) >= INCIDENTS
        ):
            time.sleep(2)
        codes = workers.stop_all()
    text = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs.iterdir())
    copies = fleet_run.s3_case_copies(store)
    sessions = fleet_run.token_sessions(lab_dir / "k8s" / "eks-authenticator.log")
    scored = fleet_run.report(
        {**fleet, "events": burst}, sent, fleet_run.cases_of(copies), [], 0, sessions=sessions
    )
    assert codes == {0: 0, 1: 0}, text
    assert scored["incidents_with_exactly_one_case"] == INCIDENTS == scored["cases"], (scored, text)
    assert scored["responded"] == INCIDENTS, text
    assert scored["applied_twice"] == {}
    assert scored["auto_steps_not_done"] == {}, scored
    _each_case_in_its_own_account(fleet, scored)
    # every case reached its cluster by EKS token, as its own account's eksir-responder, no other
    assert scored["cases_with_token_session"] == INCIDENTS, scored
    assert scored["token_sessions_in_another_account"] == {}, scored
    assert scored["token_accounts"] == sorted(fleet["accounts"]), scored
    cases = [p.name for p in copies.iterdir() if p.name.startswith("eksir-")]
    assert fleet_run.verify_cases(store, cases, env) == {}


def _each_case_in_its_own_account(fleet: dict[str, Any], scored: dict[str, Any]) -> None:
    """Both member accounts have incidents, and each case names its incident's account and cluster."""
    assert len(fleet["accounts"]) == 2
    assert sorted(scored["incidents_per_account"].values()) == [INCIDENTS // 2, INCIDENTS // 2], scored
    assert scored["cases_in_wrong_account"] == [], scored

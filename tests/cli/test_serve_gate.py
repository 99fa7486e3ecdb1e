"""The fleet gate: policy's automatic steps run, a step that needs approval waits (saying the command) until
the case records an approval for it; a later denial wins over an earlier approval; time alone changes
nothing."""

from __future__ import annotations

from pathlib import Path

from eksir.actions.base import ActionSpec, CheckOutcome, Phase, PlannedChange
from eksir.cli.serve_gate import DENIED, GRANTED, FleetGate
from eksir.engine.approval import ApprovalRequest
from eksir.findings import read_findings
from eksir.policy import Decision
from eksir.policy.model import DEFAULT_POLICY
from eksir.store import CaseHandle, CaseStore
from tests.cli.helpers import FIXTURES


def _request(step_id: str, action_id: str, destructive: bool) -> ApprovalRequest:
    from eksir.playbooks.plan import PlanStep

    step = PlanStep(
        id=step_id,
        action_id=action_id,
        params={},
        requires_approval=destructive,
        phase=Phase.CONTAINMENT,
        rationale="test",
    )
    spec = ActionSpec(id=action_id, phase=Phase.CONTAINMENT, title="t", destructive=destructive)
    return ApprovalRequest(step, spec, CheckOutcome(ok=True, detail="ok"), PlannedChange(summary="change"))


def _case(tmp_path: Path) -> CaseHandle:
    path = FIXTURES / "iam-user.eventbridge.json"
    case, _ = CaseStore(tmp_path).open_for_finding(read_findings(path)[0], path.read_bytes(), "test")
    return case


def _gate(case: CaseHandle) -> FleetGate:
    return FleetGate(case, case.path.name, Decision(DEFAULT_POLICY.default, matched=False), "worker")


def test_non_destructive_steps_run_and_destructive_ones_wait_with_the_approve_command(tmp_path: Path) -> None:
    case = _case(tmp_path)
    gate = _gate(case)
    snapshot = gate.decide(_request("snap", "ec2.snapshot_volumes", destructive=False))
    cordon = gate.decide(_request("cordon", "k8s.cordon_node", destructive=True))
    assert snapshot.approved
    assert snapshot.how == "policy:default"
    assert not cordon.approved
    assert cordon.how == "awaiting-approval"
    assert f"eksir approve {case.path.name} --step cordon --yes" in cordon.reason
    assert not _gate(case).decide(_request("cordon", "k8s.cordon_node", destructive=True)).approved


def test_a_recorded_approval_lets_the_step_run_and_a_later_denial_wins(tmp_path: Path) -> None:
    case = _case(tmp_path)
    case.append(GRANTED, {"approver": "alice", "steps": ["cordon"], "destructive": False})
    approved = _gate(case).decide(_request("cordon", "k8s.cordon_node", destructive=True))
    assert approved.approved
    assert approved.approver == "alice"
    other = _gate(case).decide(_request("isolate", "k8s.isolate_pod", destructive=True))
    assert not other.approved
    case.append(DENIED, {"approver": "bob", "steps": [], "destructive": True, "reason": "prod outage"})
    denied = _gate(case).decide(_request("cordon", "k8s.cordon_node", destructive=True))
    assert not denied.approved
    assert (denied.approver, denied.reason) == ("bob", "prod outage")


def test_a_stopping_worker_starts_no_new_step(tmp_path: Path) -> None:
    import threading

    case = _case(tmp_path)
    stopping = threading.Event()
    stopping.set()
    gate = FleetGate(case, case.path.name, Decision(DEFAULT_POLICY.default, matched=False), "w", stopping)
    decision = gate.decide(_request("snap", "ec2.snapshot_volumes", destructive=False))
    assert not decision.approved
    assert decision.how == "worker-stopping"

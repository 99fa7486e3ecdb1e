"""The recovery plan: attacker items -> approvable steps, plus a worklist for what cannot be automated.

Rules (issue 6, Part 4): what the attacker created is deleted (its description preserved first); keys,
attachments and changes on a principal the attacker created are covered by deleting that principal; changes
with a known before-state are restored, others become worklist items with the exact before/after; deletions
become a recreate worklist from the logged request. The compromised pod is never deleted here: it stays
isolated for forensics (a replacement from the fixed spec is started when it belongs to a real workload), and
the node is drained and terminated only as the last step, only when containment verified its snapshots.

Why `created_at` is the case's opening time: the plan's digest must not change between two runs on the same
case, or a second `eksir recover` could not resume the first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eksir.actions.base import Phase
from eksir.playbooks.plan import NoteLevel, Plan, PlanNote, PlanStep
from eksir.playbooks.recovery_inventory import Item

PLAYBOOK_ID = "recovery"


@dataclass(frozen=True)
class CaseFacts:
    """What the plan needs from the case besides the hunt: the finding's pod, the node, verified snapshots."""

    case_id: str
    finding_id: str
    cluster_name: str | None = None
    pod_namespace: str | None = None
    pod_name: str | None = None
    pod_uid: str | None = None
    pod_owned: bool = False
    node_name: str | None = None
    instance_id: str | None = None
    snapshot_ids: tuple[str, ...] = ()
    override_pdb: str | None = None
    """`eksir recover --override-pdb REASON`: pods whose budget refuses eviction are deleted (recorded)."""
    opened_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class RecoveryPlan:
    plan: Plan
    items: list[Item]
    worklist: list[dict[str, Any]] = field(default_factory=list)
    preserved_only: list[dict[str, Any]] = field(default_factory=list)


def _short(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:6]


def _step(number: int, item_or_action: str, params: dict[str, Any], rationale: str, **extra: Any) -> PlanStep:
    key = json.dumps(params, sort_keys=True, default=str)
    return PlanStep(
        id=f"r{number:02d}-{item_or_action}-{_short(key)}",
        action_id=item_or_action,
        params=params,
        phase=Phase.RECOVERY,
        rationale=rationale,
        requires_approval=True,
        **extra,
    )


def _covered(item: Item, created: set[str]) -> bool:
    """A key, attachment or change hanging off a principal the attacker created goes with that principal."""
    return item.parent is not None and item.parent in created


def _is_finding_pod(item: Item, facts: CaseFacts) -> bool:
    ref = item.params.get("ref") or {}
    return (
        ref.get("resource") == "pods"
        and ref.get("namespace") == facts.pod_namespace
        and ref.get("name") == facts.pod_name
    )


def build_recovery_plan(items: list[Item], facts: CaseFacts) -> RecoveryPlan:
    """Steps for everything automatable, a worklist for the rest; pure."""
    created = {f"{i.kind}/{i.name}" for i in items if i.disposition == "created"}
    result = RecoveryPlan(plan=_empty(facts), items=items)
    steps: dict[str, PlanStep] = {}
    for item in items:
        if _covered(item, created):
            continue
        if item.disposition == "created" and _is_finding_pod(item, facts):
            result.preserved_only.append(
                _row(item, "kept isolated for forensics; delete it once forensics is done")
            )
            continue
        if item.action_id is None:
            result.worklist.append(_row(item, _advice(item)))
            continue
        number = 10 if item.disposition == "created" else 20
        guards = _instance_guards(item)
        step = _step(
            number,
            item.action_id,
            item.params,
            f"{item.call} by the attacker (event {item.event_id})",
            depends_on=tuple(g.id for g in guards),
        )
        for guard in (*guards, step):
            steps.setdefault(guard.id, guard)
    ordered = list(steps.values())
    notes: list[PlanNote] = []
    ordered += _workload_steps(facts, [s.id for s in ordered], notes)
    notes += [
        PlanNote(subject=w["resource"], message=w["todo"], level=NoteLevel.WARNING) for w in result.worklist
    ]
    result.plan = _empty(facts).model_copy(update={"steps": tuple(ordered), "notes": tuple(notes)})
    return result


def _instance_guards(item: Item) -> list[PlanStep]:
    """Before an attacker's instance is terminated: snapshot it (evidence), then clear the termination
    protection the attacker may have set, as its own approved step, once those snapshots are completed."""
    if item.action_id != "ec2.terminate_instance" or not item.params.get("instance_id"):
        return []
    iid = {"instance_id": item.params["instance_id"]}
    snapshot = _step(5, "ec2.snapshot_volumes", iid, "the attacker's instance is evidence: snapshot it first")
    clear = _step(
        6,
        "ec2.clear_termination_protection",
        iid,
        "an attacker's instance may carry termination protection; cleared only after its snapshots",
        depends_on=(snapshot.id,),
    )
    return [snapshot, clear]


def _workload_steps(facts: CaseFacts, earlier: list[str], notes: list[PlanNote]) -> list[PlanStep]:
    steps: list[PlanStep] = []
    if facts.pod_owned and facts.pod_namespace and facts.pod_name:
        params: dict[str, Any] = {
            "namespace": facts.pod_namespace,
            "name": facts.pod_name,
            "uid": facts.pod_uid,
            "new_name": f"{facts.pod_name[:50]}-fixed",
        }
        steps.append(_step(30, "k8s.replace_pod", params, "replace the compromised pod, privilege removed"))
    if facts.node_name and facts.instance_id and facts.snapshot_ids:
        steps += _node_steps(facts, (*earlier, *(s.id for s in steps)))
    elif facts.node_name:
        notes.append(
            PlanNote(
                subject=f"node {facts.node_name}",
                message="not drained or terminated: containment has no verified snapshots of its volumes",
                level=NoteLevel.BLOCKING,
            )
        )
    return steps


def _node_steps(facts: CaseFacts, after: tuple[str, ...]) -> list[PlanStep]:
    """Clear termination protection (its own approved, reversible step), then drain and terminate."""
    assert facts.node_name  # guarded by the caller
    assert facts.instance_id
    snapshots = list(facts.snapshot_ids)
    clear = _step(
        89,
        "ec2.clear_termination_protection",
        {"instance_id": facts.instance_id, "snapshot_ids": snapshots},
        "termination protection was set to keep the evidence; the snapshots are verified, so it may go",
        depends_on=after,
    )
    params: dict[str, Any] = {
        "node_name": facts.node_name,
        "instance_id": facts.instance_id,
        "snapshot_ids": snapshots,
        "keep_pods": [facts.pod_name] if facts.pod_name else [],
    }
    if facts.override_pdb:
        params["override_pdb"] = facts.override_pdb
    rationale = (
        "final step: the node's snapshots are verified; pods are evicted, PodDisruptionBudgets honoured"
    )
    if facts.override_pdb:
        rationale += f"; budgets overridden by the responder: {facts.override_pdb}"
    drain = _step(90, "k8s.drain_terminate_node", params, rationale, depends_on=(*after, clear.id))
    return [clear, drain]


def _advice(item: Item) -> str:
    if item.disposition == "deleted":
        return "recreate from the logged request parameters (before), then verify"
    if item.disposition == "changed":
        return "before-state not in the logs: compare with the change record/IaC and restore by hand"
    return "no automated removal for this kind: review and delete by hand"


def _row(item: Item, todo: str) -> dict[str, Any]:
    return {
        "disposition": item.disposition,
        "resource": f"{item.kind} {item.name}",
        "call": item.call,
        "event_id": item.event_id,
        "at": item.at,
        "before": item.before,
        "after": item.after,
        "todo": todo,
        "action_id": item.action_id,
        "params": item.params,
    }


def _empty(facts: CaseFacts) -> Plan:
    return Plan(
        playbook=PLAYBOOK_ID,
        case_id=facts.case_id,
        finding_id=facts.finding_id,
        cluster_name=facts.cluster_name,
        created_at=facts.opened_at,
    )

"""Run recovery for a case: facts from the record, evidence first, then the engine behind an approval gate.

Why its own track (engine/tracks.py): the case's `plan-state.json` belongs to the response plan, and the
engine refuses to replace a plan that has applied steps; recovery is a second plan on the same case, so the
engine keeps it in `recovery-state.json` (and `recovery-plan.json`), with every transition in the same
hash-chained event log the report reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from eksir.actions.base import ActionContext
from eksir.actions.recovery.base import RecoveryAction
from eksir.actions.registry import get_action
from eksir.engine import ApprovalGate, Runner, RunState
from eksir.engine.preview import StepPreview, preview_plan
from eksir.engine.rollback import rollback
from eksir.engine.runner import ContextFactory
from eksir.engine.state import StateStore, StepStatus
from eksir.engine.tracks import RECOVERY
from eksir.errors import BadInputError, EksirError, NotFoundError
from eksir.playbooks.recovery import CaseFacts, RecoveryPlan, build_recovery_plan
from eksir.playbooks.recovery_inventory import attacker_items
from eksir.report.build import load_finding
from eksir.store.atomic import sha256_bytes
from eksir.store.case_store import CaseHandle
from eksir.store.record import CaseRecord, load_record

WORKLIST_FILE = "recovery/worklist.json"


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def case_facts(handle: CaseHandle, record: CaseRecord, override_pdb: str | None = None) -> CaseFacts:
    """The finding's pod, its node and the snapshots containment verified, from the case only."""
    case, finding = record.case, load_finding(record)
    workload = finding.workload if finding else None
    resolution = record.read_unlogged_json("resolution.json") or {}
    pod, node = resolution.get("pod") or {}, resolution.get("node") or {}
    snapshots: list[str] = []
    if StateStore(handle).exists():
        for step in StateStore(handle).load().steps.values():
            if step.action_id == "ec2.snapshot_volumes" and step.status is StepStatus.VERIFIED:
                snapshots += [str(s["snapshot_id"]) for s in (step.applied or {}).get("snapshots", [])]
    return CaseFacts(
        case_id=case.id,
        finding_id=case.finding_id,
        cluster_name=case.cluster_name,
        pod_namespace=workload.namespace if workload else None,
        pod_name=workload.name if workload else None,
        pod_uid=workload.uid if workload else None,
        pod_owned=bool(pod.get("owner_references") or pod.get("owners") or pod.get("owner")),
        node_name=node.get("name"),
        instance_id=node.get("instance_id") or (resolution.get("instance") or {}).get("instance_id"),
        snapshot_ids=tuple(snapshots),
        override_pdb=override_pdb,
        opened_at=case.opened_at,
    )


def prepare(handle: CaseHandle, override_pdb: str | None = None) -> RecoveryPlan:
    """Build the recovery plan from the case; raises BadInputError when the case holds no hunt result."""
    record = load_record(handle)
    hunt = record.hunt()
    if hunt is None:
        raise BadInputError(f"case {record.case.id} has no hunt result: run the hunt for this case first")
    return build_recovery_plan(attacker_items(hunt), case_facts(handle, record, override_pdb))


@dataclass(frozen=True)
class Preserved:
    step_id: str
    resource: str
    evidence: str | None
    sha256: str | None
    note: str


def preserve(handle: CaseHandle, recovery: RecoveryPlan, ctx: ActionContext) -> list[Preserved]:
    """Describe every target before anything changes and add the description to the case as evidence.

    A description identical to one already in the case (same name and hash) is not added twice, so
    re-running recovery does not grow the evidence list. A target already gone is recorded as such.
    """
    done: list[Preserved] = []
    existing = {(e.name, e.sha256) for e in handle.load().evidence}
    targets = [(s.id, s.action_id, s.params) for s in recovery.plan.steps]
    targets += [(f"kept-{k['event_id']}", k["action_id"], k["params"]) for k in recovery.preserved_only]
    for step_id, action_id, params in targets:
        action = get_action(action_id)
        if not isinstance(action, RecoveryAction):
            continue
        label = f"{action_id} {params}"
        try:
            description = action.describe(ctx, action.params_type.model_validate(params))
        except (EksirError, NotFoundError) as exc:
            done.append(Preserved(step_id, label, None, None, f"could not describe: {exc.message}"))
            continue
        if description is None:
            done.append(Preserved(step_id, label, None, None, "already gone: nothing to preserve"))
            continue
        body = _json(
            {"step_id": step_id, "action_id": action_id, "params": params, "description": description}
        )
        name = f"recovery-{step_id}.json"
        digest = sha256_bytes(body)
        if (name, digest) not in existing:
            item = handle.add_evidence(
                name, body, source=f"{action_id} describe", description=f"before recovery: {label}"
            )
            done.append(Preserved(step_id, label, item.path, item.sha256, "preserved"))
        else:
            done.append(Preserved(step_id, label, None, digest, "already preserved"))
    return done


def record_worklist(handle: CaseHandle, recovery: RecoveryPlan, preserved: list[Preserved]) -> None:
    document = {
        "worklist": recovery.worklist,
        "kept_as_evidence": recovery.preserved_only,
        "preserved": [asdict(p) for p in preserved],
        "notes": [n.model_dump(mode="json") for n in recovery.plan.notes],
    }
    handle.write_document(WORKLIST_FILE, _json(document), "recovery-worklist")
    handle.append(
        "recovery.planned",
        {
            "steps": len(recovery.plan.steps),
            "worklist": len(recovery.worklist),
            "detail": f"{len(recovery.plan.steps)} step(s), {len(recovery.worklist)} worklist item(s)",
        },
    )


def run(handle: CaseHandle, recovery: RecoveryPlan, ctx: ContextFactory, gate: ApprovalGate) -> RunState:
    """Run the recovery plan through the engine (approvals, persistence, verify)."""
    return Runner(handle, recovery.plan, ctx, gate, max_workers=2, track=RECOVERY).run()


def preview(recovery: RecoveryPlan, ctx: ContextFactory) -> list[StepPreview]:
    """Each step's check and planned change, without applying anything (the default of `eksir recover`)."""
    return list(preview_plan(recovery.plan, ctx))


def rollback_recovery(handle: CaseHandle, ctx: ContextFactory, step_id: str | None = None) -> RunState:
    """Undo applied recovery steps newest first (the engine's rollback, on the recovery track)."""
    return rollback(handle, ctx, step_id, track=RECOVERY)


def summary(recovery: RecoveryPlan, preserved: list[Preserved], state: RunState | None) -> dict[str, Any]:
    """The JSON document `eksir recover` prints and the game day reads."""
    steps = [
        {
            "step_id": s.id,
            "action_id": s.action_id,
            "params": s.params,
            "status": state.steps[s.id].status.value if state else "planned",
            "detail": state.steps[s.id].detail if state else "",
        }
        for s in recovery.plan.steps
    ]
    return {
        "case": recovery.plan.case_id,
        "steps": steps,
        "preserved": [asdict(p) for p in preserved],
        "kept_as_evidence": recovery.preserved_only,
        "worklist": recovery.worklist,
        "notes": [n.model_dump(mode="json") for n in recovery.plan.notes],
    }


def recover(
    handle: CaseHandle, ctx: ContextFactory, gate: ApprovalGate | None, override_pdb: str | None = None
) -> dict[str, Any]:
    """Plan, preserve, record the worklist, then run behind `gate` (None: preview only, nothing changed).

    `override_pdb`: the responder's reason to delete pods whose PodDisruptionBudget refuses eviction; it
    goes into the plan (and so the case record) as the drain step's parameter.
    """
    recovery = prepare(handle, override_pdb)
    preserved = preserve(handle, recovery, ctx())
    record_worklist(handle, recovery, preserved)
    if gate is None:
        document = summary(recovery, preserved, None)
        document["preview"] = [p.as_dict() for p in preview(recovery, ctx)]
        return document
    return summary(recovery, preserved, run(handle, recovery, ctx, gate))

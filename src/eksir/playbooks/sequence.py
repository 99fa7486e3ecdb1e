"""One plan for an attack sequence: the privileged-container playbook for each workload, merged.

Each workload the sequence names (`findings.scope`) is resolved and planned on its own, as if it were a
privileged-container finding. The plans are then merged into one, with every step keyed by the resource it
acts on (`pod/<ns>/<name>#s03-k8s.isolate_pod`, `node/<instance>#s16-ec2.isolate_instance`,
`key/<access key>#s09-iam.deactivate_access_key`), so:
- two workloads on one node, or one principal behind both, give one node isolation and one key
  deactivation, not two (identical action and parameters merge, their dependencies follow);
- the same sequence planned again gives the same step ids, and every action is idempotent, so running the
  plan twice changes nothing the second time (the engine checks each step before applying it).
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import orjson

from eksir.errors import BadInputError
from eksir.findings.scope import scope_of
from eksir.models.finding import Finding
from eksir.models.resolution import OutageItem, Resolution
from eksir.playbooks.plan import Fallback, NoteLevel, Plan, PlanNote, PlanStep
from eksir.playbooks.privileged_container import PlaybookOptions, build_plan

PLAYBOOK_ID = "attack-sequence"
_KEY_PARAMS = (
    ("pod_name", "pod", ("namespace", "pod_name")),
    ("pod_uid", "pod", ("pod_uid",)),
    ("container_id", "container", ("container_id",)),
    ("instance_id", "node", ("instance_id",)),
    ("node_name", "node", ("node_name",)),
    ("access_key_id", "key", ("access_key_id",)),
    ("role_name", "role", ("role_name",)),
    ("principal_arn", "principal", ("principal_arn",)),
    ("arn", "principal", ("arn",)),
    ("service_account", "sa", ("namespace", "service_account")),
    ("username", "user", ("username",)),
    ("autoscaling_group", "asg", ("autoscaling_group",)),
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]+")


def resource_key(step: PlanStep) -> str:
    """The resource a step acts on, as a short stable key (attacker text sanitised and cut)."""
    for marker, kind, fields in _KEY_PARAMS:
        if step.params.get(marker):
            name = "/".join(str(step.params.get(field, "")) for field in fields)
            return f"{kind}/{_UNSAFE.sub('_', name)[:80]}"
    return "cluster"


def build_sequence_plan(
    finding: Finding, parts: Sequence[tuple[Finding, Resolution]], options: PlaybookOptions | None = None
) -> Plan:
    """Merge each workload's plan into one plan keyed per resource; notes say which workload they are for.

    Raises BadInputError when `parts` is empty: a sequence naming no workload has nothing to contain here.
    """
    if not parts:
        raise BadInputError(f"attack sequence {finding.id} names no Kubernetes workload: nothing to plan")
    steps: dict[str, PlanStep] = {}
    by_content: dict[bytes, str] = {}
    notes: list[PlanNote] = []
    outage: list[OutageItem] = []
    for workload, resolution in parts:
        plan = build_plan(workload, resolution, options)
        renamed = _merge(plan.steps, steps, by_content)
        steps.update(renamed)
        label = f"{workload.workload.namespace}/{workload.workload.name}" if workload.workload else "?"
        notes += [n.model_copy(update={"subject": f"{label}: {n.subject}"}) for n in plan.notes]
        outage += [item for item in plan.outage if item not in outage]
    notes += _uncovered(finding, steps.values())
    first = parts[0][1]
    return Plan(
        playbook=PLAYBOOK_ID,
        case_id=options.case_id if options else None,
        finding_id=finding.id,
        cluster_name=first.cluster.name,
        created_at=first.resolved_at,
        steps=tuple(steps.values()),
        notes=tuple(dict.fromkeys(notes)),
        outage=tuple(outage),
    )


def _merge(
    new: tuple[PlanStep, ...], steps: dict[str, PlanStep], by_content: dict[bytes, str]
) -> dict[str, PlanStep]:
    """`new` steps renamed to resource-keyed ids; a step already planned (same action and parameters)
    is not added again, and the steps depending on it depend on the one already there."""
    names: dict[str, str] = {}
    added: dict[str, PlanStep] = {}
    for step in new:  # first every step's new id, then the steps: a dependency may come later in `new`
        content = orjson.dumps([step.action_id, _identity(step.params)], option=orjson.OPT_SORT_KEYS)
        if content in by_content:
            names[step.id] = by_content[content]
            continue
        step_id = f"{resource_key(step)}#{step.id}"
        while step_id in steps or step_id in added:
            step_id += "+"
        names[step.id] = by_content[content] = step_id
        added[step_id] = step
    return {
        step_id: step.model_copy(
            update={
                "id": step_id,
                "depends_on": tuple(names[d] for d in step.depends_on),
                "fallback": _renamed(step.fallback, step_id, names),
            }
        )
        for step_id, step in added.items()
    }


def _renamed(fallback: Fallback | None, step_id: str, names: dict[str, str]) -> Fallback | None:
    """The fallback with the merged plan's step ids (its approval id follows the step's new id)."""
    if fallback is None:
        return None
    suffix = fallback.approval_id.rpartition(":")[2]
    return fallback.model_copy(
        update={
            "approval_id": f"{step_id}:{suffix}",
            "without": tuple(names[d] for d in fallback.without),
            "declined_risk": fallback.declined_risk.replace(fallback.approval_id, f"{step_id}:{suffix}"),
        }
    )


def _identity(params: dict[str, object]) -> dict[str, object]:
    """What makes two steps the same change: `used_by` only describes the blast radius (which workloads of
    each plan use a role), so one role revoked from two workloads' plans is one step, not two."""
    return {k: v for k, v in params.items() if k != "used_by"}


def _uncovered(finding: Finding, steps: Iterable[PlanStep]) -> list[PlanNote]:
    """A warning for each node and access key of the sequence that no step acts on (not left silently)."""
    scope = scope_of(finding)
    acted = {str(value) for step in steps for value in step.params.values() if isinstance(value, str)}
    notes = [
        PlanNote(
            subject=f"node {node}",
            message="in the attack sequence's scope but hosts none of its workloads here: not planned; "
            "contain it with the EC2 runbook or plan a finding that names its pods",
            level=NoteLevel.WARNING,
        )
        for node in scope.nodes
        if node not in acted
    ]
    notes += [
        PlanNote(
            subject=f"credential {principal}",
            message="in the attack sequence's scope but no step disables it: revoke it by hand",
            level=NoteLevel.WARNING,
        )
        for principal in scope.principals
        if principal not in acted
    ]
    return notes

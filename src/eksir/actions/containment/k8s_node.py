"""`k8s.cordon_node` and `k8s.label_node`: mark the suspect node and stop new pods landing on it.

Why cordon and not drain: draining evicts the pods, and with them the volatile evidence (memory, processes,
writable layers) the evidence steps still need; cordoning (`spec.unschedulable`) only keeps new work away.
Why the labels: `eksir.io/investigation=true` lets anyone find every node under investigation from the
cluster alone (`kubectl get nodes -l eksir.io/investigation`), e.g. to keep autoscalers or upgrades off it;
`case.eksir.io/<case-id>=investigating` names each case that investigates it (`kubectl get nodes -l
case.eksir.io/<case-id>`). A node can be under several cases at once (fleet mode: several incidents on one
node), so the shared marker names no case and each case owns its own key (shared_marks.py): a case's
rollback removes its key and restores the node's before-state only when no other case still holds it.

Both note the before-state in a node annotation in the same patch that changes the node, not only in the
applied record: if the process dies between the patch and the engine persisting the record, a re-run reads
the true original back from the annotation instead of mistaking its own change for the original. Rollback
only undoes what eksir did: a node that was already cordoned stays cordoned; a prior label value comes back.
Cordon holds are per case too (annotation `cordon.eksir.io/<case-id>`): one case's rollback never uncordons
a node another case still holds.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.casework import (
    INVESTIGATION_LABEL,
    K8S_NAME_PATTERN,
    require_live,
    to_json,
)
from eksir.actions.containment.shared_marks import MetaPatch, SharedMark, patch_fresh
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core, k8s_write
from eksir.errors import NotFoundError

SCHEDULABLE_BEFORE = "eksir.io/unschedulable-before-cordon"
LABELS_BEFORE = "eksir.io/labels-before-investigation"
INVESTIGATING = "true"
"""The shared marker's value: case-independent, so no case overwrites another's."""
CASE_NODE_PREFIX = "case.eksir.io"
"""Each case's own node label, `case.eksir.io/<case-id>=investigating`."""
CORDON_PREFIX = "cordon.eksir.io"
"""Each case's own cordon hold, the node annotation `cordon.eksir.io/<case-id>`."""
_NODE_RULES = (RbacRule(("",), ("nodes",), ("get", "patch")),)


class NodeParams(ActionParams):
    node_name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)


def read_node(ctx: ActionContext, name: str) -> dict[str, Any]:
    """The node as JSON. Raises NotFoundError when it is gone, PermissionDeniedError without `get nodes`."""
    api = ctx.k8s()
    with k8s_call(f"read node {name}"):
        return dict(to_json(api, core(api).read_node(name)))


def find_node(ctx: ActionContext, name: str) -> dict[str, Any] | None:
    """The node as JSON, or None when it is gone."""
    try:
        return read_node(ctx, name)
    except NotFoundError:
        return None


def _patch_node(ctx: ActionContext, name: str, ops: list[dict[str, Any]], doing: str) -> None:
    """Patch; ConflictError (a TemporaryError) when the node changed since the ops were computed."""
    with k8s_write(f"{doing} node {name}"):
        core(ctx.k8s()).patch_node(name, ops)


def _fargate_warning(name: str) -> tuple[str, ...]:
    if name.startswith("fargate-"):
        return ("Fargate node: it runs exactly one pod and has no node to protect; cordoning is symbolic",)
    return ()


class CordonMark(SharedMark):
    """`spec.unschedulable: true`, held per case; the note is the value before eksir's first cordon."""

    hold_prefix = CORDON_PREFIX
    hold_value = "true"
    note = SCHEDULABLE_BEFORE

    def is_set(self, obj: dict[str, Any]) -> bool:
        return bool((obj.get("spec") or {}).get("unschedulable"))

    def before(self, obj: dict[str, Any]) -> str:
        return "true" if self.is_set(obj) else "false"

    def set_ops(self, obj: dict[str, Any], patch: MetaPatch) -> list[dict[str, Any]]:
        return [{"op": "add", "path": "/spec/unschedulable", "value": True}]

    def restore_ops(self, obj: dict[str, Any], note: str, patch: MetaPatch) -> list[dict[str, Any]]:
        if note == "false" and self.is_set(obj):
            return [{"op": "replace", "path": "/spec/unschedulable", "value": False}]
        return []


class InvestigationMark(SharedMark):
    """`eksir.io/investigation=true`, held by the per-case labels `case.eksir.io/<case-id>`; the note is the
    JSON of the label values before eksir's first case (null: absent), restored by the last rollback."""

    hold_field = "labels"
    hold_prefix = CASE_NODE_PREFIX
    hold_value = "investigating"
    note = LABELS_BEFORE

    def is_set(self, obj: dict[str, Any]) -> bool:
        return (obj["metadata"].get("labels") or {}).get(INVESTIGATION_LABEL) == INVESTIGATING

    def before(self, obj: dict[str, Any]) -> str:
        value = (obj["metadata"].get("labels") or {}).get(INVESTIGATION_LABEL)
        return json.dumps({INVESTIGATION_LABEL: value}, sort_keys=True)

    def set_ops(self, obj: dict[str, Any], patch: MetaPatch) -> list[dict[str, Any]]:
        patch.put("labels", INVESTIGATION_LABEL, INVESTIGATING)
        return []

    def restore_ops(self, obj: dict[str, Any], note: str, patch: MetaPatch) -> list[dict[str, Any]]:
        """Each label in the note (older eksir versions also noted `eksir.io/case-id`) gets its value back."""
        for key, value in dict(json.loads(note)).items():
            patch.put("labels", key, None if value is None else str(value))
        return []


CORDON = CordonMark()
INVESTIGATION = InvestigationMark()


def hold_node(ctx: ActionContext, mark: SharedMark, name: str, doing: str) -> dict[str, Any]:
    """Add this case's hold of `mark` (conflict-safe); the node as read for the patch that did it."""
    found = patch_fresh(
        lambda: read_node(ctx, name),
        lambda node: mark.hold_ops(node, ctx.case_id),
        lambda ops: _patch_node(ctx, name, ops, doing),
    )
    assert found is not None  # read_node raises NotFoundError instead
    return found


def release_node(ctx: ActionContext, mark: SharedMark, name: str, uid: object, doing: str) -> None:
    """Remove this case's hold (and, as the last holder, restore the before-state); a node gone or replaced
    (another uid) is left alone."""
    patch_fresh(
        lambda: find_node(ctx, name),
        lambda node: mark.release_ops(node, ctx.case_id) if node["metadata"]["uid"] == uid else [],
        lambda ops: _patch_node(ctx, name, ops, doing),
    )


def _others(mark: SharedMark, node: dict[str, Any], case_id: str) -> tuple[str, ...]:
    others = [c for c in mark.holders(node) if c != case_id]
    if not others:
        return ()
    return (f"also held by case(s) {', '.join(others)}: the node keeps the mark until the last rolls back",)


@register_action
class CordonNode(Action[NodeParams]):
    spec = ActionSpec(
        id="k8s.cordon_node",
        phase=Phase.CONTAINMENT,
        title="Cordon the suspect node (no new pods; running pods and evidence stay)",
        rbac=_NODE_RULES,
        destructive=True,
        reversible=True,
        description="Sets spec.unschedulable, held per case (annotation cordon.eksir.io/<case-id>); never "
        "drains or evicts (that would destroy volatile evidence).",
    )
    params_type = NodeParams

    def check(self, ctx: ActionContext, params: NodeParams) -> CheckOutcome:
        CORDON.key(ctx.case_id)
        try:
            node = read_node(ctx, params.node_name)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        cordoned = CORDON.is_set(node)
        return CheckOutcome(
            ok=True,
            detail=f"node {params.node_name} is {'already cordoned' if cordoned else 'schedulable'}",
            warnings=_fargate_warning(params.node_name) + _others(CORDON, node, ctx.case_id),
            already_applied=CORDON.held_by(node, ctx.case_id),
        )

    def plan(self, ctx: ActionContext, params: NodeParams) -> PlannedChange:
        CORDON.key(ctx.case_id)
        node = read_node(ctx, params.node_name)
        if CORDON.is_set(node):
            return PlannedChange(
                summary=f"Node {params.node_name} is already cordoned: only this case's hold is noted",
                diff=(f"+ node {params.node_name} annotation {CORDON.key(ctx.case_id)}",),
            )
        return PlannedChange(
            summary=f"Cordon node {params.node_name}",
            diff=(f"~ node {params.node_name} spec.unschedulable: false -> true",),
            blast_radius=(f"no new pods are scheduled on {params.node_name}; running pods keep running",),
            warnings=_fargate_warning(params.node_name),
        )

    def apply(self, ctx: ActionContext, params: NodeParams) -> dict[str, Any]:
        """Cordon and hold; the record says whether the node was unschedulable before eksir's first cordon."""
        require_live(ctx, self.spec)
        node = hold_node(ctx, CORDON, params.node_name, "cordon")
        before = CORDON.noted(node) or CORDON.before(node)
        return {
            "node_name": params.node_name,
            "node_uid": node["metadata"]["uid"],
            "was_unschedulable": before == "true",
        }

    def verify(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> VerifyOutcome:
        node = read_node(ctx, params.node_name)
        cordoned = CORDON.is_set(node)
        return VerifyOutcome(
            ok=cordoned,
            detail=f"node {params.node_name} is "
            + ("cordoned" if cordoned else "schedulable: the cordon is not in effect"),
            observed={"unschedulable": cordoned, "held_by": CORDON.holders(node)},
        )

    def rollback(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> None:
        """Drop this case's hold; uncordon only as the last holder and only if eksir cordoned it."""
        require_live(ctx, self.spec)
        release_node(ctx, CORDON, params.node_name, applied.get("node_uid"), "uncordon")


@register_action
class LabelNode(Action[NodeParams]):
    spec = ActionSpec(
        id="k8s.label_node",
        phase=Phase.CONTAINMENT,
        title="Label the suspect node as under investigation by this case",
        rbac=_NODE_RULES,
        destructive=False,
        reversible=True,
        description="Adds eksir.io/investigation=true (shared by every case on the node) and "
        "case.eksir.io/<case-id>=investigating; rollback removes this case's label, and the last case's "
        "rollback restores the marker's prior value.",
    )
    params_type = NodeParams

    def check(self, ctx: ActionContext, params: NodeParams) -> CheckOutcome:
        INVESTIGATION.key(ctx.case_id)
        try:
            node = read_node(ctx, params.node_name)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        prior = (node["metadata"].get("labels") or {}).get(INVESTIGATION_LABEL)
        foreign = (
            (f"node already carries {INVESTIGATION_LABEL}={prior}: it becomes {INVESTIGATING} until the last "
             "case rolls back",)
            if prior not in (None, INVESTIGATING) and INVESTIGATION.noted(node) is None
            else ()
        )  # fmt: skip
        return CheckOutcome(
            ok=True,
            detail=f"node {params.node_name}",
            warnings=foreign + _others(INVESTIGATION, node, ctx.case_id),
            already_applied=INVESTIGATION.held_by(node, ctx.case_id),
        )

    def plan(self, ctx: ActionContext, params: NodeParams) -> PlannedChange:
        key = INVESTIGATION.key(ctx.case_id)
        node = read_node(ctx, params.node_name)
        labels = node["metadata"].get("labels") or {}
        wanted = {INVESTIGATION_LABEL: INVESTIGATING, key: INVESTIGATION.hold_value}
        diff = tuple(
            f"{'~' if k in labels else '+'} node {params.node_name} label {k}={v}"
            for k, v in wanted.items()
            if labels.get(k) != v
        )
        return PlannedChange(
            summary=f"Label node {params.node_name} with case {ctx.case_id}" if diff else "Nothing to do",
            diff=diff,
            blast_radius=("labels only: nothing is scheduled or evicted",),
        )

    def apply(self, ctx: ActionContext, params: NodeParams) -> dict[str, Any]:
        """Add the marker and this case's label; the record holds the marker's value before eksir's first case
        (None = absent), as also noted on the node."""
        require_live(ctx, self.spec)
        key = INVESTIGATION.key(ctx.case_id)
        node = hold_node(ctx, INVESTIGATION, params.node_name, "label")
        before = INVESTIGATION.noted(node) or INVESTIGATION.before(node)
        return {
            "node_name": params.node_name,
            "node_uid": node["metadata"]["uid"],
            "case_label": key,
            "labels_before": json.loads(before),
        }

    def verify(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> VerifyOutcome:
        key = INVESTIGATION.key(ctx.case_id)
        labels = read_node(ctx, params.node_name)["metadata"].get("labels") or {}
        wanted = {INVESTIGATION_LABEL: INVESTIGATING, key: INVESTIGATION.hold_value}
        wrong = sorted(k for k, v in wanted.items() if labels.get(k) != v)
        return VerifyOutcome(
            ok=not wrong,
            detail=f"labels missing or changed: {', '.join(wrong)}"
            if wrong
            else "node carries the investigation marker and this case's label",
            observed={k: labels.get(k) for k in wanted},
        )

    def rollback(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> None:
        """Remove this case's label; the last case's rollback also restores the marker's noted value."""
        require_live(ctx, self.spec)
        release_node(ctx, INVESTIGATION, params.node_name, applied.get("node_uid"), "unlabel")

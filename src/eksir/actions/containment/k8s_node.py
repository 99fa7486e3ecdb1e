"""`k8s.cordon_node` and `k8s.label_node`: mark the suspect node and stop new pods landing on it.

Why cordon and not drain: draining evicts the pods, and with them the volatile evidence (memory, processes,
writable layers) the evidence steps still need; cordoning (`spec.unschedulable`) only keeps new work away.
Why the label: `eksir.io/investigation=<case-id>` (plus the usual `eksir.io/case-id`) lets anyone find the
node from the cluster alone, e.g. to keep autoscalers or upgrades off it.

Both record the before-state in a node annotation in the same patch that changes the node, not only in the
applied record: if the process dies between the patch and the engine persisting the record, a re-run reads
the true original back from the annotation instead of mistaking its own change for the original. Rollback
only undoes what eksir did: a node that was already cordoned stays cordoned; prior label values come back.
"""

from __future__ import annotations

import json
import re
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
    CASE_LABEL,
    INVESTIGATION_LABEL,
    K8S_NAME_PATTERN,
    annotation_ops,
    json_pointer,
    require_live,
    to_json,
)
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core
from eksir.errors import BadInputError, NotFoundError

SCHEDULABLE_BEFORE = "eksir.io/unschedulable-before-cordon"
LABELS_BEFORE = "eksir.io/labels-before-investigation"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_NODE_RULES = (RbacRule(("",), ("nodes",), ("get", "patch")),)


class NodeParams(ActionParams):
    node_name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)


def read_node(ctx: ActionContext, name: str) -> dict[str, Any]:
    """The node as JSON. Raises NotFoundError when it is gone, PermissionDeniedError without `get nodes`."""
    api = ctx.k8s()
    with k8s_call(f"read node {name}"):
        return dict(to_json(api, core(api).read_node(name)))


def _patch_node(ctx: ActionContext, name: str, ops: list[dict[str, Any]], doing: str) -> None:
    with k8s_call(f"{doing} node {name}"):
        core(ctx.k8s()).patch_node(name, ops)


def _fargate_warning(name: str) -> tuple[str, ...]:
    if name.startswith("fargate-"):
        return ("Fargate node: it runs exactly one pod and has no node to protect; cordoning is symbolic",)
    return ()


@register_action
class CordonNode(Action[NodeParams]):
    spec = ActionSpec(
        id="k8s.cordon_node",
        phase=Phase.CONTAINMENT,
        title="Cordon the suspect node (no new pods; running pods and evidence stay)",
        rbac=_NODE_RULES,
        destructive=True,
        reversible=True,
        description="Sets spec.unschedulable; never drains or evicts (that would destroy volatile evidence).",
    )
    params_type = NodeParams

    def check(self, ctx: ActionContext, params: NodeParams) -> CheckOutcome:
        try:
            node = read_node(ctx, params.node_name)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        cordoned = bool(node.get("spec", {}).get("unschedulable"))
        return CheckOutcome(
            ok=True,
            detail=f"node {params.node_name} is {'already cordoned' if cordoned else 'schedulable'}",
            warnings=_fargate_warning(params.node_name),
            already_applied=cordoned,
        )

    def plan(self, ctx: ActionContext, params: NodeParams) -> PlannedChange:
        cordoned = bool(read_node(ctx, params.node_name).get("spec", {}).get("unschedulable"))
        if cordoned:
            return PlannedChange(summary=f"Nothing to do: node {params.node_name} is already cordoned")
        return PlannedChange(
            summary=f"Cordon node {params.node_name}",
            diff=(f"~ node {params.node_name} spec.unschedulable: false -> true",),
            blast_radius=(f"no new pods are scheduled on {params.node_name}; running pods keep running",),
            warnings=_fargate_warning(params.node_name),
        )

    def apply(self, ctx: ActionContext, params: NodeParams) -> dict[str, Any]:
        """Cordon; the record says whether the node was already unschedulable before eksir touched it."""
        require_live(ctx, self.spec)
        node = read_node(ctx, params.node_name)
        meta = node["metadata"]
        noted = (meta.get("annotations") or {}).get(SCHEDULABLE_BEFORE)
        was_cordoned = bool(node.get("spec", {}).get("unschedulable"))
        record = {"node_name": params.node_name, "node_uid": meta["uid"]}
        if noted is not None:  # an earlier run of this step cordoned it
            return {**record, "was_unschedulable": noted == "true"}
        if was_cordoned:  # cordoned by someone else: nothing to change, nothing to undo
            return {**record, "was_unschedulable": True}
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
            {"op": "add", "path": "/spec/unschedulable", "value": True},
            *annotation_ops(meta, {SCHEDULABLE_BEFORE: "false"}),
        ]
        _patch_node(ctx, params.node_name, ops, "cordon")
        return {**record, "was_unschedulable": False}

    def verify(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> VerifyOutcome:
        node = read_node(ctx, params.node_name)
        cordoned = bool(node.get("spec", {}).get("unschedulable"))
        return VerifyOutcome(
            ok=cordoned,
            detail=f"node {params.node_name} is "
            + ("cordoned" if cordoned else "schedulable: the cordon is not in effect"),
            observed={"unschedulable": cordoned},
        )

    def rollback(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> None:
        """Uncordon only if eksir cordoned it; a node gone or replaced (other uid) is left alone."""
        require_live(ctx, self.spec)
        try:
            node = read_node(ctx, params.node_name)
        except NotFoundError:
            return
        meta = node["metadata"]
        if meta["uid"] != applied.get("node_uid"):
            return
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]}]
        if applied.get("was_unschedulable") is False and node.get("spec", {}).get("unschedulable"):
            ops.append({"op": "replace", "path": "/spec/unschedulable", "value": False})
        ops += annotation_ops(meta, {SCHEDULABLE_BEFORE: None})
        if len(ops) > 1:
            _patch_node(ctx, params.node_name, ops, "uncordon")


def investigation_labels(ctx: ActionContext) -> dict[str, str]:
    """The labels a node under investigation carries; BadInputError if the case id is no label value."""
    if len(ctx.case_id) > 63 or not re.match(_LABEL_VALUE, ctx.case_id):
        raise BadInputError(f"case id {ctx.case_id!r} is not a valid Kubernetes label value")
    return {INVESTIGATION_LABEL: ctx.case_id, CASE_LABEL: ctx.case_id}


@register_action
class LabelNode(Action[NodeParams]):
    spec = ActionSpec(
        id="k8s.label_node",
        phase=Phase.CONTAINMENT,
        title="Label the suspect node with the case id (eksir.io/investigation)",
        rbac=_NODE_RULES,
        destructive=False,
        reversible=True,
        description="Adds eksir.io/investigation=<case-id> and eksir.io/case-id=<case-id>; rollback restores "
        "any prior values.",
    )
    params_type = NodeParams

    def check(self, ctx: ActionContext, params: NodeParams) -> CheckOutcome:
        wanted = investigation_labels(ctx)
        try:
            labels = read_node(ctx, params.node_name)["metadata"].get("labels") or {}
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        taken = labels.get(INVESTIGATION_LABEL)
        warnings = (
            (f"node is already labelled for investigation {taken}: the label will name this case",)
            if taken and taken != ctx.case_id
            else ()
        )
        return CheckOutcome(
            ok=True,
            detail=f"node {params.node_name}",
            warnings=warnings,
            already_applied=all(labels.get(k) == v for k, v in wanted.items()),
        )

    def plan(self, ctx: ActionContext, params: NodeParams) -> PlannedChange:
        labels = read_node(ctx, params.node_name)["metadata"].get("labels") or {}
        diff = tuple(
            f"{'~' if k in labels else '+'} node {params.node_name} label {k}={v}"
            for k, v in investigation_labels(ctx).items()
            if labels.get(k) != v
        )
        return PlannedChange(
            summary=f"Label node {params.node_name} with case {ctx.case_id}" if diff else "Nothing to do",
            diff=diff,
            blast_radius=("labels only: nothing is scheduled or evicted",),
        )

    def apply(self, ctx: ActionContext, params: NodeParams) -> dict[str, Any]:
        """Set the labels; the record holds the values they replaced (None = absent) for rollback."""
        require_live(ctx, self.spec)
        wanted = investigation_labels(ctx)
        node = read_node(ctx, params.node_name)
        meta = node["metadata"]
        labels = meta.get("labels") or {}
        record = {"node_name": params.node_name, "node_uid": meta["uid"]}
        noted = (meta.get("annotations") or {}).get(LABELS_BEFORE)
        if noted is not None and all(labels.get(k) == v for k, v in wanted.items()):
            return {**record, "labels_before": json.loads(noted)}
        before = {k: labels.get(k) for k in wanted}
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]}]
        if not meta.get("labels"):
            ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
        ops += [
            {"op": "add", "path": json_pointer("metadata", "labels", k), "value": v}
            for k, v in wanted.items()
        ]
        ops += annotation_ops(meta, {LABELS_BEFORE: json.dumps(before, sort_keys=True)})
        _patch_node(ctx, params.node_name, ops, "label")
        return {**record, "labels_before": before}

    def verify(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> VerifyOutcome:
        labels = read_node(ctx, params.node_name)["metadata"].get("labels") or {}
        wanted = investigation_labels(ctx)
        wrong = sorted(k for k, v in wanted.items() if labels.get(k) != v)
        return VerifyOutcome(
            ok=not wrong,
            detail=f"labels missing or changed: {', '.join(wrong)}"
            if wrong
            else "node carries the case labels",
            observed={k: labels.get(k) for k in wanted},
        )

    def rollback(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> None:
        """Put back the recorded values (remove those that were absent); skip a gone or replaced node."""
        require_live(ctx, self.spec)
        try:
            meta = read_node(ctx, params.node_name)["metadata"]
        except NotFoundError:
            return
        if meta["uid"] != applied.get("node_uid"):
            return
        labels = meta.get("labels") or {}
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]}]
        for key, value in dict(applied.get("labels_before") or {}).items():
            path = json_pointer("metadata", "labels", key)
            if value is not None:
                ops.append({"op": "add", "path": path, "value": value})
            elif key in labels:
                ops.append({"op": "remove", "path": path})
        ops += annotation_ops(meta, {LABELS_BEFORE: None})
        if len(ops) > 1:
            _patch_node(ctx, params.node_name, ops, "unlabel")

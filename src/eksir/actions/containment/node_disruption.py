"""`k8s.block_node_disruption`: keep Karpenter from consolidating, expiring or replacing the suspect node.

Why: cordon keeps new pods away and termination protection stops an API terminate, but Karpenter disrupts
nodes on its own (consolidation, drift, expiry) by deleting its NodeClaim, and a deleted NodeClaim takes the
instance, and the volatile evidence on it, with it. `karpenter.sh/do-not-disrupt: "true"` on the node and on
its NodeClaim is the documented way to stop voluntary disruption. Where no Karpenter runs (no NodeClaim API,
or no NodeClaim for this node) only the node is annotated: harmless, and it holds if Karpenter is added later.

As with cordon, the before-state goes into an annotation in the same patch that sets the value, so a re-run
after a crash reads the true original; rollback restores exactly that (removing what was absent). Several
cases may hold one node (fleet mode): each adds its own `do-not-disrupt.eksir.io/<case-id>` annotation, and
only the rollback that removes the last one restores the noted value (shared_marks.py), so one case's
rollback never lets Karpenter take a node another case still holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.casework import require_live
from eksir.actions.containment.k8s_node import NodeParams
from eksir.actions.containment.shared_marks import MetaPatch, SharedMark, patch_fresh
from eksir.actions.registry import register_action
from eksir.clients.k8s_rest import get_object, json_patch_object, list_objects
from eksir.errors import NotFoundError
from eksir.models.k8s_object import ObjectRef

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
BEFORE = "eksir.io/do-not-disrupt-before"
ABSENT = "<absent>"
NODECLAIMS = ObjectRef(api_group="karpenter.sh", api_version="v1", resource="nodeclaims", name="-")


def _node_ref(name: str) -> ObjectRef:
    return ObjectRef(resource="nodes", name=name)


def _claim_ref(name: str) -> ObjectRef:
    return NODECLAIMS.model_copy(update={"name": name})


def node_claim_for(ctx: ActionContext, node: dict[str, Any]) -> dict[str, Any] | None:
    """The NodeClaim that launched `node` (status.nodeName or the same providerID); None without Karpenter.

    A cluster without the NodeClaim API answers 404 for the collection: that is "no Karpenter", not an error.
    """
    try:
        claims = list_objects(ctx.k8s(), NODECLAIMS)
    except NotFoundError:
        return None
    name = node["metadata"]["name"]
    provider = (node.get("spec") or {}).get("providerID")
    for claim in claims:
        status = claim.get("status") or {}
        if status.get("nodeName") == name or (provider and status.get("providerID") == provider):
            return claim
    return None


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


class DoNotDisruptMark(SharedMark):
    """`karpenter.sh/do-not-disrupt: "true"`, held per case (annotation `do-not-disrupt.eksir.io/<case-id>`);
    the note is the value before eksir's first hold (`<absent>` when there was none)."""

    hold_prefix = "do-not-disrupt.eksir.io"
    hold_value = "true"
    note = BEFORE

    def is_set(self, obj: dict[str, Any]) -> bool:
        return _annotations(obj).get(DO_NOT_DISRUPT) == "true"

    def before(self, obj: dict[str, Any]) -> str:
        return _annotations(obj).get(DO_NOT_DISRUPT, ABSENT)

    def set_ops(self, obj: dict[str, Any], patch: MetaPatch) -> list[dict[str, Any]]:
        patch.put("annotations", DO_NOT_DISRUPT, "true")
        return []

    def restore_ops(self, obj: dict[str, Any], note: str, patch: MetaPatch) -> list[dict[str, Any]]:
        patch.put("annotations", DO_NOT_DISRUPT, None if note == ABSENT else note)
        return []


HOLD = DoNotDisruptMark()


def _change(
    ctx: ActionContext, ref: ObjectRef, uid: object, ops_for: Callable[..., list[dict[str, Any]]]
) -> None:
    """Patch `ref` with `ops_for(object, case_id)`, recomputed from a fresh read on a conflict; an object gone
    or replaced (another uid) is left alone."""
    patch_fresh(
        lambda: get_object(ctx.k8s(), ref),
        lambda obj: ops_for(obj, ctx.case_id) if obj["metadata"]["uid"] == uid else [],
        lambda ops: json_patch_object(ctx.k8s(), ref, ops),
    )


@register_action
class BlockNodeDisruption(Action[NodeParams]):
    spec = ActionSpec(
        id="k8s.block_node_disruption",
        phase=Phase.CONTAINMENT,
        title="Hold the node against Karpenter disruption (do-not-disrupt on the node and its NodeClaim)",
        rbac=(
            RbacRule(("",), ("nodes",), ("get", "patch")),
            RbacRule(("karpenter.sh",), ("nodeclaims",), ("get", "list", "patch")),
        ),
        destructive=False,
        reversible=True,
        description="Annotates the node and, where Karpenter runs, its NodeClaim; nothing is evicted.",
    )
    params_type = NodeParams

    def _targets(self, ctx: ActionContext, name: str) -> list[tuple[ObjectRef, dict[str, Any]]]:
        node = get_object(ctx.k8s(), _node_ref(name))
        if node is None:
            raise NotFoundError(f"node {name} does not exist")
        claim = node_claim_for(ctx, node)
        found = [(_node_ref(name), node)]
        return found + ([(_claim_ref(claim["metadata"]["name"]), claim)] if claim else [])

    def check(self, ctx: ActionContext, params: NodeParams) -> CheckOutcome:
        try:
            targets = self._targets(ctx, params.node_name)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        held = all(_annotations(obj).get(DO_NOT_DISRUPT) == "true" for _, obj in targets)
        where = ", ".join(ref.label() for ref, _ in targets)
        warnings = (
            () if len(targets) > 1 else ("no Karpenter NodeClaim for this node: only the node is marked",)
        )
        return CheckOutcome(ok=True, detail=f"{where}", warnings=warnings, already_applied=held)

    def plan(self, ctx: ActionContext, params: NodeParams) -> PlannedChange:
        targets = self._targets(ctx, params.node_name)
        diff = tuple(
            f"~ {ref.label()} annotation {DO_NOT_DISRUPT}: "
            f"{_annotations(obj).get(DO_NOT_DISRUPT, '(absent)')} -> true"
            for ref, obj in targets
        )
        return PlannedChange(
            summary=f"Mark node {params.node_name} do-not-disrupt for Karpenter",
            diff=diff,
            blast_radius=(
                "Karpenter will not consolidate, expire or drift-replace this node until rollback",
            ),
        )

    def apply(self, ctx: ActionContext, params: NodeParams) -> dict[str, Any]:
        """Annotate every target; the record names them (with uids) for verify and rollback."""
        require_live(ctx, self.spec)
        HOLD.key(ctx.case_id)
        held = []
        for ref, obj in self._targets(ctx, params.node_name):
            uid = obj["metadata"]["uid"]
            _change(ctx, ref, uid, HOLD.hold_ops)
            held.append({"name": ref.name, "resource": ref.resource, "uid": uid})
        return {"node_name": params.node_name, "held": held}

    def verify(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> VerifyOutcome:
        observed: dict[str, Any] = {}
        for item in applied.get("held") or []:
            obj = get_object(ctx.k8s(), self._ref(item)) or {}
            observed[f"{item['resource']}/{item['name']}"] = _annotations(obj).get(DO_NOT_DISRUPT)
        missing = sorted(k for k, v in observed.items() if v != "true")
        return VerifyOutcome(
            ok=bool(observed) and not missing,
            detail=f"{DO_NOT_DISRUPT} missing on {', '.join(missing)}"
            if missing or not observed
            else f"{DO_NOT_DISRUPT}=true on {', '.join(sorted(observed))}",
            observed=observed,
        )

    def rollback(self, ctx: ActionContext, params: NodeParams, applied: dict[str, Any]) -> None:
        """Restore each target's noted value; a target gone or replaced (other uid) is left alone."""
        require_live(ctx, self.spec)
        for item in applied.get("held") or []:
            _change(ctx, self._ref(item), item.get("uid"), HOLD.release_ops)

    @staticmethod
    def _ref(item: dict[str, Any]) -> ObjectRef:
        return _node_ref(item["name"]) if item["resource"] == "nodes" else _claim_ref(item["name"])

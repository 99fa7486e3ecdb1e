"""Retire the compromised node last: clear termination protection as its own step, drain, terminate.

Why eviction and not deletion: a drain that deletes pods ignores PodDisruptionBudgets and can take a
service's last ready replica down with the node. The Eviction API (policy/v1) lets the API server decide:
it refuses (429) when a budget allows no more disruptions, and the drain stops there, before terminating
anything, naming the budget. Only a stated override (`--override-pdb REASON`, recorded in the plan and the
applied record) deletes the refused pods instead.

Why clearing termination protection is a separate step: containment set it (or the attacker did), so removing
it is a decision of its own that the approver sees, recorded and reversible; it is allowed only once every
evidence snapshot is `completed` in EC2, like the termination itself. In fleet mode another case may still
hold the node's termination protection (aws_holds.py: a `eksir.io/hold/<case>` tag naming
`termination-protection`): clearing it would let one case terminate a node whose evidence another case still
needs, so it is refused until those cases release it (roll back their protection step or close).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from eksir.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.aws_holds import InstanceTags, holders
from eksir.actions.containment.casework import INSTANCE_ID_PATTERN, require_live
from eksir.actions.containment.ec2_node import TERMINATION_MARK
from eksir.actions.evidence.snapshots import attached_volumes, case_snapshots, complete_set
from eksir.actions.recovery.aws_resources import instance_or_none
from eksir.actions.recovery.base import RecoveryAction
from eksir.actions.recovery.pdb import blocking_budgets, drainable_pods
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_eviction import evict_pod
from eksir.clients.k8s_rest import delete_object
from eksir.errors import RefusedError
from eksir.models.k8s_object import ObjectRef

_GONE = ("shutting-down", "terminated", "gone")


def evidence_problem(ctx: ActionContext, snapshot_ids: tuple[str, ...]) -> str | None:
    """Why the evidence is not verified (a snapshot missing or not `completed`), or None when it is."""
    if not snapshot_ids:
        return "no evidence snapshot of the instance in this case"
    with aws_call("describe the evidence snapshots"):
        found = ctx.aws("ec2").describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": list(snapshot_ids)}]
        )["Snapshots"]
    states = {s["SnapshotId"]: s["State"] for s in found}
    bad = [f"{sid}: {states.get(sid, 'missing')}" for sid in snapshot_ids if states.get(sid) != "completed"]
    return f"evidence not verified ({', '.join(bad)})" if bad else None


def _protected(ctx: ActionContext, instance_id: str) -> bool:
    with aws_call(f"read termination protection of {instance_id}"):
        attr = ctx.aws("ec2").describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination"
        )
    return bool(attr["DisableApiTermination"]["Value"])


def other_holders(ctx: ActionContext, instance_id: str) -> str | None:
    """Why another case forbids clearing the protection (it still holds it), or None."""
    tags = InstanceTags(ctx, instance_id).read()
    others = [c for c in holders(tags, TERMINATION_MARK) if c != ctx.case_id]
    if not others:
        return None
    return f"case(s) {', '.join(others)} still hold its termination protection; release it there first"


def _state(ctx: ActionContext, instance_id: str) -> str:
    return str(((instance_or_none(ctx, instance_id) or {}).get("State") or {}).get("Name", "gone"))


class ClearProtectionParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    snapshot_ids: tuple[str, ...] = ()
    """The evidence snapshots to require; empty: the case's own complete set of the instance (found by tags,
    for an instance the attacker launched, snapshotted by an earlier step of the same plan)."""


def _evidence_ids(ctx: ActionContext, params: ClearProtectionParams) -> tuple[str, ...]:
    if params.snapshot_ids:
        return params.snapshot_ids
    instance = instance_or_none(ctx, params.instance_id) or {}
    found = complete_set(case_snapshots(ctx, params.instance_id), attached_volumes(instance))
    return tuple(sorted(str(s["SnapshotId"]) for s in (found or {}).values()))


@register_action
class ClearTerminationProtection(RecoveryAction[ClearProtectionParams]):
    spec = ActionSpec(
        id="ec2.clear_termination_protection",
        phase=Phase.RECOVERY,
        title="Clear the node's termination protection (only once its evidence snapshots are completed)",
        iam_actions=(
            "ec2:DescribeSnapshots",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:DescribeTags",
        ),
        destructive=True,
        reversible=True,
        description="Rollback sets the protection back when it was on before.",
    )
    params_type = ClearProtectionParams

    def describe(self, ctx: ActionContext, params: ClearProtectionParams) -> dict[str, Any] | None:
        return instance_or_none(ctx, params.instance_id)

    def check(self, ctx: ActionContext, params: ClearProtectionParams) -> CheckOutcome:
        if _state(ctx, params.instance_id) in _GONE:
            return CheckOutcome(True, f"{params.instance_id} is gone", already_applied=True)
        problem = other_holders(ctx, params.instance_id) or evidence_problem(ctx, _evidence_ids(ctx, params))
        if problem:
            return CheckOutcome(False, f"refusing to clear protection of {params.instance_id}: {problem}")
        protected = _protected(ctx, params.instance_id)
        return CheckOutcome(
            True,
            f"{params.instance_id} termination protection: {protected}; evidence snapshots completed",
            already_applied=not protected,
        )

    def plan(self, ctx: ActionContext, params: ClearProtectionParams) -> PlannedChange:
        return PlannedChange(
            f"clear termination protection of {params.instance_id}",
            diff=("- DisableApiTermination: True", "+ DisableApiTermination: False"),
            blast_radius=(f"{params.instance_id} can be terminated through the API",),
        )

    def apply(self, ctx: ActionContext, params: ClearProtectionParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        problem = other_holders(ctx, params.instance_id) or evidence_problem(ctx, _evidence_ids(ctx, params))
        if problem:
            raise RefusedError(f"refusing to clear protection of {params.instance_id}: {problem}")
        previous = _protected(ctx, params.instance_id)
        if previous:
            with aws_call(f"clear termination protection of {params.instance_id}"):
                ctx.aws("ec2").modify_instance_attribute(
                    InstanceId=params.instance_id, DisableApiTermination={"Value": False}
                )
        return {"instance_id": params.instance_id, "previous": previous}

    def verify(
        self, ctx: ActionContext, params: ClearProtectionParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        if _state(ctx, params.instance_id) in _GONE:
            return VerifyOutcome(True, f"{params.instance_id} is gone")
        protected = _protected(ctx, params.instance_id)
        return VerifyOutcome(not protected, f"termination protection of {params.instance_id}: {protected}")

    def rollback(self, ctx: ActionContext, params: ClearProtectionParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        if applied.get("previous") and _state(ctx, params.instance_id) not in _GONE:
            with aws_call(f"restore termination protection of {params.instance_id}"):
                ctx.aws("ec2").modify_instance_attribute(
                    InstanceId=params.instance_id, DisableApiTermination={"Value": True}
                )


class DrainTerminateParams(ActionParams):
    node_name: str = Field(min_length=1, max_length=253)
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    snapshot_ids: tuple[str, ...] = Field(min_length=1)
    keep_pods: tuple[str, ...] = ()
    override_pdb: str | None = Field(default=None, min_length=1, max_length=500)
    """The responder's stated reason to delete pods a PodDisruptionBudget protects (None: honour budgets)."""


@register_action
class DrainTerminateNode(RecoveryAction[DrainTerminateParams]):
    spec = ActionSpec(
        id="k8s.drain_terminate_node",
        phase=Phase.RECOVERY,
        title="Drain (Eviction API, PodDisruptionBudgets honoured) and terminate the compromised node",
        iam_actions=(
            "ec2:DescribeSnapshots",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
            "ec2:TerminateInstances",
        ),
        rbac=(
            RbacRule(("",), ("nodes",), ("get", "patch")),
            RbacRule(("",), ("pods",), ("list", "delete")),
            RbacRule(("",), ("pods/eviction",), ("create",)),
            RbacRule(("policy",), ("poddisruptionbudgets",), ("list",)),
        ),
        destructive=True,
        reversible=False,
    )
    params_type = DrainTerminateParams

    def describe(self, ctx: ActionContext, params: DrainTerminateParams) -> dict[str, Any] | None:
        return instance_or_none(ctx, params.instance_id)

    def _refusal(self, ctx: ActionContext, params: DrainTerminateParams) -> str | None:
        """Why the node may not go (evidence, protection, a budget without override), or None."""
        problem = evidence_problem(ctx, params.snapshot_ids)
        if problem:
            return problem
        if _protected(ctx, params.instance_id):
            return "termination protection is on: the ec2.clear_termination_protection step clears it"
        blocked = blocking_budgets(ctx, drainable_pods(ctx, params.node_name, params.keep_pods))
        if blocked and not params.override_pdb:
            return f"{'; '.join(blocked)} (eksir recover --override-pdb REASON deletes them instead)"
        return None

    def check(self, ctx: ActionContext, params: DrainTerminateParams) -> CheckOutcome:
        state = _state(ctx, params.instance_id)
        if state in _GONE:
            return CheckOutcome(True, f"{params.instance_id} is {state}", already_applied=True)
        refusal = self._refusal(ctx, params)
        if refusal:
            return CheckOutcome(False, f"refusing to drain {params.node_name}: {refusal}")
        warnings = (f"PodDisruptionBudgets overridden: {params.override_pdb}",) if params.override_pdb else ()
        return CheckOutcome(True, "evidence snapshots completed; the node may go", warnings=warnings)

    def plan(self, ctx: ActionContext, params: DrainTerminateParams) -> PlannedChange:
        pods = drainable_pods(ctx, params.node_name, params.keep_pods)
        names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods]
        return PlannedChange(
            f"cordon {params.node_name}, evict its pods, then terminate {params.instance_id}",
            diff=(f"- instance {params.instance_id}", *(f"- pod {p} (evicted)" for p in names)),
            blast_radius=tuple(names),
            warnings=("terminating the node cannot be undone", *blocking_budgets(ctx, pods)),
        )

    def apply(self, ctx: ActionContext, params: DrainTerminateParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        refusal = self._refusal(ctx, params)
        if refusal:
            raise RefusedError(f"refusing to drain {params.node_name}: {refusal}")
        self._cordon(ctx, params.node_name)
        evicted, overridden = self._drain(ctx, params)
        with aws_call(f"terminate {params.instance_id}"):
            ctx.aws("ec2").terminate_instances(InstanceIds=[params.instance_id])
        return {
            "evicted": evicted,
            "deleted_over_pdb": overridden,
            "override_reason": params.override_pdb,
            "terminated": params.instance_id,
        }

    def _drain(
        self, ctx: ActionContext, params: DrainTerminateParams
    ) -> tuple[list[str], list[dict[str, str]]]:
        """Evict each pod; a refused one is deleted only under the override, else the drain stops here."""
        api, evicted, overridden = ctx.k8s(), [], []
        for pod in drainable_pods(ctx, params.node_name, params.keep_pods):
            meta = pod["metadata"]
            name = f"{meta['namespace']}/{meta['name']}"
            refused = evict_pod(api, meta["namespace"], meta["name"], meta.get("uid"))
            if refused is None:
                evicted.append(name)
            elif params.override_pdb:
                delete_object(api, ObjectRef(resource="pods", namespace=meta["namespace"], name=meta["name"]))
                overridden.append({"pod": name, "refusal": refused})
            else:
                raise RefusedError(f"eviction of {name} refused, drain stopped before termination: {refused}")
        return evicted, overridden

    def _cordon(self, ctx: ActionContext, node_name: str) -> None:
        with k8s_call(f"cordon {node_name}"):
            ctx.k8s().call_api(
                f"/api/v1/nodes/{node_name}",
                "PATCH",
                header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
                body={"spec": {"unschedulable": True}},
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )

    def verify(
        self, ctx: ActionContext, params: DrainTerminateParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        state = _state(ctx, params.instance_id)
        return VerifyOutcome(state in _GONE, f"{params.instance_id} is {state}")

    def rollback(self, ctx: ActionContext, params: DrainTerminateParams, applied: dict[str, Any]) -> None:
        return None  # not reversible

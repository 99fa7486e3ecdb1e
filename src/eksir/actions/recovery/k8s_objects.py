"""Kubernetes objects the attacker created or changed: delete (after preservation) or restore from the log.

Why the uid guard: between the attack and recovery someone may have replaced an attacker's object with a
legitimate one of the same name; deleting by name alone would remove the wrong thing, so when the audit log
gave a uid the live object must still carry it.
"""

from __future__ import annotations

from typing import Any

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
from eksir.actions.containment.casework import require_live
from eksir.actions.recovery.base import RecoveryAction
from eksir.actions.registry import register_action
from eksir.clients.k8s_rest import (
    create_object,
    delete_object,
    get_object,
    recreatable,
    replace_object,
)
from eksir.models.k8s_object import ObjectRef

_KINDS = (
    RbacRule(
        ("",),
        ("pods", "secrets", "serviceaccounts", "configmaps", "services"),
        ("get", "delete", "create", "update"),
    ),
    RbacRule(
        ("apps",),
        ("daemonsets", "deployments", "statefulsets", "replicasets"),
        ("get", "delete", "create", "update"),
    ),
    RbacRule(("batch",), ("cronjobs", "jobs"), ("get", "delete", "create", "update")),
    RbacRule(
        ("rbac.authorization.k8s.io",),
        ("roles", "rolebindings", "clusterroles", "clusterrolebindings"),
        ("get", "delete", "create", "update", "bind", "escalate"),
    ),
)


class K8sObjectParams(ActionParams):
    ref: ObjectRef
    uid: str | None = None


def _uid(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("uid")


@register_action
class DeleteK8sObject(RecoveryAction[K8sObjectParams]):
    spec = ActionSpec(
        id="k8s.delete_object",
        phase=Phase.RECOVERY,
        title="Delete a Kubernetes object the attacker created",
        rbac=_KINDS,
        destructive=True,
        reversible=True,
        description="Rollback re-creates the object from the preserved JSON (new uid).",
    )
    params_type = K8sObjectParams

    def describe(self, ctx: ActionContext, params: K8sObjectParams) -> dict[str, Any] | None:
        return get_object(ctx.k8s(), params.ref)

    def _live(self, ctx: ActionContext, params: K8sObjectParams) -> dict[str, Any] | None:
        """The attacker's object if it still exists (same uid when known), else None."""
        found = self.describe(ctx, params)
        if found is None or (params.uid and _uid(found) != params.uid):
            return None
        return found

    def check(self, ctx: ActionContext, params: K8sObjectParams) -> CheckOutcome:
        found = self.describe(ctx, params)
        if found is None:
            return CheckOutcome(True, f"{params.ref.label()} is already gone", already_applied=True)
        if params.uid and _uid(found) != params.uid:
            return CheckOutcome(
                True,
                f"{params.ref.label()} now has uid {_uid(found)}, "
                f"not the attacker's {params.uid}: left alone",
                already_applied=True,
            )
        return CheckOutcome(True, f"{params.ref.label()} exists (uid {_uid(found)})")

    def plan(self, ctx: ActionContext, params: K8sObjectParams) -> PlannedChange:
        return PlannedChange(
            f"delete {params.ref.label()}", diff=(f"- {params.ref.label()} uid {params.uid or '?'}",)
        )

    def apply(self, ctx: ActionContext, params: K8sObjectParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        before = self._live(ctx, params)
        if before is not None:
            delete_object(ctx.k8s(), params.ref)
        return {"before": before}

    def verify(self, ctx: ActionContext, params: K8sObjectParams, applied: dict[str, Any]) -> VerifyOutcome:
        found = self._live(ctx, params)
        if found is None:
            return VerifyOutcome(True, f"{params.ref.label()} is gone")
        if (found.get("metadata") or {}).get("deletionTimestamp"):
            return VerifyOutcome(True, f"{params.ref.label()} is terminating", {"terminating": True})
        return VerifyOutcome(False, f"{params.ref.label()} still exists")

    def rollback(self, ctx: ActionContext, params: K8sObjectParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        before = applied.get("before")
        if before and get_object(ctx.k8s(), params.ref) is None:
            create_object(ctx.k8s(), params.ref, recreatable(before))


class RestoreK8sObjectParams(ActionParams):
    ref: ObjectRef
    before: dict[str, Any]
    after_resource_version: str | None = None


@register_action
class RestoreK8sObject(RecoveryAction[RestoreK8sObjectParams]):
    spec = ActionSpec(
        id="k8s.restore_object",
        phase=Phase.RECOVERY,
        title="Restore a Kubernetes object the attacker changed, from the audit log's before-state",
        rbac=_KINDS,
        destructive=True,
        reversible=True,
    )
    params_type = RestoreK8sObjectParams

    def describe(self, ctx: ActionContext, params: RestoreK8sObjectParams) -> dict[str, Any] | None:
        return get_object(ctx.k8s(), params.ref)

    def _matches(self, live: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
        if live is None:
            return False
        keys = [k for k in wanted if k not in ("metadata", "status")]
        same_meta = all(
            (live.get("metadata") or {}).get(k) == (wanted.get("metadata") or {}).get(k)
            for k in ("labels", "annotations")
        )
        return same_meta and all(live.get(k) == wanted.get(k) for k in keys)

    def check(self, ctx: ActionContext, params: RestoreK8sObjectParams) -> CheckOutcome:
        live = self.describe(ctx, params)
        if live is None:
            return CheckOutcome(
                False, f"{params.ref.label()} no longer exists: recreate it from the worklist"
            )
        if self._matches(live, params.before):
            return CheckOutcome(
                True, f"{params.ref.label()} already matches its before-state", already_applied=True
            )
        return CheckOutcome(True, f"{params.ref.label()} differs from its before-state")

    def plan(self, ctx: ActionContext, params: RestoreK8sObjectParams) -> PlannedChange:
        return PlannedChange(
            f"restore {params.ref.label()} to its logged before-state", diff=(f"~ {params.ref.label()}",)
        )

    def apply(self, ctx: ActionContext, params: RestoreK8sObjectParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        live = self.describe(ctx, params)
        if live is None or self._matches(live, params.before):
            return {"before": live, "restored": False}
        body = recreatable(params.before)
        body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        replace_object(ctx.k8s(), params.ref, body)
        return {"before": live, "restored": True}

    def verify(
        self, ctx: ActionContext, params: RestoreK8sObjectParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        ok = self._matches(self.describe(ctx, params), params.before)
        return VerifyOutcome(
            ok, f"{params.ref.label()} {'matches' if ok else 'does not match'} its before-state"
        )

    def rollback(self, ctx: ActionContext, params: RestoreK8sObjectParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        attacker_state, live = applied.get("before"), self.describe(ctx, params)
        if applied.get("restored") and attacker_state and live:
            body = recreatable(attacker_state)
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            replace_object(ctx.k8s(), params.ref, body)

"""The compromised workload: replace the pod from a fixed spec (the node is retired in node_retire.py).

Why the old pod stays: it is isolated (deny-all NetworkPolicy) and is the live evidence until forensics is
done, so the replacement is a *new* pod with the privilege removed, not an edit of the old one.
"""

from __future__ import annotations

import copy
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
from eksir.actions.containment.casework import K8S_NAME_PATTERN, require_live
from eksir.actions.recovery.base import RecoveryAction
from eksir.actions.registry import register_action
from eksir.clients.k8s_rest import create_object, delete_object, get_object, recreatable
from eksir.models.k8s_object import ObjectRef

_HOST_FLAGS = ("hostPID", "hostIPC", "hostNetwork")
_CONTROLLER_RESOURCES = {
    "ReplicaSet": "replicasets",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicationController": "replicationcontrollers",
    "Job": "jobs",
}


def fixed_pod(
    pod: dict[str, Any], new_name: str, owner_selects: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[str]]:
    """A new pod body from `pod` without privilege, host namespaces, hostPath mounts, host ports or ephemeral
    containers; and what changed.

    `owner_selects`: the label keys the old pod's owner (a ReplicaSet...) selects on. They are removed, or the
    owner would adopt the replacement and scale a replica away (the replacement would not survive the day).
    """
    body = recreatable(copy.deepcopy(pod))
    meta, spec, changes = body["metadata"], body.get("spec") or {}, []
    meta["name"] = new_name
    meta.pop("ownerReferences", None)
    meta.pop("generateName", None)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if not k.startswith("eksir.io/")}
    dropped = sorted(k for k in labels if k in owner_selects or k == "pod-template-hash")
    meta["labels"] = {k: v for k, v in labels.items() if k not in dropped}
    if dropped:
        changes.append(f"labels {', '.join(dropped)} removed (the owner would adopt the pod otherwise)")
    if spec.pop("ephemeralContainers", None):
        changes.append("ephemeral containers removed")
    for flag in _HOST_FLAGS:
        if spec.pop(flag, None):
            changes.append(f"{flag} removed")
    if spec.pop("nodeName", None):
        changes.append("nodeName cleared (the scheduler places it away from the suspect node)")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            volume.pop("hostPath")
            volume["emptyDir"] = {}
            changes.append(f"hostPath volume {volume.get('name')} replaced by emptyDir")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        ctx = container.setdefault("securityContext", {})
        if ctx.get("privileged"):
            changes.append(f"container {container.get('name')}: privileged removed")
        ctx["privileged"] = False
        ctx["allowPrivilegeEscalation"] = False
        if (ctx.get("capabilities") or {}).pop("add", None):
            changes.append(f"container {container.get('name')}: added capabilities removed")
        for port in container.get("ports") or []:
            if port.pop("hostPort", None):
                changes.append(f"container {container.get('name')}: hostPort removed")
    return body, changes


def owner_selector_keys(api: Any, pod: dict[str, Any]) -> frozenset[str]:
    """The label keys the pod's controller selects on (matchLabels, matchExpressions); none for a bare pod."""
    meta = pod.get("metadata") or {}
    for owner in meta.get("ownerReferences") or []:
        group, _, version = str(owner.get("apiVersion", "")).rpartition("/")
        resource = _CONTROLLER_RESOURCES.get(str(owner.get("kind")))
        if not owner.get("controller") or resource is None:
            continue
        ref = ObjectRef(
            api_group=group,
            api_version=version,
            resource=resource,
            namespace=meta.get("namespace"),
            name=owner["name"],
        )
        selector = ((get_object(api, ref) or {}).get("spec") or {}).get("selector") or {}
        keys = set(selector.get("matchLabels") or {}) | {
            e.get("key") for e in selector.get("matchExpressions") or []
        }
        return frozenset(str(k) for k in keys if k)
    return frozenset()


class ReplacePodParams(ActionParams):
    namespace: str = Field(pattern=K8S_NAME_PATTERN)
    name: str = Field(pattern=K8S_NAME_PATTERN)
    uid: str | None = None
    new_name: str = Field(pattern=K8S_NAME_PATTERN)


@register_action
class ReplaceWorkloadPod(RecoveryAction[ReplacePodParams]):
    spec = ActionSpec(
        id="k8s.replace_pod",
        phase=Phase.RECOVERY,
        title="Start a replacement pod from the fixed spec; keep the isolated original for forensics",
        rbac=(
            RbacRule(("",), ("pods",), ("get", "create", "delete")),
            RbacRule(("",), ("replicationcontrollers",), ("get",)),
            RbacRule(("apps",), ("replicasets", "statefulsets", "daemonsets"), ("get",)),
            RbacRule(("batch",), ("jobs",), ("get",)),
        ),
        destructive=False,
        reversible=True,
    )
    params_type = ReplacePodParams

    def _ref(self, params: ReplacePodParams, name: str) -> ObjectRef:
        return ObjectRef(resource="pods", namespace=params.namespace, name=name)

    def describe(self, ctx: ActionContext, params: ReplacePodParams) -> dict[str, Any] | None:
        return get_object(ctx.k8s(), self._ref(params, params.name))

    def check(self, ctx: ActionContext, params: ReplacePodParams) -> CheckOutcome:
        if get_object(ctx.k8s(), self._ref(params, params.new_name)) is not None:
            return CheckOutcome(True, f"replacement {params.new_name} exists", already_applied=True)
        old = self.describe(ctx, params)
        if old is None:
            return CheckOutcome(False, f"pod {params.namespace}/{params.name} is gone: no spec to fix")
        return CheckOutcome(True, f"pod {params.namespace}/{params.name} found; its spec will be fixed")

    def plan(self, ctx: ActionContext, params: ReplacePodParams) -> PlannedChange:
        old = self.describe(ctx, params)
        changes = fixed_pod(old, params.new_name, owner_selector_keys(ctx.k8s(), old))[1] if old else []
        return PlannedChange(
            f"create pod {params.namespace}/{params.new_name}; keep {params.name} isolated",
            diff=(f"+ pod {params.new_name}", *(f"~ {c}" for c in changes)),
        )

    def apply(self, ctx: ActionContext, params: ReplacePodParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        existing = get_object(ctx.k8s(), self._ref(params, params.new_name))
        if existing is not None:
            return {"created": existing, "changes": []}
        old = self.describe(ctx, params)
        if old is None:
            raise RuntimeError(f"pod {params.namespace}/{params.name} vanished before it could be replaced")
        body, changes = fixed_pod(old, params.new_name, owner_selector_keys(ctx.k8s(), old))
        created = create_object(ctx.k8s(), self._ref(params, params.new_name), body)
        return {"created": created, "changes": changes}

    def verify(self, ctx: ActionContext, params: ReplacePodParams, applied: dict[str, Any]) -> VerifyOutcome:
        new = get_object(ctx.k8s(), self._ref(params, params.new_name))
        if new is None:
            return VerifyOutcome(False, f"replacement {params.new_name} does not exist")
        privileged = [
            c.get("name")
            for c in (new.get("spec") or {}).get("containers") or []
            if (c.get("securityContext") or {}).get("privileged")
        ]
        return VerifyOutcome(
            not privileged, f"replacement {params.new_name} privileged containers: {privileged}"
        )

    def rollback(self, ctx: ActionContext, params: ReplacePodParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        delete_object(ctx.k8s(), self._ref(params, params.new_name))

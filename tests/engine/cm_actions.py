"""Test-only actions that change a REAL ConfigMap in the lab's kube-apiserver, so apply, verify, rollback and
resume are observable from outside the engine.

Each ConfigMap keeps, per key, the before-value (so `apply` is idempotent and its record survives a lost
return value) and a count of real mutations (so "applied twice" is a fact read from the API server, not from
the engine's own bookkeeping). Faults are real too: a TemporaryError for the first N apply calls (counted in
the ConfigMap), a hang after the change (for SIGKILL tests), and permission errors from real RBAC.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api, V1ConfigMap, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

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
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.errors import TemporaryError

BEFORE = "test.eksir.io/before-"
MUTATIONS = "test.eksir.io/mutations-"
ATTEMPTS = "test.eksir.io/attempts-"
_ABSENT = "\x00absent"


class MarkParams(ActionParams):
    namespace: str
    name: str
    key: str
    value: str
    temporary_failures: int = 0
    hang_marker: str | None = None
    apply_delay: float = 0.0


def _api(ctx: ActionContext) -> CoreV1Api:
    return CoreV1Api(ctx.k8s())


def read_map(api: CoreV1Api, namespace: str, name: str) -> V1ConfigMap:
    with k8s_call(f"read configmap {namespace}/{name}"):
        return api.read_namespaced_config_map(name, namespace)


def mutations(api: CoreV1Api, namespace: str, name: str, key: str) -> int:
    """How many times the key was really changed (the API server's view, not the engine's)."""
    annotations = read_map(api, namespace, name).metadata.annotations or {}
    return int(annotations.get(MUTATIONS + key, "0"))


def _patch(api: CoreV1Api, p: MarkParams, data: dict[str, Any], annotations: dict[str, Any]) -> None:
    body = {"data": data, "metadata": {"annotations": annotations}}
    with k8s_call(f"patch configmap {p.namespace}/{p.name}"):
        api.patch_namespaced_config_map(p.name, p.namespace, body)


@register_action
class MarkConfigMap(Action[MarkParams]):
    """Set data[key] = value on a ConfigMap; record the before-value for rollback."""

    spec = ActionSpec(
        id="test.mark_configmap",
        phase=Phase.EVIDENCE,
        title="Mark a ConfigMap (test)",
        iam_actions=("s3:GetObject",),
        rbac=(RbacRule(("",), ("configmaps",), ("get", "patch")),),
    )
    params_type = MarkParams

    def check(self, ctx: ActionContext, params: MarkParams) -> CheckOutcome:
        current = read_map(_api(ctx), params.namespace, params.name)
        done = (current.data or {}).get(params.key) == params.value
        return CheckOutcome(ok=True, detail="configmap exists", already_applied=done)

    def plan(self, ctx: ActionContext, params: MarkParams) -> PlannedChange:
        return PlannedChange(
            summary=f"set {params.key}={params.value} on configmap {params.namespace}/{params.name}",
            diff=(f"+ {params.key}: {params.value}",),
            blast_radius=(f"configmap {params.namespace}/{params.name}",),
        )

    def apply(self, ctx: ActionContext, params: MarkParams) -> dict[str, Any]:
        api = _api(ctx)
        current = read_map(api, params.namespace, params.name)
        annotations = current.metadata.annotations or {}
        attempts = int(annotations.get(ATTEMPTS + params.key, "0")) + 1
        _patch(api, params, {}, {ATTEMPTS + params.key: str(attempts)})
        if attempts <= params.temporary_failures:
            raise TemporaryError(f"injected temporary failure {attempts}/{params.temporary_failures}")
        time.sleep(params.apply_delay)
        data = current.data or {}
        if data.get(params.key) == params.value and BEFORE + params.key in annotations:
            return {"before": _decode(annotations[BEFORE + params.key])}
        before = data.get(params.key)
        count = int(annotations.get(MUTATIONS + params.key, "0")) + 1
        _patch(
            api,
            params,
            {params.key: params.value},
            {BEFORE + params.key: json.dumps(before), MUTATIONS + params.key: str(count)},
        )
        if params.hang_marker:
            Path(params.hang_marker).write_text("applied, record not yet persisted")
            time.sleep(120)
        return {"before": before}

    def verify(self, ctx: ActionContext, params: MarkParams, applied: dict[str, Any]) -> VerifyOutcome:
        data = read_map(_api(ctx), params.namespace, params.name).data or {}
        ok = data.get(params.key) == params.value
        return VerifyOutcome(ok=ok, detail=f"{params.key}={data.get(params.key)!r}", observed=dict(data))

    def rollback(self, ctx: ActionContext, params: MarkParams, applied: dict[str, Any]) -> None:
        api = _api(ctx)
        before = applied.get("before")
        _patch(api, params, {params.key: before}, {BEFORE + params.key: None})


@register_action
class MarkConfigMapDestructive(MarkConfigMap):
    """The same change, declared destructive: the engine must ask before applying it."""

    spec = ActionSpec(
        id="test.mark_configmap_destructive",
        phase=Phase.CONTAINMENT,
        title="Mark a ConfigMap, declared destructive (test)",
        iam_actions=("ec2:ModifyInstanceAttribute",),
        rbac=(RbacRule(("",), ("configmaps",), ("get", "patch", "update")),),
        destructive=True,
    )


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def make_configmap(api: CoreV1Api, namespace: str, name: str, data: dict[str, str] | None = None) -> None:
    try:
        api.create_namespaced_config_map(
            namespace, V1ConfigMap(metadata=V1ObjectMeta(name=name), data=data or {"seed": "1"})
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def grant_configmaps(api: ApiClient, namespace: str, user: str) -> None:
    """Let `user` get and patch ConfigMaps in `namespace` only: a responder with real, narrow RBAC."""
    rbac = RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "cm"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "cm"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )


@register_action
class MarkConfigMapIneffective(MarkConfigMap):
    """The same change, read back in place but declared not effective (like a NetworkPolicy no CNI
    enforces): the engine must record `not-effective`, never verified."""

    spec = ActionSpec(
        id="test.mark_configmap_ineffective",
        phase=Phase.CONTAINMENT,
        title="Mark a ConfigMap that contains nothing (test)",
        rbac=(RbacRule(("",), ("configmaps",), ("get", "patch")),),
    )

    def verify(self, ctx: ActionContext, params: MarkParams, applied: dict[str, Any]) -> VerifyOutcome:
        found = super().verify(ctx, params, applied)
        return VerifyOutcome(
            ok=found.ok, detail=found.detail, effective=False, not_effective="nothing enforces this mark"
        )

"""`k8s.enforce_pod_security`: label a namespace with Pod Security Admission enforce/warn/audit at a level.

Reversible by construction: the namespace's previous `pod-security.kubernetes.io/*` labels are written
into an annotation on the namespace at the first apply, so a second apply (idempotent) still knows the
original state, and rollback restores exactly those labels (removing the ones that did not exist) even
from another machine. Enforcing never evicts running pods; `check` reports, from a server-side dry run,
which existing pods would no longer be admitted if re-created.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from eksir.actions.base import (
    ACTION_CASE_LABEL,
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
from eksir.actions.prevention.psa import PSA_PREFIX, PsaLevel, dry_run_psa, label_patch, psa_labels
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core
from eksir.errors import RefusedError

PREVIOUS_ANNOTATION = "eksir.io/previous-pod-security-labels"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class EnforcePodSecurityParams(ActionParams):
    namespace: str = Field(pattern=K8S_NAME_PATTERN)
    level: PsaLevel = PsaLevel.BASELINE


def _read(ctx: ActionContext, namespace: str) -> Any:
    with k8s_call(f"read namespace {namespace}"):
        return core(ctx.k8s()).read_namespace(namespace)


def _psa(labels: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if k.startswith(PSA_PREFIX)}


@register_action
class EnforcePodSecurity(Action[EnforcePodSecurityParams]):
    spec = ActionSpec(
        id="k8s.enforce_pod_security",
        phase=Phase.POST_INCIDENT,
        title="Enforce Pod Security Admission on the affected namespace",
        rbac=(RbacRule(("",), ("namespaces",), ("get", "patch")),),
        destructive=False,
        reversible=True,
        description="Labels the namespace enforce/warn/audit=<level>, version latest; rollback restores the "
        "previous labels recorded in an annotation.",
    )
    params_type = EnforcePodSecurityParams

    def check(self, ctx: ActionContext, params: EnforcePodSecurityParams) -> CheckOutcome:
        result = dry_run_psa(ctx.k8s(), params.namespace, params.level)
        detail = (
            f"namespace {params.namespace}: {len(result.violating_pods)} group(s) of existing pods violate"
        )
        return CheckOutcome(True, detail, tuple(result.warnings), already_applied=result.already_enforced)

    def plan(self, ctx: ActionContext, params: EnforcePodSecurityParams) -> PlannedChange:
        result = dry_run_psa(ctx.k8s(), params.namespace, params.level)
        before = _psa(result.previous_labels)
        diff = tuple(
            f"{key}: {before.get(key, '(unset)')} -> {value}"
            for key, value in psa_labels(params.level).items()
        )
        blast = tuple(
            f"{p['pod']}: {p['violations']} (not admitted again if re-created)" for p in result.violating_pods
        )
        return PlannedChange(
            f"label namespace {params.namespace} with Pod Security `{params.level.value}` "
            "(enforce, warn, audit)",
            diff,
            blast or ("no existing pod violates the level",),
            tuple(result.warnings),
        )

    def apply(self, ctx: ActionContext, params: EnforcePodSecurityParams) -> dict[str, Any]:
        if ctx.dry_run:
            raise RefusedError(f"{self.spec.id}: dry run, nothing changed")
        current = _read(ctx, params.namespace)
        annotations = current.metadata.annotations or {}
        if PREVIOUS_ANNOTATION in annotations:
            before = json.loads(annotations[PREVIOUS_ANNOTATION])
        else:
            before = _psa(current.metadata.labels)
        after = psa_labels(params.level)
        body = label_patch(dict(after))
        body["metadata"]["annotations"] = {
            PREVIOUS_ANNOTATION: json.dumps(before, sort_keys=True),
            ACTION_CASE_LABEL: ctx.case_id,
        }
        with k8s_call(f"label namespace {params.namespace} with Pod Security {params.level.value}"):
            core(ctx.k8s()).patch_namespace(params.namespace, body)
        return {"namespace": params.namespace, "level": params.level.value, "before": before, "after": after}

    def verify(
        self, ctx: ActionContext, params: EnforcePodSecurityParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        labels = _psa(_read(ctx, params.namespace).metadata.labels)
        wanted = psa_labels(params.level)
        missing = {k: v for k, v in wanted.items() if labels.get(k) != v}
        if missing:
            return VerifyOutcome(False, f"labels not in place: {sorted(missing)}", {"labels": labels})
        return VerifyOutcome(
            True, f"namespace {params.namespace} enforces {params.level.value}", {"labels": labels}
        )

    def rollback(self, ctx: ActionContext, params: EnforcePodSecurityParams, applied: dict[str, Any]) -> None:
        if ctx.dry_run:
            raise RefusedError(f"{self.spec.id}: dry run, nothing rolled back")
        before: dict[str, str] = dict(applied.get("before") or {})
        labels: dict[str, str | None] = {key: before.get(key) for key in psa_labels(params.level)}
        labels.update(before)
        body = label_patch(labels)
        body["metadata"]["annotations"] = {PREVIOUS_ANNOTATION: None, ACTION_CASE_LABEL: None}
        with k8s_call(f"restore Pod Security labels of namespace {params.namespace}"):
            core(ctx.k8s()).patch_namespace(params.namespace, body)

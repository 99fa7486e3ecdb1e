"""`k8s.deny_privileged_pods`: a cluster-wide ValidatingAdmissionPolicy that denies privileged, host-namespace
and hostPath pods outside an exemption list, so the attack cannot be repeated in another namespace.

Why a ValidatingAdmissionPolicy: Pod Security labels hold one namespace (the incident's); the attacker who
could create a privileged pod there can usually do it elsewhere. A ValidatingAdmissionPolicy (CEL, GA since
Kubernetes 1.30) is served by the API server itself: no webhook to install, nothing to keep running. The
exemptions are what legitimately runs privileged now (the CNI, the CSI drivers, kube-proxy...), computed from
the live pods (the attacker's own pod excluded) and shown for approval. `validationActions: [Deny]` with a
message naming the case; `reason: Forbidden` so the refusal reads as one (the API server answers 422 Invalid
otherwise). Rollback deletes exactly what this step created (both objects carry the case label).
"""

from __future__ import annotations

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
from eksir.actions.registry import register_action
from eksir.clients.k8s_requests import dry_run_create_pod
from eksir.clients.k8s_rest import create_object, delete_object, get_object, list_objects
from eksir.errors import RefusedError
from eksir.models.k8s_object import ObjectRef

POLICY_NAME = "eksir-deny-privileged-pods"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_GROUP, _VERSION = "admissionregistration.k8s.io", "v1"
_PROBE_IMAGE = "registry.k8s.io/pause:3.10"
_NOT_PRIVILEGED = (
    "!has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged"
)
_CLAUSES = (
    "!has(object.spec.hostPID) || !object.spec.hostPID",
    "!has(object.spec.hostIPC) || !object.spec.hostIPC",
    "!has(object.spec.hostNetwork) || !object.spec.hostNetwork",
    "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))",
    f"object.spec.containers.all(c, {_NOT_PRIVILEGED})",
    f"!has(object.spec.initContainers) || object.spec.initContainers.all(c, {_NOT_PRIVILEGED})",
)
RULE = " && ".join(f"({clause})" for clause in _CLAUSES)
"""The CEL expression: true (admitted) only for a pod with none of the privileges the attack used."""


class DenyPrivilegedParams(ActionParams):
    exempt_namespaces: list[str] = Field(default_factory=list, max_length=200)
    probe_namespace: str = Field(pattern=K8S_NAME_PATTERN)
    """A namespace outside the exemptions where verify dry-runs a privileged pod (nothing is stored)."""

    def checked(self) -> None:
        if self.probe_namespace in self.exempt_namespaces:
            raise RefusedError(
                f"the probe namespace {self.probe_namespace} is exempt: verify could prove nothing"
            )


def _refs() -> tuple[ObjectRef, ObjectRef]:
    policy = ObjectRef(
        api_group=_GROUP, api_version=_VERSION, resource="validatingadmissionpolicies", name=POLICY_NAME
    )
    binding = ObjectRef(
        api_group=_GROUP, api_version=_VERSION, resource="validatingadmissionpolicybindings", name=POLICY_NAME
    )
    return policy, binding


def policy_documents(params: DenyPrivilegedParams, case_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding, labelled with the case."""
    labels = {ACTION_CASE_LABEL: case_id}
    message = f"eksir case {case_id}: privileged, host-namespace and hostPath pods are denied ({POLICY_NAME})"
    policy = {
        "apiVersion": f"{_GROUP}/{_VERSION}",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": labels},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": [{"expression": RULE, "message": message, "reason": "Forbidden"}],
        },
    }
    selector: dict[str, Any] = {}
    if params.exempt_namespaces:
        selector = {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": sorted(params.exempt_namespaces),
                }
            ]
        }
    binding = {
        "apiVersion": f"{_GROUP}/{_VERSION}",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": labels},
        "spec": {
            "policyName": POLICY_NAME,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": selector},
        },
    }
    return policy, binding


def probe_pod() -> dict[str, Any]:
    """A privileged pod that must be refused outside the exemptions (sent as a dry run: nothing is stored)."""
    container = {"name": "probe", "image": _PROBE_IMAGE, "securityContext": {"privileged": True}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "eksir-admission-probe"},
        "spec": {"containers": [container]},
    }


def denial_names_policy(status: int, message: str) -> bool:
    """The refusal came from this policy (its name in the message), not from RBAC or another control."""
    return status in (403, 422) and POLICY_NAME in message


@register_action
class DenyPrivilegedPods(Action[DenyPrivilegedParams]):
    spec = ActionSpec(
        id="k8s.deny_privileged_pods",
        phase=Phase.POST_INCIDENT,
        title="Deny privileged, host-namespace and hostPath pods cluster-wide (ValidatingAdmissionPolicy)",
        rbac=(
            RbacRule(
                (_GROUP,),
                ("validatingadmissionpolicies", "validatingadmissionpolicybindings"),
                ("get", "create", "delete"),
            ),
            RbacRule(("",), ("pods",), ("create",)),
        ),
        destructive=False,
        reversible=True,
        description="new privileged pods outside the exemptions are refused; running pods are not touched",
    )
    params_type = DenyPrivilegedParams

    def check(self, ctx: ActionContext, params: DenyPrivilegedParams) -> CheckOutcome:
        params.checked()
        policy, binding = (get_object(ctx.k8s(), ref) for ref in _refs())
        mine = bool(policy and binding and _labelled(policy, ctx.case_id) and _labelled(binding, ctx.case_id))
        if policy is not None and not mine:
            return CheckOutcome(
                ok=False, detail=f"a ValidatingAdmissionPolicy {POLICY_NAME} exists and is not this case's"
            )
        return CheckOutcome(
            ok=True, detail="the API server serves ValidatingAdmissionPolicy", already_applied=mine
        )

    def plan(self, ctx: ActionContext, params: DenyPrivilegedParams) -> PlannedChange:
        exempt = ", ".join(sorted(params.exempt_namespaces)) or "none"
        return PlannedChange(
            summary=f"create ValidatingAdmissionPolicy {POLICY_NAME} and its binding (Deny)",
            diff=(f"+ deny privileged, host-namespace and hostPath pods; exempt namespaces: {exempt}",),
            blast_radius=(
                f"every namespace except: {exempt}",
                "running pods are not evicted; their re-creation is refused",
            ),
        )

    def apply(self, ctx: ActionContext, params: DenyPrivilegedParams) -> dict[str, Any]:
        policy_doc, binding_doc = policy_documents(params, ctx.case_id)
        created = []
        for ref, body in zip(_refs(), (policy_doc, binding_doc), strict=True):
            if get_object(ctx.k8s(), ref) is None:
                create_object(ctx.k8s(), ref, body)
                created.append(ref.resource)
        return {
            "created": created,
            "before": None,
            "after": {"policy": POLICY_NAME, "exempt": params.exempt_namespaces},
        }

    def verify(
        self, ctx: ActionContext, params: DenyPrivilegedParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        present = [get_object(ctx.k8s(), ref) is not None for ref in _refs()]
        if not all(present):
            return VerifyOutcome(ok=False, detail="the policy or its binding is missing")
        pod = probe_pod()
        status, message = dry_run_create_pod(
            ctx.k8s(), params.probe_namespace, pod, "probe the admission policy"
        )
        ok = denial_names_policy(status, message)
        detail = (
            f"a privileged pod in {params.probe_namespace} is refused: {message}"
            if ok
            else (f"a privileged pod in {params.probe_namespace} answered {status}: {message}")
        )
        return VerifyOutcome(ok=ok, detail=detail, observed={"status": status, "message": message})

    def rollback(self, ctx: ActionContext, params: DenyPrivilegedParams, applied: dict[str, Any]) -> None:
        for ref in reversed(_refs()):
            if ref.resource in applied.get("created", []):
                delete_object(ctx.k8s(), ref)


def _labelled(obj: dict[str, Any], case_id: str) -> bool:
    return bool(((obj.get("metadata") or {}).get("labels") or {}).get(ACTION_CASE_LABEL) == case_id)


def _violates(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    if spec.get("hostPID") or spec.get("hostIPC") or spec.get("hostNetwork"):
        return True
    if any("hostPath" in (v or {}) for v in spec.get("volumes") or []):
        return True
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    return any(((c.get("securityContext") or {}).get("privileged")) for c in containers)


def violating_namespaces(api: Any, skip_uid: str | None) -> list[str]:
    """Namespaces where a pod that the policy would refuse runs now (the CNI, CSI, kube-proxy...): the
    exemptions to approve. The attacker's own pod (`skip_uid`) does not earn its namespace an exemption."""
    pods = list_objects(api, ObjectRef(resource="pods", name="-"))
    return sorted(
        {
            str((pod.get("metadata") or {}).get("namespace"))
            for pod in pods
            if (pod.get("metadata") or {}).get("uid") != skip_uid and _violates(pod)
        }
    )

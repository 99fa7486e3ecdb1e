"""The Kubernetes side of the doctor: authentication, the responder ClusterRole's rules, NetworkPolicy
enforcement, and the nodes' EC2 instances (for the SSM check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eksir.actions.containment.netpol import CNI_NAMESPACES, VPC_CNI, enforcing_cnis
from eksir.actions.permissions import DEFAULT_ROLE_NAME
from eksir.clients.k8s_rest import create_object, list_objects
from eksir.errors import EksirError
from eksir.models.k8s_object import ObjectRef
from eksir.preflight.result import CheckResult, failed, passed, skipped

_REVIEW = ObjectRef(api_group="authentication.k8s.io", resource="selfsubjectreviews", name="-")
_RULES = ObjectRef(api_group="authorization.k8s.io", resource="selfsubjectrulesreviews", name="-")
_NODES = ObjectRef(resource="nodes", name="-")
Need = tuple[str, str, str]  # (api group, resource, verb)


def authentication(connect: Callable[[], Any]) -> tuple[CheckResult, Any]:
    """Reach the API server and learn who it thinks we are (SelfSubjectReview)."""
    try:
        api = connect()
        review = create_object(
            api, _REVIEW, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    except EksirError as exc:
        fix = "pass --kubeconfig, or give the responder's AWS identity an access entry (eksir plan plans one)"
        return failed("kubernetes authentication", exc.message, fix), None
    user = (review.get("status") or {}).get("userInfo") or {}
    groups = ", ".join(user.get("groups") or [])
    return passed("kubernetes authentication", f"authenticated as {user.get('username')} ({groups})"), api


def needed(rules: list[dict[str, Any]]) -> set[Need]:
    """Every (group, resource, verb) the generated ClusterRole grants."""
    return {
        (group, resource, verb)
        for rule in rules
        if not rule.get("resourceNames")
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _granted(rule: dict[str, Any], need: Need) -> bool:
    group, resource, verb = need

    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    return (
        not rule.get("resourceNames")
        and has("apiGroups", group)
        and has("resources", resource)
        and has("verbs", verb)
    )


def authenticated_user(check: CheckResult) -> str | None:
    """The username a passed authentication check names (for the fix of a missing binding)."""
    prefix = "authenticated as "
    if not check.detail.startswith(prefix):
        return None
    return check.detail.removeprefix(prefix).split(" (", 1)[0] or None


def binding_fix(user: str | None) -> str:
    """Apply the generated ClusterRole and bind it: the exact commands, for the user the server named."""
    subject = f"--user {user}" if user else "--user <the responder's Kubernetes username> (or --group)"
    return (
        f"apply the ClusterRole `eksir permissions` prints ({DEFAULT_ROLE_NAME}) and bind it to the "
        f"responder: kubectl create clusterrolebinding {DEFAULT_ROLE_NAME} "
        f"--clusterrole {DEFAULT_ROLE_NAME} {subject}"
    )


def permissions(
    api: Any, rules: list[dict[str, Any]], namespace: str = "default", user: str | None = None
) -> CheckResult:
    """SelfSubjectRulesReview against the ClusterRole `eksir permissions` prints (cluster-wide grants show in
    any namespace's review)."""
    try:
        review = create_object(
            api,
            _RULES,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectRulesReview",
                "spec": {"namespace": namespace},
            },
        )
    except EksirError as exc:
        return skipped("kubernetes permissions", f"could not review the rules ({exc.message})")
    status = review.get("status") or {}
    have = status.get("resourceRules") or []
    missing = sorted(n for n in needed(rules) if not any(_granted(rule, n) for rule in have))
    if missing:
        shown = ", ".join(f"{v} {g + '/' if g else ''}{r}" for g, r, v in missing[:10])
        more = " ..." if len(missing) > 10 else ""
        fix = binding_fix(user)
        return failed("kubernetes permissions", f"{len(missing)} grants missing: {shown}{more}", fix)
    note = (
        " (the review is incomplete: an authorizer could not list its rules)"
        if status.get("incomplete")
        else ""
    )
    return passed("kubernetes permissions", f"every rule of the responder ClusterRole is granted{note}")


def network_policy(api: Any) -> CheckResult:
    """Pod isolation is a NetworkPolicy: without an agent that enforces it, isolation is a label."""
    try:
        found = enforcing_cnis(api)
    except EksirError as exc:
        return skipped("networkpolicy enforcement", f"could not list the CNI DaemonSets ({exc.message})")
    if not found:
        fix = "enable the VPC CNI network policy agent (enableNetworkPolicy) or run Calico/Cilium"
        where = ", ".join(CNI_NAMESPACES)
        return failed("networkpolicy enforcement", f"no CNI DaemonSet in {where} enforces NetworkPolicy", fix)
    note = "; the VPC CNI never applies policies to standalone pods" if VPC_CNI in found else ""
    return passed("networkpolicy enforcement", f"enforced by {', '.join(found)}{note}")


def node_instance_ids(api: Any) -> list[str]:
    """EC2 instance ids of the nodes (providerID aws:///zone/i-...); Fargate and hybrid nodes have none."""
    ids = []
    for node in list_objects(api, _NODES):
        provider = str((node.get("spec") or {}).get("providerID") or "")
        tail = provider.rsplit("/", 1)[-1]
        if provider.startswith("aws://") and tail.startswith("i-"):
            ids.append(tail)
    return sorted(ids)

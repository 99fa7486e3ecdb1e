"""Which RBAC bindings let the attacker create pods in the namespace (for the lessons learned).

Why walk the bindings instead of asking a SubjectAccessReview: a review answers yes/no, the post-incident
review needs the *name* of the grant to remove or narrow. Both RoleBindings in the namespace and
ClusterRoleBindings count; a subject matches by user name, by any of the caller's groups, or (for a
service-account caller) by ServiceAccount. Aggregated ClusterRoles are read as stored (their aggregated
rules are materialised by the controller manager), and EKS access policies are outside RBAC: the lesson
says so when nothing matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import rbac as rbac_api
from eksir.errors import NotFoundError

_SA_PREFIX = "system:serviceaccount:"


def _subject_matches(subject: Any, username: str, groups: Sequence[str], namespace: str) -> str | None:
    kind, name = subject.kind, subject.name
    if kind == "User" and name == username:
        return f"User {name}"
    if kind == "Group" and name in groups:
        return f"Group {name}"
    if kind == "ServiceAccount" and username == f"{_SA_PREFIX}{subject.namespace or namespace}:{name}":
        return f"ServiceAccount {subject.namespace or namespace}/{name}"
    return None


def _allows_create_pods(rules: Sequence[Any] | None) -> bool:
    for rule in rules or []:
        groups = rule.api_groups or []
        resources = rule.resources or []
        verbs = rule.verbs or []
        if (
            ("" in groups or "*" in groups)
            and ("pods" in resources or "*" in resources)
            and ("create" in verbs or "*" in verbs)
        ):
            return True
    return False


def _role_rules(rbac: Any, ref: Any, namespace: str) -> Sequence[Any] | None:
    with k8s_call(f"read {ref.kind} {ref.name}"):
        if ref.kind == "ClusterRole":
            role = rbac.read_cluster_role(ref.name)
        else:
            role = rbac.read_namespaced_role(ref.name, namespace)
    rules: Sequence[Any] | None = role.rules
    return rules


def pod_create_grants(api: Any, namespace: str, username: str, groups: Sequence[str]) -> list[dict[str, str]]:
    """`[{binding, role, subject}]` for every binding that lets username/groups create pods in `namespace`.

    Raises eksir errors (PermissionDeniedError when the responder cannot list bindings).
    """
    rbac = rbac_api(api)
    with k8s_call(f"list RoleBindings in {namespace}"):
        bindings = [
            (f"RoleBinding {namespace}/{b.metadata.name}", b)
            for b in rbac.list_namespaced_role_binding(namespace).items
        ]
    with k8s_call("list ClusterRoleBindings"):
        bindings += [
            (f"ClusterRoleBinding {b.metadata.name}", b) for b in rbac.list_cluster_role_binding().items
        ]
    grants = []
    for label, binding in bindings:
        matched = [
            m for s in binding.subjects or [] if (m := _subject_matches(s, username, groups, namespace))
        ]
        if not matched:
            continue
        try:
            rules = _role_rules(rbac, binding.role_ref, namespace)
        except NotFoundError:  # a dangling roleRef grants nothing; keep walking
            continue
        if _allows_create_pods(rules):
            grants.append(
                {
                    "binding": label,
                    "role": f"{binding.role_ref.kind}/{binding.role_ref.name}",
                    "subject": ", ".join(matched),
                }
            )
    return grants

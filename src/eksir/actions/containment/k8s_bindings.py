"""Shared RBAC plumbing for the identity actions: find bindings naming an identity, cut the subject out of
them (or delete a binding left with no subject), and put them back exactly.

Why subjects and not bindings: a RoleBinding is often shared (a team group and a CI user on one binding);
deleting it would lock out innocent subjects. Why bootstrap bindings are never touched: the API server
re-creates bindings annotated `rbac.authorization.kubernetes.io/autoupdate=true` on every restart, and
`system:`/`eks:` bindings are what cluster components run on; editing them is an outage, not containment.
Writes carry the resourceVersion (replace) or uid+resourceVersion preconditions (delete): a concurrent
edit gives 409 and we re-read instead of overwriting it. Editing a binding needs RBAC `bind` on the role it
references (escalation prevention), which is why the actions declare it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from eksir.actions.base import ActionContext, RbacRule
from eksir.actions.containment.casework import strip_server_fields, to_json
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import ConflictError, authorization, delete_options, k8s_write, rbac
from eksir.errors import NotFoundError, RefusedError, TemporaryError

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
CONFLICT_RETRIES = 5
Subject = dict[str, Any]
SubjectFilter = Callable[[Subject], bool]

BINDING_RULES = (
    RbacRule(
        (RBAC_GROUP,), ("rolebindings", "clusterrolebindings"), ("list", "get", "update", "delete", "create")
    ),
    RbacRule((RBAC_GROUP,), ("roles", "clusterroles"), ("bind",)),
)
REVIEW_RULE = RbacRule(("authorization.k8s.io",), ("subjectaccessreviews",), ("create",))


def list_bindings(ctx: ActionContext) -> list[dict[str, Any]]:
    """Every RoleBinding (all namespaces) and ClusterRoleBinding as JSON with `kind` set."""
    api = ctx.k8s()
    group = rbac(api)
    with k8s_call("list RoleBindings and ClusterRoleBindings"):
        roles = to_json(api, group.list_role_binding_for_all_namespaces()).get("items", [])
        clusters = to_json(api, group.list_cluster_role_binding()).get("items", [])
    return [{**b, "kind": "RoleBinding"} for b in roles] + [
        {**b, "kind": "ClusterRoleBinding"} for b in clusters
    ]


def protected(binding: dict[str, Any]) -> str | None:
    """Why eksir must not edit this binding, or None."""
    meta = binding["metadata"]
    if (meta.get("annotations") or {}).get(AUTOUPDATE) == "true":
        return "bootstrap binding the API server restores on restart"
    if str(meta["name"]).startswith(("system:", "eks:")):
        return "cluster component binding"
    return None


def describe(binding: dict[str, Any]) -> str:
    meta = binding["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    ref = binding["roleRef"]
    return f"{binding['kind']} {where}{meta['name']} ({ref['kind']} {ref['name']})"


def _read(ctx: ActionContext, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    api = ctx.k8s()
    group = rbac(api)
    with k8s_call(f"read {kind} {namespace or ''}/{name}"):
        if kind == "RoleBinding":
            return {**to_json(api, group.read_namespaced_role_binding(name, namespace)), "kind": kind}
        return {**to_json(api, group.read_cluster_role_binding(name)), "kind": kind}


def _write(ctx: ActionContext, binding: dict[str, Any], verb: str) -> None:
    """replace / delete (with uid+resourceVersion preconditions) / create; SDK errors pass through."""
    group = rbac(ctx.k8s())
    meta, kind = binding["metadata"], binding["kind"]
    body = {k: v for k, v in binding.items() if k != "kind"}
    if verb == "delete":
        options = delete_options(meta["uid"], meta["resourceVersion"])
        if kind == "RoleBinding":
            group.delete_namespaced_role_binding(meta["name"], meta["namespace"], body=options)
        else:
            group.delete_cluster_role_binding(meta["name"], body=options)
    elif verb == "replace":
        if kind == "RoleBinding":
            group.replace_namespaced_role_binding(meta["name"], meta["namespace"], body)
        else:
            group.replace_cluster_role_binding(meta["name"], body)
    elif kind == "RoleBinding":
        group.create_namespaced_role_binding(meta["namespace"], body)
    else:
        group.create_cluster_role_binding(body)


def strip_subjects(ctx: ActionContext, ref: dict[str, Any], drop: SubjectFilter) -> dict[str, Any] | None:
    """Remove the subjects `drop` selects from one binding (deleting it when none is left).

    Returns the rollback record (binding before, subjects removed and kept), or None when no subject
    matched. Raises TemporaryError after repeated 409s, PermissionDeniedError, NotFoundError.
    """
    kind, namespace, name = ref["kind"], ref["metadata"].get("namespace"), ref["metadata"]["name"]
    for _attempt in range(CONFLICT_RETRIES):
        try:
            current = _read(ctx, kind, namespace, name)
        except NotFoundError:
            return None
        subjects = list(current.get("subjects") or [])
        removed = [s for s in subjects if drop(s)]
        if not removed:
            return None
        kept = [s for s in subjects if not drop(s)]
        desired = json.loads(json.dumps(current))
        desired["subjects"] = kept
        try:
            with k8s_write(f"remove subjects from {describe(current)}"):
                _write(ctx, current if not kept else desired, "delete" if not kept else "replace")
        except ConflictError:
            continue
        return {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "deleted": not kept,
            "removed": removed,
            "kept": kept,
            "backup": strip_server_fields(current),
        }
    raise TemporaryError(
        f"{kind} {namespace or ''}/{name} kept changing ({CONFLICT_RETRIES} conflicts); retry"
    )


def restore(ctx: ActionContext, record: dict[str, Any]) -> None:
    """Undo strip_subjects: re-create a deleted binding, or put the removed subjects back.

    When nobody touched the binding since (its subjects are exactly what we kept) the original subject list
    comes back in its original order; otherwise the removed subjects are appended to the current list.
    Raises RefusedError if the binding was re-created with another roleRef (re-adding would grant a role
    the subject never had).
    """
    backup = record["backup"]
    for _attempt in range(CONFLICT_RETRIES):
        try:
            current = _read(ctx, record["kind"], record["namespace"], record["name"])
        except NotFoundError:
            desired, verb = {**json.loads(json.dumps(backup)), "kind": record["kind"]}, "create"
        else:
            if current["roleRef"] != backup["roleRef"]:
                raise RefusedError(f"{describe(current)} now references another role; re-add by hand")
            subjects = list(current.get("subjects") or [])
            if subjects == record["kept"]:
                wanted = list(backup.get("subjects") or [])
            else:
                wanted = subjects + [s for s in record["removed"] if s not in subjects]
            if wanted == subjects:
                return
            desired, verb = {**current, "subjects": wanted}, "replace"
        try:
            with k8s_write(f"restore {record['kind']} {record['name']}"):
                _write(ctx, desired, verb)
        except ConflictError:
            continue
        return
    raise TemporaryError(
        f"{record['kind']} {record['name']} kept changing ({CONFLICT_RETRIES} conflicts); retry"
    )


def can(ctx: ActionContext, user: str, groups: list[str], verb: str, resource: str, **attrs: str) -> bool:
    """A SubjectAccessReview: may this user+groups do verb on resource (attrs: namespace, group, name)?

    No impersonation is needed: the API server evaluates the identity we name. Raises PermissionDeniedError
    without `create subjectaccessreviews`.
    """
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": {"verb": verb, "resource": resource, **attrs},
        },
    }
    with k8s_call(f"review whether {user} may {verb} {resource}"):
        review = authorization(ctx.k8s()).create_subject_access_review(body)
    return bool(review.status and review.status.allowed)


def effective_groups(username: str, groups: list[str]) -> list[str]:
    """The groups the API server adds to a real request, which a SubjectAccessReview does not add itself."""
    extra = ["system:unauthenticated"] if username == "system:anonymous" else ["system:authenticated"]
    if username.startswith("system:serviceaccount:") and username.count(":") == 3:
        extra += ["system:serviceaccounts", f"system:serviceaccounts:{username.split(':')[2]}"]
    return sorted(set(groups) | set(extra))

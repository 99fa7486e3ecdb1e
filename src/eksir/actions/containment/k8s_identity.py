"""Kubernetes identity containment: `k8s.remove_user_bindings`, `k8s.revoke_service_account_grants`.

The aws-auth and secrets-worklist actions live in their own modules (k8s_aws_auth, k8s_secrets) to keep
modules small; importing this module registers all four, which is what the registry lists.

Why removing RBAC subjects and not "disabling" the identity: Kubernetes has no user objects. An OIDC user
is disabled at the identity provider (the plan says so); a stolen service-account token stays valid until
it expires or, for legacy token Secrets, until the Secret is deleted. What the cluster itself controls is
what the identity may do, i.e. the bindings naming it. System groups (`system:masters`, `system:nodes`,
`system:authenticated`, `system:serviceaccounts*`, ...) are never removed: every user or component shares
them, so removing them is an outage. `system:unauthenticated` is the exception, for anonymous access.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

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
from eksir.actions.containment import k8s_aws_auth, k8s_secrets
from eksir.actions.containment.casework import K8S_NAME_PATTERN, require_live
from eksir.actions.containment.k8s_bindings import (
    BINDING_RULES,
    REVIEW_RULE,
    SubjectFilter,
    can,
    describe,
    effective_groups,
    list_bindings,
    protected,
    restore,
    strip_subjects,
)
from eksir.actions.containment.k8s_secrets import secret_rows
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core, delete_options
from eksir.errors import NotFoundError, RefusedError

__all__ = ["RemoveUserBindings", "RevokeServiceAccountGrants", "k8s_aws_auth", "k8s_secrets"]

TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
WORKLOAD_CHECKS = (
    ("pods", "", ""),
    ("pods", "", "exec"),
    ("deployments", "apps", ""),
    ("daemonsets", "apps", ""),
    ("statefulsets", "apps", ""),
    ("replicasets", "apps", ""),
    ("jobs", "batch", ""),
    ("cronjobs", "batch", ""),
)


def removable_group(group: str) -> bool:
    return group == "system:unauthenticated" or not group.startswith(("system:", "eks:"))


def _strip_all(ctx: ActionContext, drop: SubjectFilter) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Strip matching subjects from every editable binding; (records, skipped protected bindings)."""
    records, skipped = [], []
    for binding in list_bindings(ctx):
        if not any(drop(s) for s in binding.get("subjects") or []):
            continue
        why = protected(binding)
        if why:
            skipped.append({"binding": describe(binding), "why": why})
            continue
        record = strip_subjects(ctx, binding, drop)
        if record is not None:
            records.append(record)
    return records, skipped


def _remaining(ctx: ActionContext, drop: SubjectFilter) -> tuple[list[str], list[str]]:
    """(editable bindings still naming the identity, protected ones naming it)."""
    editable: list[str] = []
    kept: list[str] = []
    for binding in list_bindings(ctx):
        if any(drop(s) for s in binding.get("subjects") or []):
            (kept if protected(binding) else editable).append(describe(binding))
    return editable, kept


def _diff(ctx: ActionContext, drop: SubjectFilter) -> tuple[list[str], list[str]]:
    diff, notes = [], []
    for binding in list_bindings(ctx):
        subjects = binding.get("subjects") or []
        hit = [s for s in subjects if drop(s)]
        if not hit:
            continue
        if protected(binding):
            notes.append(f"{describe(binding)} also names it but is not edited ({protected(binding)})")
        elif len(hit) == len(subjects):
            diff.append(f"- {describe(binding)} (its only subjects)")
        else:
            diff += [f"~ {describe(binding)}: - subject {s['kind']} {s['name']}" for s in hit]
    return diff, notes


def _rollback_all(ctx: ActionContext, applied: dict[str, Any]) -> None:
    refused = []
    for record in applied.get("bindings") or []:
        try:
            restore(ctx, record)
        except RefusedError as exc:
            refused.append(exc.message)
    if refused:
        raise RefusedError("; ".join(refused))


class UserBindingsParams(ActionParams):
    username: str = Field(min_length=1, max_length=512)
    groups: list[str] = Field(default_factory=list)


def _user_refusal(username: str) -> str | None:
    if username.startswith("system:serviceaccount:"):
        return "a service account: use k8s.revoke_service_account_grants"
    if username != "system:anonymous" and username.startswith(("system:", "eks:")):
        return "a cluster component identity: removing its bindings breaks the cluster"
    return None


def _idp_action(username: str) -> str:
    if username == "system:anonymous":
        return (
            "anonymous access: EKS cannot turn anonymous auth off; keep system:anonymous and "
            "system:unauthenticated unbound"
        )
    return (
        f"disable {username} at the OIDC identity provider and revoke its sessions/refresh tokens: removing "
        "RBAC bindings does not stop authentication, and a new group membership could grant access again"
    )


@register_action
class RemoveUserBindings(Action[UserBindingsParams]):
    spec = ActionSpec(
        id="k8s.remove_user_bindings",
        phase=Phase.CONTAINMENT,
        title="Remove the user (and its non-system groups) from every RoleBinding and ClusterRoleBinding",
        rbac=BINDING_RULES,
        destructive=True,
        reversible=True,
        description="Only the subject is removed (bindings left empty are deleted); system groups and "
        "bootstrap bindings are never edited; the IdP step is for a person.",
    )
    params_type = UserBindingsParams

    def _split_groups(self, params: UserBindingsParams) -> tuple[list[str], list[dict[str, str]]]:
        removable = sorted(g for g in set(params.groups) if removable_group(g))
        skipped = [
            {"group": g, "why": "system group shared by every user or component: not removed"}
            for g in sorted(set(params.groups) - set(removable))
        ]
        return removable, skipped

    def _drop(self, params: UserBindingsParams) -> SubjectFilter:
        groups = set(self._split_groups(params)[0])

        def drop(s: dict[str, Any]) -> bool:
            kind, name = s.get("kind"), s.get("name")
            return (kind == "User" and name == params.username) or (kind == "Group" and name in groups)

        return drop

    def check(self, ctx: ActionContext, params: UserBindingsParams) -> CheckOutcome:
        refusal = _user_refusal(params.username)
        if refusal:
            return CheckOutcome(ok=False, detail=f"{params.username} is {refusal}; refused")
        diff, notes = _diff(ctx, self._drop(params))
        skipped = [f"group {g['group']}: {g['why']}" for g in self._split_groups(params)[1]]
        return CheckOutcome(
            ok=True,
            detail=f"{len(diff)} binding change(s) for {params.username}",
            warnings=tuple(notes + skipped),
            already_applied=not diff,
        )

    def plan(self, ctx: ActionContext, params: UserBindingsParams) -> PlannedChange:
        diff, notes = _diff(ctx, self._drop(params))
        groups, skipped = self._split_groups(params)
        blast = [f"every member of group {g} loses these grants" for g in groups] or [
            f"only {params.username}"
        ]
        return PlannedChange(
            summary=f"Remove {params.username}{' and groups ' + ', '.join(groups) if groups else ''} "
            "from RBAC bindings",
            diff=tuple(diff),
            blast_radius=tuple(blast),
            warnings=(
                _idp_action(params.username),
                *notes,
                *(f"group {g['group']}: {g['why']}" for g in skipped),
            ),
        )

    def apply(self, ctx: ActionContext, params: UserBindingsParams) -> dict[str, Any]:
        """Strip the subjects; the record backs up every binding touched and says what a person must do."""
        require_live(ctx, self.spec)
        refusal = _user_refusal(params.username)
        if refusal:
            raise RefusedError(f"{self.spec.id}: {params.username} is {refusal}")
        records, skipped = _strip_all(ctx, self._drop(params))
        groups, skipped_groups = self._split_groups(params)
        return {
            "username": params.username,
            "groups_removed": groups,
            "groups_skipped": skipped_groups,
            "bindings": records,
            "skipped_bindings": skipped,
            "idp_action": _idp_action(params.username),
        }

    def verify(
        self, ctx: ActionContext, params: UserBindingsParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        editable, kept = _remaining(ctx, self._drop(params))
        return VerifyOutcome(
            ok=not editable,
            detail=f"still bound: {', '.join(editable)}"
            if editable
            else f"no editable binding names {params.username}",
            observed={"still_bound": editable, "protected_bindings": kept},
        )

    def rollback(self, ctx: ActionContext, params: UserBindingsParams, applied: dict[str, Any]) -> None:
        """Re-create deleted bindings and re-add removed subjects (exact order when untouched since)."""
        require_live(ctx, self.spec)
        _rollback_all(ctx, applied)


class ServiceAccountParams(ActionParams):
    namespace: str = Field(pattern=K8S_NAME_PATTERN, max_length=63)
    service_account: str = Field(pattern=K8S_NAME_PATTERN)


def _sa_user(params: ServiceAccountParams) -> str:
    return f"system:serviceaccount:{params.namespace}:{params.service_account}"


def _workload_grants(ctx: ActionContext, params: ServiceAccountParams) -> list[str]:
    """What the SA may still create in its namespace (pods, workloads, exec), by SubjectAccessReview."""
    user = _sa_user(params)
    groups = effective_groups(user, [])
    return [
        f"{resource}{'/' + sub if sub else ''}" + (f".{group}" if group else "")
        for resource, group, sub in WORKLOAD_CHECKS
        if can(
            ctx, user, groups, "create", resource, namespace=params.namespace, group=group, subresource=sub
        )
    ]


def _legacy_tokens(ctx: ActionContext, params: ServiceAccountParams) -> list[dict[str, Any]]:
    rows = secret_rows(ctx, params.namespace, field_selector=f"type={TOKEN_TYPE}")
    return [
        r["metadata"]
        for r in rows
        if (r["metadata"].get("annotations") or {}).get(SA_NAME_ANNOTATION) == params.service_account
    ]


def _token_record(meta: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a deleted token Secret: identity and provenance, never the token."""
    keep = ("name", "namespace", "uid", "creationTimestamp", "labels", "annotations")
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.endswith("last-applied-configuration")
    }
    return {**{k: meta.get(k) for k in keep}, "annotations": annotations}


@register_action
class RevokeServiceAccountGrants(Action[ServiceAccountParams]):
    spec = ActionSpec(
        id="k8s.revoke_service_account_grants",
        phase=Phase.CONTAINMENT,
        title="Remove a stolen service account from its RBAC bindings and delete its legacy token Secrets",
        rbac=(
            *BINDING_RULES,
            REVIEW_RULE,
            RbacRule(("",), ("serviceaccounts",), ("get",)),
            RbacRule(("",), ("secrets",), ("list", "delete")),
        ),
        destructive=True,
        reversible=True,
        description="Partly reversible: bindings are restored by rollback; deleted legacy token Secrets are "
        "not (their tokens are invalidated for good, which is the point).",
    )
    params_type = ServiceAccountParams

    def _drop(self, params: ServiceAccountParams) -> SubjectFilter:
        user = _sa_user(params)

        def drop(s: dict[str, Any]) -> bool:
            if s.get("kind") == "ServiceAccount":
                return bool(
                    s.get("name") == params.service_account and s.get("namespace") == params.namespace
                )
            return bool(s.get("kind") == "User" and s.get("name") == user)

        return drop

    def check(self, ctx: ActionContext, params: ServiceAccountParams) -> CheckOutcome:
        api = ctx.k8s()
        try:
            with k8s_call(f"read ServiceAccount {params.namespace}/{params.service_account}"):
                core(api).read_namespaced_service_account(params.service_account, params.namespace)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        diff, notes = _diff(ctx, self._drop(params))
        tokens = _legacy_tokens(ctx, params)
        return CheckOutcome(
            ok=True,
            detail=f"{len(diff)} binding change(s), {len(tokens)} legacy token Secret(s)",
            warnings=tuple(notes),
            already_applied=not diff and not tokens,
        )

    def plan(self, ctx: ActionContext, params: ServiceAccountParams) -> PlannedChange:
        diff, notes = _diff(ctx, self._drop(params))
        diff += [
            f"- Secret {params.namespace}/{t['name']} (legacy token; NOT restorable)"
            for t in _legacy_tokens(ctx, params)
        ]
        grants = _workload_grants(ctx, params)
        return PlannedChange(
            summary=f"Revoke the RBAC grants of service account {params.namespace}/{params.service_account}",
            diff=tuple(diff),
            blast_radius=(
                f"every pod running as {params.service_account} loses these permissions too",
                f"today it may create: {', '.join(grants) or 'nothing'}",
            ),
            warnings=(
                "deleted legacy token Secrets cannot be restored by rollback (bindings can)",
                "projected (bound) tokens stay valid until they expire; isolate or delete the pods using it",
                *notes,
            ),
        )

    def apply(self, ctx: ActionContext, params: ServiceAccountParams) -> dict[str, Any]:
        """Strip the SA from every editable binding (backed up), then delete its legacy token Secrets."""
        require_live(ctx, self.spec)
        before = _workload_grants(ctx, params)
        records, skipped = _strip_all(ctx, self._drop(params))
        deleted = []
        for meta in _legacy_tokens(ctx, params):
            options = delete_options(meta["uid"])
            try:
                with k8s_call(f"delete legacy token Secret {params.namespace}/{meta['name']}"):
                    core(ctx.k8s()).delete_namespaced_secret(meta["name"], params.namespace, body=options)
            except NotFoundError:
                continue
            deleted.append(_token_record(meta))
        return {
            "namespace": params.namespace,
            "service_account": params.service_account,
            "could_create_before": before,
            "bindings": records,
            "skipped_bindings": skipped,
            "deleted_token_secrets": deleted,
            "not_reversible": [f"Secret {params.namespace}/{d['name']}" for d in deleted],
        }

    def verify(
        self, ctx: ActionContext, params: ServiceAccountParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        editable, kept = _remaining(ctx, self._drop(params))
        tokens = [t["name"] for t in _legacy_tokens(ctx, params)]
        grants = _workload_grants(ctx, params)
        problems = [f"still bound: {', '.join(editable)}"] if editable else []
        problems += [f"legacy token Secrets remain: {', '.join(tokens)}"] if tokens else []
        problems += [f"may still create {', '.join(grants)} (group or protected bindings)"] if grants else []
        return VerifyOutcome(
            ok=not problems,
            detail="; ".join(problems) or "no binding names the account and it can create no workloads",
            observed={
                "still_bound": editable,
                "protected_bindings": kept,
                "can_create": grants,
                "tokens": tokens,
            },
        )

    def rollback(self, ctx: ActionContext, params: ServiceAccountParams, applied: dict[str, Any]) -> None:
        """Restore the bindings; deleted token Secrets are not restorable (declared in the plan)."""
        require_live(ctx, self.spec)
        _rollback_all(ctx, applied)

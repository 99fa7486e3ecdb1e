"""`k8s.secrets_worklist`: the Secrets a compromised identity could read, as a rotation worklist.

Why SubjectAccessReview and not impersonation: a review asks the API server's own authorizer about the
identity we name (RBAC, and on EKS access policies too) without acting as it, so it needs no `impersonate`
grant and leaves no attacker-attributed audit events. Why `create pods` counts: whoever can create a pod in
a namespace can mount any Secret of that namespace, so all of them must be rotated. Why tables: Secrets are
listed as server-side tables with metadata only (`as=Table`, `includeObject=Metadata`), so the Secret
values never reach this process, let alone the case record (the `list secrets` grant is still needed).
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
from eksir.actions.containment.casework import to_json
from eksir.actions.containment.k8s_bindings import REVIEW_RULE, can, effective_groups
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
READ_VERBS = ("get", "list", "watch")
SECRET_LIST_RULE = RbacRule(("",), ("secrets",), ("list",))


def secret_rows(
    ctx: ActionContext, namespace: str, field_selector: str | None = None
) -> list[dict[str, Any]]:
    """Secrets of a namespace as {name, type, metadata}, never their data. Raises PermissionDeniedError."""
    api = ctx.k8s()
    query: list[tuple[str, str]] = [("includeObject", "Metadata")]
    if field_selector:
        query.append(("fieldSelector", field_selector))
    with k8s_call(f"list Secrets (metadata only) in {namespace}"):
        table = api.call_api(
            "/api/v1/namespaces/{namespace}/secrets",
            "GET",
            path_params={"namespace": namespace},
            query_params=query,
            header_params={"Accept": TABLE},
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
    columns = [c.get("name") for c in table.get("columnDefinitions") or []]
    type_at = columns.index("Type") if "Type" in columns else None
    rows = []
    for row in table.get("rows") or []:
        meta = dict((row.get("object") or {}).get("metadata") or {})
        cells = row.get("cells") or []
        rows.append(
            {
                "name": meta.get("name") or cells[0],
                "type": cells[type_at] if type_at is not None and type_at < len(cells) else None,
                "metadata": meta,
            }
        )
    return rows


class SecretsWorklistParams(ActionParams):
    username: str = Field(min_length=1, max_length=512)
    groups: list[str] = Field(default_factory=list)
    mounted_on_node: list[str] = Field(default_factory=list, max_length=5000)
    """namespace/name of every Secret a pod on the attacked node mounts or references: root there reads
    them all, whatever the actor's RBAC allows."""
    node_tokens: list[str] = Field(default_factory=list, max_length=5000)
    """Projected service-account tokens on the node ("namespace/account: pod: audience")."""


def _namespaces(ctx: ActionContext) -> list[str]:
    api = ctx.k8s()
    with k8s_call("list namespaces"):
        items = to_json(api, core(api).list_namespace()).get("items", [])
    return sorted(n["metadata"]["name"] for n in items)


def _namespace_access(ctx: ActionContext, user: str, groups: list[str], namespace: str) -> str | None:
    """Why every Secret of the namespace is readable (a granted verb, or pod creation), or None."""
    for verb in READ_VERBS:
        if can(ctx, user, groups, verb, "secrets", namespace=namespace):
            return f"rbac:{verb} secrets"
    if can(ctx, user, groups, "create", "pods", namespace=namespace):
        return "create pods (can mount any secret)"
    return None


def worklist(ctx: ActionContext, params: SecretsWorklistParams) -> dict[str, Any]:
    """Every readable Secret with the reason; namespaces where all are readable; per-name grants too."""
    groups = effective_groups(params.username, list(params.groups))
    everywhere = next(
        (
            f"rbac:{v} secrets cluster-wide"
            for v in READ_VERBS
            if can(ctx, params.username, groups, v, "secrets")
        ),
        None,
    )
    secrets: list[dict[str, Any]] = []
    whole: dict[str, str] = {}
    for namespace in _namespaces(ctx):
        why = everywhere or _namespace_access(ctx, params.username, groups, namespace)
        rows = secret_rows(ctx, namespace)
        if why:
            whole[namespace] = why
        for row in rows:
            reason = why
            if reason is None and can(
                ctx, params.username, groups, "get", "secrets", namespace=namespace, name=row["name"]
            ):
                reason = "rbac:get secret by name"
            if reason:
                secrets.append(
                    {"namespace": namespace, "name": row["name"], "type": row["type"], "via": reason}
                )
    listed = {(s["namespace"], s["name"]) for s in secrets}
    for ref in params.mounted_on_node:
        namespace, _, name = ref.partition("/")
        if (namespace, name) not in listed:
            listed.add((namespace, name))
            secrets.append({"namespace": namespace, "name": name, "type": None, "via": "mounted on the node"})
    return {
        "identity": {"username": params.username, "groups": groups},
        "namespaces_fully_readable": whole,
        "secrets": secrets,
        "count": len(secrets),
        "node_tokens": list(params.node_tokens),
    }


@register_action
class SecretsWorklist(Action[SecretsWorklistParams]):
    spec = ActionSpec(
        id="k8s.secrets_worklist",
        phase=Phase.CONTAINMENT,
        title="List the Secrets the identity could read (rotation worklist)",
        rbac=(REVIEW_RULE, RbacRule(("",), ("namespaces",), ("list",)), SECRET_LIST_RULE),
        destructive=False,
        reversible=True,
        description="Read-only: SubjectAccessReviews plus metadata-only Secret tables; no values are read.",
    )
    params_type = SecretsWorklistParams

    def check(self, ctx: ActionContext, params: SecretsWorklistParams) -> CheckOutcome:
        return CheckOutcome(ok=True, detail=f"secrets readable by {params.username} (read-only)")

    def plan(self, ctx: ActionContext, params: SecretsWorklistParams) -> PlannedChange:
        return PlannedChange(
            summary=f"List the Secrets {params.username} could read (nothing changes)",
            blast_radius=("none: read-only",),
            warnings=(
                "the worklist covers RBAC (and what the authorizer reports); credentials the pod read from "
                "its node or from cloud metadata are not Kubernetes Secrets and need their own rotation",
            ),
        )

    def apply(self, ctx: ActionContext, params: SecretsWorklistParams) -> dict[str, Any]:
        """Read-only, so allowed in a dry run too; the worklist is the step's result in the case."""
        return worklist(ctx, params)

    def verify(
        self, ctx: ActionContext, params: SecretsWorklistParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        ok = isinstance(applied.get("secrets"), list) and applied.get("count") == len(applied["secrets"])
        return VerifyOutcome(
            ok=ok,
            detail=f"{applied.get('count')} secrets to rotate" if ok else "the worklist record is incomplete",
            observed={"namespaces_fully_readable": sorted(applied.get("namespaces_fully_readable") or {})},
        )

    def rollback(self, ctx: ActionContext, params: SecretsWorklistParams, applied: dict[str, Any]) -> None:
        """Nothing was changed, so there is nothing to undo."""

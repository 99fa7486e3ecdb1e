"""`eks.grant_responder_access`: break-glass Kubernetes access for the responder's own AWS identity.

Why a step and not a manual prerequisite: at 3 a.m. the responder's role often has IAM rights but no access
entry or aws-auth mapping, so the first Kubernetes call answers 401/403 and nothing can be resolved. Granting
access is a change to production like any other: planned, approved, recorded, verified, and undone when the
case ends. The grant is the responder group (`eksir-responders`), which the cluster binds to the responder
ClusterRole that `eksir permissions` prints; never `system:masters`, never an EKS admin access policy.

Where the grant goes follows the cluster's authentication mode (DescribeCluster accessConfig): an access
entry where EKS consults them (API, API_AND_CONFIG_MAP), which needs only IAM rights (eks:CreateAccessEntry);
otherwise a mapping appended to kube-system/aws-auth, which needs someone who may already edit aws-auth, so
that edit is made with `admin_kubeconfig` (a cluster admin's kubeconfig) when given. Both carry the case id
(the entry's tag, an annotation naming the mapping), and rollback removes only what this case added: an entry
or mapping the principal had before is never touched, and `check` refuses rather than changing it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

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
from eksir.actions.containment import k8s_aws_auth as aws_auth
from eksir.actions.containment.casework import CASE_LABEL, require_live
from eksir.actions.containment.eks_access import CLUSTER_NAME_PATTERN
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.clients.k8s import api_client_from_kubeconfig, k8s_call
from eksir.clients.k8s_api import core
from eksir.errors import NotFoundError, PermissionDeniedError, RefusedError

RESPONDER_GROUP = "eksir-responders"
GRANT_ANNOTATION = "eksir.io/break-glass"
ARN_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:(user|role)/[\w+=,.@/-]+$"


class GrantParams(ActionParams):
    cluster_name: str = Field(pattern=CLUSTER_NAME_PATTERN)
    principal_arn: str = Field(pattern=ARN_PATTERN, max_length=2048)
    mode: Literal["access-entry", "aws-auth"]
    group: str = Field(default=RESPONDER_GROUP, pattern=r"^[a-z0-9][a-z0-9:.-]{0,62}$")
    admin_kubeconfig: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _kubeconfig_only_for_aws_auth(self) -> GrantParams:
        if self.group.startswith("system:"):
            raise ValueError("a break-glass group is never a system: group (EKS refuses them too)")
        if self.admin_kubeconfig and self.mode != "aws-auth":
            raise ValueError("admin_kubeconfig is only used to edit aws-auth")
        return self

    @property
    def map_name(self) -> Literal["mapRoles", "mapUsers"]:
        return "mapUsers" if ":user/" in self.principal_arn else "mapRoles"

    def mapping(self) -> dict[str, Any]:
        """The aws-auth entry: the role ARN without its path (as aws-auth matches), a traceable username."""
        if self.map_name == "mapUsers":
            return {"userarn": self.principal_arn, "username": "eksir-responder", "groups": [self.group]}
        role = aws_auth.canonical_arn(self.principal_arn)
        return {"rolearn": role, "username": "eksir-responder:{{SessionName}}", "groups": [self.group]}


def _entry(ctx: ActionContext, params: GrantParams) -> dict[str, Any] | None:
    try:
        with aws_call(f"describe access entry of {params.principal_arn} in {params.cluster_name}"):
            return dict(
                ctx.aws("eks").describe_access_entry(
                    clusterName=params.cluster_name, principalArn=params.principal_arn
                )["accessEntry"]
            )
    except NotFoundError:
        return None


def _ours(entry: dict[str, Any] | None, ctx: ActionContext) -> bool:
    return bool(entry and (entry.get("tags") or {}).get(CASE_LABEL) == ctx.case_id)


def _admin_ctx(ctx: ActionContext, params: GrantParams) -> ActionContext:
    """The context whose Kubernetes client edits aws-auth: the admin kubeconfig's, else the run's own."""
    if not params.admin_kubeconfig:
        return ctx
    api = api_client_from_kubeconfig(params.admin_kubeconfig)
    return dataclasses.replace(ctx, k8s=lambda: api)


def _grants(cm: dict[str, Any]) -> list[dict[str, Any]]:
    raw = (cm.get("metadata", {}).get("annotations") or {}).get(GRANT_ANNOTATION)
    return list(json.loads(raw)) if raw else []


def _set_grants(cm: dict[str, Any], grants: list[dict[str, Any]]) -> None:
    annotations = dict(cm["metadata"].get("annotations") or {})
    annotations.pop(GRANT_ANNOTATION, None)
    if grants:
        annotations[GRANT_ANNOTATION] = json.dumps(grants, sort_keys=True)
    cm["metadata"]["annotations"] = annotations


def _is_ours(grant: dict[str, Any], ctx: ActionContext, params: GrantParams) -> bool:
    return grant.get("case_id") == ctx.case_id and grant.get("arn") == params.principal_arn


def _mapped(cm: dict[str, Any], params: GrantParams) -> list[int]:
    """Indexes of the aws-auth entries that map the principal (any groups)."""
    entries = aws_auth.parse_map((cm.get("data") or {}).get(params.map_name))
    key = "userarn" if params.map_name == "mapUsers" else "rolearn"
    wanted = aws_auth.canonical_arn(params.principal_arn)
    return [i for i, e in enumerate(entries) if aws_auth.canonical_arn(str(e.get(key, ""))) == wanted]


def _append(text: str, entry: dict[str, Any]) -> str:
    """The map with `entry` appended; existing text kept byte for byte when it is a block list."""
    if aws_auth.split_entries(text) is None:
        return yaml.safe_dump([*aws_auth.parse_map(text), entry], sort_keys=False)
    body = text if not text or text.endswith("\n") else text + "\n"
    return body + yaml.safe_dump([entry], sort_keys=False)


@register_action
class GrantResponderAccess(Action[GrantParams]):
    spec = ActionSpec(
        id="eks.grant_responder_access",
        phase=Phase.CONTAINMENT,
        title="Break-glass: give the responder's AWS identity the responder group in the cluster",
        iam_actions=(
            "eks:DescribeAccessEntry",
            "eks:CreateAccessEntry",
            "eks:DeleteAccessEntry",
            "eks:TagResource",
        ),
        rbac=(RbacRule(("",), ("configmaps",), ("get", "update", "create")),),
        destructive=True,
        reversible=True,
        description="An access entry (or, on CONFIG_MAP clusters, an aws-auth mapping) tagged with the case, "
        "mapping the responder to the group bound to the eksir-responder ClusterRole; removed on rollback.",
    )
    params_type = GrantParams

    def check(self, ctx: ActionContext, params: GrantParams) -> CheckOutcome:
        bound = f"the group {params.group} must be bound to the ClusterRole of `eksir permissions`"
        if params.mode == "access-entry":
            entry = _entry(ctx, params)
            if entry is not None and not _ours(entry, ctx):
                return CheckOutcome(
                    ok=False,
                    detail=f"{params.principal_arn} already has an access entry (groups "
                    f"{entry.get('kubernetesGroups') or []}) that this case did not create: eksir does not "
                    "change it; add the group to it, or an access policy, by hand",
                )
            return CheckOutcome(
                ok=True,
                detail=f"access entry for {params.principal_arn}",
                warnings=(bound,),
                already_applied=entry is not None,
            )
        try:
            cm = aws_auth.read_aws_auth(_admin_ctx(ctx, params))
        except NotFoundError:
            return CheckOutcome(
                ok=True, detail="no aws-auth ConfigMap: it will be created", warnings=(bound,)
            )
        except PermissionDeniedError as exc:
            return CheckOutcome(
                ok=False,
                detail=f"{exc.message}: editing aws-auth needs a cluster admin (--break-glass-kubeconfig)",
            )
        ours = any(_is_ours(g, ctx, params) for g in _grants(cm))
        if _mapped(cm, params) and not ours:
            return CheckOutcome(
                ok=False,
                detail=f"{params.principal_arn} is already mapped in aws-auth {params.map_name}: eksir does "
                "not change a mapping it did not add; fix its groups by hand",
            )
        return CheckOutcome(
            ok=True, detail=f"aws-auth {params.map_name}", warnings=(bound,), already_applied=ours
        )

    def plan(self, ctx: ActionContext, params: GrantParams) -> PlannedChange:
        where = (
            f"access entry in {params.cluster_name} (tag {CASE_LABEL}={ctx.case_id})"
            if params.mode == "access-entry"
            else f"kube-system/aws-auth {params.map_name} entry (annotation {GRANT_ANNOTATION})"
        )
        warnings: tuple[str, ...] = ()
        if params.mode == "aws-auth" and not params.admin_kubeconfig:
            warnings = ("editing aws-auth needs a cluster admin: pass --break-glass-kubeconfig",)
        return PlannedChange(
            summary=f"Grant {params.principal_arn} the group {params.group} through an {where}",
            diff=(f"+ {params.principal_arn} -> groups [{params.group}]",),
            blast_radius=(f"only {params.principal_arn}; removed by rollback and when the case is closed",),
            warnings=warnings,
        )

    def apply(self, ctx: ActionContext, params: GrantParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        if params.mode == "access-entry":
            return self._create_entry(ctx, params)
        return self._map(ctx, params)

    def _create_entry(self, ctx: ActionContext, params: GrantParams) -> dict[str, Any]:
        if _ours(_entry(ctx, params), ctx):
            return {"mode": params.mode, "created": False}
        with aws_call(f"create access entry for {params.principal_arn} in {params.cluster_name}"):
            ctx.aws("eks").create_access_entry(
                clusterName=params.cluster_name,
                principalArn=params.principal_arn,
                kubernetesGroups=[params.group],
                tags={CASE_LABEL: ctx.case_id},
                type="STANDARD",
            )
        return {"mode": params.mode, "created": True}

    def _map(self, ctx: ActionContext, params: GrantParams) -> dict[str, Any]:
        admin = _admin_ctx(ctx, params)

        def mutate(cm: dict[str, Any]) -> dict[str, Any] | None:
            if any(_is_ours(g, ctx, params) for g in _grants(cm)):
                return None
            if _mapped(cm, params):
                raise RefusedError(
                    f"{self.spec.id}: {params.principal_arn} was mapped meanwhile; not changed"
                )
            data = cm.setdefault("data", {})
            data[params.map_name] = _append(str(data.get(params.map_name) or ""), params.mapping())
            _set_grants(cm, [*_grants(cm), {"case_id": ctx.case_id, "arn": params.principal_arn}])
            return cm

        try:
            _before, after = aws_auth.update_with_retry(admin, mutate, f"map {params.principal_arn}")
        except NotFoundError:
            body = {"metadata": {"name": aws_auth.NAME, "namespace": aws_auth.NAMESPACE}, "data": {}}
            created = mutate(body)
            with k8s_call("create ConfigMap kube-system/aws-auth"):
                core(admin.k8s()).create_namespaced_config_map(aws_auth.NAMESPACE, created)
            return {"mode": params.mode, "created": True, "created_configmap": True}
        return {"mode": params.mode, "created": after is not None}

    def verify(self, ctx: ActionContext, params: GrantParams, applied: dict[str, Any]) -> VerifyOutcome:
        if params.mode == "access-entry":
            entry = _entry(ctx, params)
            groups = list((entry or {}).get("kubernetesGroups") or [])
            ok = _ours(entry, ctx) and params.group in groups
            return VerifyOutcome(ok=ok, detail=f"access entry groups {groups}", observed={"groups": groups})
        cm = aws_auth.read_aws_auth(_admin_ctx(ctx, params))
        found = _mapped(cm, params)
        entries = aws_auth.parse_map((cm.get("data") or {}).get(params.map_name))
        ok = any(params.group in (entries[i].get("groups") or []) for i in found)
        return VerifyOutcome(
            ok=ok, detail=f"{len(found)} aws-auth {params.map_name} entr(ies) for the responder"
        )

    def rollback(self, ctx: ActionContext, params: GrantParams, applied: dict[str, Any]) -> None:
        """Remove what this case added (found by its tag or annotation, so a lost record does not matter)."""
        require_live(ctx, self.spec)
        if params.mode == "access-entry":
            if _ours(_entry(ctx, params), ctx):
                with aws_call(f"delete the break-glass access entry of {params.principal_arn}"):
                    ctx.aws("eks").delete_access_entry(
                        clusterName=params.cluster_name, principalArn=params.principal_arn
                    )
            return

        def mutate(cm: dict[str, Any]) -> dict[str, Any] | None:
            if not any(_is_ours(g, ctx, params) for g in _grants(cm)):
                return None
            text = str((cm.get("data") or {}).get(params.map_name) or "")
            entries = aws_auth.parse_map(text)
            mine = [i for i in _mapped(cm, params) if entries[i].get("groups") == [params.group]]
            cm["data"][params.map_name], _removed = aws_auth._remove(text, mine)
            _set_grants(cm, [g for g in _grants(cm) if not _is_ours(g, ctx, params)])
            return cm

        try:
            aws_auth.update_with_retry(_admin_ctx(ctx, params), mutate, f"unmap {params.principal_arn}")
        except NotFoundError:
            return

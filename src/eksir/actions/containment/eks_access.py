"""`eks.delete_access_entry`: remove the attacker principal's EKS access entry, keeping a restorable backup.

Why this step exists at all: an IAM Deny does not stop EKS tokens (they are presigned GetCallerIdentity
calls, which work under an explicit Deny), and with `API_AND_CONFIG_MAP` the access entry overrides any
aws-auth mapping for the same principal. Only deleting the entry cuts the principal's Kubernetes access.

Why the backup: DeleteAccessEntry also removes the entry's policy associations, and nothing in AWS remembers
them. The entry (groups, username, type, tags) and every associated access policy with its scope are read
first and returned as the before-state, and also written into the case (when the engine passed one), so the
backup survives a process that dies between the delete and the engine persisting the applied record.
Entries that are not `STANDARD` (node, Fargate, hybrid) are EKS-managed and shared: deleting one breaks every
node that uses it, so `check` refuses them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    VerifyOutcome,
)
from eksir.actions.containment.casework import require_live
from eksir.actions.evidence.case_evidence import find_evidence, record_evidence
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

CLUSTER_NAME_PATTERN = r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$"
PRINCIPAL_ARN_PATTERN = r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]+$"
_READ_ONLY_ENTRY_FIELDS = ("clusterName", "principalArn", "accessEntryArn", "createdAt", "modifiedAt")


class DeleteAccessEntryParams(ActionParams):
    cluster_name: str = Field(pattern=CLUSTER_NAME_PATTERN)
    principal_arn: str = Field(pattern=PRINCIPAL_ARN_PATTERN, max_length=2048)


def backup_name(params: DeleteAccessEntryParams) -> str:
    """The case artefact holding the backup; one name per cluster and principal."""
    principal = params.principal_arn.rsplit(":", 1)[-1].replace("/", "_")
    return f"access-entry-backup-{params.cluster_name}-{principal}.json"


def read_entry(ctx: ActionContext, params: DeleteAccessEntryParams) -> dict[str, Any] | None:
    """The access entry as DescribeAccessEntry returns it (dates as text), or None when there is none.

    Raises PermissionDeniedError, TemporaryError or another eksir error for anything but not-found.
    """
    try:
        with aws_call(f"describe access entry of {params.principal_arn} in {params.cluster_name}"):
            entry = ctx.aws("eks").describe_access_entry(
                clusterName=params.cluster_name, principalArn=params.principal_arn
            )["accessEntry"]
    except NotFoundError:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in entry.items()}


def read_policies(ctx: ActionContext, params: DeleteAccessEntryParams) -> list[dict[str, Any]]:
    """Every access policy associated with the entry, with its scope (all pages)."""
    with aws_call(f"list access policies of {params.principal_arn} in {params.cluster_name}"):
        pages = (
            ctx.aws("eks")
            .get_paginator("list_associated_access_policies")
            .paginate(clusterName=params.cluster_name, principalArn=params.principal_arn)
        )
        policies = [p for page in pages for p in page.get("associatedAccessPolicies", [])]
    return [
        {"policyArn": p["policyArn"], "accessScope": _scope(p.get("accessScope") or {"type": "cluster"})}
        for p in policies
    ]


def _scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"type": scope.get("type", "cluster")}
    if scope.get("namespaces"):
        result["namespaces"] = list(scope["namespaces"])
    return result


def _recreate_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """CreateAccessEntry arguments that rebuild `entry` (same groups, username, type and tags)."""
    kwargs: dict[str, Any] = {"clusterName": entry["clusterName"], "principalArn": entry["principalArn"]}
    if entry.get("kubernetesGroups"):
        kwargs["kubernetesGroups"] = list(entry["kubernetesGroups"])
    if entry.get("username"):
        kwargs["username"] = entry["username"]
    if entry.get("type"):
        kwargs["type"] = entry["type"]
    tags = {k: v for k, v in (entry.get("tags") or {}).items() if not k.startswith("aws:")}
    if tags:
        kwargs["tags"] = tags
    return kwargs


@register_action
class DeleteAccessEntry(Action[DeleteAccessEntryParams]):
    spec = ActionSpec(
        id="eks.delete_access_entry",
        phase=Phase.CONTAINMENT,
        title="Delete the principal's EKS access entry (backed up for rollback)",
        iam_actions=(
            "eks:DescribeAccessEntry",
            "eks:ListAssociatedAccessPolicies",
            "eks:DeleteAccessEntry",
            "eks:CreateAccessEntry",
            "eks:AssociateAccessPolicy",
            "eks:TagResource",
        ),
        destructive=True,
        reversible=True,
        description="Backs up the entry and its access policies, deletes it; rollback recreates both.",
    )
    params_type = DeleteAccessEntryParams

    def check(self, ctx: ActionContext, params: DeleteAccessEntryParams) -> CheckOutcome:
        entry = read_entry(ctx, params)
        if entry is None:
            return CheckOutcome(
                ok=True,
                detail=f"{params.principal_arn} has no access entry in {params.cluster_name}: nothing to do",
                already_applied=True,
            )
        kind = str(entry.get("type") or "STANDARD")
        if kind != "STANDARD":
            return CheckOutcome(
                ok=False,
                detail=f"the access entry of {params.principal_arn} is of type {kind}: EKS manages it for "
                "nodes/Fargate and deleting it breaks every node that uses it; contain the node instead",
            )
        return CheckOutcome(
            ok=True,
            detail=f"{params.principal_arn} has a {kind} access entry in {params.cluster_name} "
            f"(groups {entry.get('kubernetesGroups') or []}, username {entry.get('username')})",
            warnings=(
                "the principal may also be mapped in aws-auth: remove that mapping too, or it regains "
                "access once the entry is gone (API_AND_CONFIG_MAP)",
                "EKS access entry changes are eventually consistent (several seconds)",
            ),
        )

    def plan(self, ctx: ActionContext, params: DeleteAccessEntryParams) -> PlannedChange:
        entry = read_entry(ctx, params)
        if entry is None:
            return PlannedChange(summary=f"Nothing to delete: {params.principal_arn} has no access entry")
        policies = read_policies(ctx, params)
        return PlannedChange(
            summary=f"Delete the access entry of {params.principal_arn} in cluster {params.cluster_name}",
            diff=(
                f"- access entry {params.principal_arn}: type {entry.get('type')}, username "
                f"{entry.get('username')}, groups {entry.get('kubernetesGroups') or []}",
                *(
                    f"- access policy {p['policyArn']} ({json.dumps(p['accessScope'], sort_keys=True)})"
                    for p in policies
                ),
            ),
            blast_radius=(
                f"everyone using {params.principal_arn} loses Kubernetes API access to {params.cluster_name}",
            ),
        )

    def apply(self, ctx: ActionContext, params: DeleteAccessEntryParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        entry = read_entry(ctx, params)
        if entry is None:
            return self._already_gone(ctx, params)
        backup = {"entry": entry, "policies": read_policies(ctx, params)}
        evidence = record_evidence(
            ctx,
            backup_name(params),
            json.dumps(backup, sort_keys=True, indent=2).encode(),
            source=f"eks:DescribeAccessEntry+ListAssociatedAccessPolicies {params.cluster_name}",
            description=f"Backup of the access entry of {params.principal_arn} before eksir deleted it "
            "(rollback recreates it from this).",
        )
        try:
            with aws_call(f"delete access entry of {params.principal_arn} in {params.cluster_name}"):
                ctx.aws("eks").delete_access_entry(
                    clusterName=params.cluster_name, principalArn=params.principal_arn
                )
        except NotFoundError:
            pass  # deleted meanwhile (another responder): the goal holds and the backup is kept
        return {"deleted": True, **backup, "backup_evidence": evidence}

    def _already_gone(self, ctx: ActionContext, params: DeleteAccessEntryParams) -> dict[str, Any]:
        """No entry: either there never was one, or an earlier (interrupted) apply deleted it."""
        saved = find_evidence(ctx, backup_name(params))
        if saved is not None:
            backup = json.loads(saved)
            return {
                "deleted": True,
                "entry": backup["entry"],
                "policies": backup["policies"],
                "resumed": True,
            }
        return {"deleted": False, "entry": None, "policies": []}

    def verify(
        self, ctx: ActionContext, params: DeleteAccessEntryParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        entry = read_entry(ctx, params)
        if entry is None:
            return VerifyOutcome(
                ok=True,
                detail=f"DescribeAccessEntry for {params.principal_arn}: ResourceNotFoundException",
                observed={"entry": None},
            )
        return VerifyOutcome(
            ok=False,
            detail=f"the access entry of {params.principal_arn} still exists",
            observed={"entry": entry},
        )

    def rollback(self, ctx: ActionContext, params: DeleteAccessEntryParams, applied: dict[str, Any]) -> None:
        """Recreate the entry (unless it exists again) and re-associate every backed-up policy."""
        require_live(ctx, self.spec)
        entry = applied.get("entry")
        if not applied.get("deleted") or not entry:
            return
        eks = ctx.aws("eks")
        if read_entry(ctx, params) is None:
            with aws_call(f"recreate access entry of {params.principal_arn}"):
                eks.create_access_entry(**_recreate_kwargs(entry))
        for policy in applied.get("policies", []):
            with aws_call(f"re-associate {policy['policyArn']} with {params.principal_arn}"):
                eks.associate_access_policy(
                    clusterName=params.cluster_name,
                    principalArn=params.principal_arn,
                    policyArn=policy["policyArn"],
                    accessScope=policy["accessScope"],
                )

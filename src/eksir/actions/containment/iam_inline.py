"""Inline policies on an IAM role or user: read, put, delete, with one code path for both principal kinds.

Why shared: every credential containment eksir does in IAM is an inline Deny it owns (revoke older sessions
of a role or of a user, deny a node role's credentials used from one instance), recorded with the document it
replaced and undone by restoring that document (or deleting the policy when there was none). Role and user
differ only in the API names, so the difference lives here once and the actions stay about the policy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from eksir.actions.base import ActionContext
from eksir.clients.aws import aws_call

PrincipalKind = Literal["role", "user"]

_CALLS: dict[PrincipalKind, tuple[str, str, str, str, str]] = {
    # list, get, put, delete, the name parameter
    "role": ("list_role_policies", "get_role_policy", "put_role_policy", "delete_role_policy", "RoleName"),
    "user": ("list_user_policies", "get_user_policy", "put_user_policy", "delete_user_policy", "UserName"),
}


def read_inline(ctx: ActionContext, kind: PrincipalKind, name: str, policy: str) -> dict[str, Any] | None:
    """The inline policy document, or None when the principal has no policy of that name.

    Raises NotFoundError when the principal itself does not exist, other eksir errors from IAM.
    """
    list_op, get_op, _, _, key = _CALLS[kind]
    iam: Any = ctx.aws("iam")  # the operation names are chosen per kind, so untyped here
    with aws_call(f"list inline policies of {kind} {name}"):
        pages = iam.get_paginator(list_op).paginate(**{key: name})
        names = [n for page in pages for n in page["PolicyNames"]]
    if policy not in names:
        return None
    with aws_call(f"read policy {policy} of {kind} {name}"):
        document = getattr(iam, get_op)(**{key: name, "PolicyName": policy})["PolicyDocument"]
    # boto3 decodes the URL-encoded document to a dict; older stacks hand back the JSON text.
    return json.loads(document) if isinstance(document, str) else dict(document)


def put_inline(
    ctx: ActionContext, kind: PrincipalKind, name: str, policy: str, document: dict[str, Any]
) -> None:
    """Create or replace the inline policy. Raises eksir errors from IAM (a malformed document: BadInput)."""
    _, _, put_op, _, key = _CALLS[kind]
    with aws_call(f"put policy {policy} on {kind} {name}"):
        getattr(ctx.aws("iam"), put_op)(
            **{key: name, "PolicyName": policy, "PolicyDocument": json.dumps(document)}
        )


def restore_inline(
    ctx: ActionContext, kind: PrincipalKind, name: str, policy: str, previous: dict[str, Any] | None
) -> None:
    """Put back the document recorded before eksir's change, or delete eksir's policy when there was none."""
    if previous is not None:
        put_inline(ctx, kind, name, policy, previous)
        return
    if read_inline(ctx, kind, name, policy) is None:
        return
    _, _, _, delete_op, key = _CALLS[kind]
    with aws_call(f"delete policy {policy} of {kind} {name}"):
        getattr(ctx.aws("iam"), delete_op)(**{key: name, "PolicyName": policy})


def case_sid(prefix: str, case_id: str) -> str:
    """A statement id naming the case (IAM allows only letters and digits in a Sid)."""
    return prefix + "".join(ch for ch in case_id if ch.isalnum())[:64]


def iso_cutoff(moment: datetime) -> str:
    """The `aws:TokenIssueTime` value IAM compares: UTC, second precision, trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def revoke_document(cutoff: datetime, sid: str | None = None) -> dict[str, Any]:
    """The console's "Revoke active sessions" policy: deny everything to sessions issued before `cutoff`.

    A request signed with long-term keys has no `aws:TokenIssueTime`, so on a user this denies only the
    temporary sessions minted from the user's keys (GetSessionToken, GetFederationToken), never the keys.
    """
    statement: dict[str, Any] = {
        "Effect": "Deny",
        "Action": ["*"],
        "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": iso_cutoff(cutoff)}},
    }
    if sid:
        statement = {"Sid": sid, **statement}
    return {"Version": "2012-10-17", "Statement": [statement]}


def statement_sids(document: dict[str, Any] | None) -> set[str]:
    """Every Sid in a document (a single statement object or a list)."""
    if not document:
        return set()
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return {str(s.get("Sid")) for s in statements if isinstance(s, dict) and s.get("Sid")}


NOT_EKS_WARNING = (
    "an IAM deny does not cut Kubernetes API access: EKS authenticates with a presigned "
    "sts:GetCallerIdentity, which works under an explicit Deny; also remove the principal's EKS access "
    "entry / aws-auth mapping"
)

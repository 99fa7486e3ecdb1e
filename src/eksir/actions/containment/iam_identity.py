"""Containment of AWS identities: deactivate a leaked access key (every key of its user), refuse what
UpdateAccessKey cannot contain; session revocation lives in iam_sessions.

Why every key of the user and not only the finding's: whoever used one key of a user can have created or
read the others (CreateAccessKey is a classic persistence step), so the user is contained, not the key. Why
`ASIA` keys are refused here: they are temporary session credentials, UpdateAccessKey cannot find them, and
the plan routes them to session revocation of their user or role instead. Why root is refused: the root
user's permissions cannot be changed by policy and its keys cannot be managed by a responder role; the
refusal names the runbook.

Why deactivate and not delete: `UpdateAccessKey Inactive` is reversible and keeps the key id for the
CloudTrail hunt; deletion is eradication, after consumers have moved to a new key. Why a TokenIssueTime deny
and not a trust change: it is exactly what the console's "Revoke active sessions" does (inline policy
`AWSRevokeOlderSessions`), so responders and auditors recognise it. Neither cuts Kubernetes API access: EKS
authenticates with a presigned `sts:GetCallerIdentity`, which works under an explicit Deny, so the plan says
so and points at the access entry / aws-auth actions.
"""

from __future__ import annotations

from typing import Any, Literal

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
from eksir.actions.containment.iam_inline import NOT_EKS_WARNING
from eksir.actions.containment.iam_sessions import (
    REVOKE_POLICY_NAME,
    ROOT_REFUSAL,
    RevokeRoleSessions,
    RevokeRoleSessionsParams,
    RevokeUserSessions,
    RevokeUserSessionsParams,
    revoke_policy_document,
)
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import CaseInvalidError, NotFoundError

ROTATION_WORKLIST = (
    "rotation worklist: 1) create a second access key for the user",
    "2) update every consumer (applications, CI, ~/.aws/credentials) to the new key",
    "3) delete the compromised key once nothing uses it (check its last-used date)",
)


class DeactivateAccessKeyParams(ActionParams):
    user_name: str = Field(min_length=1, max_length=64)
    access_key_id: str = Field(pattern=r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")
    every_key: bool = False
    """Deactivate every access key of the user (the playbook's choice), not only `access_key_id`."""


def _user_keys(ctx: ActionContext, user_name: str) -> dict[str, str]:
    """Key id -> status (Active/Inactive) of every access key of the user.

    Raises NotFoundError when the user does not exist, other eksir errors from IAM.
    """
    iam = ctx.aws("iam")
    with aws_call(f"list access keys of IAM user {user_name}"):
        pages = iam.get_paginator("list_access_keys").paginate(UserName=user_name)
        return {str(k["AccessKeyId"]): str(k["Status"]) for page in pages for k in page["AccessKeyMetadata"]}


def refusal(params: DeactivateAccessKeyParams) -> str | None:
    """Why UpdateAccessKey cannot contain this key (root, a temporary key), or None."""
    if params.user_name == "root" or params.user_name.endswith(":root"):
        return ROOT_REFUSAL
    if params.access_key_id.startswith("ASIA"):
        return (
            f"{params.access_key_id} is a temporary (ASIA) session key: UpdateAccessKey cannot find it; "
            "revoke the sessions of its user or role instead (iam.revoke_user_sessions / "
            "iam.revoke_role_sessions)"
        )
    return None


KeyStatus = Literal["Active", "Inactive", "Expired"]
KEY_STATUSES: tuple[KeyStatus, ...] = ("Active", "Inactive", "Expired")


def _key_status_value(recorded: object) -> KeyStatus:
    """The status recorded at apply (as IAM reported it), in the form UpdateAccessKey takes.

    Raises CaseInvalidError for any other value: this action never records one, so the record was altered.
    """
    for status in KEY_STATUSES:
        if recorded == status:
            return status
    raise CaseInvalidError(f"recorded access key status {recorded!r} is not one IAM reports")


def _targets(ctx: ActionContext, params: DeactivateAccessKeyParams) -> dict[str, str]:
    """Key id -> status of the keys this step deactivates (raises NotFoundError for a missing key)."""
    keys = _user_keys(ctx, params.user_name)
    if params.access_key_id not in keys:
        raise NotFoundError(f"IAM user {params.user_name} has no access key {params.access_key_id}")
    return keys if params.every_key else {params.access_key_id: keys[params.access_key_id]}


def _set_status(ctx: ActionContext, user: str, key_id: str, status: KeyStatus) -> None:
    with aws_call(f"set access key {key_id} of {user} {status}"):
        ctx.aws("iam").update_access_key(UserName=user, AccessKeyId=key_id, Status=status)


@register_action
class DeactivateAccessKey(Action[DeactivateAccessKeyParams]):
    spec = ActionSpec(
        id="iam.deactivate_access_key",
        phase=Phase.CONTAINMENT,
        title="Deactivate a compromised IAM user's access keys",
        iam_actions=("iam:ListAccessKeys", "iam:UpdateAccessKey"),
        destructive=True,
        reversible=True,
        description="Sets the keys Inactive (reversible); deletion is left to eradication after rotation.",
    )
    params_type = DeactivateAccessKeyParams

    def check(self, ctx: ActionContext, params: DeactivateAccessKeyParams) -> CheckOutcome:
        refused = refusal(params)
        if refused is not None:
            return CheckOutcome(ok=False, detail=refused)
        try:
            keys = _targets(ctx, params)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        warnings = (
            "temporary credentials already minted from these keys (GetSessionToken, AssumeRole) stay valid "
            "until they expire: revoke the user's and the assumed roles' sessions",
            NOT_EKS_WARNING,
        )
        listed = ", ".join(f"{k} {s}" for k, s in sorted(keys.items()))
        return CheckOutcome(
            ok=True,
            detail=f"access keys of {params.user_name}: {listed}",
            warnings=warnings,
            already_applied=all(s == "Inactive" for s in keys.values()),
        )

    def plan(self, ctx: ActionContext, params: DeactivateAccessKeyParams) -> PlannedChange:
        keys = _targets(ctx, params)
        diff = [f"access key {k}: - Status: {s}  + Status: Inactive" for k, s in sorted(keys.items())]
        if not params.every_key:
            diff = [f"- Status: {keys[params.access_key_id]}", "+ Status: Inactive"]
        which = "every access key" if params.every_key else f"access key {params.access_key_id}"
        return PlannedChange(
            summary=f"Deactivate {which} of IAM user {params.user_name}",
            diff=(*diff, *ROTATION_WORKLIST),
            blast_radius=tuple(f"every application or person using key {k} loses AWS access" for k in keys),
            warnings=(NOT_EKS_WARNING,),
        )

    def apply(self, ctx: ActionContext, params: DeactivateAccessKeyParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        keys = _targets(ctx, params)
        for key_id, status in keys.items():
            if status != "Inactive":
                _set_status(ctx, params.user_name, key_id, "Inactive")
        return {
            "user_name": params.user_name,
            "access_key_id": params.access_key_id,
            "previous_status": keys[params.access_key_id],
            "previous_statuses": keys,
        }

    def verify(
        self, ctx: ActionContext, params: DeactivateAccessKeyParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        keys = _user_keys(ctx, params.user_name)
        watched = keys if params.every_key else {params.access_key_id: keys.get(params.access_key_id, "gone")}
        active = sorted(k for k, s in watched.items() if s == "Active")
        detail = (
            f"still active: {', '.join(active)}"
            if active
            else f"access key(s) {', '.join(sorted(watched))} of {params.user_name} inactive"
        )
        return VerifyOutcome(ok=not active, detail=detail, observed={"statuses": watched})

    def rollback(
        self, ctx: ActionContext, params: DeactivateAccessKeyParams, applied: dict[str, Any]
    ) -> None:
        require_live(ctx, self.spec)
        previous = applied.get("previous_statuses") or {
            params.access_key_id: applied.get("previous_status", "Inactive")
        }
        current = _user_keys(ctx, params.user_name)
        for key_id, recorded in previous.items():
            status = _key_status_value(recorded)
            if key_id in current and current[key_id] != status:
                _set_status(ctx, params.user_name, key_id, status)


__all__ = [
    "REVOKE_POLICY_NAME",
    "DeactivateAccessKey",
    "DeactivateAccessKeyParams",
    "RevokeRoleSessions",
    "RevokeRoleSessionsParams",
    "RevokeUserSessions",
    "RevokeUserSessionsParams",
    "revoke_policy_document",
]

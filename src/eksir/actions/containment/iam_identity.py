"""Containment of AWS identities: deactivate a leaked access key, revoke a role's older sessions.

Why deactivate and not delete: `UpdateAccessKey Inactive` is reversible and keeps the key id for the
CloudTrail hunt; deletion is eradication, after consumers have moved to a new key. Why a TokenIssueTime deny
and not a trust change: it is exactly what the console's "Revoke active sessions" does (inline policy
`AWSRevokeOlderSessions`), so responders and auditors recognise it. Neither cuts Kubernetes API access: EKS
authenticates with a presigned `sts:GetCallerIdentity`, which works under an explicit Deny, so the plan says
so and points at the access entry / aws-auth actions.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any, Literal

from pydantic import AwareDatetime, Field

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
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import CaseInvalidError, NotFoundError

REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"
ROTATION_WORKLIST = (
    "rotation worklist: 1) create a second access key for the user",
    "2) update every consumer (applications, CI, ~/.aws/credentials) to the new key",
    "3) delete the compromised key once nothing uses it (check its last-used date)",
)
NOT_EKS_WARNING = (
    "an IAM deny does not cut Kubernetes API access: EKS authenticates with a presigned "
    "sts:GetCallerIdentity, which works under an explicit Deny; also remove the principal's EKS access "
    "entry / aws-auth mapping"
)


class DeactivateAccessKeyParams(ActionParams):
    user_name: str = Field(min_length=1, max_length=64)
    access_key_id: str = Field(pattern=r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")


def _key_status(ctx: ActionContext, params: DeactivateAccessKeyParams) -> str:
    """Current status (Active/Inactive) of the key; raises NotFoundError when the user has no such key."""
    iam = ctx.aws("iam")
    with aws_call(f"list access keys of IAM user {params.user_name}"):
        pages = iam.get_paginator("list_access_keys").paginate(UserName=params.user_name)
        keys = [k for page in pages for k in page["AccessKeyMetadata"]]
    for key in keys:
        if key["AccessKeyId"] == params.access_key_id:
            return str(key["Status"])
    raise NotFoundError(f"IAM user {params.user_name} has no access key {params.access_key_id}")


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


@register_action
class DeactivateAccessKey(Action[DeactivateAccessKeyParams]):
    spec = ActionSpec(
        id="iam.deactivate_access_key",
        phase=Phase.CONTAINMENT,
        title="Deactivate a compromised IAM access key",
        iam_actions=("iam:ListAccessKeys", "iam:UpdateAccessKey"),
        destructive=True,
        reversible=True,
        description="Sets the key Inactive (reversible); deletion is left to eradication after rotation.",
    )
    params_type = DeactivateAccessKeyParams

    def check(self, ctx: ActionContext, params: DeactivateAccessKeyParams) -> CheckOutcome:
        try:
            status = _key_status(ctx, params)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        warnings = (
            "temporary credentials already minted from this key (GetSessionToken, AssumeRole) stay valid "
            "until they expire: revoke sessions on the roles it assumed",
            NOT_EKS_WARNING,
        )
        return CheckOutcome(
            ok=True,
            detail=f"access key {params.access_key_id} of {params.user_name} is {status}",
            warnings=warnings,
            already_applied=status == "Inactive",
        )

    def plan(self, ctx: ActionContext, params: DeactivateAccessKeyParams) -> PlannedChange:
        status = _key_status(ctx, params)
        return PlannedChange(
            summary=f"Deactivate access key {params.access_key_id} of IAM user {params.user_name}",
            diff=(f"- Status: {status}", "+ Status: Inactive", *ROTATION_WORKLIST),
            blast_radius=(f"every application or person using key {params.access_key_id} loses AWS access",),
            warnings=(NOT_EKS_WARNING,),
        )

    def apply(self, ctx: ActionContext, params: DeactivateAccessKeyParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        previous = _key_status(ctx, params)
        if previous != "Inactive":
            with aws_call(f"deactivate access key {params.access_key_id}"):
                ctx.aws("iam").update_access_key(
                    UserName=params.user_name, AccessKeyId=params.access_key_id, Status="Inactive"
                )
        return {
            "user_name": params.user_name,
            "access_key_id": params.access_key_id,
            "previous_status": previous,
        }

    def verify(
        self, ctx: ActionContext, params: DeactivateAccessKeyParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        status = _key_status(ctx, params)
        return VerifyOutcome(
            ok=status == "Inactive",
            detail=f"access key {params.access_key_id} is {status}",
            observed={"status": status},
        )

    def rollback(
        self, ctx: ActionContext, params: DeactivateAccessKeyParams, applied: dict[str, Any]
    ) -> None:
        require_live(ctx, self.spec)
        previous = _key_status_value(applied.get("previous_status", "Inactive"))
        if _key_status(ctx, params) != previous:
            with aws_call(f"restore access key {params.access_key_id} to {previous}"):
                ctx.aws("iam").update_access_key(
                    UserName=params.user_name, AccessKeyId=params.access_key_id, Status=previous
                )


class RevokeRoleSessionsParams(ActionParams):
    role_name: str = Field(min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")
    issued_before: AwareDatetime


def revoke_policy_document(issued_before: AwareDatetime) -> dict[str, Any]:
    """The console's "Revoke active sessions" policy: deny everything to sessions issued before the cutoff."""
    cutoff = issued_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
            }
        ],
    }


def _current_policy(ctx: ActionContext, role_name: str) -> dict[str, Any] | None:
    """The role's AWSRevokeOlderSessions document or None; raises NotFoundError when the role is missing."""
    iam = ctx.aws("iam")
    with aws_call(f"list inline policies of role {role_name}"):
        names = [
            n
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
            for n in page["PolicyNames"]
        ]
    if REVOKE_POLICY_NAME not in names:
        return None
    with aws_call(f"read policy {REVOKE_POLICY_NAME} of role {role_name}"):
        document = iam.get_role_policy(RoleName=role_name, PolicyName=REVOKE_POLICY_NAME)["PolicyDocument"]
    # boto3 decodes the URL-encoded document to a dict; older stacks hand back the JSON text.
    return json.loads(document) if isinstance(document, str) else dict(document)


@register_action
class RevokeRoleSessions(Action[RevokeRoleSessionsParams]):
    spec = ActionSpec(
        id="iam.revoke_role_sessions",
        phase=Phase.CONTAINMENT,
        title="Revoke a role's sessions issued before a cutoff",
        iam_actions=(
            "iam:GetRole",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
        ),
        destructive=True,
        reversible=True,
        description="Inline deny policy AWSRevokeOlderSessions conditioned on aws:TokenIssueTime.",
    )
    params_type = RevokeRoleSessionsParams

    def check(self, ctx: ActionContext, params: RevokeRoleSessionsParams) -> CheckOutcome:
        try:
            with aws_call(f"read role {params.role_name}"):
                role = ctx.aws("iam").get_role(RoleName=params.role_name)["Role"]
        except NotFoundError:
            return CheckOutcome(ok=False, detail=f"IAM role {params.role_name} does not exist")
        if str(role.get("Path", "")).startswith("/aws-service-role/"):
            return CheckOutcome(
                ok=False,
                detail=f"{params.role_name} is a service-linked role: AWS does not "
                "allow revoking its sessions",
            )
        current = _current_policy(ctx, params.role_name)
        return CheckOutcome(
            ok=True,
            detail=f"role {role['Arn']} exists",
            warnings=self._warnings(),
            already_applied=current == revoke_policy_document(params.issued_before),
        )

    @staticmethod
    def _warnings() -> tuple[str, ...]:
        return (
            NOT_EKS_WARNING,
            "IRSA and Pod Identity can mint fresh sessions after the cutoff: break the role's trust "
            "(OIDC sub condition / pod identity association) or stop the pod as well",
            "every session of this role issued before the cutoff is denied, not only the attacker's "
            "(nodes and pods sharing the role included); IAM changes take a few minutes to apply",
        )

    def plan(self, ctx: ActionContext, params: RevokeRoleSessionsParams) -> PlannedChange:
        current = _current_policy(ctx, params.role_name)
        desired = json.dumps(revoke_policy_document(params.issued_before), sort_keys=True)
        before = "- (no policy)" if current is None else f"- {json.dumps(current, sort_keys=True)}"
        return PlannedChange(
            summary=f"Put inline policy {REVOKE_POLICY_NAME} on role {params.role_name}: deny sessions "
            f"issued before {params.issued_before.astimezone(UTC).isoformat()}",
            diff=(f"role {params.role_name} inline policy {REVOKE_POLICY_NAME}:", before, f"+ {desired}"),
            blast_radius=(f"every holder of a session of role {params.role_name} issued before the cutoff",),
            warnings=self._warnings(),
        )

    def apply(self, ctx: ActionContext, params: RevokeRoleSessionsParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        previous = _current_policy(ctx, params.role_name)
        desired = revoke_policy_document(params.issued_before)
        if previous != desired:
            with aws_call(f"put policy {REVOKE_POLICY_NAME} on role {params.role_name}"):
                ctx.aws("iam").put_role_policy(
                    RoleName=params.role_name,
                    PolicyName=REVOKE_POLICY_NAME,
                    PolicyDocument=json.dumps(desired),
                )
        return {"role_name": params.role_name, "previous_policy": previous, "policy": desired}

    def verify(
        self, ctx: ActionContext, params: RevokeRoleSessionsParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        current = _current_policy(ctx, params.role_name)
        ok = current == revoke_policy_document(params.issued_before)
        return VerifyOutcome(
            ok=ok,
            detail=f"{REVOKE_POLICY_NAME} on {params.role_name} "
            + ("denies sessions issued before the cutoff" if ok else "is missing or differs"),
            observed={"policy": current},
        )

    def rollback(self, ctx: ActionContext, params: RevokeRoleSessionsParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        previous = applied.get("previous_policy")
        iam = ctx.aws("iam")
        with aws_call(f"restore policy {REVOKE_POLICY_NAME} on role {params.role_name}"):
            if previous is not None:
                iam.put_role_policy(
                    RoleName=params.role_name,
                    PolicyName=REVOKE_POLICY_NAME,
                    PolicyDocument=json.dumps(previous),
                )
            elif _current_policy(ctx, params.role_name) is not None:
                iam.delete_role_policy(RoleName=params.role_name, PolicyName=REVOKE_POLICY_NAME)

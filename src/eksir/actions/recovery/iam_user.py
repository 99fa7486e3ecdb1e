"""Remove an IAM user the attacker created, with everything hanging off it; rollback rebuilds what it can.

Why this order: IAM refuses DeleteUser while the user still has a login profile, keys, signing certificates,
SSH public keys, service-specific credentials, MFA devices, attached or inline policies or group
memberships, so each is removed first, one recorded sub-step at a time (iam_user_parts.py).
Why rollback is only partial: a deleted access key's secret, a console password and an MFA seed cannot be
recreated, and the new user gets a new UserId; the applied record lists exactly those under
`not_restorable`, and the plan warns before approval.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from eksir.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    VerifyOutcome,
)
from eksir.actions.containment.casework import require_live
from eksir.actions.recovery.base import RecoveryAction, aws_or_none, paged
from eksir.actions.recovery.iam_user_parts import CREDENTIAL_PARTS, describe_parts, preserve, remove_parts
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call


class DeleteIamUserParams(ActionParams):
    user_name: str = Field(min_length=1, max_length=64)


def describe_user(iam: Any, name: str) -> dict[str, Any] | None:
    """User, keys, policies (attached and inline with documents), groups, login profile and MFA."""
    user = aws_or_none(f"get IAM user {name}", lambda: iam.get_user(UserName=name)["User"])
    if user is None:
        return None
    inline = paged(iam, "list_user_policies", "PolicyNames", UserName=name)
    profile = aws_or_none(
        f"get login profile of {name}", lambda: iam.get_login_profile(UserName=name)["LoginProfile"]
    )
    return {
        "user": user,
        "access_keys": paged(iam, "list_access_keys", "AccessKeyMetadata", UserName=name),
        "attached_policies": paged(iam, "list_attached_user_policies", "AttachedPolicies", UserName=name),
        "inline_policies": {
            p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"] for p in inline
        },
        "groups": [g["GroupName"] for g in paged(iam, "list_groups_for_user", "Groups", UserName=name)],
        "login_profile": json.loads(json.dumps(profile, default=str)) if profile else None,
        "mfa_devices": paged(iam, "list_mfa_devices", "MFADevices", UserName=name),
        "credentials": describe_parts(iam, name),
    }


def not_restorable(before: dict[str, Any]) -> list[str]:
    """What a rollback of this deletion cannot bring back, named exactly."""
    lost = [f"access key {k['AccessKeyId']} (its secret cannot be recreated)" for k in before["access_keys"]]
    if before.get("login_profile"):
        lost.append("the console password (login profile)")
    parts = before.get("credentials") or {}
    for part in CREDENTIAL_PARTS[1:]:  # access keys are named above
        lost += [f"{part.kind} {item.get(part.id_field)}" for item in parts.get(part.kind) or []]
    if not parts:  # a before-state recorded by an earlier version: MFA devices were listed on their own
        lost += [f"MFA device {d['SerialNumber']}" for d in before.get("mfa_devices") or []]
    lost.append(f"the original UserId {before['user'].get('UserId')} (a recreated user gets a new one)")
    return lost


@register_action
class DeleteIamUser(RecoveryAction[DeleteIamUserParams]):
    spec = ActionSpec(
        id="iam.delete_user",
        phase=Phase.RECOVERY,
        title="Delete an attacker-created IAM user (keys, policies, groups, login profile)",
        iam_actions=(
            "iam:GetUser",
            "iam:ListAccessKeys",
            "iam:DeleteAccessKey",
            "iam:ListAttachedUserPolicies",
            "iam:DetachUserPolicy",
            "iam:ListUserPolicies",
            "iam:GetUserPolicy",
            "iam:DeleteUserPolicy",
            "iam:ListGroupsForUser",
            "iam:RemoveUserFromGroup",
            "iam:GetLoginProfile",
            "iam:DeleteLoginProfile",
            "iam:ListMFADevices",
            "iam:DeactivateMFADevice",
            "iam:DeleteVirtualMFADevice",
            "iam:ListSigningCertificates",
            "iam:DeleteSigningCertificate",
            "iam:ListSSHPublicKeys",
            "iam:DeleteSSHPublicKey",
            "iam:ListServiceSpecificCredentials",
            "iam:DeleteServiceSpecificCredential",
            "iam:DeleteUser",
            "iam:CreateUser",
            "iam:AttachUserPolicy",
            "iam:PutUserPolicy",
            "iam:AddUserToGroup",
        ),
        destructive=True,
        reversible=True,
        description="Rollback recreates the user, its policies and groups; keys, password and MFA are lost.",
    )
    params_type = DeleteIamUserParams

    def describe(self, ctx: ActionContext, params: DeleteIamUserParams) -> dict[str, Any] | None:
        return describe_user(ctx.aws("iam"), params.user_name)

    def check(self, ctx: ActionContext, params: DeleteIamUserParams) -> CheckOutcome:
        found = self.describe(ctx, params)
        if found is None:
            return CheckOutcome(True, f"IAM user {params.user_name} is already gone", already_applied=True)
        return CheckOutcome(True, f"IAM user {params.user_name} exists ({len(found['access_keys'])} key(s))")

    def plan(self, ctx: ActionContext, params: DeleteIamUserParams) -> PlannedChange:
        found = self.describe(ctx, params)
        if found is None:
            return PlannedChange(f"nothing to do: IAM user {params.user_name} is gone")
        diff = [f"- access key {k['AccessKeyId']} ({k['Status']})" for k in found["access_keys"]]
        diff += [f"- attached policy {p['PolicyArn']}" for p in found["attached_policies"]]
        diff += [f"- inline policy {name}" for name in found["inline_policies"]]
        diff += [f"- member of group {g}" for g in found["groups"]]
        diff += ["- login profile"] if found["login_profile"] else []
        for kind, items in found["credentials"].items():
            if kind in ("access key", "unlisted"):
                continue
            diff += [f"- {kind} {json.dumps(item, sort_keys=True)[:160]}" for item in items]
        diff.append(f"- IAM user {params.user_name} ({found['user']['Arn']})")
        return PlannedChange(
            f"delete IAM user {params.user_name} and everything attached to it",
            diff=tuple(diff),
            warnings=tuple(f"rollback cannot restore {item}" for item in not_restorable(found)),
        )

    def apply(self, ctx: ActionContext, params: DeleteIamUserParams) -> dict[str, Any]:
        """Each removal is a sub-step preserved as evidence first; a resumed apply removes what is left."""
        require_live(ctx, self.spec)
        iam, name = ctx.aws("iam"), params.user_name
        before = self.describe(ctx, params)
        if before is None:
            return {"before": None, "deleted": False}
        done: list[str] = []
        if before["login_profile"]:
            preserve(ctx, name, "login profile", "console", before["login_profile"])
            with aws_call(f"delete the login profile of IAM user {name}"):
                iam.delete_login_profile(UserName=name)
            done.append("login profile")
        remove_parts(ctx, name, done)
        _remove_policies_and_groups(ctx, name, before, done)
        with aws_call(f"delete IAM user {name}"):
            iam.delete_user(UserName=name)
        done.append(f"user {name}")
        return {
            "before": before,
            "deleted": True,
            "sub_steps": done,
            "not_restorable": not_restorable(before),
        }

    def verify(
        self, ctx: ActionContext, params: DeleteIamUserParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        iam = ctx.aws("iam")
        user = aws_or_none(
            f"get IAM user {params.user_name}", lambda: iam.get_user(UserName=params.user_name)
        )
        if user is None:
            return VerifyOutcome(True, f"IAM user {params.user_name} no longer exists")
        return VerifyOutcome(False, f"IAM user {params.user_name} still exists")

    def rollback(self, ctx: ActionContext, params: DeleteIamUserParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        before = applied.get("before")
        if not before:
            return
        iam, name, user = ctx.aws("iam"), params.user_name, before["user"]
        with aws_call(f"recreate IAM user {name}"):
            kwargs: dict[str, Any] = {"UserName": name, "Path": user.get("Path", "/")}
            if user.get("Tags"):
                kwargs["Tags"] = user["Tags"]
            iam.create_user(**kwargs)
            for policy in before["attached_policies"]:
                iam.attach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
            for policy_name, document in before["inline_policies"].items():
                iam.put_user_policy(UserName=name, PolicyName=policy_name, PolicyDocument=_doc(document))
            for group in before["groups"]:
                iam.add_user_to_group(UserName=name, GroupName=group)


def _remove_policies_and_groups(
    ctx: ActionContext, name: str, before: dict[str, Any], done: list[str]
) -> None:
    """Detach, delete inline, leave groups: each preserved as evidence, then recorded in `done`."""
    iam = ctx.aws("iam")
    for policy in before["attached_policies"]:
        preserve(ctx, name, "attached policy", policy["PolicyArn"], policy)
        with aws_call(f"detach {policy['PolicyArn']} from IAM user {name}"):
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        done.append(f"attached policy {policy['PolicyArn']}")
    for policy_name, document in before["inline_policies"].items():
        preserve(ctx, name, "inline policy", policy_name, document)
        with aws_call(f"delete inline policy {policy_name} of IAM user {name}"):
            iam.delete_user_policy(UserName=name, PolicyName=policy_name)
        done.append(f"inline policy {policy_name}")
    for group in before["groups"]:
        with aws_call(f"remove IAM user {name} from group {group}"):
            iam.remove_user_from_group(UserName=name, GroupName=group)
        done.append(f"group {group}")


def _doc(document: Any) -> str:
    """IAM returns policy documents decoded (dict) through boto3; Put* wants the JSON text."""
    return document if isinstance(document, str) else json.dumps(document)

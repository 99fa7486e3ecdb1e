"""Access keys, roles and managed policies the attacker created, and policy attachments they added.

Why separate from the user action: an attacker often adds a key or an admin attachment to an *existing*
principal. Then only that key or attachment is removed (the principal is the victim's), and the before-state
is known exactly from the log: the attachment did not exist before the attacker's call.
"""

from __future__ import annotations

import json
from typing import Any, Literal

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
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call


def _doc(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class DeleteAccessKeyParams(ActionParams):
    user_name: str = Field(min_length=1, max_length=64)
    access_key_id: str = Field(pattern=r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")


@register_action
class DeleteAccessKey(RecoveryAction[DeleteAccessKeyParams]):
    spec = ActionSpec(
        id="iam.delete_access_key",
        phase=Phase.RECOVERY,
        title="Delete an access key the attacker created on an existing user",
        iam_actions=("iam:ListAccessKeys", "iam:DeleteAccessKey"),
        destructive=True,
        reversible=False,
        description="A deleted key's secret cannot be recreated.",
    )
    params_type = DeleteAccessKeyParams

    def describe(self, ctx: ActionContext, params: DeleteAccessKeyParams) -> dict[str, Any] | None:
        keys = aws_or_none(
            f"list access keys of {params.user_name}",
            lambda: paged(ctx.aws("iam"), "list_access_keys", "AccessKeyMetadata", UserName=params.user_name),
        )
        return next((k for k in keys or [] if k["AccessKeyId"] == params.access_key_id), None)

    def check(self, ctx: ActionContext, params: DeleteAccessKeyParams) -> CheckOutcome:
        key = self.describe(ctx, params)
        if key is None:
            return CheckOutcome(
                True, f"access key {params.access_key_id} is already gone", already_applied=True
            )
        return CheckOutcome(True, f"access key {params.access_key_id} is {key['Status']}")

    def plan(self, ctx: ActionContext, params: DeleteAccessKeyParams) -> PlannedChange:
        return PlannedChange(
            f"delete access key {params.access_key_id} of IAM user {params.user_name}",
            diff=(f"- access key {params.access_key_id}",),
            warnings=("a deleted access key cannot be restored",),
        )

    def apply(self, ctx: ActionContext, params: DeleteAccessKeyParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        before = self.describe(ctx, params)
        if before is not None:
            with aws_call(f"delete access key {params.access_key_id}"):
                ctx.aws("iam").delete_access_key(UserName=params.user_name, AccessKeyId=params.access_key_id)
        return {"before": before}

    def verify(
        self, ctx: ActionContext, params: DeleteAccessKeyParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        gone = self.describe(ctx, params) is None
        return VerifyOutcome(
            gone, f"access key {params.access_key_id} {'is gone' if gone else 'still exists'}"
        )

    def rollback(self, ctx: ActionContext, params: DeleteAccessKeyParams, applied: dict[str, Any]) -> None:
        return None  # not reversible: the engine refuses before calling this


class DeleteRoleParams(ActionParams):
    role_name: str = Field(min_length=1, max_length=64)


@register_action
class DeleteIamRole(RecoveryAction[DeleteRoleParams]):
    spec = ActionSpec(
        id="iam.delete_role",
        phase=Phase.RECOVERY,
        title="Delete an attacker-created IAM role (policies, instance profiles)",
        iam_actions=(
            "iam:GetRole",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListInstanceProfilesForRole",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:DeleteRole",
            "iam:CreateRole",
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
            "iam:AddRoleToInstanceProfile",
        ),
        destructive=True,
        reversible=True,
        description="Rollback recreates the role with its trust policy, policies and instance profiles.",
    )
    params_type = DeleteRoleParams

    def describe(self, ctx: ActionContext, params: DeleteRoleParams) -> dict[str, Any] | None:
        iam, name = ctx.aws("iam"), params.role_name
        role = aws_or_none(f"get IAM role {name}", lambda: iam.get_role(RoleName=name)["Role"])
        if role is None:
            return None
        inline = paged(iam, "list_role_policies", "PolicyNames", RoleName=name)
        return {
            "role": role,
            "attached_policies": paged(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name),
            "inline_policies": {
                p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"] for p in inline
            },
            "instance_profiles": [
                p["InstanceProfileName"]
                for p in paged(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=name)
            ],
        }

    def check(self, ctx: ActionContext, params: DeleteRoleParams) -> CheckOutcome:
        if self.describe(ctx, params) is None:
            return CheckOutcome(True, f"IAM role {params.role_name} is already gone", already_applied=True)
        return CheckOutcome(True, f"IAM role {params.role_name} exists")

    def plan(self, ctx: ActionContext, params: DeleteRoleParams) -> PlannedChange:
        found = self.describe(ctx, params) or {
            "attached_policies": [],
            "inline_policies": {},
            "instance_profiles": [],
        }
        diff = [f"- attached policy {p['PolicyArn']}" for p in found["attached_policies"]]
        diff += [f"- inline policy {n}" for n in found["inline_policies"]]
        diff += [f"- in instance profile {n}" for n in found["instance_profiles"]]
        return PlannedChange(
            f"delete IAM role {params.role_name}", diff=(*diff, f"- IAM role {params.role_name}")
        )

    def apply(self, ctx: ActionContext, params: DeleteRoleParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        iam, name = ctx.aws("iam"), params.role_name
        before = self.describe(ctx, params)
        if before is None:
            return {"before": None}
        with aws_call(f"delete IAM role {name}"):
            for profile in before["instance_profiles"]:
                iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=name)
            for policy in before["attached_policies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
            for policy_name in before["inline_policies"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
            iam.delete_role(RoleName=name)
        return {"before": before}

    def verify(self, ctx: ActionContext, params: DeleteRoleParams, applied: dict[str, Any]) -> VerifyOutcome:
        gone = self.describe(ctx, params) is None
        return VerifyOutcome(gone, f"IAM role {params.role_name} {'is gone' if gone else 'still exists'}")

    def rollback(self, ctx: ActionContext, params: DeleteRoleParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        before = applied.get("before")
        if not before:
            return
        iam, role, name = ctx.aws("iam"), before["role"], params.role_name
        with aws_call(f"recreate IAM role {name}"):
            iam.create_role(
                RoleName=name,
                Path=role.get("Path", "/"),
                AssumeRolePolicyDocument=_doc(role["AssumeRolePolicyDocument"]),
            )
            for policy in before["attached_policies"]:
                iam.attach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
            for policy_name, document in before["inline_policies"].items():
                iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=_doc(document))
            for profile in before["instance_profiles"]:
                iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=name)


class DeletePolicyParams(ActionParams):
    policy_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:policy/.+$")


@register_action
class DeleteIamPolicy(RecoveryAction[DeletePolicyParams]):
    spec = ActionSpec(
        id="iam.delete_policy",
        phase=Phase.RECOVERY,
        title="Delete an attacker-created managed policy (detached from every principal first)",
        iam_actions=(
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "iam:ListPolicyVersions",
            "iam:DeletePolicyVersion",
            "iam:ListEntitiesForPolicy",
            "iam:DetachUserPolicy",
            "iam:DetachRolePolicy",
            "iam:DetachGroupPolicy",
            "iam:DeletePolicy",
            "iam:CreatePolicy",
        ),
        destructive=True,
        reversible=True,
        description="Rollback recreates the policy with its default document and re-attaches it.",
    )
    params_type = DeletePolicyParams

    def describe(self, ctx: ActionContext, params: DeletePolicyParams) -> dict[str, Any] | None:
        iam, arn = ctx.aws("iam"), params.policy_arn
        policy = aws_or_none(f"get policy {arn}", lambda: iam.get_policy(PolicyArn=arn)["Policy"])
        if policy is None:
            return None
        versions = paged(iam, "list_policy_versions", "Versions", PolicyArn=arn)
        with aws_call(f"read policy {arn}"):
            documents = {
                v["VersionId"]: iam.get_policy_version(PolicyArn=arn, VersionId=v["VersionId"])[
                    "PolicyVersion"
                ]["Document"]
                for v in versions
            }
            entities = iam.list_entities_for_policy(PolicyArn=arn)
        return {
            "policy": policy,
            "versions": versions,
            "documents": documents,
            "users": [u["UserName"] for u in entities.get("PolicyUsers", [])],
            "roles": [r["RoleName"] for r in entities.get("PolicyRoles", [])],
            "groups": [g["GroupName"] for g in entities.get("PolicyGroups", [])],
        }

    def check(self, ctx: ActionContext, params: DeletePolicyParams) -> CheckOutcome:
        if self.describe(ctx, params) is None:
            return CheckOutcome(True, f"policy {params.policy_arn} is already gone", already_applied=True)
        return CheckOutcome(True, f"policy {params.policy_arn} exists")

    def plan(self, ctx: ActionContext, params: DeletePolicyParams) -> PlannedChange:
        found = self.describe(ctx, params) or {"users": [], "roles": [], "groups": []}
        radius = [f"{kind} {n}" for kind in ("users", "roles", "groups") for n in found[kind]]
        return PlannedChange(
            f"detach and delete policy {params.policy_arn}",
            diff=(f"- policy {params.policy_arn}",),
            blast_radius=tuple(radius),
        )

    def apply(self, ctx: ActionContext, params: DeletePolicyParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        iam, arn = ctx.aws("iam"), params.policy_arn
        before = self.describe(ctx, params)
        if before is None:
            return {"before": None}
        with aws_call(f"delete policy {arn}"):
            for user in before["users"]:
                iam.detach_user_policy(UserName=user, PolicyArn=arn)
            for role in before["roles"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=arn)
            for group in before["groups"]:
                iam.detach_group_policy(GroupName=group, PolicyArn=arn)
            for version in before["versions"]:
                if not version["IsDefaultVersion"]:
                    iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
            iam.delete_policy(PolicyArn=arn)
        return {"before": before}

    def verify(
        self, ctx: ActionContext, params: DeletePolicyParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        gone = self.describe(ctx, params) is None
        return VerifyOutcome(gone, f"policy {params.policy_arn} {'is gone' if gone else 'still exists'}")

    def rollback(self, ctx: ActionContext, params: DeletePolicyParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        before = applied.get("before")
        if not before:
            return
        iam, policy, arn = ctx.aws("iam"), before["policy"], params.policy_arn
        default = before["documents"][policy["DefaultVersionId"]]
        with aws_call(f"recreate policy {arn}"):
            iam.create_policy(
                PolicyName=policy["PolicyName"], Path=policy.get("Path", "/"), PolicyDocument=_doc(default)
            )
            for user in before["users"]:
                iam.attach_user_policy(UserName=user, PolicyArn=arn)
            for role in before["roles"]:
                iam.attach_role_policy(RoleName=role, PolicyArn=arn)
            for group in before["groups"]:
                iam.attach_group_policy(GroupName=group, PolicyArn=arn)


class DetachPolicyParams(ActionParams):
    principal_type: Literal["user", "role", "group"]
    principal_name: str = Field(min_length=1, max_length=128)
    policy_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/.+$")


_ATTACHED = {
    "user": ("list_attached_user_policies", "UserName"),
    "role": ("list_attached_role_policies", "RoleName"),
    "group": ("list_attached_group_policies", "GroupName"),
}


@register_action
class DetachPolicy(RecoveryAction[DetachPolicyParams]):
    spec = ActionSpec(
        id="iam.detach_policy",
        phase=Phase.RECOVERY,
        title="Detach a managed policy the attacker attached to an existing principal",
        iam_actions=(
            "iam:ListAttachedUserPolicies",
            "iam:ListAttachedRolePolicies",
            "iam:ListAttachedGroupPolicies",
            "iam:DetachUserPolicy",
            "iam:DetachRolePolicy",
            "iam:DetachGroupPolicy",
            "iam:AttachUserPolicy",
            "iam:AttachRolePolicy",
            "iam:AttachGroupPolicy",
        ),
        destructive=True,
        reversible=True,
        description="Restores the before-state the log proves: the policy was not attached before the call.",
    )
    params_type = DetachPolicyParams

    def _attached(self, ctx: ActionContext, params: DetachPolicyParams) -> bool | None:
        operation, key = _ATTACHED[params.principal_type]
        found = aws_or_none(
            f"list policies of {params.principal_type} {params.principal_name}",
            lambda: paged(ctx.aws("iam"), operation, "AttachedPolicies", **{key: params.principal_name}),
        )
        return None if found is None else any(p["PolicyArn"] == params.policy_arn for p in found)

    def describe(self, ctx: ActionContext, params: DetachPolicyParams) -> dict[str, Any] | None:
        attached = self._attached(ctx, params)
        return None if attached is None else {**params.model_dump(), "attached": attached}

    def check(self, ctx: ActionContext, params: DetachPolicyParams) -> CheckOutcome:
        attached = self._attached(ctx, params)
        if not attached:
            return CheckOutcome(True, f"{params.policy_arn} is not attached (any more)", already_applied=True)
        return CheckOutcome(
            True, f"{params.policy_arn} is attached to {params.principal_type} {params.principal_name}"
        )

    def plan(self, ctx: ActionContext, params: DetachPolicyParams) -> PlannedChange:
        return PlannedChange(
            f"detach {params.policy_arn} from {params.principal_type} {params.principal_name}",
            diff=(f"- {params.policy_arn}",),
        )

    def apply(self, ctx: ActionContext, params: DetachPolicyParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        attached = bool(self._attached(ctx, params))
        if attached:
            self._call(ctx, params, "detach")
        return {"before": {"attached": attached}}

    def _call(self, ctx: ActionContext, params: DetachPolicyParams, verb: str) -> None:
        _, key = _ATTACHED[params.principal_type]
        operation = f"{verb}_{params.principal_type}_policy"
        with aws_call(f"{verb} {params.policy_arn} on {params.principal_name}"):
            getattr(ctx.aws("iam"), operation)(**{key: params.principal_name, "PolicyArn": params.policy_arn})

    def verify(
        self, ctx: ActionContext, params: DetachPolicyParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        attached = self._attached(ctx, params)
        return VerifyOutcome(not attached, f"{params.policy_arn} attached: {bool(attached)}")

    def rollback(self, ctx: ActionContext, params: DetachPolicyParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        if (applied.get("before") or {}).get("attached"):
            self._call(ctx, params, "attach")

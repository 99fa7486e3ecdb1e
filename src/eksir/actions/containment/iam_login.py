"""Delete a compromised IAM user's console password (login profile): irreversible, so always approved.

Why delete and not "reset": an attacker holding the user's keys can have set the password themselves
(`UpdateLoginProfile`), and a password-reset-required flag still lets them in once. Why irreversible: the
password itself cannot be read or restored; what is preserved is that it existed (creation date, reset flag)
as case evidence, and the plan and applied record say how to give the owner console access back
(`create-login-profile --password-reset-required`, a new password sent out of band).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

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
from eksir.actions.evidence.case_evidence import record_evidence
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError


def aws_or_none(doing: str, call: Callable[[], T]) -> T | None:
    """One IAM read; None when the entity does not exist (NoSuchEntity), other errors raised."""
    try:
        with aws_call(doing):
            return call()
    except NotFoundError:
        return None


T = TypeVar("T")


class DeleteLoginProfileParams(ActionParams):
    user_name: str = Field(min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")


def restore_worklist(user: str) -> tuple[str, ...]:
    """How the user's owner gets console access back once the incident is over."""
    return (
        f"restore console access for {user} after the incident: 1) confirm the owner out of band",
        f"2) aws iam create-login-profile --user-name {user} --password '<new>' --password-reset-required",
        "3) send the temporary password out of band; re-register MFA",
    )


def login_profile(ctx: ActionContext, user: str) -> dict[str, Any] | None:
    """The user's login profile (CreateDate, PasswordResetRequired) or None when there is none.

    NoSuchEntity means both "no profile" and "no user"; check() tells them apart with GetUser.
    """
    iam = ctx.aws("iam")
    found = aws_or_none(
        f"get login profile of {user}", lambda: iam.get_login_profile(UserName=user)["LoginProfile"]
    )
    return None if found is None else json.loads(json.dumps(found, default=str))


@register_action
class DeleteLoginProfile(Action[DeleteLoginProfileParams]):
    spec = ActionSpec(
        id="iam.delete_login_profile",
        phase=Phase.CONTAINMENT,
        title="Delete a compromised IAM user's console password (login profile)",
        iam_actions=("iam:GetUser", "iam:GetLoginProfile", "iam:DeleteLoginProfile"),
        destructive=True,
        reversible=False,
        description="Irreversible (a password cannot be restored): the profile's existence is kept as "
        "evidence and the worklist says how to restore access.",
    )
    params_type = DeleteLoginProfileParams

    def check(self, ctx: ActionContext, params: DeleteLoginProfileParams) -> CheckOutcome:
        iam = ctx.aws("iam")
        user = aws_or_none(
            f"get IAM user {params.user_name}", lambda: iam.get_user(UserName=params.user_name)
        )
        if user is None:
            return CheckOutcome(ok=False, detail=f"IAM user {params.user_name} does not exist")
        profile = login_profile(ctx, params.user_name)
        detail = (
            f"{params.user_name} has no console password"
            if profile is None
            else f"{params.user_name} has a console password (since {profile.get('CreateDate')})"
        )
        return CheckOutcome(ok=True, detail=detail, already_applied=profile is None)

    def plan(self, ctx: ActionContext, params: DeleteLoginProfileParams) -> PlannedChange:
        profile = login_profile(ctx, params.user_name)
        if profile is None:
            return PlannedChange(summary=f"nothing to do: {params.user_name} has no console password")
        return PlannedChange(
            summary=f"Delete the console password (login profile) of IAM user {params.user_name}",
            diff=(
                f"- login profile (created {profile.get('CreateDate')})",
                *restore_worklist(params.user_name),
            ),
            blast_radius=(f"{params.user_name} can no longer sign in to the AWS console",),
            warnings=("irreversible: the password cannot be restored, only replaced (see the worklist)",),
        )

    def apply(self, ctx: ActionContext, params: DeleteLoginProfileParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        profile = login_profile(ctx, params.user_name)
        record: dict[str, Any] = {"user_name": params.user_name, "login_profile": profile}
        if profile is None:
            return {**record, "deleted": False}
        record["evidence"] = record_evidence(
            ctx,
            f"iam-login-profile-{params.user_name}.json",
            json.dumps(profile, sort_keys=True).encode(),
            source=f"iam:GetLoginProfile {params.user_name}",
            description=f"the console password of {params.user_name} existed before containment deleted it",
        )
        with aws_call(f"delete login profile of {params.user_name}"):
            ctx.aws("iam").delete_login_profile(UserName=params.user_name)
        return {**record, "deleted": True, "worklist": list(restore_worklist(params.user_name))}

    def verify(
        self, ctx: ActionContext, params: DeleteLoginProfileParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        gone = login_profile(ctx, params.user_name) is None
        return VerifyOutcome(
            ok=gone,
            detail=f"{params.user_name} "
            + ("has no console password" if gone else "still has a console password"),
        )

    def rollback(self, ctx: ActionContext, params: DeleteLoginProfileParams, applied: dict[str, Any]) -> None:
        return None  # not reversible: the engine refuses before calling this; see restore_worklist

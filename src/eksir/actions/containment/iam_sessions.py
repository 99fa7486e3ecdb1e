"""Revoke the older sessions of an IAM role or user: an inline Deny on `aws:TokenIssueTime`.

Why the cutoff is taken when the step is applied, not when the plan was built: approval can take minutes or
hours, and every session minted in between (the attacker re-assuming the role, IRSA refreshing) would survive
a cutoff fixed at resolution time. The applied record keeps the exact cutoff, so verify and rollback work on
what was written. A plan may still fix a cutoff (`issued_before`) for a scripted, reproducible run.

Why a user too: sessions minted from a user's key with GetSessionToken (the `ASIA` keys common where MFA is
enforced) stay valid after the key is deactivated; UpdateAccessKey cannot even find them. A TokenIssueTime
deny on the user cuts exactly those and leaves the user's long-term keys alone (they carry no token time).

Why the console's policy name `AWSRevokeOlderSessions`: responders and auditors recognise it; the statement's
Sid names the case, so a re-run of the same step (a resumed apply) sees its own policy and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

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
from eksir.actions.containment.iam_inline import (
    NOT_EKS_WARNING,
    PrincipalKind,
    case_sid,
    iso_cutoff,
    put_inline,
    read_inline,
    restore_inline,
    revoke_document,
    statement_sids,
)
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"
SID_PREFIX = "EksirRevokeOlderSessions"
_NAME = r"^[\w+=,.@-]+$"


def revoke_policy_document(issued_before: datetime, sid: str | None = None) -> dict[str, Any]:
    """The console's "Revoke active sessions" policy (kept under its historical name)."""
    return revoke_document(issued_before, sid)


class RevokeRoleSessionsParams(ActionParams):
    role_name: str = Field(min_length=1, max_length=64, pattern=_NAME)
    issued_before: AwareDatetime | None = None
    """A fixed cutoff; None (the playbook's choice): the moment the step is applied."""
    used_by: tuple[str, ...] = ()
    """Workloads known to use the role (shown as blast radius): namespace/service-account, nodes."""


class RevokeUserSessionsParams(ActionParams):
    user_name: str = Field(min_length=1, max_length=64, pattern=_NAME)
    issued_before: AwareDatetime | None = None
    access_key_id: str | None = Field(default=None, pattern=r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")
    """The key the finding named (for the record); the deny covers every session of the user."""


class _RevokeSessions:
    """What revoking sessions means for either principal kind; subclasses name the kind and the params."""

    kind: ClassVar[PrincipalKind]

    def _name(self, params: Any) -> str:
        return str(params.role_name if self.kind == "role" else params.user_name)

    def _current(self, ctx: ActionContext, params: Any) -> dict[str, Any] | None:
        return read_inline(ctx, self.kind, self._name(params), REVOKE_POLICY_NAME)

    def _in_place(self, ctx: ActionContext, params: Any, current: dict[str, Any] | None) -> bool:
        """This case's revocation is there (with the fixed cutoff, when the plan fixed one)."""
        sid = case_sid(SID_PREFIX, ctx.case_id)
        if params.issued_before is not None:
            return current == revoke_policy_document(params.issued_before, sid)
        return sid in statement_sids(current)

    def _warnings(self) -> tuple[str, ...]:
        common = (
            "the cutoff is taken when this step is applied (after approval): every session issued "
            "before that moment is denied, not only the attacker's; IAM changes take a few minutes to apply",
            NOT_EKS_WARNING,
        )
        if self.kind == "user":
            return (
                *common,
                "long-term access keys carry no token issue time and are not affected: deactivate them "
                "(iam.deactivate_access_key)",
            )
        return (
            *common,
            "IRSA and Pod Identity can mint fresh sessions after the cutoff: break the role's trust "
            "(OIDC sub condition / pod identity association) or stop the pod as well",
        )

    def _plan(self, ctx: ActionContext, params: Any) -> PlannedChange:
        name = self._name(params)
        current = self._current(ctx, params)
        when = (
            iso_cutoff(params.issued_before)
            if params.issued_before is not None
            else "the moment this step is applied"
        )
        before = "- (no policy)" if current is None else f"- {current}"
        blast = [f"every holder of a session of {self.kind} {name} issued before the cutoff"]
        blast += [f"used by {who}" for who in getattr(params, "used_by", ())]
        return PlannedChange(
            summary=f"Put inline policy {REVOKE_POLICY_NAME} on {self.kind} {name}: deny sessions issued "
            f"before {when}",
            diff=(
                f"{self.kind} {name} inline policy {REVOKE_POLICY_NAME}:",
                before,
                f"+ Deny * when aws:TokenIssueTime < {when}",
            ),
            blast_radius=tuple(blast),
            warnings=self._warnings(),
        )

    def _apply(self, ctx: ActionContext, params: Any, spec: ActionSpec) -> dict[str, Any]:
        require_live(ctx, spec)
        name = self._name(params)
        previous = self._current(ctx, params)
        if self._in_place(ctx, params, previous):
            # A resumed apply: this case's policy is already there; the earlier before-state is not known.
            return {
                f"{self.kind}_name": name,
                "previous_policy": None,
                "policy": previous,
                "cutoff": _cutoff_of(previous),
                "previous_unknown": True,
            }
        cutoff = params.issued_before or datetime.now(UTC)
        desired = revoke_policy_document(cutoff, case_sid(SID_PREFIX, ctx.case_id))
        put_inline(ctx, self.kind, name, REVOKE_POLICY_NAME, desired)
        return {
            f"{self.kind}_name": name,
            "previous_policy": previous,
            "policy": desired,
            "cutoff": iso_cutoff(cutoff),
        }

    def _verify(self, ctx: ActionContext, params: Any, applied: dict[str, Any]) -> VerifyOutcome:
        name = self._name(params)
        current = self._current(ctx, params)
        expected = applied.get("policy")
        ok = current is not None and current == expected
        cutoff = applied.get("cutoff") or "the cutoff"
        return VerifyOutcome(
            ok=ok,
            detail=f"{REVOKE_POLICY_NAME} on {self.kind} {name} "
            + (f"denies sessions issued before {cutoff}" if ok else "is missing or differs"),
            observed={"policy": current},
        )

    def _rollback(self, ctx: ActionContext, params: Any, applied: dict[str, Any], spec: ActionSpec) -> None:
        require_live(ctx, spec)
        restore_inline(ctx, self.kind, self._name(params), REVOKE_POLICY_NAME, applied.get("previous_policy"))


def _cutoff_of(document: dict[str, Any] | None) -> str | None:
    for statement in (document or {}).get("Statement") or []:
        found = ((statement.get("Condition") or {}).get("DateLessThan") or {}).get("aws:TokenIssueTime")
        if found:
            return str(found)
    return None


_ROLE_IAM = (
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
)


@register_action
class RevokeRoleSessions(_RevokeSessions, Action[RevokeRoleSessionsParams]):
    spec = ActionSpec(
        id="iam.revoke_role_sessions",
        phase=Phase.CONTAINMENT,
        title="Revoke a role's sessions issued before the step is applied",
        iam_actions=_ROLE_IAM,
        destructive=True,
        reversible=True,
        description="Inline deny policy AWSRevokeOlderSessions conditioned on aws:TokenIssueTime (cutoff: "
        "apply time).",
    )
    params_type = RevokeRoleSessionsParams
    kind = "role"

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
        return CheckOutcome(
            ok=True,
            detail=f"role {role['Arn']} exists",
            warnings=self._warnings(),
            already_applied=self._in_place(ctx, params, self._current(ctx, params)),
        )

    def plan(self, ctx: ActionContext, params: RevokeRoleSessionsParams) -> PlannedChange:
        return self._plan(ctx, params)

    def apply(self, ctx: ActionContext, params: RevokeRoleSessionsParams) -> dict[str, Any]:
        return self._apply(ctx, params, self.spec)

    def verify(
        self, ctx: ActionContext, params: RevokeRoleSessionsParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        return self._verify(ctx, params, applied)

    def rollback(self, ctx: ActionContext, params: RevokeRoleSessionsParams, applied: dict[str, Any]) -> None:
        self._rollback(ctx, params, applied, self.spec)


@register_action
class RevokeUserSessions(_RevokeSessions, Action[RevokeUserSessionsParams]):
    spec = ActionSpec(
        id="iam.revoke_user_sessions",
        phase=Phase.CONTAINMENT,
        title="Revoke an IAM user's temporary sessions (GetSessionToken) issued before the step is applied",
        iam_actions=(
            "iam:GetUser",
            "iam:ListUserPolicies",
            "iam:GetUserPolicy",
            "iam:PutUserPolicy",
            "iam:DeleteUserPolicy",
        ),
        destructive=True,
        reversible=True,
        description="Inline user deny AWSRevokeOlderSessions on aws:TokenIssueTime (cutoff: apply time); "
        "long-term keys are untouched.",
    )
    params_type = RevokeUserSessionsParams
    kind = "user"

    def check(self, ctx: ActionContext, params: RevokeUserSessionsParams) -> CheckOutcome:
        if params.user_name == "root":
            return CheckOutcome(ok=False, detail=ROOT_REFUSAL)
        try:
            with aws_call(f"read IAM user {params.user_name}"):
                user = ctx.aws("iam").get_user(UserName=params.user_name)["User"]
        except NotFoundError:
            return CheckOutcome(ok=False, detail=f"IAM user {params.user_name} does not exist")
        return CheckOutcome(
            ok=True,
            detail=f"user {user['Arn']} exists",
            warnings=self._warnings(),
            already_applied=self._in_place(ctx, params, self._current(ctx, params)),
        )

    def plan(self, ctx: ActionContext, params: RevokeUserSessionsParams) -> PlannedChange:
        return self._plan(ctx, params)

    def apply(self, ctx: ActionContext, params: RevokeUserSessionsParams) -> dict[str, Any]:
        return self._apply(ctx, params, self.spec)

    def verify(
        self, ctx: ActionContext, params: RevokeUserSessionsParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        return self._verify(ctx, params, applied)

    def rollback(self, ctx: ActionContext, params: RevokeUserSessionsParams, applied: dict[str, Any]) -> None:
        self._rollback(ctx, params, applied, self.spec)


ROOT_REFUSAL = (
    "the account's root user: its permissions cannot be changed by IAM policy and its keys cannot be "
    "managed by a responder role; follow the root-credential runbook (README, 'Root credentials': sign in "
    "as root, delete the root access keys, reset the password and MFA, check for SCPs denying root)"
)

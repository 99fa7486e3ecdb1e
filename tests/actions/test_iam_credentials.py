"""Issue 16's IAM containment against moto's IAM over HTTP: every key of a user, ASIA and root refused,
session revocation with the cutoff taken at apply time (users and roles), the login profile deleted and
preserved, and each policy read back statement by statement.

moto cannot evaluate IAM conditions (shared/DESIGN.md, "Limits of moto's IAM enforcement"): the policies are
proved by reading them back from IAM and by unit tests of each statement, never by calling AWS as the denied
session.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from eksir.actions.base import ActionContext
from eksir.actions.containment.iam_identity import DeactivateAccessKey, DeactivateAccessKeyParams
from eksir.actions.containment.iam_login import DeleteLoginProfile, DeleteLoginProfileParams
from eksir.actions.containment.iam_sessions import (
    REVOKE_POLICY_NAME,
    RevokeRoleSessions,
    RevokeRoleSessionsParams,
    RevokeUserSessions,
    RevokeUserSessionsParams,
)
from tests.actions.conftest import CASE_ID, boto_client

TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


@pytest.fixture
def attacker_user(moto: Any) -> tuple[str, list[str]]:
    iam = boto_client(moto, "iam")
    iam.create_user(UserName="eks-admin")
    keys = [iam.create_access_key(UserName="eks-admin")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    return "eks-admin", keys


def _statuses(moto: Any, user: str) -> dict[str, str]:
    keys = boto_client(moto, "iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in keys}


def test_every_key_of_the_user_is_deactivated_and_rollback_restores_each(
    aws_ctx: ActionContext, moto: Any, attacker_user: tuple[str, list[str]]
) -> None:
    user, (used, other) = attacker_user
    params = DeactivateAccessKeyParams(user_name=user, access_key_id=used, every_key=True)
    action = DeactivateAccessKey()
    assert "every access key" in action.plan(aws_ctx, params).summary
    applied = action.apply(aws_ctx, params)
    assert _statuses(moto, user) == {used: "Inactive", other: "Inactive"}
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    action.rollback(aws_ctx, params, applied)
    assert _statuses(moto, user) == {used: "Active", other: "Active"}


def test_a_key_created_after_containment_fails_verification(
    aws_ctx: ActionContext, moto: Any, attacker_user: tuple[str, list[str]]
) -> None:
    user, (used, other) = attacker_user
    params = DeactivateAccessKeyParams(user_name=user, access_key_id=used, every_key=True)
    applied = DeactivateAccessKey().apply(aws_ctx, params)
    boto_client(moto, "iam").delete_access_key(UserName=user, AccessKeyId=other)  # IAM allows two keys
    fresh = boto_client(moto, "iam").create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    outcome = DeactivateAccessKey().verify(aws_ctx, params, applied)
    assert not outcome.ok
    assert fresh in outcome.detail


def test_a_temporary_asia_key_is_refused_with_the_session_revocation_pointer(aws_ctx: ActionContext) -> None:
    params = DeactivateAccessKeyParams(user_name="eks-admin", access_key_id="ASIAIOSFODNN7EXAMPLE")
    outcome = DeactivateAccessKey().check(aws_ctx, params)
    assert not outcome.ok
    assert "iam.revoke_user_sessions" in outcome.detail


def test_root_keys_are_refused_with_the_runbook_pointer(aws_ctx: ActionContext) -> None:
    params = DeactivateAccessKeyParams(user_name="root", access_key_id="AKIAIOSFODNN7EXAMPLE")
    outcome = DeactivateAccessKey().check(aws_ctx, params)
    assert not outcome.ok
    assert "root-credential runbook" in outcome.detail
    user = RevokeUserSessions().check(aws_ctx, RevokeUserSessionsParams(user_name="root"))
    assert not user.ok
    assert "root-credential runbook" in user.detail


def _user_policy(moto: Any, user: str) -> dict[str, Any] | None:
    iam = boto_client(moto, "iam")
    if REVOKE_POLICY_NAME not in iam.list_user_policies(UserName=user)["PolicyNames"]:
        return None
    doc = iam.get_user_policy(UserName=user, PolicyName=REVOKE_POLICY_NAME)["PolicyDocument"]
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def test_user_sessions_are_denied_from_the_moment_of_apply_not_of_the_plan(
    aws_ctx: ActionContext, moto: Any, attacker_user: tuple[str, list[str]]
) -> None:
    user, _ = attacker_user
    params = RevokeUserSessionsParams(user_name=user)
    action = RevokeUserSessions()
    assert "the moment this step is applied" in action.plan(aws_ctx, params).summary
    before = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)  # approval pending: the cutoff must be later than this
    applied = action.apply(aws_ctx, params)
    statement = _user_policy(moto, user)["Statement"][0]  # type: ignore[index]
    cutoff = datetime.fromisoformat(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
    assert cutoff > before
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == ["*"]
    assert statement["Resource"] == ["*"]
    assert statement["Sid"] == "EksirRevokeOlderSessions" + CASE_ID.replace("-", "")
    assert applied["cutoff"] == statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    again = action.apply(aws_ctx, params)  # a resumed apply keeps the first cutoff
    assert again["cutoff"] == applied["cutoff"]
    action.rollback(aws_ctx, params, applied)
    assert _user_policy(moto, user) is None


def test_role_sessions_cutoff_is_taken_at_apply_and_verified_against_the_record(
    aws_ctx: ActionContext, moto: Any
) -> None:
    boto_client(moto, "iam").create_role(RoleName="payments-api-irsa", AssumeRolePolicyDocument=TRUST)
    params = RevokeRoleSessionsParams(role_name="payments-api-irsa", used_by=("payments/payments-api",))
    planned = RevokeRoleSessions().plan(aws_ctx, params)
    assert "used by payments/payments-api" in planned.blast_radius
    before = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    applied = RevokeRoleSessions().apply(aws_ctx, params)
    assert datetime.fromisoformat(applied["cutoff"]) > before
    assert RevokeRoleSessions().verify(aws_ctx, params, applied).ok
    RevokeRoleSessions().rollback(aws_ctx, params, applied)
    names = boto_client(moto, "iam").list_role_policies(RoleName="payments-api-irsa")["PolicyNames"]
    assert REVOKE_POLICY_NAME not in names


def test_the_login_profile_is_deleted_preserved_and_the_worklist_says_how_to_restore(
    aws_ctx: ActionContext, moto: Any, attacker_user: tuple[str, list[str]]
) -> None:
    user, _ = attacker_user
    boto_client(moto, "iam").create_login_profile(
        UserName=user, Password="S3cret!pass", PasswordResetRequired=False
    )
    params = DeleteLoginProfileParams(user_name=user)
    action = DeleteLoginProfile()
    assert not action.spec.reversible
    assert action.spec.destructive
    planned = action.plan(aws_ctx, params)
    assert any("create-login-profile" in line for line in planned.diff)
    applied = action.apply(aws_ctx, params)
    assert applied["deleted"] is True
    assert applied["login_profile"]["UserName"] == user  # that it existed is kept
    assert any("--password-reset-required" in line for line in applied["worklist"])
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    assert action.apply(aws_ctx, params)["deleted"] is False  # idempotent


def test_a_user_without_a_console_password_needs_nothing(
    aws_ctx: ActionContext, attacker_user: tuple[str, list[str]]
) -> None:
    params = DeleteLoginProfileParams(user_name=attacker_user[0])
    assert DeleteLoginProfile().check(aws_ctx, params).already_applied
    missing = DeleteLoginProfile().check(aws_ctx, DeleteLoginProfileParams(user_name="nobody"))
    assert not missing.ok

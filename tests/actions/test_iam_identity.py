"""iam.deactivate_access_key and iam.revoke_role_sessions against moto's IAM (and Stubber for faults)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from eksir.actions.base import ActionContext
from eksir.actions.containment.iam_identity import (
    REVOKE_POLICY_NAME,
    DeactivateAccessKey,
    DeactivateAccessKeyParams,
    RevokeRoleSessions,
    RevokeRoleSessionsParams,
)
from eksir.errors import PermissionDeniedError, RefusedError, TemporaryError
from tests.actions.conftest import boto_client, make_ctx, stubbed

TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
CUTOFF = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _key_status(iam: Any, user: str, key_id: str) -> str:
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return str(next(k["Status"] for k in keys if k["AccessKeyId"] == key_id))


@pytest.fixture
def leaked_key(moto: Any) -> DeactivateAccessKeyParams:
    iam = boto_client(moto, "iam")
    iam.create_user(UserName="ci-bot")
    key = iam.create_access_key(UserName="ci-bot")["AccessKey"]["AccessKeyId"]
    return DeactivateAccessKeyParams(user_name="ci-bot", access_key_id=key)


def test_deactivating_a_key_makes_it_inactive_as_iam_reports_it(
    aws_ctx: ActionContext, moto: Any, leaked_key: DeactivateAccessKeyParams
) -> None:
    action = DeactivateAccessKey()
    applied = action.apply(aws_ctx, leaked_key)
    assert applied["previous_status"] == "Active"
    assert _key_status(boto_client(moto, "iam"), "ci-bot", leaked_key.access_key_id) == "Inactive"
    assert action.verify(aws_ctx, leaked_key, applied).ok


def test_deactivating_twice_changes_nothing_more(
    aws_ctx: ActionContext, moto: Any, leaked_key: DeactivateAccessKeyParams
) -> None:
    action = DeactivateAccessKey()
    action.apply(aws_ctx, leaked_key)
    again = action.apply(aws_ctx, leaked_key)
    assert again["previous_status"] == "Inactive"
    assert action.check(aws_ctx, leaked_key).already_applied
    assert _key_status(boto_client(moto, "iam"), "ci-bot", leaked_key.access_key_id) == "Inactive"


def test_rollback_reactivates_the_key(
    aws_ctx: ActionContext, moto: Any, leaked_key: DeactivateAccessKeyParams
) -> None:
    action = DeactivateAccessKey()
    applied = action.apply(aws_ctx, leaked_key)
    action.rollback(aws_ctx, leaked_key, applied)
    assert _key_status(boto_client(moto, "iam"), "ci-bot", leaked_key.access_key_id) == "Active"


def test_plan_lists_the_rotation_worklist_and_the_eks_caveat(
    aws_ctx: ActionContext, leaked_key: DeactivateAccessKeyParams
) -> None:
    planned = DeactivateAccessKey().plan(aws_ctx, leaked_key)
    text = "\n".join(planned.diff)
    assert "- Status: Active" in text
    assert "+ Status: Inactive" in text
    assert "create a second access key" in text
    assert "delete the compromised key" in text
    assert any("GetCallerIdentity" in w for w in planned.warnings)


def test_check_reports_an_unknown_key_as_not_ok(
    aws_ctx: ActionContext, leaked_key: DeactivateAccessKeyParams
) -> None:
    params = DeactivateAccessKeyParams(user_name="ci-bot", access_key_id="AKIAAAAAAAAAAAAAAAAA")
    outcome = DeactivateAccessKey().check(aws_ctx, params)
    assert not outcome.ok
    assert "no access key" in outcome.detail


def test_a_dry_run_apply_is_refused_and_the_key_stays_active(
    moto: Any, leaked_key: DeactivateAccessKeyParams
) -> None:
    ctx = make_ctx(aws=lambda s: boto_client(moto, s), dry_run=True)
    with pytest.raises(RefusedError):
        DeactivateAccessKey().apply(ctx, leaked_key)
    assert _key_status(boto_client(moto, "iam"), "ci-bot", leaked_key.access_key_id) == "Active"


@pytest.mark.parametrize(
    ("code", "error"), [("Throttling", TemporaryError), ("AccessDenied", PermissionDeniedError)]
)
def test_aws_faults_become_eksir_errors(code: str, error: type[Exception]) -> None:
    iam = stubbed("iam")
    stub = Stubber(iam)
    stub.add_response(
        "list_access_keys",
        {"AccessKeyMetadata": [{"UserName": "u", "AccessKeyId": "AKIAAAAAAAAAAAAAAAAA", "Status": "Active"}]},
        {"UserName": "u"},
    )
    stub.add_client_error("update_access_key", service_error_code=code, http_status_code=400)
    params = DeactivateAccessKeyParams(user_name="u", access_key_id="AKIAAAAAAAAAAAAAAAAA")
    with stub, pytest.raises(error):
        DeactivateAccessKey().apply(make_ctx(aws=lambda _s: iam), params)


def test_access_key_params_reject_a_secret_key_passed_by_mistake() -> None:
    with pytest.raises(ValidationError):
        DeactivateAccessKeyParams(user_name="u", access_key_id="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@pytest.fixture
def role(moto: Any) -> str:
    boto_client(moto, "iam").create_role(RoleName="node-role", AssumeRolePolicyDocument=TRUST)
    return "node-role"


def _inline(moto: Any, role_name: str) -> dict[str, Any] | None:
    iam = boto_client(moto, "iam")
    if REVOKE_POLICY_NAME not in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        return None
    doc = iam.get_role_policy(RoleName=role_name, PolicyName=REVOKE_POLICY_NAME)["PolicyDocument"]
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def test_revoking_sessions_puts_the_console_deny_policy_on_the_role(
    aws_ctx: ActionContext, moto: Any, role: str
) -> None:
    params = RevokeRoleSessionsParams(role_name=role, issued_before=CUTOFF)
    applied = RevokeRoleSessions().apply(aws_ctx, params)
    statement = _inline(moto, role)["Statement"][0]  # type: ignore[index]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"DateLessThan": {"aws:TokenIssueTime": "2026-11-23T03:00:00Z"}}
    assert applied["previous_policy"] is None
    assert RevokeRoleSessions().verify(aws_ctx, params, applied).ok


def test_revoking_twice_is_a_no_op_and_check_sees_it_applied(
    aws_ctx: ActionContext, moto: Any, role: str
) -> None:
    params = RevokeRoleSessionsParams(role_name=role, issued_before=CUTOFF)
    RevokeRoleSessions().apply(aws_ctx, params)
    first = _inline(moto, role)
    RevokeRoleSessions().apply(aws_ctx, params)
    assert _inline(moto, role) == first
    assert RevokeRoleSessions().check(aws_ctx, params).already_applied


def test_rollback_deletes_the_policy_when_there_was_none(
    aws_ctx: ActionContext, moto: Any, role: str
) -> None:
    params = RevokeRoleSessionsParams(role_name=role, issued_before=CUTOFF)
    applied = RevokeRoleSessions().apply(aws_ctx, params)
    RevokeRoleSessions().rollback(aws_ctx, params, applied)
    assert _inline(moto, role) is None


def test_rollback_restores_an_earlier_revocation_exactly(
    aws_ctx: ActionContext, moto: Any, role: str
) -> None:
    earlier = RevokeRoleSessionsParams(role_name=role, issued_before=datetime(2026, 1, 1, tzinfo=UTC))
    RevokeRoleSessions().apply(aws_ctx, earlier)
    before = _inline(moto, role)
    params = RevokeRoleSessionsParams(role_name=role, issued_before=CUTOFF)
    applied = RevokeRoleSessions().apply(aws_ctx, params)
    assert _inline(moto, role) != before
    RevokeRoleSessions().rollback(aws_ctx, params, applied)
    assert _inline(moto, role) == before


def test_plan_warns_that_eks_access_and_irsa_survive_the_deny(aws_ctx: ActionContext, role: str) -> None:
    planned = RevokeRoleSessions().plan(
        aws_ctx, RevokeRoleSessionsParams(role_name=role, issued_before=CUTOFF)
    )
    warnings = " ".join(planned.warnings)
    assert "GetCallerIdentity" in warnings
    assert "IRSA and Pod Identity" in warnings


def test_check_refuses_a_missing_or_service_linked_role(aws_ctx: ActionContext, moto: Any) -> None:
    boto_client(moto, "iam").create_role(
        RoleName="AWSServiceRoleForX",
        AssumeRolePolicyDocument=TRUST,
        Path="/aws-service-role/x.amazonaws.com/",
    )
    action = RevokeRoleSessions()
    missing = action.check(aws_ctx, RevokeRoleSessionsParams(role_name="nope", issued_before=CUTOFF))
    linked = action.check(
        aws_ctx, RevokeRoleSessionsParams(role_name="AWSServiceRoleForX", issued_before=CUTOFF)
    )
    assert not missing.ok
    assert "does not exist" in missing.detail
    assert not linked.ok
    assert "service-linked" in linked.detail


def test_a_cutoff_without_timezone_is_rejected() -> None:
    with pytest.raises(ValidationError):
        RevokeRoleSessionsParams(role_name="r", issued_before="2026-11-23T03:00:00")  # type: ignore[arg-type]


def test_rollback_restores_only_a_status_iam_reports_and_refuses_an_altered_record() -> None:
    from eksir.actions.containment.iam_identity import _key_status_value
    from eksir.errors import CaseInvalidError

    assert [_key_status_value(s) for s in ("Active", "Inactive", "Expired")] == [
        "Active",
        "Inactive",
        "Expired",
    ]
    with pytest.raises(CaseInvalidError, match="'Enabled'"):
        _key_status_value("Enabled")

"""Cross-account role assumption as eksir does it, against real STS and a real member account.

moto's STS issues any role in any account; real STS checks the member role's trust (the security account,
the external id). Needs EKSIR_TEST_AWS_ASSUME_ROLE (eksir's `--assume-role` template, with `{account}`) and
EKSIR_TEST_AWS_MEMBER_ACCOUNT (a member account with the role from `eksir permissions --format
cloudformation`), plus EKSIR_EXTERNAL_ID when the role requires one. Read-only (GetCallerIdentity).
"""

from __future__ import annotations

import pytest

from eksir.clients.assume import AssumedRole
from eksir.clients.aws import AwsClients, aws_call
from eksir.errors import PermissionDeniedError
from tests.aws_real.conftest import Sandbox, require

pytestmark = pytest.mark.aws_real


def _role(sandbox: Sandbox) -> str:
    template = require(sandbox.config.assume_role, "EKSIR_TEST_AWS_ASSUME_ROLE")
    member = require(sandbox.config.member_account, "EKSIR_TEST_AWS_MEMBER_ACCOUNT")
    return template.replace("{account}", member)


def test_the_assumed_session_acts_in_the_member_account_named_after_the_case(sandbox: Sandbox) -> None:
    role = AssumedRole(_role(sandbox), "eksir-test-aws-case", sandbox.config.external_id, "eksir-test-aws")
    member = AwsClients(region=sandbox.config.region, profile=sandbox.config.profile, role=role)
    identity = member.client("sts").get_caller_identity()
    assert identity["Account"] == sandbox.config.member_account
    assert identity["Arn"].endswith("/eksir-test-aws-case")


def test_without_the_external_id_the_member_role_refuses_with_exit_8(sandbox: Sandbox) -> None:
    require(sandbox.config.external_id, "EKSIR_EXTERNAL_ID (a role that requires one)")
    role = AssumedRole(_role(sandbox), "eksir-test-aws-no-xid")
    member = AwsClients(region=sandbox.config.region, profile=sandbox.config.profile, role=role)
    with pytest.raises(PermissionDeniedError), aws_call("assume the member role without the external id"):
        member.client("sts").get_caller_identity()

"""The cross-account lab's organisation in moto: three accounts, the member's roles, the operator's reach.

moto does not evaluate trust policies or external ids (no IAM enforcement here): the trust documents are read
back as written; which account a call lands in is what moto proves (one backend per account).
"""

from __future__ import annotations

import pytest

from eksir.cli.accounts import AccountAccess
from eksir.clients.assume import RoleMap
from eksir.lab.moto_server import AwsEndpoint
from eksir.lab.organisation import ORG_ACCESS_ROLE, Organisation, seed_organisation


@pytest.fixture(scope="module")
def org(moto_server: AwsEndpoint) -> Organisation:
    return seed_organisation(moto_server)


def _account(endpoint: AwsEndpoint) -> str:
    return str(endpoint.client("sts").get_caller_identity()["Account"])


def test_three_distinct_accounts_and_each_identity_lands_in_its_own(
    org: Organisation, moto_server: AwsEndpoint
) -> None:
    assert len({org.management, org.security, org.member}) == 3
    assert _account(moto_server) == org.management
    assert _account(org.member_endpoint) == org.member
    assert _account(org.operator_endpoint) == org.security
    accounts = moto_server.client("organizations").list_accounts()["Accounts"]
    assert {org.management, org.security, org.member} <= {a["Id"] for a in accounts}


def test_the_member_trusts_the_management_account_and_eksirs_role_trusts_the_security_account(
    org: Organisation,
) -> None:
    iam = org.member_endpoint.client("iam")
    access = iam.get_role(RoleName=ORG_ACCESS_ROLE)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert org.management in str(access["Principal"])  # made by moto's Organizations CreateAccount
    responder = iam.get_role(RoleName="eksir-responder")["Role"]
    assert responder["Arn"] == org.responder_role_arn == f"arn:aws:iam::{org.member}:role/eksir-responder"
    trust = responder["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{org.security}:root"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": org.external_id}}
    assert iam.list_attached_role_policies(RoleName="eksir-responder")["AttachedPolicies"]


def test_the_operator_reaches_the_member_through_eksirs_route(
    org: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in org.operator_endpoint.env().items():
        monkeypatch.setenv(name, value)
    access = AccountAccess(
        None, None, org.operator_endpoint.url, RoleMap(org.role_template, {}, org.external_id)
    )
    aws = access.route(org.member, "us-east-1").clients("eksir-lab-case")
    assert aws("sts").get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{org.member}:assumed-role/eksir-responder/eksir-eksir-lab-case"
    )

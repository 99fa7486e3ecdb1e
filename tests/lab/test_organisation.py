"""The cross-account lab's organisation in moto: three accounts, the member's roles, the operator's reach.

moto does not evaluate trust policies or external ids (no IAM enforcement here: this is the session's shared
moto, and enforcement is process-wide): the trust documents are read back as written; which account a call
lands in is what moto proves (one backend per account).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eksir.actions.permissions import all_specs, iam_policy
from eksir.cli.accounts import AccountAccess
from eksir.clients.assume import RoleMap
from eksir.errors import BadInputError
from eksir.lab import lab
from eksir.lab.iam_enforcement import MOTO_ALIASES, policy_actions, unscoped_policy
from eksir.lab.moto_server import AwsEndpoint
from eksir.lab.organisation import (
    ADMIN_POLICY,
    ORG_ACCESS_ROLE,
    ORG_ADMIN_USER,
    Organisation,
    seed_organisation,
    state_of,
)


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


def test_the_organisation_access_role_is_an_administrator_and_the_management_has_an_admin_user(
    org: Organisation, moto_server: AwsEndpoint
) -> None:
    """As AWS Organizations creates it (moto makes the role bare), and what `eksir lab env --admin` exports:
    with IAM enforced, moto's default keys would be refused."""
    iam = org.member_endpoint.client("iam")
    attached = iam.list_attached_role_policies(RoleName=ORG_ACCESS_ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN_POLICY]
    assert org.admin_endpoint.access_key_id != moto_server.access_key_id
    assert org.admin_endpoint.client("sts").get_caller_identity()["Arn"] == (
        f"arn:aws:iam::{org.management}:user/{ORG_ADMIN_USER}"
    )
    assert state_of(org)["admin_access_key_id"] == org.admin_endpoint.access_key_id
    assert state_of(org)["iam_enforced"] == "false"


def test_the_unscoped_variant_is_exactly_the_generated_actions_on_star_plus_moto_aliases() -> None:
    generated = iam_policy(all_specs())
    [statement] = unscoped_policy(generated)["Statement"]
    assert statement["Resource"] == "*"
    assert "Condition" not in statement
    aliases = {alias for names in MOTO_ALIASES.values() for alias in names}
    assert set(statement["Action"]) == policy_actions(generated) | aliases
    assert any("Condition" in s for s in generated["Statement"])  # what moto could not evaluate
    [without] = unscoped_policy(generated, ["s3:ListBucket"])["Statement"]
    removed = set(statement["Action"]) - set(without["Action"])
    assert removed == {"s3:ListBucket", "s3:ListObjectsV2", "s3:HeadBucket"}


def test_iam_enforcement_is_refused_for_a_one_account_lab_before_anything_starts(tmp_path: Path) -> None:
    """Every key of a one-account lab is moto's default, which enforcement refuses."""
    with pytest.raises(BadInputError, match="organisation scenarios, not iam-user"):
        lab.up(tmp_path / "lab", "iam-user", enforce_iam=True)
    assert not (tmp_path / "lab").exists()

"""Each actor-classification rule fires on the field it documents, in the documented order."""

from __future__ import annotations

from typing import Any

import pytest

from eksir.findings import classify_actor
from eksir.models.finding import ActorKind

AUTH = "aws-iam-authenticator:111122223333:"


@pytest.mark.parametrize(
    ("user", "keys", "kind"),
    [
        ({"username": "system:anonymous"}, None, ActorKind.ANONYMOUS),
        ({"username": "someone", "groups": ["system:unauthenticated"]}, None, ActorKind.ANONYMOUS),
        ({"username": "system:serviceaccount:ns:sa"}, None, ActorKind.SERVICE_ACCOUNT),
        ({"username": "system:node:ip-10-0-0-1.ec2.internal"}, {"userType": "Role"}, ActorKind.NODE),
        ({"username": "kubelet", "groups": ["system:nodes"]}, None, ActorKind.NODE),
        ({"username": "admin"}, {"accessKeyId": "AKIAX", "userType": "IAMUser"}, ActorKind.IAM_USER),
        ({"username": "admin"}, {"accessKeyId": "AKIAX", "userType": "User"}, ActorKind.IAM_USER),
        ({"username": "admin"}, {"accessKeyId": "AKIAX", "userType": "Root"}, ActorKind.IAM_USER),
        ({"username": "ops"}, {"accessKeyId": "ASIAX", "userType": "AssumedRole"}, ActorKind.IAM_ROLE),
        ({"username": "ops"}, {"accessKeyId": "ASIAX", "userType": "FederatedUser"}, ActorKind.IAM_ROLE),
        (
            {"username": "ci", "sessionName": ["i-0a1b2c3d4e5f60718"]},
            {"accessKeyId": "ASIAX", "userType": "Role"},
            ActorKind.EC2_INSTANCE_ROLE,
        ),
        (
            {"username": "ci"},
            {"accessKeyId": "ASIAX", "userType": "Role", "userName": "i-0a1b2c3d"},
            ActorKind.EC2_INSTANCE_ROLE,
        ),
        ({"username": "x", "uid": AUTH + "AIDAEXAMPLE"}, None, ActorKind.IAM_USER),
        ({"username": "x", "uid": AUTH + "AROAEXAMPLE"}, None, ActorKind.IAM_ROLE),
        ({"username": "x", "uid": "heptio-authenticator-aws:1:AROAEXAMPLE"}, None, ActorKind.IAM_ROLE),
        ({"username": "x"}, {"principalId": "AIDAEXAMPLE"}, ActorKind.IAM_USER),
        ({"username": "arn:aws:iam::1:user/alice", "uid": AUTH + "X"}, None, ActorKind.IAM_USER),
        ({"username": "x", "uid": AUTH + "X"}, None, ActorKind.IAM_ROLE),
        ({"username": "oidc:alice@example.com", "groups": ["oidc:admins"]}, None, ActorKind.OIDC_USER),
        ({"username": "alice@example.com"}, {"accessKeyId": None, "userType": ""}, ActorKind.OIDC_USER),
    ],
)
def test_classify_actor_picks_the_documented_kind(
    user: dict[str, Any], keys: dict[str, Any] | None, kind: ActorKind
) -> None:
    actor = classify_actor(user, keys)
    assert actor.kind is kind
    assert actor.reason.startswith("rule ")


def test_service_account_rule_wins_over_access_key_details() -> None:
    actor = classify_actor(
        {"username": "system:serviceaccount:a:b"}, {"accessKeyId": "AKIAX", "userType": "IAMUser"}
    )
    assert actor.kind is ActorKind.SERVICE_ACCOUNT


def test_identity_fields_are_filled_from_both_blocks_and_blank_session_names_are_skipped() -> None:
    actor = classify_actor(
        {
            "username": "kubernetes-admin",
            "uid": AUTH + "AIDAEXAMPLE",
            "groups": ["system:masters", 7, "system:authenticated"],
            "sessionName": ["", "alice"],
            "impersonatedUser": {"username": "breakglass", "groups": ["system:masters"]},
        },
        {
            "accessKeyId": "AKIAEXAMPLE",
            "principalId": "AIDAEXAMPLE",
            "userName": "alice",
            "userType": "IAMUser",
        },
    )
    assert actor.groups == ("system:masters", "system:authenticated")
    assert actor.session_name == "alice"
    assert actor.impersonated_username == "breakglass"
    assert (actor.access_key_id, actor.principal_id, actor.user_name, actor.user_type) == (
        "AKIAEXAMPLE",
        "AIDAEXAMPLE",
        "alice",
        "IAMUser",
    )
    assert "IAMUser" in actor.reason


def test_pascal_case_blocks_from_boto3_are_accepted() -> None:
    actor = classify_actor({"Username": "ops", "SessionName": ["i-0123456789abcdef0"]}, {"UserType": "Role"})
    assert actor.kind is ActorKind.EC2_INSTANCE_ROLE
    assert actor.session_name == "i-0123456789abcdef0"


def test_missing_or_malformed_blocks_never_raise() -> None:
    assert classify_actor(None, None).kind is ActorKind.OIDC_USER
    assert classify_actor({"username": 5, "groups": "system:nodes"}, {"userType": 3}).kind is ActorKind.NODE

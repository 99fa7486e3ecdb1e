"""The lab EKS authenticator's rules, one by one (issue 14 item 1): what aws-iam-authenticator refuses, it
refuses; principals map as EKS maps them. Pure functions: no server. The end-to-end path (API server ->
webhook -> moto's keys) is in test_eks_authentication.py.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit

import boto3
import pytest

from eksir.clients.eks_token import eks_bearer_token
from eksir.lab.eks_authenticator import AuthConfig, Caller, _caller_from_moto, authenticate, map_caller
from eksir.lab.eks_presign import TokenRejected, parse

STS = "http://127.0.0.1:5000"
ROLE_SESSION = Caller(
    access_key_id="ASIAEXAMPLE",
    secret="s",
    arn="arn:aws:sts::111122223333:assumed-role/oncall/jane@example.com",
    canonical_arn="arn:aws:iam::111122223333:role/oncall",
    user_id="AROAEXAMPLE:jane@example.com",
    account="111122223333",
    session_name="jane@example.com",
    session_token="t",
)


def _token(url: str) -> str:
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _url(**changes: str | None) -> str:
    sts = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name="us-east-1"
    ).client("sts", endpoint_url=STS)
    url = urlsplit(base64.urlsafe_b64decode(eks_bearer_token(sts, "c")[11:] + "==").decode())
    query = dict(parse_qsl(url.query))
    for key, value in changes.items():
        if value is None:
            query.pop(key.replace("_", "-"), None)
        else:
            query[key.replace("_", "-")] = value
    return url._replace(query=urlencode(query)).geturl()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("Bearer abc", "prefix"),
        ("k8s-aws-v1.%%%", "base64"),
        (_token(_url().replace("127.0.0.1:5000", "sts.amazonaws.com")), "trusted STS endpoint"),
        (_token(_url(Action="ListUsers")), "GetCallerIdentity"),
        (_token(_url(X_Amz_SignedHeaders="host")), "did not sign the x-k8s-aws-id"),
        (_token(_url(X_Amz_SignedHeaders="host;x-k8s-aws-id;x-forwarded-for")), "cannot reproduce"),
        (_token(_url(X_Amz_Expires="86400")), "out of range"),
        (_token(_url(Extra="1")), "unexpected parameters"),
        ("k8s-aws-v1." + "A" * 9000, "prefix"),
    ],
)
def test_malformed_foreign_or_unsigned_tokens_are_refused(token: str, reason: str) -> None:
    with pytest.raises(TokenRejected, match=reason):
        parse(token, STS)


def test_the_cluster_creator_is_kubernetes_admin_in_system_masters() -> None:
    assert map_caller(ROLE_SESSION, {}, "arn:aws:iam::111122223333:role/oncall") == (
        "kubernetes-admin",
        ["system:masters"],
    )


def test_a_role_session_matches_a_map_roles_entry_with_a_path_and_renders_every_template() -> None:
    map_roles = (
        "- rolearn: arn:aws:iam::111122223333:role/teams/ir/oncall\n"
        "  username: ir:{{SessionName}}:{{SessionNameRaw}}:{{AccountID}}:{{AccessKeyID}}\n"
        "  groups: [responders]\n"
    )
    username, groups = map_caller(ROLE_SESSION, {"mapRoles": map_roles}, None)
    assert username == "ir:jane-example.com:jane@example.com:111122223333:ASIAEXAMPLE"
    assert groups == ["responders"]


def test_a_template_the_lab_cannot_render_and_an_unmapped_principal_are_refused() -> None:
    node = "- rolearn: arn:aws:iam::111122223333:role/oncall\n  username: system:node:{{EC2PrivateDNSName}}\n"
    with pytest.raises(TokenRejected, match="EC2PrivateDNSName"):
        map_caller(ROLE_SESSION, {"mapRoles": node}, None)
    with pytest.raises(TokenRejected, match="not mapped"):
        map_caller(ROLE_SESSION, {"mapUsers": "- userarn: arn:aws:iam::111122223333:user/oncall\n"}, None)


def test_keys_are_found_in_moto_data_and_an_inactive_key_is_not() -> None:
    data = {
        "iam": {
            "AccessKey": [
                {"access_key_id": "AKIA1", "secret_access_key": "s1", "status": "Active", "user_name": "bob"},
                {
                    "access_key_id": "AKIA2",
                    "secret_access_key": "s2",
                    "status": "Inactive",
                    "user_name": "bob",
                },
            ],
            "User": [{"name": "bob", "arn": "arn:aws:iam::1:user/bob", "id": "AIDA1", "account_id": "1"}],
            "Role": [{"arn": "arn:aws:iam::1:role/p/r", "id": "AROA1"}],
        },
        "sts": {
            "AssumedRole": [
                {
                    "access_key_id": "ASIA1",
                    "secret_access_key": "s3",
                    "session_token": "tok",
                    "arn": "arn:aws:sts::1:assumed-role/r/s",
                    "role_arn": "arn:aws:iam::1:role/p/r",
                    "session_name": "s",
                    "account_id": "1",
                }
            ]
        },
    }
    user = _caller_from_moto(data, "AKIA1")
    assert user is not None
    assert (user.arn, user.secret, user.session_token) == ("arn:aws:iam::1:user/bob", "s1", None)
    assert _caller_from_moto(data, "AKIA2") is None
    session = _caller_from_moto(data, "ASIA1")
    assert session is not None
    assert (session.canonical_arn, session.user_id, session.session_token) == (
        "arn:aws:iam::1:role/r",
        "AROA1:s",
        "tok",
    )
    assert _caller_from_moto(data, "AKIA9") is None


def test_a_token_for_another_cluster_is_accepted_only_when_the_api_server_serves_that_cluster_too() -> None:
    """The fleet lab's second account's cluster shares the lab API server (`other_clusters`); a token naming
    a cluster the server does not serve is still refused."""
    sts = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name="us-east-1"
    ).client("sts", endpoint_url=STS)
    token = eks_bearer_token(sts, "staging")
    user = {"secret": "x", "arn": "arn:aws:iam::111122223333:user/jane", "user_id": "AIDAEXAMPLE"}
    config = AuthConfig(
        cluster_name="prod",
        sts_endpoint=STS,
        moto_url=STS,
        apiserver="https://127.0.0.1:6443",
        ca_file="ca.crt",
        client_cert="c.crt",
        client_key="c.key",
        known_keys={"AKIAEXAMPLE": user},
    )
    with pytest.raises(TokenRejected, match="signature does not match for cluster prod"):
        authenticate(token, config)
    assert authenticate(token, replace(config, other_clusters=["staging"])).arn == user["arn"]

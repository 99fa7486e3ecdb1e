"""The attacked node's credentials (iam.deny_instance_credentials) and a workload role's trust
(iam.break_role_trust) against moto's EC2 and IAM over HTTP.

moto ignores IAM conditions (shared/DESIGN.md): the deny's scoping to one instance cannot be proved by
calling AWS from another node here; it is proved by reading the policy back and by unit tests of each
statement (a conditioned Deny with the instance ARN, a second one with VPC and private IP).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from eksir.actions.base import ActionContext
from eksir.actions.containment.iam_instance_deny import (
    DenyInstanceCredentials,
    DenyInstanceCredentialsParams,
    instance_deny_document,
    policy_name,
)
from eksir.actions.containment.iam_trust import BreakRoleTrust, BreakRoleTrustParams, deny_statements
from tests.actions.conftest import boto_client

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/5C6B7A"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"
IRSA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:payments:payments-api"}},
        }
    ],
}


def test_the_first_statement_denies_credentials_carrying_the_instance_arn() -> None:
    arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
    first, second = instance_deny_document(arn, "vpc-1", "10.0.1.23")["Statement"]
    assert first["Effect"] == "Deny"
    assert first["Action"] == "*"
    assert first["Resource"] == "*"
    assert first["Condition"] == {"ArnEquals": {"ec2:SourceInstanceARN": arn}}
    assert second["Condition"] == {
        "StringEquals": {"aws:ec2InstanceSourceVPC": "vpc-1"},
        "IpAddress": {"aws:ec2InstanceSourcePrivateIPv4": "10.0.1.23/32"},
    }
    assert second["Effect"] == "Deny"


def test_without_a_vpc_or_address_only_the_instance_arn_statement_is_written() -> None:
    document = instance_deny_document("arn:aws:ec2:r:1:instance/i-1", None, None)
    assert len(document["Statement"]) == 1


@pytest.fixture
def node(moto: Any) -> dict[str, str]:
    iam, ec2 = boto_client(moto, "iam"), boto_client(moto, "ec2")
    iam.create_role(RoleName="eksir-lab-node-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    profile = iam.create_instance_profile(InstanceProfileName="node-profile")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="node-profile", RoleName="eksir-lab-node-role")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instances = ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2, IamInstanceProfile={"Arn": profile["Arn"]}
    )["Instances"]
    return {
        "attacked": instances[0]["InstanceId"],
        "other": instances[1]["InstanceId"],
        "ip": instances[0]["PrivateIpAddress"],
        "vpc": instances[0]["VpcId"],
    }


def _role_policy(moto: Any, role: str, name: str) -> dict[str, Any] | None:
    iam = boto_client(moto, "iam")
    if name not in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        return None
    doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def test_the_node_role_carries_a_deny_naming_the_attacked_instance_and_rollback_removes_it(
    aws_ctx: ActionContext, moto: Any, node: dict[str, str]
) -> None:
    params = DenyInstanceCredentialsParams(instance_id=node["attacked"])
    action = DenyInstanceCredentials()
    planned = action.plan(aws_ctx, params)
    assert any("other nodes on role eksir-lab-node-role keep working" in b for b in planned.blast_radius)
    assert any("kubelet's credentials stay valid until the node is gone" in w for w in planned.warnings)
    applied = action.apply(aws_ctx, params)
    written = _role_policy(moto, "eksir-lab-node-role", policy_name(node["attacked"]))
    assert written is not None
    condition = written["Statement"][0]["Condition"]["ArnEquals"]["ec2:SourceInstanceARN"]
    assert condition == f"arn:aws:ec2:us-east-1:123456789012:instance/{node['attacked']}"
    assert node["other"] not in json.dumps(written)
    assert written["Statement"][1]["Condition"]["IpAddress"] == {
        "aws:ec2InstanceSourcePrivateIPv4": f"{node['ip']}/32"
    }
    assert written["Statement"][1]["Condition"]["StringEquals"] == {"aws:ec2InstanceSourceVPC": node["vpc"]}
    verified = action.verify(aws_ctx, params, applied)
    assert verified.ok
    assert "kubelet" in verified.detail
    assert action.check(aws_ctx, params).already_applied
    action.rollback(aws_ctx, params, applied)
    assert _role_policy(moto, "eksir-lab-node-role", policy_name(node["attacked"])) is None
    assert not action.verify(aws_ctx, params, applied).ok


def test_an_instance_without_a_profile_fails_the_check(aws_ctx: ActionContext, moto: Any) -> None:
    ec2 = boto_client(moto, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    bare = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    outcome = DenyInstanceCredentials().check(aws_ctx, DenyInstanceCredentialsParams(instance_id=bare))
    assert not outcome.ok
    assert "no instance profile" in outcome.detail


def _trust(moto: Any, role: str) -> dict[str, Any]:
    doc = boto_client(moto, "iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def test_the_irsa_deny_statement_names_the_service_accounts_subject() -> None:
    params = BreakRoleTrustParams(role_name="r", namespace="payments", service_account="payments-api")
    (statement,) = deny_statements(IRSA_TRUST, params, "EksirDenySAcase1")
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:payments:payments-api"}
    }


def test_the_pod_identity_deny_statement_names_the_session_tags() -> None:
    params = BreakRoleTrustParams(
        role_name="r", namespace="cache", service_account="redis", mechanism="pod-identity"
    )
    (statement,) = deny_statements({"Statement": []}, params, "EksirDenySAcase1")
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {
        "aws:RequestTag/kubernetes-namespace": "cache",
        "aws:RequestTag/kubernetes-service-account": "redis",
    }


def test_breaking_the_trust_adds_the_deny_and_rollback_restores_the_document_exactly(
    aws_ctx: ActionContext, moto: Any
) -> None:
    boto_client(moto, "iam").create_role(
        RoleName="payments-api-irsa", AssumeRolePolicyDocument=json.dumps(IRSA_TRUST)
    )
    before = _trust(moto, "payments-api-irsa")
    params = BreakRoleTrustParams(
        role_name="payments-api-irsa", namespace="payments", service_account="payments-api"
    )
    action = BreakRoleTrust()
    applied = action.apply(aws_ctx, params)
    after = _trust(moto, "payments-api-irsa")
    assert after["Statement"][0] == before["Statement"][0]  # the allow stays
    assert after["Statement"][1]["Effect"] == "Deny"
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    assert action.apply(aws_ctx, params)["previous_trust"] is None  # second apply is a no-op
    action.rollback(aws_ctx, params, applied)
    assert _trust(moto, "payments-api-irsa") == before
    assert not action.verify(aws_ctx, params, applied).ok


def test_a_role_that_trusts_no_oidc_provider_is_not_irsa(aws_ctx: ActionContext, moto: Any) -> None:
    boto_client(moto, "iam").create_role(RoleName="plain", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    params = BreakRoleTrustParams(role_name="plain", namespace="a", service_account="b")
    outcome = BreakRoleTrust().check(aws_ctx, params)
    assert not outcome.ok
    assert "not IRSA" in outcome.detail

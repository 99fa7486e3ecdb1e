"""The doctor's AWS checks for APIs moto does not serve (IAM SimulatePrincipalPolicy, SSM
DescribeInstanceInformation), with botocore's Stubber validating every request and response against the
service model; and the pure checks (audit logging, role ARN of a session)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from eksir.preflight import aws_checks
from eksir.preflight.result import Verdict

ROLE = "arn:aws:iam::123456789012:role/ops/eksir-responder"


class Clients:
    """`aws(service)` over stubbed boto3 clients."""

    def __init__(self, **clients: Any) -> None:
        self.clients = clients

    def __call__(self, service: str) -> Any:
        return self.clients[service]


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _evaluation(action: str, decision: str) -> dict[str, Any]:
    return {"EvalActionName": action, "EvalResourceName": "*", "EvalDecision": decision}


def test_iam_permissions_name_every_denied_action() -> None:
    iam = _client("iam")
    with Stubber(iam) as stub:
        stub.add_response(
            "simulate_principal_policy",
            {
                "EvaluationResults": [
                    _evaluation("ec2:DescribeInstances", "allowed"),
                    _evaluation("ssm:SendCommand", "implicitDeny"),
                ]
            },
            {"PolicySourceArn": ROLE, "ActionNames": ["ec2:DescribeInstances", "ssm:SendCommand"]},
        )
        result = aws_checks.iam_permissions(
            Clients(iam=iam),
            ROLE,
            ["ec2:DescribeInstances", "ssm:SendCommand"],  # type: ignore[arg-type]
        )
    assert result.verdict is Verdict.FAIL
    assert result.detail == "1 of 2 actions denied: ssm:SendCommand"
    assert "eksir permissions" in result.fix


def test_iam_permissions_pass_when_all_are_allowed_in_batches_of_100() -> None:
    actions = [f"ec2:Describe{i:03d}" for i in range(150)]
    iam = _client("iam")
    with Stubber(iam) as stub:
        for batch in (actions[:100], actions[100:]):
            results = [_evaluation(a, "allowed") for a in batch]
            stub.add_response(
                "simulate_principal_policy",
                {"EvaluationResults": results},
                {"PolicySourceArn": ROLE, "ActionNames": batch},
            )
        result = aws_checks.iam_permissions(Clients(iam=iam), ROLE, actions)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert result.verdict is Verdict.PASS


def test_a_denied_simulation_is_a_skip_that_says_what_to_allow() -> None:
    iam = _client("iam")
    with Stubber(iam) as stub:
        stub.add_client_error("simulate_principal_policy", "AccessDenied", http_status_code=403)
        result = aws_checks.iam_permissions(Clients(iam=iam), ROLE, ["ec2:DescribeInstances"])  # type: ignore[arg-type]
    assert result.verdict is Verdict.SKIP
    assert "iam:SimulatePrincipalPolicy" in result.detail


def test_nodes_missing_from_ssm_are_named() -> None:
    ssm = _client("ssm")
    with Stubber(ssm) as stub:
        stub.add_response(
            "describe_instance_information",
            {"InstanceInformationList": [{"InstanceId": "i-0aaaaaaaaaaaaaaa1", "PingStatus": "Online"}]},
            {"Filters": [{"Key": "InstanceIds", "Values": ["i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"]}]},
        )
        result = aws_checks.ssm_registration(
            Clients(ssm=ssm),
            ["i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"],  # type: ignore[arg-type]
        )
    assert result.verdict is Verdict.FAIL
    assert result.detail.endswith("not online in SSM: i-0bbbbbbbbbbbbbbb2")
    assert "AmazonSSMManagedInstanceCore" in result.fix


@pytest.mark.parametrize(
    ("logging", "verdict"),
    [
        ({"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]}, Verdict.PASS),
        ({"clusterLogging": [{"types": ["audit"], "enabled": False}]}, Verdict.FAIL),
        ({}, Verdict.FAIL),
    ],
)
def test_audit_logging_reads_the_clusters_logging_config(logging: dict[str, Any], verdict: Verdict) -> None:
    assert aws_checks.audit_logging({"name": "prod", "logging": logging}).verdict is verdict


def test_an_assumed_role_session_is_checked_as_its_role_with_its_path() -> None:
    iam = _client("iam")
    with Stubber(iam) as stub:
        role = {
            "Path": "/ops/",
            "RoleName": "eksir-responder",
            "RoleId": "AROAEXAMPLEEXAMPLE01",
            "Arn": ROLE,
            "CreateDate": "2026-01-01T00:00:00Z",
            "AssumeRolePolicyDocument": "{}",
        }
        stub.add_response("get_role", {"Role": role}, {"RoleName": "eksir-responder"})
        session = "arn:aws:sts::123456789012:assumed-role/eksir-responder/case-1"
        assert aws_checks.principal_arn(Clients(iam=iam), session) == ROLE  # type: ignore[arg-type]

"""The generated policy under AWS's own IAM evaluation (the IAM policy simulator), not moto's.

moto matches only `Resource: "*"` outside S3/IAM/STS/SQS and ignores conditions (shared/DESIGN.md), so the
scoping of `eksir permissions` is checked offline in the normal suite. Here IAM itself evaluates it:
SimulateCustomPolicy with every granted action on a resource of the scoped types in the sandbox account
(allowed), the conditioned EC2 actions with and without the case tag (allowed / implicitly denied), and, when
EKSIR_TEST_AWS_RESPONDER_ROLE_ARN names the role deployed from `eksir permissions --format cloudformation`,
SimulatePrincipalPolicy on that role: what is deployed allows what eksir calls. Read-only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from eksir.actions.permission_scopes import CASE_TAG
from eksir.actions.permissions import all_specs, iam_policy
from tests.aws_real.conftest import Sandbox, require

pytestmark = pytest.mark.aws_real
POLICY = iam_policy(all_specs())
_TAG_CONTEXT = {
    "ContextKeyName": f"aws:ResourceTag/{CASE_TAG}",
    "ContextKeyValues": ["eksir-test"],
    "ContextKeyType": "string",
}


def concrete(arn: str, account: str, region: str) -> str:
    """A resource ARN of the statement's type in the sandbox: region and account filled, names made up."""
    if arn == "*":
        return "*"
    parts = arn.split(":", 5)
    if parts[3] == "*":
        parts[3] = region
    if parts[4] == "*":
        parts[4] = account
    return ":".join(parts).replace("*", "eksir-test")


def _context(statement: dict[str, Any], tagged: bool) -> list[dict[str, Any]]:
    """Context keys a conditioned statement asks for: the case tag on the resource or in the request."""
    text = json.dumps(statement.get("Condition", {}))
    entries = []
    if tagged and "aws:ResourceTag" in text:
        entries.append(_TAG_CONTEXT)
    if tagged and "aws:RequestTag" in text:
        entries.append({**_TAG_CONTEXT, "ContextKeyName": f"aws:RequestTag/{CASE_TAG}"})
    if "ec2:CreateAction" in text:
        entries.append(
            {
                "ContextKeyName": "ec2:CreateAction",
                "ContextKeyValues": ["CreateSecurityGroup"],
                "ContextKeyType": "string",
            }
        )
    return entries


def _decisions(
    sandbox: Sandbox, statement: dict[str, Any], tagged: bool, role_arn: str | None = None
) -> dict[str, str]:
    region = sandbox.config.region or "us-east-1"
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    args: dict[str, Any] = {
        "ActionNames": statement["Action"],
        "ResourceArns": [concrete(r, sandbox.config.account, region) for r in resources[:1]],
        "ContextEntries": _context(statement, tagged),
    }
    iam = sandbox.client("iam")
    if role_arn:
        pages = iam.get_paginator("simulate_principal_policy").paginate(PolicySourceArn=role_arn, **args)
    else:
        document = json.dumps({"Version": POLICY["Version"], "Statement": [statement]})
        pages = iam.get_paginator("simulate_custom_policy").paginate(PolicyInputList=[document], **args)
    return {r["EvalActionName"]: r["EvalDecision"] for page in pages for r in page["EvaluationResults"]}


@pytest.mark.parametrize("statement", POLICY["Statement"], ids=lambda st: st["Sid"])
def test_iam_allows_every_action_of_the_statement_on_its_resources(
    sandbox: Sandbox, statement: dict[str, Any]
) -> None:
    decisions = _decisions(sandbox, statement, tagged=True)
    assert decisions == dict.fromkeys(statement["Action"], "allowed")


@pytest.mark.parametrize(
    "statement",
    [st for st in POLICY["Statement"] if "aws:ResourceTag" in json.dumps(st.get("Condition", {}))],
    ids=lambda st: st["Sid"],
)
def test_iam_denies_the_conditioned_actions_on_a_resource_without_the_case_tag(
    sandbox: Sandbox, statement: dict[str, Any]
) -> None:
    decisions = _decisions(sandbox, statement, tagged=False)
    assert set(decisions.values()) == {"implicitDeny"}


def test_the_deployed_responder_role_allows_every_generated_action(sandbox: Sandbox) -> None:
    role_arn = require(sandbox.config.responder_role_arn, "EKSIR_TEST_AWS_RESPONDER_ROLE_ARN")
    refused = {}
    for statement in POLICY["Statement"]:
        decisions = _decisions(sandbox, statement, tagged=True, role_arn=role_arn)
        refused.update({a: d for a, d in decisions.items() if d != "allowed"})
    assert refused == {}

"""The member-account CloudFormation template: the responder role, its trust, and the derived policy.

Why a template: a security team deploys the role eksir assumes (`--assume-role arn:aws:iam::{account}:role/
eksir-responder`) into every member account at once, as a CloudFormation StackSet from the management or a
delegated administrator account. So nothing in it names an account: the security account and the external id
are parameters, resources are named from parameters, and the policy is the one `eksir permissions` derives.

The trust admits the security account's principals (its IAM policies then say who may assume the role) only
with the external id, and allows `sts:SetSourceIdentity`, because eksir sets SourceIdentity to the operator so
that the member account's CloudTrail names the person behind every call. The policy is split into managed
policies under IAM's 6,144-character limit (counted without whitespace), statements kept whole; each
policy attaches itself to the role (`Roles`), which CloudFormation and moto's CloudFormation both honour
(moto ignores a role's `ManagedPolicyArns`).
"""

from __future__ import annotations

import json
from typing import Any

from eksir.actions.permissions import DEFAULT_ROLE_NAME

MANAGED_POLICY_LIMIT = 6144
_HEADROOM = 400
"""CloudFormation substitutes nothing in the policy, but keep room for the Version and list punctuation."""


def split_statements(statements: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Statements grouped into documents that each stay under IAM's managed-policy size limit."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for statement in statements:
        length = len(json.dumps(statement, separators=(",", ":")))
        if chunks[-1] and size + length > MANAGED_POLICY_LIMIT - _HEADROOM:
            chunks.append([])
            size = 0
        chunks[-1].append(statement)
        size += length
    return chunks


def _trust() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SecurityAccountWithExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${SecurityAccountId}:root"}},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
            }
        ],
    }


def _parameters(role_name: str) -> dict[str, Any]:
    return {
        "SecurityAccountId": {
            "Type": "String",
            "AllowedPattern": "^[0-9]{12}$",
            "Description": "The security account whose principals run eksir (GuardDuty's administrator)",
        },
        "ExternalId": {
            "Type": "String",
            "MinLength": 2,
            "MaxLength": 1224,
            "AllowedPattern": "^[\\w+=,.@:/-]+$",
            "Description": "eksir passes it with --external-id (or EKSIR_EXTERNAL_ID)",
        },
        "RoleName": {"Type": "String", "Default": role_name, "Description": "eksir's --assume-role names it"},
    }


def cloudformation_template(policy: dict[str, Any], role_name: str = DEFAULT_ROLE_NAME) -> dict[str, Any]:
    """The template (a dict, JSON-ready): parameters, the role, its managed policies, the role ARN output."""
    chunks = split_statements(list(policy["Statement"]))
    policies = {
        f"ResponderPolicy{index}": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "ManagedPolicyName": {"Fn::Sub": f"${{RoleName}}-{index}"},
                "Description": f"eksir responder permissions, part {index} of {len(chunks)}",
                "PolicyDocument": {"Version": policy["Version"], "Statement": chunk},
                "Roles": [{"Ref": "ResponderRole"}],
            },
        }
        for index, chunk in enumerate(chunks, start=1)
    }
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "RoleName"},
            "Description": "eksir incident response for EKS, assumed from the security account",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": _trust(),
            "Tags": [{"Key": "app.kubernetes.io/managed-by", "Value": "eksir"}],
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "eksir responder role for a member account (deploy as a StackSet to every account)",
        "Parameters": _parameters(role_name),
        "Resources": {"ResponderRole": role, **policies},
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["ResponderRole", "Arn"]}}},
    }

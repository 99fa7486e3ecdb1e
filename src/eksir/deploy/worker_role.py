"""The worker's IAM role in the security account: what `eksir permissions` derives, plus what fleet mode adds.

Why the whole derived policy and not only the security account's share: a finding in the security account
itself (or in any account where no member role is configured) is handled with the worker's own credentials,
exactly as `eksir respond` run there would be. Fleet mode adds, each scoped to this stack's resources: reading
and settling messages on its queue; sending a refused message with its reason to the dead-letter queue (found
from the queue's redrive policy, hence GetQueueUrl); conditional writes on the lease table; the case bucket;
and `sts:AssumeRole` (with SourceIdentity, which eksir sets to the operator) into the member accounts'
responder role by name. The derived policy is split into managed policies under IAM's size limit the same way
the member template splits it.
"""

from __future__ import annotations

from typing import Any

from eksir.actions.permissions_template import split_statements


def _arn(resource: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, "Arn"]}


def fleet_statements() -> list[dict[str, Any]]:
    """Queue, lease table, case bucket and member-role statements, each on this stack's resources only."""
    return [
        {
            "Sid": "EksirFleetQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            "Resource": _arn("FindingQueue"),
        },
        {
            "Sid": "EksirFleetDeadLetters",
            "Effect": "Allow",
            "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
            "Resource": _arn("DeadLetterQueue"),
        },
        {
            "Sid": "EksirFleetLeases",
            "Effect": "Allow",
            "Action": ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": _arn("LeaseTable"),
        },
        {
            "Sid": "EksirFleetCaseBucket",
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketLocation",
                "s3:GetBucketObjectLockConfiguration",
                "s3:GetBucketVersioning",
                "s3:ListBucket",
            ],
            "Resource": _arn("CaseBucket"),
        },
        {
            "Sid": "EksirFleetCaseObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectRetention", "s3:PutObject", "s3:PutObjectRetention"],
            "Resource": {"Fn::Sub": "${CaseBucket.Arn}/*"},
        },
        {
            "Sid": "EksirFleetMemberRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"},
        },
    ]


def _trust() -> dict[str, Any]:
    """ECS tasks of this account only (aws:SourceAccount guards against the confused deputy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }
        ],
    }


def worker_role(policy: dict[str, Any]) -> dict[str, Any]:
    """The role, the fleet policy, and the derived policy in managed policies that attach themselves."""
    chunks = split_statements(list(policy["Statement"]))
    resources: dict[str, Any] = {
        "WorkerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "eksir fleet worker (ECS task role): the response, the queue, leases, cases",
                "AssumeRolePolicyDocument": _trust(),
                "Tags": [{"Key": "app.kubernetes.io/managed-by", "Value": "eksir"}],
            },
        },
        "WorkerFleetPolicy": _managed(
            "eksir fleet worker: queue, leases, case bucket, member roles",
            {
                "Version": "2012-10-17",
                "Statement": fleet_statements(),
            },
        ),
    }
    for index, chunk in enumerate(chunks, start=1):
        document = {"Version": policy["Version"], "Statement": chunk}
        title = f"eksir responder permissions, part {index} of {len(chunks)}"
        resources[f"WorkerResponsePolicy{index}"] = _managed(title, document)
    return resources


def _managed(description: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": description,
            "PolicyDocument": document,
            "Roles": [{"Ref": "WorkerRole"}],
        },
    }

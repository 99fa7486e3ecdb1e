"""How far each IAM action eksir needs is scoped: by resource ARN, by condition, or `*` where nothing less.

Why a table beside the derivation (actions/permissions.py), not in each ActionSpec: the scope depends on the
resource types AWS defines per action (the Service Authorization Reference), which is one fact per service,
while the actions declare only what they call. Three kinds of grant:

- **conditioned**: changes eksir makes only to what it created (its isolation security group, its evidence
  snapshots) are allowed only on resources tagged `eksir.io/case-id`, and creating them only with that tag in
  the request; tags are written only at creation or onto such resources.
- **scoped**: every other action whose resources AWS can name is limited to the resource types of its service
  that eksir touches (clusters and access entries, not node groups or add-ons; EKS control-plane log groups,
  not every log group). S3 stays open to any bucket: the attacker's buckets are not known in advance.
- **unscoped**: actions AWS authorizes only on `*` (Describe*/List* of EC2, LookupEvents, GetCallerIdentity).

The unit tests check this table against parliament's copy of the Service Authorization Reference: an action
listed as unscoped really has no resource type, and every scoped action matches one of its statement's ARNs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CASE_TAG = "eksir.io/case-id"
_TAGGED = {"Null": {f"aws:ResourceTag/{CASE_TAG}": "false"}}
_TAGGING = {"Null": {f"aws:RequestTag/{CASE_TAG}": "false"}}
_CREATES = ("CreateSecurityGroup", "CreateSnapshot", "CreateSnapshots")


@dataclass(frozen=True)
class Grant:
    """One statement's shape: its Sid suffix, resources and condition (None: unconditioned)."""

    name: str
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None
    actions: frozenset[str] = field(default_factory=frozenset)


CONDITIONED: tuple[Grant, ...] = (
    Grant(
        "Ec2CaseResources",
        ("arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*::snapshot/*"),
        _TAGGED,
        frozenset(
            {
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "ec2:ModifySnapshotAttribute",
            }
        ),
    ),
    Grant(
        "Ec2CreateTagged",
        (
            "arn:aws:ec2:*:*:security-group/*",
            "arn:aws:ec2:*:*:vpc/*",
            "arn:aws:ec2:*::snapshot/*",
            "arn:aws:ec2:*:*:volume/*",
            "arn:aws:ec2:*:*:instance/*",
        ),
        _TAGGING,
        frozenset({f"ec2:{name}" for name in _CREATES}),
    ),
    Grant(
        "Ec2TagOnCreate",
        ("arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*::snapshot/*"),
        {"StringEquals": {"ec2:CreateAction": list(_CREATES)}},
        frozenset({"ec2:CreateTags"}),
    ),
    Grant(
        "Ec2TagCaseResources",
        ("arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*::snapshot/*"),
        _TAGGED,
        frozenset({"ec2:CreateTags"}),
    ),
)
"""Changes only to what eksir created for the case. An action here gets only these statements."""

UNSCOPED = frozenset(
    {
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeTags",
        "cloudtrail:LookupEvents",
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkAcls",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribePrefixLists",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSnapshots",
        "ec2:DescribeTags",
        "guardduty:ArchiveFindings",
        "guardduty:GetFindings",
        "guardduty:ListDetectors",
        "guardduty:UnarchiveFindings",
        "guardduty:UpdateFindingsFeedback",
        "iam:ListRoles",
        "iam:ListUsers",
        "logs:DescribeLogGroups",
        "ssm:GetCommandInvocation",
        "ssm:ListCommands",
        "ssm:DescribeInstanceInformation",
        "cloudtrail:DescribeTrails",
        "sts:GetCallerIdentity",
        "tag:GetResources",
    }
)
"""Actions AWS authorizes only on `*` (no resource type in the Service Authorization Reference)."""

SERVICE_RESOURCES: Mapping[str, tuple[str, ...]] = {
    "athena": ("arn:aws:athena:*:*:workgroup/*",),
    "autoscaling": ("arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*",),
    "cloudtrail": ("arn:aws:cloudtrail:*:*:trail/*",),
    "ec2": (
        "arn:aws:ec2:*:*:instance/*",
        "arn:aws:ec2:*:*:network-acl/*",
        "arn:aws:ec2:*:*:network-interface/*",
        "arn:aws:ec2:*:*:security-group/*",
        "arn:aws:ec2:*:*:subnet/*",
        "arn:aws:ec2:*:*:vpc/*",
        "arn:aws:ec2:*:*:volume/*",
        "arn:aws:ec2:*::snapshot/*",
    ),
    "eks": (
        "arn:aws:eks:*:*:cluster/*",
        "arn:aws:eks:*:*:access-entry/*/*/*/*/*",
        "arn:aws:eks:*:*:identityproviderconfig/*/*/*/*",
        "arn:aws:eks:*:*:podidentityassociation/*/*",
        "arn:aws:eks:*:*:nodegroup/*/*/*",
    ),
    "glue": ("arn:aws:glue:*:*:catalog", "arn:aws:glue:*:*:database/*", "arn:aws:glue:*:*:table/*/*"),
    "guardduty": ("arn:aws:guardduty:*:*:detector/*", "arn:aws:guardduty:*:*:detector/*/filter/*"),
    "iam": (
        "arn:aws:iam::*:user/*",
        "arn:aws:iam::*:role/*",
        "arn:aws:iam::*:group/*",
        "arn:aws:iam::*:policy/*",
        "arn:aws:iam::*:instance-profile/*",
    ),
    "kms": ("arn:aws:kms:*:*:key/*",),
    "lambda": ("arn:aws:lambda:*:*:function:*",),
    "logs": ("arn:aws:logs:*:*:log-group:/aws/eks/*",),
    "s3": ("arn:aws:s3:::*", "arn:aws:s3:::*/*"),
    "securityhub": ("arn:aws:securityhub:*:*:hub/default",),
    "sns": ("arn:aws:sns:*:*:*",),
    "ssm": ("arn:aws:ssm:*:*:document/AWS-RunShellScript", "arn:aws:ec2:*:*:instance/*", "arn:aws:s3:::*"),
}
"""The resource types eksir touches, per service (account and region left open: the role is per account)."""

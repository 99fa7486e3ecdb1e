"""What eksir needs, derived from the actions' own declarations: the IAM policy and the ClusterRole.

Why here, beside the actions: `eksir permissions` prints them and `eksir doctor` checks a responder's real
access against them; both must read the one derivation, and it depends only on the action registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eksir.actions.base import ActionSpec, Phase, RbacRule
from eksir.actions.permission_scopes import CONDITIONED, SERVICE_RESOURCES, UNSCOPED
from eksir.actions.registry import load_all

DEFAULT_ROLE_NAME = "eksir-responder"
_READ = ("get",)
_LIST = ("get", "list")

RESOLVE_SPEC = ActionSpec(
    id="eksir.resolve",
    phase=Phase.EVIDENCE,
    title="Resolve the finding online (read-only): cluster, pod, owners, node, instance, principal",
    iam_actions=(
        "eks:DescribeCluster",
        "eks:ListAccessEntries",
        "eks:DescribeAccessEntry",
        "eks:ListAssociatedAccessPolicies",
        "eks:ListIdentityProviderConfigs",
        "eks:DescribeIdentityProviderConfig",
        "eks:ListPodIdentityAssociations",
        "eks:DescribePodIdentityAssociation",
        "eks:DescribeNodegroup",
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "autoscaling:DescribeAutoScalingInstances",
        "iam:GetRole",
        "iam:GetUser",
        "iam:ListRoles",
        "iam:ListUsers",
        "iam:GetAccessKeyLastUsed",
        "sts:GetCallerIdentity",
    ),
    rbac=(
        RbacRule(("",), ("pods",), _LIST),
        RbacRule(("",), ("nodes", "configmaps", "serviceaccounts", "replicationcontrollers"), _READ),
        RbacRule(("",), ("services",), ("list",)),
        RbacRule(("apps",), ("replicasets", "deployments", "statefulsets", "daemonsets"), _READ),
        RbacRule(("batch",), ("jobs", "cronjobs"), _READ),
        RbacRule(("policy",), ("poddisruptionbudgets",), ("list",)),
    ),
    description="runs before every plan; declared here because resolution is not an action",
)


HUNT_SPEC = ActionSpec(
    id="eksir.hunt",
    phase=Phase.EVIDENCE,
    title="Hunt the principals' calls: CloudTrail (API, S3, Athena), the audit log (Logs Insights), owners",
    iam_actions=(
        "cloudtrail:LookupEvents",
        "s3:ListBucket",
        "s3:GetObject",
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "s3:GetBucketLocation",
        "s3:PutObject",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "tag:GetResources",
    ),
    description="eksir hunt; Athena also writes its results to the --athena-output bucket (s3:PutObject)",
)
HOME_SPEC = ActionSpec(
    id="eksir.home",
    phase=Phase.EVIDENCE,
    title="The security account's side: confirm the finding, the war room, anchors in the evidence bucket",
    iam_actions=(
        "guardduty:ListDetectors",
        "guardduty:GetFindings",
        "sns:Publish",
        "s3:PutObject",
        "sts:GetCallerIdentity",
    ),
    description="GetFindings on the administrator's detector, SNS war-room summaries, chain-head anchors",
)
DOCTOR_SPEC = ActionSpec(
    id="eksir.doctor",
    phase=Phase.EVIDENCE,
    title="Preflight (eksir doctor): simulate this policy, the trail, the evidence bucket, SSM on nodes",
    iam_actions=(
        "iam:SimulatePrincipalPolicy",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "s3:GetBucketObjectLockConfiguration",
        "ssm:DescribeInstanceInformation",
    ),
    rbac=(RbacRule(("",), ("nodes",), ("list",)),),  # which nodes' instances SSM must manage
    description="read-only checks; iam:SimulatePrincipalPolicy on the responder's own role",
)
NON_ACTION_SPECS = (RESOLVE_SPEC, HUNT_SPEC, HOME_SPEC, DOCTOR_SPEC)
"""What eksir calls outside any action: resolution, the hunt, the security account's side, the preflight."""


def all_specs() -> list[ActionSpec]:
    """Every registered action's spec plus the non-action specs, sorted by id."""
    return sorted([*NON_ACTION_SPECS, *(cls.spec for cls in load_all().values())], key=lambda s: s.id)


def _sid(*parts: str) -> str:
    return "Eksir" + "".join(
        w.capitalize() if w.islower() else w for p in parts for w in p.replace("-", " ").split()
    )


def iam_policy(specs: Iterable[ActionSpec]) -> dict[str, Any]:
    """An IAM policy document scoped as actions/permission_scopes.py says: conditioned grants first, then one
    statement per service for its resource types, then one per service for the actions AWS allows only on `*`.
    Actions sorted and de-duplicated, statements in a stable order."""
    wanted = {action for spec in specs for action in spec.iam_actions}
    statements: list[dict[str, Any]] = []
    for grant in CONDITIONED:
        granted = sorted(wanted & grant.actions)
        if granted:
            statements.append(_statement(_sid(grant.name), granted, grant.resources, grant.condition))
    rest = wanted - {a for grant in CONDITIONED for a in grant.actions}
    by_service: dict[tuple[str, bool], set[str]] = {}
    for action in rest:
        service = action.split(":", 1)[0]
        scoped = action not in UNSCOPED and service in SERVICE_RESOURCES
        by_service.setdefault((service, scoped), set()).add(action)
    for (service, scoped), actions in sorted(by_service.items()):
        resources = SERVICE_RESOURCES[service] if scoped else ("*",)
        statements.append(_statement(_sid(service, "" if scoped else "Any"), sorted(actions), resources))
    return {"Version": "2012-10-17", "Statement": statements}


def _statement(
    sid: str, actions: list[str], resources: tuple[str, ...], condition: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions}
    statement["Resource"] = resources[0] if resources == ("*",) else list(resources)
    if condition:
        statement["Condition"] = dict(condition)
    return statement


UNBOUNDED_VERBS = frozenset({"impersonate"})
"""Verbs a rule may grant only on named objects: impersonating anyone would make the responder anyone."""


def rbac_rules(specs: Iterable[ActionSpec]) -> list[dict[str, list[str]]]:
    """ClusterRole rules: verbs merged per (apiGroup, resource), then resources with equal verbs merged;
    rules naming their objects (`resourceNames`) kept as declared, after the others.

    Raises ValueError for a rule granting `impersonate` without naming whom (a bug in an action's spec).
    """
    specs = list(specs)
    named = [rule for spec in specs for rule in spec.rbac if rule.resource_names]
    for spec in specs:
        for rule in spec.rbac:
            if UNBOUNDED_VERBS & set(rule.verbs) and not rule.resource_names:
                raise ValueError(
                    f"{spec.id}: {sorted(UNBOUNDED_VERBS & set(rule.verbs))} needs resource_names"
                )
    return [*_merged_rules(specs), *_named_rules(named)]


def _named_rules(rules: list[RbacRule]) -> list[dict[str, list[str]]]:
    shaped = {
        (
            tuple(r.api_groups),
            tuple(sorted(r.resources)),
            tuple(sorted(r.verbs)),
            tuple(sorted(r.resource_names)),
        )
        for r in rules
    }
    return [
        {"apiGroups": list(g), "resources": list(res), "verbs": list(v), "resourceNames": list(n)}
        for g, res, v, n in sorted(shaped)
    ]


def _merged_rules(specs: list[ActionSpec]) -> list[dict[str, list[str]]]:
    verbs: dict[tuple[str, str], set[str]] = {}
    for spec in specs:
        for rule in spec.rbac:
            if rule.resource_names:
                continue
            for group in rule.api_groups:
                for resource in rule.resources:
                    verbs.setdefault((group, resource), set()).update(rule.verbs)
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), granted in sorted(verbs.items()):
        merged.setdefault((group, tuple(sorted(granted))), []).append(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(granted)}
        for (group, granted), resources in sorted(merged.items())
    ]


def cluster_role(specs: Iterable[ActionSpec], name: str = DEFAULT_ROLE_NAME) -> dict[str, Any]:
    """The ClusterRole manifest (rbac.authorization.k8s.io/v1) for the responder identity."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "eksir"}},
        "rules": rbac_rules(specs),
    }

"""What eksir needs, derived from the actions' own declarations: the IAM policy and the ClusterRole.

Why here, beside the actions: `eksir permissions` prints them and `eksir doctor` checks a responder's real
access against them; both must read the one derivation, and it depends only on the action registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eksir.actions.base import ActionSpec, Phase, RbacRule
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


def all_specs() -> list[ActionSpec]:
    """Every registered action's spec plus resolution's, sorted by id."""
    return sorted([RESOLVE_SPEC, *(cls.spec for cls in load_all().values())], key=lambda s: s.id)


def _sid(service: str) -> str:
    return "Eksir" + "".join(part.capitalize() for part in service.replace("-", " ").split())


def iam_policy(specs: Iterable[ActionSpec]) -> dict[str, Any]:
    """An IAM policy document: one Allow statement per service, actions sorted and de-duplicated."""
    by_service: dict[str, set[str]] = {}
    for spec in specs:
        for action in spec.iam_actions:
            service = action.split(":", 1)[0]
            by_service.setdefault(service, set()).add(action)
    statements = [
        {"Sid": _sid(service), "Effect": "Allow", "Action": sorted(actions), "Resource": "*"}
        for service, actions in sorted(by_service.items())
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def rbac_rules(specs: Iterable[ActionSpec]) -> list[dict[str, list[str]]]:
    """ClusterRole rules: verbs merged per (apiGroup, resource), then resources with equal verbs merged."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for spec in specs:
        for rule in spec.rbac:
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

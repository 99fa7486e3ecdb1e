"""`eksir permissions`: the least-privilege IAM policy and Kubernetes ClusterRole eksir needs.

Why derived, not written by hand: each action declares the IAM actions and RBAC rules it calls next to its
code (ActionSpec), so the policy can never drift from what the tool does. Resolution (finding -> cluster ->
pod -> owners -> node -> instance -> principal) is not an action but runs before every plan; its read-only
needs are declared here as one more spec. IAM statements are grouped by service, Kubernetes rules by
(apiGroups, resources), everything sorted, so two runs print the same bytes and a diff shows what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml

from eksir.actions.base import ActionSpec, Phase, RbacRule
from eksir.actions.registry import load_all
from eksir.cli.options import print_json

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


class PermissionsFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def permissions_cmd(
    output: Annotated[
        PermissionsFormat,
        typer.Option("--output", "-o", help="text (policy JSON, then ClusterRole YAML) or json (both)"),
    ] = PermissionsFormat.TEXT,
    role_name: Annotated[
        str, typer.Option("--role-name", help="name of the ClusterRole")
    ] = DEFAULT_ROLE_NAME,
) -> None:
    """Print the least-privilege IAM policy and Kubernetes ClusterRole derived from the actions."""
    specs = all_specs()
    policy, role = iam_policy(specs), cluster_role(specs, role_name)
    if output is PermissionsFormat.JSON:
        print_json({"iam_policy": policy, "cluster_role": role, "actions": [s.id for s in specs]})
        return
    typer.echo("# IAM policy (attach to the responder's role or user)")
    print_json(policy)
    typer.echo("---")
    typer.echo(
        f"# Kubernetes ClusterRole; bind it to the responder. Actions: {', '.join(s.id for s in specs)}"
    )
    typer.echo(yaml.safe_dump(role, sort_keys=False, default_flow_style=False).rstrip())


def register(app: typer.Typer) -> None:
    app.command("permissions")(permissions_cmd)

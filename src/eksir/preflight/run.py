"""Run every doctor check in the order a response depends on them; later checks say why they were skipped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eksir.actions.permissions import all_specs, cluster_role
from eksir.clients.aws import AwsClients
from eksir.errors import EksirError
from eksir.preflight import aws_checks, kube_checks
from eksir.preflight.result import CheckResult, in_lab, skipped


@dataclass(frozen=True)
class Target:
    """What the doctor examines: the account (through `aws`) and one cluster (through `connect`)."""

    aws: AwsClients
    cluster_name: str
    connect: Callable[[], Any]
    evidence_bucket: str | None = None


def run_doctor(target: Target, lab: Mapping[str, str] | None = None) -> list[CheckResult]:
    """Every check; `lab` (given only by `eksir lab doctor`) maps a check the lab cannot provide to why:
    that check, unless it passes anyway, is reported `unavailable-in-lab` with the reason, never failed."""
    results = _checks(target)
    return [in_lab(result, lab) for result in results] if lab else results


def _checks(target: Target) -> list[CheckResult]:
    aws = target.aws
    who, caller = aws_checks.identity(aws)
    results = [who, _iam(aws, caller)]
    found_check, found = aws_checks.cluster(aws, target.cluster_name)
    results += [found_check, aws_checks.audit_logging(found)]
    results += _kubernetes(target)
    results += [aws_checks.trail(aws), aws_checks.evidence_bucket(aws, target.evidence_bucket)]
    return results


def _iam(aws: AwsClients, caller: str | None) -> CheckResult:
    if caller is None:
        return skipped("iam permissions", "no AWS identity")
    actions = sorted({action for spec in all_specs() for action in spec.iam_actions})
    return aws_checks.iam_permissions(aws, aws_checks.principal_arn(aws, caller), actions)


def _kubernetes(target: Target) -> list[CheckResult]:
    auth, api = kube_checks.authentication(target.connect)
    if api is None:
        why = "not authenticated to the cluster"
        names = ("kubernetes permissions", "networkpolicy enforcement", "ssm on nodes")
        return [auth, *(skipped(name, why) for name in names)]
    rules = cluster_role(all_specs())["rules"]
    user = kube_checks.authenticated_user(auth)
    results = [auth, kube_checks.permissions(api, rules, user=user), kube_checks.network_policy(api)]
    try:
        instances = kube_checks.node_instance_ids(api)
    except EksirError as exc:
        return [*results, skipped("ssm on nodes", f"could not list the nodes ({exc.message})")]
    return [*results, aws_checks.ssm_registration(target.aws, instances)]

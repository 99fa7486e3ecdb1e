"""Combine the triage checks into a verdict a responder can act on.

Rules, in order:
- `authorized-change`: an approved change record covers the actor, namespace, image and time, and no network
  check failed. Comes with the GuardDuty `CreateFilter` criteria that would auto-archive such findings and the
  post-incident follow-ups (an approved privileged pod is still a risk to reduce).
- `unauthorized`: no approved change covers it and at least one network-origin check failed, or the caller
  was anonymous.
- `suspicious`: everything else (nothing failed, but nothing proves the change was approved either; or an
  approved change came from an unexpected origin). With no config at all, the verdict is `suspicious`.
"""

from __future__ import annotations

import re
from typing import Any

from eksir.models.finding import ActorKind, Finding
from eksir.triage.checks import (
    CheckResult,
    CheckStatus,
    check_change_records,
    check_country,
    check_organization,
    check_source_ip,
    check_user_agent,
)
from eksir.triage.config import ChangeRecord, TriageConfig
from eksir.triage.node_debugger import review_node_debugger
from eksir.triage.outcome import Decision, Verdict

__all__ = ["CheckResult", "CheckStatus", "Decision", "Verdict", "triage_finding"]


def triage_finding(finding: Finding, config: TriageConfig) -> Verdict:
    """Run every check and decide; pure, no I/O.

    An attack sequence is judged resource by resource (`triage.sequence`); a pod that `kubectl debug node`
    created is recognised and judged by its own rule (`triage.node_debugger`).
    """
    if finding.sequence is not None:
        from eksir.triage.sequence import triage_sequence  # noqa: PLC0415 - it calls back into this module

        return triage_sequence(finding, config)
    return review_node_debugger(finding, config, _judge(finding, config))


def _judge(finding: Finding, config: TriageConfig) -> Verdict:
    """The verdict from the origin checks and the change records alone."""
    network = (
        check_source_ip(finding, config),
        check_organization(finding, config),
        check_country(finding, config),
        check_user_agent(finding, config),
    )
    change_check, record = check_change_records(finding, config)
    checks = (*network, change_check)
    failed = [c for c in network if c.status is CheckStatus.FAIL]
    anonymous = finding.actor is not None and finding.actor.kind is ActorKind.ANONYMOUS
    if record is not None and not failed and not anonymous:
        unconfirmed = [c.name for c in network if c.status is CheckStatus.NO_DATA]
        caveat = (
            [f"origin not confirmed ({', '.join(unconfirmed)}: no data in the finding)"]
            if unconfirmed
            else []
        )
        return Verdict(
            Decision.AUTHORIZED_CHANGE,
            (change_check.detail, *caveat),
            checks,
            record,
            suppression_filter_for(finding, record),
            _authorized_follow_ups(finding, record),
        )
    reasons = [f"{c.name}: {c.detail}" for c in checks if c.status is CheckStatus.FAIL]
    if anonymous:
        reasons.insert(0, "actor is system:anonymous: no approved change is ever made anonymously")
    if (failed and record is None) or anonymous:
        return Verdict(Decision.UNAUTHORIZED, tuple(reasons), checks)
    if record is not None:
        reasons.insert(0, f"approved change {record.id} matches, but the call came from an unexpected origin")
    unknown = [c.name for c in checks if c.status in (CheckStatus.NOT_CONFIGURED, CheckStatus.NO_DATA)]
    if unknown:
        reasons.append(f"could not be confirmed: {', '.join(unknown)} (not configured or no data)")
    if not reasons:
        reasons.append("no check failed, but no approved change covers it")
    return Verdict(Decision.SUSPICIOUS, tuple(reasons), checks, record)


_WORKLOAD = "resource.kubernetesDetails.kubernetesWorkloadDetails"


def suppression_filter_for(finding: Finding, record: ChangeRecord) -> dict[str, Any]:
    """The GuardDuty CreateFilter request (boto3 member names) that would auto-archive repeats of this change.

    Scoped as narrowly as the finding allows: type, cluster, actor, namespace, the finding's own image
    prefixes, and the change window. Why the finding's `imagePrefix` values and not the change record's
    prefixes: GuardDuty's `imagePrefix` is the registry part of the image, compared for equality, so a record
    prefix such as `123456789012.dkr.ecr.../platform/` never equals it and the filter would archive nothing.
    The record's prefixes are what triage checked the images against; the filter repeats what GuardDuty
    reported. Why `updatedAt` bounds: a filter outlives the change, and a repeat of the finding after the
    window (GuardDuty updates the same finding) must reach a person again.
    """
    criterion: dict[str, dict[str, Any]] = {
        "type": {"Equals": [finding.type]},
        "updatedAt": {
            "GreaterThanOrEqual": int(record.window_start.timestamp() * 1000),
            "LessThan": int(record.window_end.timestamp() * 1000),
        },
    }
    if finding.cluster:
        criterion["resource.eksClusterDetails.name"] = {"Equals": [finding.cluster.name]}
    if finding.actor and finding.actor.username:
        criterion["resource.kubernetesDetails.kubernetesUserDetails.username"] = {
            "Equals": [finding.actor.username]
        }
    if finding.workload and finding.workload.namespace:
        criterion[f"{_WORKLOAD}.namespace"] = {"Equals": [finding.workload.namespace]}
    prefixes = _image_prefixes(finding)
    if prefixes:
        criterion[f"{_WORKLOAD}.containers.imagePrefix"] = {"Equals": prefixes}
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"eksir-approved-{record.id}")[:64]
    return {
        "DetectorId": "<detector-id>" if not finding.detector_id else finding.detector_id,
        "Name": name,
        "Description": f"Auto-archive privileged-container findings covered by approved change {record.id} "
        "during its window",
        "Action": "ARCHIVE",
        "Rank": 1,
        "FindingCriteria": {"Criterion": criterion},
    }


def _image_prefixes(finding: Finding) -> list[str]:
    """The distinct non-empty `imagePrefix` values the finding reported for its containers, in order.

    An image without a registry (`busybox:1.36`) has an empty prefix; an `Equals [""]` criterion is not a
    narrowing GuardDuty documents, so it is left out (the other criteria still bind the filter).
    """
    containers = finding.workload.containers if finding.workload else ()
    return list(dict.fromkeys(c.image_prefix for c in containers if c.image_prefix))


def _authorized_follow_ups(finding: Finding, record: ChangeRecord) -> tuple[str, ...]:
    namespace = finding.workload.namespace if finding.workload else "the namespace"
    return (
        f"Record the finding against change {record.id} and archive it with a note.",
        "Confirm with the change owner that the container really needs privileged mode; prefer specific "
        "capabilities, or a dedicated node group for privileged workloads.",
        f"Label namespace {namespace} with Pod Security Admission "
        "and keep the exception explicit and reviewed.",
        "Create the suppression filter only for the change's lifetime, and review it when the change closes.",
    )

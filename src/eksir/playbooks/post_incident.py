"""Plans of the post-incident steps a responder asks for by name: Pod Security, the suppression filter, and
close-out in AWS (Security Hub, GuardDuty archive and feedback, snapshot sharing).

Pure: each function turns what the case already established into plan steps; phases/ runs them through
the engine (engine/steps.py). Every step needs approval, because each changes production or the record
that other teams read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from eksir.actions.base import ActionParams, Phase
from eksir.actions.closeout.findings import FeedbackParams, GuardDutyFindingParams, ResolveParams
from eksir.actions.closeout.snapshots import ShareSnapshotParams
from eksir.actions.prevention.admission_policy import DenyPrivilegedParams
from eksir.actions.prevention.pod_security import EnforcePodSecurityParams
from eksir.actions.prevention.psa import PsaLevel
from eksir.actions.prevention.suppression import CreateFilterParams
from eksir.playbooks.plan import PlanStep


def _step(step_id: str, action_id: str, params: ActionParams, after: str | None, why: str) -> PlanStep:
    return PlanStep(
        id=step_id,
        action_id=action_id,
        params=params.model_dump(mode="json"),
        depends_on=(after,) if after else (),
        requires_approval=True,
        phase=Phase.POST_INCIDENT,
        rationale=why,
    )


def enforce_pod_security_step(namespace: str, level: PsaLevel) -> PlanStep:
    params = EnforcePodSecurityParams(namespace=namespace, level=level)
    why = f"enforce Pod Security `{level.value}` so the attacker's privileged pod is refused at admission"
    return _step(f"prevent-psa-{namespace}", "k8s.enforce_pod_security", params, None, why)


def deny_privileged_step(exempt_namespaces: list[str], probe_namespace: str) -> PlanStep:
    params = DenyPrivilegedParams(exempt_namespaces=exempt_namespaces, probe_namespace=probe_namespace)
    why = "refuse the attacker's pod in every namespace, not only the incident's (PSA labels hold one)"
    return _step("prevent-cluster-admission-policy", "k8s.deny_privileged_pods", params, None, why)


def suppression_filter_step(params: CreateFilterParams) -> PlanStep:
    why = "the verdict is an authorized change: suppress its repeats so responders are not paged again"
    return _step(f"suppress-{params.name}", "guardduty.create_filter", params, None, why)


@dataclass(frozen=True)
class CloseoutRequest:
    note: str
    securityhub: bool = True
    archive: bool = True
    feedback: Literal["USEFUL", "NOT_USEFUL"] | None = "USEFUL"
    forensics_account: str | None = None
    snapshots: tuple[str, ...] = ()


@dataclass(frozen=True)
class FindingRef:
    """The case's GuardDuty finding: its ARN, detector and id."""

    arn: str
    detector_id: str
    finding_id: str


def closeout_steps(
    request: CloseoutRequest, finding: FindingRef, updated_by: str, snapshots: Sequence[str]
) -> list[PlanStep]:
    """The requested close-out steps as a chain: each waits for the previous one to verify, so the first
    failure stops the rest (as a responder closing out by hand would)."""
    wanted: list[tuple[str, str, ActionParams, str]] = []
    gd = GuardDutyFindingParams(detector_id=finding.detector_id, finding_id=finding.finding_id)
    if request.securityhub:
        params: ActionParams = ResolveParams(
            finding_arn=finding.arn, note=request.note, updated_by=updated_by
        )
        wanted.append(
            ("closeout-securityhub", "securityhub.resolve_finding", params, "resolve in Security Hub")
        )
    if request.archive:
        wanted.append(("closeout-guardduty-archive", "guardduty.archive_finding", gd, "archive the finding"))
    if request.feedback:
        feedback = FeedbackParams(**gd.model_dump(), feedback=request.feedback, comments=request.note)
        wanted.append(
            ("closeout-guardduty-feedback", "guardduty.finding_feedback", feedback, "tell GuardDuty")
        )
    if request.forensics_account:
        for snap in request.snapshots or tuple(snapshots):
            share = ShareSnapshotParams(snapshot_id=snap, account_id=request.forensics_account)
            wanted.append(
                (f"closeout-share-{snap}", "ec2.share_snapshot", share, "hand evidence to forensics")
            )
    steps: list[PlanStep] = []
    for step_id, action_id, params, why in wanted:
        steps.append(_step(step_id, action_id, params, steps[-1].id if steps else None, why))
    return steps

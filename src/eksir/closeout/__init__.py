"""Close-out in AWS and case close: the last steps of the playbook's post-incident part.

`closeout(...)` runs, each as an approved and logged step: Security Hub workflow RESOLVED with a note,
GuardDuty archive and feedback, and sharing each evidence snapshot with the forensics account (with the
KMS caveat). `close_case` refuses while anything is unfinished or the report is missing or stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from eksir.actions.base import ActionContext
from eksir.closeout.close import CloseResult, close_case, waive_step
from eksir.closeout.findings import (
    ArchiveGuardDutyFinding,
    FeedbackParams,
    GuardDutyFindingFeedback,
    GuardDutyFindingParams,
    ResolveParams,
    ResolveSecurityHubFinding,
)
from eksir.closeout.snapshots import ShareSnapshot, ShareSnapshotParams
from eksir.errors import BadInputError
from eksir.prevention.stepper import Approver, StepOutcome, run_step
from eksir.store.case_store import CaseHandle

__all__ = ["CloseResult", "CloseoutRequest", "close_case", "closeout", "snapshot_ids", "waive_step"]
_SNAPSHOT = re.compile(rb"snap-[0-9a-f]{8,17}")


@dataclass(frozen=True)
class CloseoutRequest:
    note: str
    securityhub: bool = True
    archive: bool = True
    feedback: Literal["USEFUL", "NOT_USEFUL"] | None = "USEFUL"
    forensics_account: str | None = None
    snapshots: tuple[str, ...] = ()


def snapshot_ids(handle: CaseHandle) -> list[str]:
    """Snapshot ids the case's applied evidence steps created (found in their applied records)."""
    found: list[str] = []
    for event in handle.log.events():
        if event.type == "step.applied" and event.data.get("phase", "evidence") == "evidence":
            for match in _SNAPSHOT.findall(orjson.dumps(event.data)):
                if match.decode() not in found:
                    found.append(match.decode())
    return found


def _finding_ids(handle: CaseHandle) -> tuple[str, str, str]:
    case = handle.load()
    arn = case.finding_arn or ""
    parts = re.match(r"^arn:[^:]+:guardduty:[^:]+:\d{12}:detector/([^/]+)/finding/([^/]+)$", arn)
    if not parts:
        raise BadInputError(
            f"case {case.id} has no GuardDuty finding ARN; cannot close the finding out in AWS"
        )
    return arn, parts.group(1), parts.group(2)


def closeout(
    handle: CaseHandle, ctx: ActionContext, request: CloseoutRequest, approve: Approver
) -> list[StepOutcome]:
    """Run every requested close-out step in order; stops at the first failure (each is already logged)."""
    arn, detector, finding_id = _finding_ids(handle)
    plan: list[tuple[Any, Any, str]] = []
    if request.securityhub:
        plan.append(
            (
                ResolveSecurityHubFinding(),
                ResolveParams(finding_arn=arn, note=request.note, updated_by=handle.actor),
                "closeout-securityhub",
            )
        )
    if request.archive:
        plan.append(
            (
                ArchiveGuardDutyFinding(),
                GuardDutyFindingParams(detector_id=detector, finding_id=finding_id),
                "closeout-guardduty-archive",
            )
        )
    if request.feedback:
        plan.append(
            (
                GuardDutyFindingFeedback(),
                FeedbackParams(
                    detector_id=detector,
                    finding_id=finding_id,
                    feedback=request.feedback,
                    comments=request.note,
                ),
                "closeout-guardduty-feedback",
            )
        )
    if request.forensics_account:
        for snap in request.snapshots or tuple(snapshot_ids(handle)):
            plan.append(
                (
                    ShareSnapshot(),
                    ShareSnapshotParams(snapshot_id=snap, account_id=request.forensics_account),
                    f"closeout-share-{snap}",
                )
            )
    return [
        run_step(handle, action, ctx, params, step_id=step_id, approve=approve)
        for action, params, step_id in plan
    ]

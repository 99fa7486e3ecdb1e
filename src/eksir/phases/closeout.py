"""Close-out in AWS and case close: the last steps of the playbook's post-incident part.

`closeout(...)` runs through the engine (close-out track), each as an approved and recorded step: Security
Hub workflow RESOLVED with a note, GuardDuty archive and feedback, and sharing each evidence snapshot with
the forensics account (with the KMS caveat). `close_case` refuses while anything is unfinished or the
report is missing or stale.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from eksir.engine.approval import ApprovalGate
from eksir.engine.runner import ContextFactory
from eksir.engine.state import StepRecord
from eksir.engine.steps import run_steps
from eksir.engine.tracks import CLOSEOUT
from eksir.errors import BadInputError
from eksir.phases.case_close import CloseResult, close_case, waive_step
from eksir.playbooks.post_incident import CloseoutRequest, FindingRef, closeout_steps
from eksir.store.case_store import CaseHandle

__all__ = ["CloseResult", "CloseoutRequest", "close_case", "closeout", "snapshot_ids", "waive_step"]
_SNAPSHOT = re.compile(rb"snap-[0-9a-f]{8,17}")


def snapshot_ids(handle: CaseHandle) -> list[str]:
    """Snapshot ids the case's applied evidence steps created (found in their applied records).

    Engine events name their action in the nested record (only `ec2.snapshot_volumes` creates evidence
    snapshots; a close-out share or a recovery step may mention one too); flat events written by earlier
    versions name their phase.
    """
    found: list[str] = []
    for event in handle.log.events():
        if event.type == "step.applied" and _creates_evidence_snapshots(event.data):
            for match in _SNAPSHOT.findall(orjson.dumps(event.data)):
                if match.decode() not in found:
                    found.append(match.decode())
    return found


def _creates_evidence_snapshots(data: dict[str, Any]) -> bool:
    record = data.get("record")
    action = data.get("action_id") or (record.get("action_id") if isinstance(record, dict) else None)
    if action is not None:
        return bool(action == "ec2.snapshot_volumes")
    return bool(data.get("phase", "evidence") == "evidence")


def _finding_ref(handle: CaseHandle) -> FindingRef:
    case = handle.load()
    arn = case.finding_arn or ""
    parts = re.match(r"^arn:[^:]+:guardduty:[^:]+:\d{12}:detector/([^/]+)/finding/([^/]+)$", arn)
    if not parts:
        raise BadInputError(
            f"case {case.id} has no GuardDuty finding ARN; cannot close the finding out in AWS"
        )
    return FindingRef(arn, parts.group(1), parts.group(2))


def closeout(
    handle: CaseHandle, ctx: ContextFactory, request: CloseoutRequest, gate: ApprovalGate
) -> list[StepRecord]:
    """Run every requested close-out step through the engine (close-out track); the first failure stops the
    rest and raises (each step is already recorded)."""
    steps = closeout_steps(request, _finding_ref(handle), handle.actor, snapshot_ids(handle))
    return run_steps(handle, CLOSEOUT, steps, ctx, gate)

"""Run a few steps a responder asks for by name (prevention, close-out) through the one Runner.

Why not a small runner of their own: these steps change production like any other (Pod Security labels, a
GuardDuty filter, an archived finding, a shared snapshot), so they get what every step gets: the APPLYING
record before the call, retry of throttling, resume after a crash, verify, and rollback from the recorded
before-state. They run on an accumulating track (engine/tracks.py), so each command adds its steps to the
ones already in effect. The command reads as a command: a declined step raises RefusedError and a failed one
the error its failure names (denied -> exit 8, unreachable -> 7, not found -> 10, else step failed -> 9).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from eksir.engine.approval import ApprovalGate
from eksir.engine.runner import ContextFactory, Runner
from eksir.engine.state import StepRecord, StepStatus
from eksir.engine.tracks import Track
from eksir.errors import (
    EksirError,
    NotFoundError,
    PermissionDeniedError,
    RefusedError,
    StepFailedError,
    TemporaryError,
)
from eksir.playbooks.plan import Plan, PlanStep
from eksir.store.case_store import CaseHandle

_ERRORS: dict[str, type[EksirError]] = {
    "permission-denied": PermissionDeniedError,
    "temporary": TemporaryError,
    "not-found": NotFoundError,
}


def run_steps(
    case: CaseHandle,
    track: Track,
    steps: Sequence[PlanStep],
    ctx_factory: ContextFactory,
    gate: ApprovalGate,
) -> list[StepRecord]:
    """Run `steps` (in order of their `depends_on`) on `track`; the records of exactly these steps.

    A step already verified by an earlier command stays verified (its action is idempotent and is not
    applied again); one that was declined or failed before is asked again.
    """
    record = case.load()
    plan = Plan(
        playbook=track.name,
        case_id=record.id,
        finding_id=record.finding_id,
        cluster_name=record.cluster_name,
        created_at=datetime.now(UTC),
        steps=tuple(steps),
    )
    state = Runner(case, plan, ctx_factory, gate, max_workers=1, track=track).run(retry_unfinished=True)
    records = [state.steps[step.id] for step in steps]
    for done in records:
        _raise_unless_verified(done)
    return records


def _raise_unless_verified(record: StepRecord) -> None:
    if record.status is StepStatus.VERIFIED:
        return
    if record.status is StepStatus.SKIPPED and record.approval and not record.approval.approved:
        raise RefusedError(f"{record.step_id}: not approved ({record.detail}); nothing changed")
    error = _ERRORS.get(record.error_kind or "", StepFailedError)
    raise error(f"{record.step_id}: {record.status.value}: {record.detail}")

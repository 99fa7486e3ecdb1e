"""`eksir case close`: refuse to close a case that is not finished, then mark it closed.

A case is finished when every plan step reached a final state and the report reflects the last step. Step
states come from the engine's `plan-state.json` when present (its exact schema is the engine's; this reads
`steps` as a list or a mapping, status under `status` or `state`) and otherwise from the `step.*` events.
Unknown states count as unfinished: closing by mistake hides work, refusing only costs a re-run. A
responder can explicitly waive a step (`--waive STEP --reason ...`), which is logged as `step.waived` and
shown in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eksir.engine.state import StepStatus
from eksir.errors import CaseInvalidError, RefusedError
from eksir.models.case import CaseStatus
from eksir.report.steps import first, step_rows
from eksir.store.case_store import CaseHandle
from eksir.store.frozen import ensure_open
from eksir.store.record import CaseRecord, load_record, report_written_after
from eksir.store.verify import verify_case

PLAN_STATE = "plan-state.json"
_TRANSITIONS = frozenset(status.value for status in StepStatus)
FINAL_STATES = frozenset(
    {
        "verified",
        "not-effective",
        "succeeded",
        "success",
        "done",
        "completed",
        "skipped",
        "not-needed",
        "not-applicable",
        "rolled-back",
        "declined",
        "waived",
        "resolved",
        "cancelled",
    }
)


@dataclass(frozen=True)
class CloseResult:
    case_id: str
    already_closed: bool
    steps: int


def step_states(record: CaseRecord) -> dict[str, str]:
    """step id -> latest state: plan-state.json if present, then the step transitions logged after it (a
    shared case writes its state file at the end of a run, so the log may be ahead), else the step events."""
    state = record.read_unlogged_json(PLAN_STATE)
    states: dict[str, str] = {}
    steps: Any = state.get("steps") if isinstance(state, dict) else None
    items = steps.items() if isinstance(steps, dict) else ((None, s) for s in steps or [])
    for key, value in items:
        if isinstance(value, dict):
            step_id = str(key or first(value, ("step_id", "id")) or "?")
            states[step_id] = str(first(value, ("status", "state")) or "unknown").lower()
        elif isinstance(value, str) and key:
            states[str(key)] = value.lower()
    for row in step_rows(record.events, {}):
        if row.step_id not in states or row.status in ("waived",):
            states[row.step_id] = row.status
    included = state.get("last_seq") if isinstance(state, dict) else None
    if isinstance(included, int):
        later = (e for e in record.events if e.seq > included and e.type[len("step.") :] in _TRANSITIONS)
        for row in step_rows(later, {}):
            states[row.step_id] = row.status
    return states


def unfinished(states: dict[str, str]) -> dict[str, str]:
    return {step: status for step, status in states.items() if status.replace("_", "-") not in FINAL_STATES}


def waive_step(handle: CaseHandle, step_id: str, reason: str) -> None:
    """Record that the responder accepts a step as unfinished (the report shows it)."""
    if not reason.strip():
        raise RefusedError("a waiver needs a reason (--reason)")
    ensure_open(handle, "waive a step")
    handle.append("step.waived", {"step_id": step_id, "approver": handle.actor, "detail": reason})


def close_case(handle: CaseHandle) -> CloseResult:
    """Close the case, or raise RefusedError naming what is unfinished (CaseInvalidError: fails verify)."""
    verification = verify_case(handle)
    if not verification.ok:
        raise CaseInvalidError(f"case fails verification ({verification.problems[0]}); not closing it")
    record = load_record(handle)
    if record.case.status is CaseStatus.CLOSED:
        return CloseResult(record.case.id, True, 0)
    states = step_states(record)
    pending = unfinished(states)
    if pending:
        listed = ", ".join(f"{step} ({status})" for step, status in sorted(pending.items()))
        raise RefusedError(
            f"case {record.case.id} has unfinished steps: {listed}; finish, roll back or "
            "waive them (`eksir case close --waive STEP --reason ...`)"
        )
    report_seq = report_written_after(record)
    if report_seq is None:
        raise RefusedError(f"case {record.case.id} has no report; run `eksir report {record.case.id}` first")
    last_step = max((e.seq for e in record.events if e.type.startswith("step.")), default=0)
    if last_step > report_seq:
        raise RefusedError(
            f"the report of case {record.case.id} predates the last step; run `eksir report` again"
        )
    handle.append("case.closed", {"steps": len(states), "reason": "all steps final, report current"})
    handle.save(record.case.model_copy(update={"status": CaseStatus.CLOSED}), "case closed")
    return CloseResult(record.case.id, False, len(states))

"""Turn the case's `step.*` events into one row per response step, whatever wrote them.

Why tolerant field lookup: the engine, `eksir prevent` and close-out all log step transitions
(`step.applied`, `step.verified`, `step.failed`, `step.rolled-back`, ...) and the report must work from
whatever events exist, including a case from an older eksir. The latest transition is the step's status;
the approver, before- and after-state are taken from whichever event carried them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from eksir.actions.registry import load_all
from eksir.models.case import CaseEvent
from eksir.report.model import StepRow

STEP_PREFIX = "step."
_STEP_ID_KEYS = ("step_id", "step", "id")
_ACTION_KEYS = ("action_id", "action")
_APPROVER_KEYS = ("approver", "approved_by")
_BEFORE_KEYS = ("before", "before_state")
_AFTER_KEYS = ("after", "after_state", "observed", "applied")
_DETAIL_KEYS = ("detail", "message", "error", "reason", "summary")
DETAIL_LIMIT = 1000
"""A step's detail may quote an API error or a hostile name at any length: the report keeps this much."""


def first(data: dict[str, Any], keys: Iterable[str]) -> Any:
    """The first present, non-empty value among `keys` (None if none)."""
    for key in keys:
        value = data.get(key)
        if value not in (None, "", {}, []):
            return value
    return None


def approver_of(data: dict[str, Any]) -> str | None:
    """Who approved, from `approver`/`approved_by` or a nested `approval` object; None when that object says
    the step was declined (the engine records the decliner there too, and they approved nothing)."""
    value = first(data, _APPROVER_KEYS)
    approval = data.get("approval")
    if value is None and isinstance(approval, dict) and approval.get("approved") is not False:
        value = first(approval, ("approver", "by", "approved_by"))
    return None if value is None else str(value)


def decliner_of(data: dict[str, Any]) -> str | None:
    """Who declined the step, when its nested `approval` object says it was declined."""
    approval = data.get("approval")
    if isinstance(approval, dict) and approval.get("approved") is False:
        value = first(approval, ("approver", "by"))
        return None if value is None else str(value)
    return None


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Merge the engine's nested step `record` (action id, approval, applied, error) into the event data.

    The engine logs `{"step_id", "status", "record": StepRecord}`; eksir's own steps log flat fields. The
    before/after state comes from the applied record when the action put it there.
    """
    record = data.get("record")
    merged = {**record, **data} if isinstance(record, dict) else dict(data)
    applied = merged.get("applied")
    if isinstance(applied, dict):
        for key in ("before", "after"):
            if first(merged, (key,)) is None and applied.get(key) is not None:
                merged[key] = applied[key]
    return merged


def aware(value: datetime) -> datetime:
    """Treat naive times as UTC (the case never writes local time) and normalise to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def step_rows(events: Iterable[CaseEvent], phases: dict[str, str]) -> list[StepRow]:
    """One StepRow per step id, in order of first appearance; `phases` maps step or action id to phase."""
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        if not event.type.startswith(STEP_PREFIX):
            continue
        data = flatten(event.data)
        step_id = str(first(data, _STEP_ID_KEYS) or first(data, _ACTION_KEYS) or f"event-{event.seq}")
        row = rows.setdefault(step_id, {"history": [], "step_id": step_id})
        status = event.type[len(STEP_PREFIX) :]
        at = aware(event.at)
        row["history"].append((at, status))
        row["status"] = status
        for target, keys in (("action_id", _ACTION_KEYS), ("phase", ("phase",))):
            if (value := first(data, keys)) is not None:
                row[target] = str(value)
        if (approver := approver_of(data)) is not None:
            row["approver"] = approver
        if (decliner := decliner_of(data)) is not None:
            row["declined_by"] = decliner
        if (before := first(data, _BEFORE_KEYS)) is not None:
            row["before"] = before
        if (after := first(data, _AFTER_KEYS)) is not None:
            row["after"] = after
        if (detail := first(data, _DETAIL_KEYS)) is not None:
            text = str(detail)
            row["detail"] = text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
        if status == "applied":
            row["applied_at"] = at
        elif status == "verified":
            row["verified_at"] = at
    return [_row(values, phases) for values in rows.values()]


def _row(values: dict[str, Any], phases: dict[str, str]) -> StepRow:
    action_id = values.get("action_id", "unknown")
    phase = values.get("phase") or phases.get(values["step_id"]) or phases.get(action_id) or "unknown"
    return StepRow(
        step_id=values["step_id"],
        action_id=action_id,
        phase=phase,
        status=values.get("status", "unknown"),
        approver=values.get("approver"),
        declined_by=values.get("declined_by"),
        applied_at=values.get("applied_at"),
        verified_at=values.get("verified_at"),
        detail=values.get("detail", ""),
        before=values.get("before"),
        after=values.get("after"),
        history=tuple(values["history"]),
    )


def phase_map(plan: Any) -> dict[str, str]:
    """Step id -> phase and action id -> phase from a stored plan (`plan.json`), plus the action registry."""
    mapping: dict[str, str] = {}
    try:
        for action_id, cls in load_all().items():
            mapping[action_id] = str(cls.spec.phase)
    except ImportError:  # pragma: no cover - registry modules are optional at report time
        pass
    steps = plan.get("steps") if isinstance(plan, dict) else None
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and step.get("phase"):
            if step.get("id"):
                mapping[str(step["id"])] = str(step["phase"])
            if step.get("action_id"):
                mapping[str(step["action_id"])] = str(step["phase"])
    return mapping

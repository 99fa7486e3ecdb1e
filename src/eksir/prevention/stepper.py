"""Run one Action as a recorded step: check, plan, approval, apply, verify — each transition logged in the
case.

Why here and not the engine's runner: prevention and close-out are single, post-incident steps the
responder runs on their own (`eksir prevent --apply`, `eksir case closeout`) after the main plan is done.
They log the same `step.*` events the engine writes (step id, action id, phase, approver, before/after),
so the report and `eksir case close` treat them like every other step. Nothing is applied without an
approver: the approval callback returns who approved, or None to decline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eksir.actions.base import Action, ActionContext, ActionParams, PlannedChange
from eksir.errors import EksirError, RefusedError, StepFailedError
from eksir.store.case_store import CaseHandle

Approver = Callable[[PlannedChange], str | None]


@dataclass(frozen=True)
class StepOutcome:
    step_id: str
    action_id: str
    approver: str | None
    applied: dict[str, Any]
    verified: bool
    detail: str
    already_applied: bool = False


def _base(step_id: str, action: Action[Any], params: ActionParams) -> dict[str, Any]:
    return {
        "step_id": step_id,
        "action_id": action.spec.id,
        "phase": str(action.spec.phase),
        "params": params.model_dump(mode="json"),
    }


def run_step(
    handle: CaseHandle,
    action: Action[Any],
    ctx: ActionContext,
    params: ActionParams,
    *,
    step_id: str,
    approve: Approver,
) -> StepOutcome:
    """check -> plan -> approve -> apply -> verify, logging `step.*` events; raises RefusedError if declined.

    Raises StepFailedError when the check fails or verification does not hold (after logging `step.failed`),
    and the action's own eksir errors (logged as `step.failed` first) when apply fails.
    """
    base = _base(step_id, action, params)
    check = action.check(ctx, params)
    if not check.ok:
        handle.append("step.failed", {**base, "detail": f"check failed: {check.detail}"})
        raise StepFailedError(f"{step_id}: check failed: {check.detail}")
    planned = action.plan(ctx, params)
    handle.append(
        "step.planned",
        {
            **base,
            "summary": planned.summary,
            "diff": list(planned.diff),
            "blast_radius": list(planned.blast_radius),
            "warnings": list(planned.warnings),
        },
    )
    approver = approve(planned)
    if not approver:
        handle.append("step.declined", {**base, "detail": "not approved"})
        raise RefusedError(f"{step_id}: not approved; nothing changed")
    handle.append("step.approved", {**base, "approver": approver})
    try:
        applied = action.apply(ctx, params)
    except EksirError as exc:
        handle.append("step.failed", {**base, "approver": approver, "detail": f"apply failed: {exc.message}"})
        raise
    handle.append(
        "step.applied",
        {
            **base,
            "approver": approver,
            "before": applied.get("before"),
            "after": applied.get("after"),
            "applied": applied,
        },
    )
    outcome = action.verify(ctx, params, applied)
    if not outcome.ok:
        handle.append(
            "step.failed",
            {
                **base,
                "approver": approver,
                "detail": f"verify failed: {outcome.detail}",
                "observed": outcome.observed,
            },
        )
        raise StepFailedError(f"{step_id}: applied but verification failed: {outcome.detail}")
    handle.append(
        "step.verified",
        {**base, "approver": approver, "detail": outcome.detail, "observed": outcome.observed},
    )
    return StepOutcome(
        step_id, action.spec.id, approver, applied, True, outcome.detail, check.already_applied
    )


def rollback_step(
    handle: CaseHandle,
    action: Action[Any],
    ctx: ActionContext,
    params: ActionParams,
    *,
    step_id: str,
    applied: dict[str, Any],
    approver: str,
) -> None:
    """Restore the recorded before-state and log `step.rolled-back` (or `step.rollback-failed`)."""
    base = _base(step_id, action, params)
    try:
        action.rollback(ctx, params, applied)
    except EksirError as exc:
        handle.append("step.rollback-failed", {**base, "approver": approver, "detail": exc.message})
        raise
    handle.append(
        "step.rolled-back",
        {**base, "approver": approver, "before": applied.get("after"), "after": applied.get("before")},
    )


def last_applied(handle: CaseHandle, step_id: str) -> dict[str, Any] | None:
    """The applied record of the newest `step.applied` event of `step_id` (for rollback), or None."""
    found: dict[str, Any] | None = None
    for event in handle.log.events():
        if event.type == "step.applied" and event.data.get("step_id") == step_id:
            applied = event.data.get("applied")
            found = applied if isinstance(applied, dict) else None
    return found

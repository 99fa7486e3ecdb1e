"""Dry run of a plan: each step's read-only `check` and `plan` (the diff and blast radius), nothing applied.

Why per-step error capture: `eksir plan` is what a responder reads before saying yes; one step that cannot be
previewed (a missing permission, an action not installed yet) must show up as that step's problem, not hide
the rest of the plan behind a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from eksir.actions.base import ActionContext
from eksir.actions.registry import get_action
from eksir.errors import EksirError
from eksir.playbooks.plan import Plan, PlanStep


@dataclass(frozen=True)
class StepPreview:
    step_id: str
    check: dict[str, Any] | None = None
    change: dict[str, Any] | None = None
    destructive: bool | None = None
    reversible: bool | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview_step(step: PlanStep, ctx_factory: Callable[[], ActionContext]) -> StepPreview:
    try:
        action = get_action(step.action_id)
    except KeyError:
        return StepPreview(step.id, problem=f"{step.action_id}: not available in this version")
    spec = action.spec
    try:
        params = action.params_type.model_validate(step.params)
    except ValidationError as exc:
        return StepPreview(
            step.id, destructive=spec.destructive, problem=f"invalid parameters: {exc.errors()}"
        )
    ctx = ctx_factory()
    try:
        check = action.check(ctx, params)
        change = action.plan(ctx, params)
    except EksirError as exc:
        return StepPreview(
            step.id, destructive=spec.destructive, reversible=spec.reversible, problem=exc.message
        )
    except Exception as exc:  # a preview bug must not hide the rest of the plan
        problem = f"internal error: {exc.__class__.__name__}: {exc}"
        return StepPreview(step.id, destructive=spec.destructive, reversible=spec.reversible, problem=problem)
    return StepPreview(
        step.id,
        check=asdict(check),
        change=asdict(change),
        destructive=spec.destructive,
        reversible=spec.reversible,
    )


def preview_plan(plan: Plan, ctx_factory: Callable[[], ActionContext]) -> list[StepPreview]:
    """Preview every step in execution order; the context factory must build dry-run contexts."""
    return [preview_step(step, ctx_factory) for step in plan.order()]

"""Merging a new plan into an accumulating track (prevention, close-out) without losing what is applied.

Why: `eksir prevent --apply` today and `eksir prevent --create-filter` tomorrow are two plans on one
track. The second must not replace the first while its change is in effect (rollback would lose the
record), and must not re-ask what the responder already declined. So the merged plan keeps every earlier
step that has an effect (applied, verified, failed after apply) with its record, adds the new steps, and
drops earlier steps that never changed anything. A new step with an id already in effect must have the same
action and parameters: otherwise the responder rolls the old one back first.
"""

from __future__ import annotations

from collections.abc import Callable

from eksir.engine.state import RunState, StepRecord, StepStatus
from eksir.errors import RefusedError
from eksir.playbooks.plan import Plan, PlanStep

_EFFECT = frozenset({StepStatus.APPLYING, StepStatus.APPLIED, StepStatus.VERIFIED, StepStatus.NOT_EFFECTIVE})


def has_effect(record: StepRecord) -> bool:
    """The step changed something that is still recorded as changed (not rolled back)."""
    if record.status is StepStatus.ROLLED_BACK:
        return False
    return record.status in _EFFECT or record.applied is not None


def merge_plans(
    old: RunState, new: Plan, outstanding: Callable[[StepRecord], bool]
) -> tuple[Plan, dict[str, StepRecord]]:
    """The plan to record (earlier steps with effects, then the new ones) and the records carried over."""
    new_ids = {step.id for step in new.steps}
    kept: dict[str, StepRecord] = {}
    steps: list[PlanStep] = []
    for step in old.plan.steps:
        record = old.steps[step.id]
        if step.id in new_ids:
            _check_same(step, new.step(step.id), record, outstanding)
            if has_effect(record):
                kept[step.id] = record
            continue
        if has_effect(record):
            # already applied: its dependencies were met when it ran, and they may not be in this plan
            steps.append(step.model_copy(update={"depends_on": ()}))
            kept[step.id] = record
    steps.extend(new.steps)
    return new.model_copy(update={"steps": tuple(steps)}), kept


def _check_same(
    old: PlanStep, new: PlanStep, record: StepRecord, outstanding: Callable[[StepRecord], bool]
) -> None:
    same = old.action_id == new.action_id and old.params == new.params
    if not same and outstanding(record):
        raise RefusedError(
            f"step {old.id} is in effect with other parameters ({record.status.value}): "
            "roll it back first, then run the new one"
        )

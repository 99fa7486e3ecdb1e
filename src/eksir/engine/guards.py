"""What may hold a step back besides its dependencies: a blocking outage item, and a failed capture's choice.

Why here and not in the gates: an approval says "yes, change production"; these say "this change would take
a service down" (resolve/outage.py) and "the evidence this step waits for is lost". Both need a person's
explicit word beyond the step's approval, recorded with a reason, so they live beside the runner that asks.

- An outage-blocked step (`PlanStep.outage_blocks`) ends `blocked` with the items as its reason unless the
  run carries an `OutageOverride` (`--override-outage REASON`, with the approver), recorded in the step and
  the case log. It is kept apart from any drain/PDB override: this one overrides the outage check.
- A step with a `Fallback` (node isolation waiting for the volatile capture) is not blocked when only the
  dependencies it names end unmet: the runner asks the gate for the fallback's own approval id, showing the
  trade-off; declined, the step ends `blocked` saying what stays open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from eksir.engine.state import Approval, RunState, StepStatus, dependency_dead, dependency_met
from eksir.playbooks.plan import PlanStep

OUTAGE_BLOCKED = "outage-blocked"
"""`error_kind` of a step the outage check blocks (the CLI's exit code and the views look for it)."""
FALLBACK_DECLINED = "fallback-declined"
OVERRIDE_OPTION = "--override-outage REASON"


@dataclass(frozen=True)
class OutageOverride:
    """A person accepted the outage the check predicts: who, why; `steps` limits it (None: every step)."""

    reason: str
    approver: str
    steps: frozenset[str] | None = None

    def covers(self, step_id: str) -> bool:
        return self.steps is None or step_id in self.steps

    def approval(self) -> Approval:
        return Approval(
            approved=True,
            approver=self.approver,
            at=datetime.now(UTC),
            how="override-outage",
            reason=self.reason,
        )


def outage_block_detail(step: PlanStep) -> str:
    """The blocked step's detail: every blocking item, and how to override."""
    items = "; ".join(step.outage_blocks)
    return f"blocked by the outage check: {items} (accept the outage with {OVERRIDE_OPTION}, recorded)"


def waived_deps(step: PlanStep, state: RunState, lab_mode: bool) -> list[str]:
    """The dead dependencies the step's fallback may run without, when only those are dead and every other
    dependency is met; empty when the fallback does not apply (yet)."""
    if step.fallback is None:
        return []
    statuses = {d: state.steps[d].status for d in step.depends_on}
    dead = [d for d, s in statuses.items() if dependency_dead(s, lab_mode)]
    if not dead or any(d not in step.fallback.without for d in dead):
        return []
    others = [s for d, s in statuses.items() if d not in dead]
    return dead if all(dependency_met(s, lab_mode) for s in others) else []


def waivable_now(step: PlanStep, state: RunState, lab_mode: bool) -> bool:
    """Dead dependencies that the fallback names only (others may still be running): do not block yet."""
    if step.fallback is None:
        return False
    dead = [d for d in step.depends_on if dependency_dead(state.steps[d].status, lab_mode)]
    return bool(dead) and all(d in step.fallback.without for d in dead)


def dead_detail(deps: list[str], state: RunState) -> str:
    return ", ".join(f"{d} is {state.steps[d].status.value}" for d in deps)


def fallback_request_step(step: PlanStep, waived: list[str], state: RunState) -> PlanStep:
    """The step as the gate sees the fallback choice: its own id, the trade-off as its why."""
    assert step.fallback is not None  # guarded by the caller
    fallback = step.fallback
    return step.model_copy(
        update={
            "id": fallback.approval_id,
            "rationale": f"{fallback.title}: {fallback.trade_off}",
            "requires_approval": True,
            "approval_reasons": (
                *step.approval_reasons,
                f"{dead_detail(waived, state)}: {fallback.title}?",
            ),
        }
    )


def declined_detail(step: PlanStep, waived: list[str], state: RunState, reason: str) -> str:
    assert step.fallback is not None  # guarded by the caller
    fallback = step.fallback
    return (
        f"blocked: {dead_detail(waived, state)}; {fallback.title} ({fallback.approval_id}) not approved "
        f"({reason}): {fallback.declined_risk}"
    )


def outage_blocked(state: RunState) -> list[str]:
    """Step ids the outage check holds back in this state."""
    return [
        r.step_id
        for r in state.steps.values()
        if r.status is StepStatus.BLOCKED and r.error_kind == OUTAGE_BLOCKED
    ]

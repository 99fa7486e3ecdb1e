"""What the responder sees while a plan runs: a summary before the first prompt and each step as it lands.

Why: answering a dozen prompts and only then seeing a table leaves a responder approving step seven without
knowing that step two failed. The summary says how many prompts are coming; each line says what happened,
in the order it happened. Everything is printed as text (step details can carry finding-derived strings).
"""

from __future__ import annotations

from rich.console import Console

from eksir.actions.registry import get_action
from eksir.engine.state import RunState, StepRecord, StepStatus
from eksir.playbooks.plan import Plan, PlanStep

_MARKS = {
    StepStatus.VERIFIED: "ok",
    StepStatus.FAILED: "FAILED",
    StepStatus.BLOCKED: "blocked",
    StepStatus.SKIPPED: "skipped",
    StepStatus.UNAVAILABLE_IN_LAB: "lab",
    StepStatus.NOT_EFFECTIVE: "NOT EFFECTIVE",
}


def needs_person(step: PlanStep) -> bool:
    """The step will prompt: the plan asks for approval, or its action is destructive."""
    try:
        destructive = get_action(step.action_id).spec.destructive
    except KeyError:
        destructive = False
    return step.requires_approval or destructive


def approval_summary(plan: Plan, state: RunState | None = None, outage_overridden: bool = False) -> str:
    """`11 steps, 4 need you: s03-..., ...` (steps already final in `state` are not counted); steps the
    outage check blocks are said apart, since no answer at a prompt runs them without the override."""
    open_steps = [s for s in plan.steps if state is None or state.steps[s.id].status is StepStatus.PENDING]
    held = [] if outage_overridden else [s.id for s in open_steps if s.outage_blocks]
    asking = [s.id for s in open_steps if needs_person(s) and s.id not in held]
    listed = f": {', '.join(asking)}" if asking else ""
    blocked = f"; {len(held)} blocked by the outage check: {', '.join(held)}" if held else ""
    return f"{len(open_steps)} steps, {len(asking)} need you{listed}{blocked}"


class ProgressPrinter:
    """A RunObserver printing one line per finished step, and nothing else."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def run_started(self, state: RunState) -> None:
        """The summary is printed before the run (it must precede the first prompt)."""

    def step_failed(self, step: PlanStep, record: StepRecord, state: RunState) -> None:
        """Printed when it finishes, like every step."""

    def step_finished(self, step: PlanStep, record: StepRecord, state: RunState) -> None:
        mark = _MARKS.get(record.status, record.status.value)
        self.console.print(f"  [{mark}] {step.id}: {record.full_detail()}", markup=False, highlight=False)

    def phase_finished(self, phase: str, state: RunState) -> None:
        self.console.print(f"-- {phase} done", markup=False, highlight=False)

    def run_finished(self, state: RunState) -> None:
        """The final table follows from the command."""

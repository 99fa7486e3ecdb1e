"""Several observers on one run (the war room and the responder's terminal), each told every milestone."""

from __future__ import annotations

from collections.abc import Iterable

from eksir.engine.runner import RunObserver
from eksir.engine.state import RunState, StepRecord
from eksir.playbooks.plan import PlanStep


class Observers:
    """A RunObserver that forwards to each of `members` in order (None entries are dropped)."""

    def __init__(self, members: Iterable[RunObserver | None]) -> None:
        self.members = [member for member in members if member is not None]

    def run_started(self, state: RunState) -> None:
        for member in self.members:
            member.run_started(state)

    def step_failed(self, step: PlanStep, record: StepRecord, state: RunState) -> None:
        for member in self.members:
            member.step_failed(step, record, state)

    def step_finished(self, step: PlanStep, record: StepRecord, state: RunState) -> None:
        for member in self.members:
            member.step_finished(step, record, state)

    def phase_finished(self, phase: str, state: RunState) -> None:
        for member in self.members:
            member.phase_finished(phase, state)

    def run_finished(self, state: RunState) -> None:
        for member in self.members:
            member.run_finished(state)

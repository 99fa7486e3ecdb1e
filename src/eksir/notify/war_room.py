"""The war room observer: tells every channel about the run's milestones, records each delivery in the case.

Why failures are swallowed here (and only here): a notification is a courtesy to the people watching, never a
precondition of containment; a dead webhook at 3 a.m. must not stop the pod being isolated. Each failure is
recorded in the case (`notify.failed`), so the report can say who was and was not told.
"""

from __future__ import annotations

import logging

from eksir.engine.state import RunState, StepRecord
from eksir.errors import EksirError
from eksir.notify import message as msg
from eksir.notify.channels import Channel
from eksir.notify.message import Message
from eksir.playbooks.plan import PlanStep
from eksir.store.case_store import CaseHandle

log = logging.getLogger("eksir.notify")


class WarRoom:
    """A RunObserver that fans each milestone out to its channels."""

    def __init__(self, case: CaseHandle, channels: list[Channel]) -> None:
        self.case = case
        self.channels = channels

    def send(self, message: Message) -> None:
        for channel in self.channels:
            try:
                channel.send(message)
            except EksirError as exc:
                self._record_failure(channel, message, exc.message)
            except Exception as exc:  # a notifier bug must not stop a response either
                self._record_failure(channel, message, f"{exc.__class__.__name__}: {exc}")
            else:
                self.case.append("notify.sent", {"channel": channel.name, "kind": message.kind})

    def _record_failure(self, channel: Channel, message: Message, error: str) -> None:
        log.warning(
            "case %s: %s notification %s failed: %s", self.case.path.name, channel.name, message.kind, error
        )
        self.case.append("notify.failed", {"channel": channel.name, "kind": message.kind, "error": error})

    def case_opened(self, case_id: str, title: str, cluster: str | None, created: bool) -> None:
        self.send(msg.case_opened(case_id, title, cluster, created))

    def run_started(self, state: RunState) -> None:
        self.send(msg.run_started(state))

    def step_failed(self, step: PlanStep, record: StepRecord, state: RunState) -> None:
        self.send(msg.step_failed(step.id, state))

    def step_finished(self, step: PlanStep, record: StepRecord, state: RunState) -> None:
        """Nothing per step: the room hears of failures (above) and of each phase as it ends."""

    def phase_finished(self, phase: str, state: RunState) -> None:
        self.send(msg.phase_finished(phase, state))

    def run_finished(self, state: RunState) -> None:
        self.send(msg.run_finished(state))

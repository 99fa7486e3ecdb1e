"""The fleet's approval gate: the response policy's decision plus the approvals recorded in the case.

Why recorded approvals and not a flag: `eksir approve` may run anywhere (a laptop, a chat bot) while a
worker on another machine continues the case; the case record is the one place both read. A step that needs
approval waits (skipped, saying which command approves it) until an `approval.granted` event names it (or
grants every destructive step); an `approval.denied` event keeps it declined. Nothing runs because time
passed: without a recorded approval the answer is the same on every run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eksir.engine.approval import ApprovalRequest
from eksir.engine.state import Approval
from eksir.policy import Decision
from eksir.store import CaseHandle

GRANTED = "approval.granted"
STOPPING = "worker-stopping"
DENIED = "approval.denied"


@dataclass(frozen=True)
class Recorded:
    """One approve/deny decision from the case record."""

    granted: bool
    approver: str
    steps: tuple[str, ...]
    destructive: bool
    reason: str = ""

    def covers(self, step_id: str, needs_approval: bool) -> bool:
        return step_id in self.steps or (self.destructive and needs_approval)


@dataclass(frozen=True)
class RecordedApprovals:
    """Every approve/deny of a case, oldest first: the newest decision covering a step wins."""

    decisions: tuple[Recorded, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, case: CaseHandle) -> RecordedApprovals:
        found = [
            Recorded(
                granted=event.type == GRANTED,
                approver=str(event.data.get("approver", event.actor)),
                steps=tuple(str(s) for s in event.data.get("steps", [])),
                destructive=bool(event.data.get("destructive", False)),
                reason=str(event.data.get("reason", "")),
            )
            for event in case.log.events()
            if event.type in (GRANTED, DENIED)
        ]
        return cls(tuple(found))

    def latest(self, step_id: str, needs_approval: bool) -> Recorded | None:
        for decision in reversed(self.decisions):
            if decision.covers(step_id, needs_approval):
                return decision
        return None


class FleetGate:
    """Approves a step when an approval is recorded for it, or when the policy runs it automatically."""

    def __init__(
        self,
        case: CaseHandle,
        case_id: str,
        decision: Decision,
        actor: str,
        stopping: threading.Event | None = None,
    ) -> None:
        self.approvals = RecordedApprovals.of(case)
        self.case_id = case_id
        self.decision = decision
        self.actor = actor
        self.stopping = stopping or threading.Event()

    def decide(self, request: ApprovalRequest) -> Approval:
        step, needs = request.step, request.needs_approval
        now = datetime.now(UTC)
        if (
            self.stopping.is_set()
        ):  # SIGTERM: steps running finish, no new one starts; the case is handed over
            return Approval(
                approved=False,
                approver=self.actor,
                at=now,
                how=STOPPING,
                reason="the worker is stopping: another worker continues this case",
            )
        recorded = self.approvals.latest(step.id, needs)
        if recorded is not None:
            how = "approved" if recorded.granted else "denied"
            return Approval(
                approved=recorded.granted,
                approver=recorded.approver,
                at=now,
                how=f"recorded:{how}",
                reason=recorded.reason if not recorded.granted else "",
            )
        if self.decision.runs_automatically(step.id, request.spec.id, needs):
            return Approval(
                approved=True, approver=self.actor, at=now, how=f"policy:{self.decision.rule.name}"
            )
        return Approval(
            approved=False,
            approver=self.actor,
            at=now,
            how="awaiting-approval",
            reason=f"waits for approval: eksir approve {self.case_id} --step {step.id} --yes",
        )

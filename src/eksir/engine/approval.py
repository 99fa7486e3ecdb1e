"""Approval gates: who says yes to a step that changes production, and how that yes is recorded.

Why three kinds: at 3 a.m. a person approves step by step, seeing the diff and the blast radius
(`InteractiveGate`); automation approves by a policy decided in advance (`PolicyGate`); and anything that
cannot ask (no terminal, no policy) must not change production (`DenyAllGate`, or the non-destructive
policy). Every decision carries who (user@host), when and how, and is stored in the step record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from eksir.actions.base import ActionSpec, CheckOutcome, PlannedChange
from eksir.engine.state import Approval
from eksir.playbooks.plan import PlanStep


class ApprovalPolicy(StrEnum):
    ALL = "all"
    NON_DESTRUCTIVE = "non-destructive"
    NONE = "none"


@dataclass(frozen=True)
class ApprovalRequest:
    """What a gate sees: the step, the action's declaration, its check result and planned change."""

    step: PlanStep
    spec: ActionSpec
    check: CheckOutcome
    change: PlannedChange

    @property
    def needs_approval(self) -> bool:
        """The plan's flag, or the action's own spec: a destructive action is never auto-approved."""
        return self.step.requires_approval or self.spec.destructive


class ApprovalGate(Protocol):
    def decide(self, request: ApprovalRequest) -> Approval: ...


def _now() -> datetime:
    return datetime.now(UTC)


class PolicyGate:
    """Approves by a policy chosen before the run (`--approve all|non-destructive|none`)."""

    def __init__(self, policy: ApprovalPolicy, actor: str) -> None:
        self.policy = policy
        self.actor = actor

    def decide(self, request: ApprovalRequest) -> Approval:
        how = f"policy:{self.policy.value}"
        if self.policy is ApprovalPolicy.ALL:
            return Approval(approved=True, approver=self.actor, at=_now(), how=how)
        if self.policy is ApprovalPolicy.NON_DESTRUCTIVE and not request.needs_approval:
            return Approval(approved=True, approver=self.actor, at=_now(), how=how)
        return Approval(
            approved=False,
            approver=self.actor,
            at=_now(),
            how=how,
            reason="needs approval; the policy does not grant it"
            if request.needs_approval
            else "policy approves nothing",
        )


class DenyAllGate:
    """Approves nothing: for runs that must not change anything (and for tests)."""

    def __init__(self, actor: str = "deny-all") -> None:
        self.actor = actor

    def decide(self, request: ApprovalRequest) -> Approval:
        return Approval(
            approved=False, approver=self.actor, at=_now(), how="deny-all", reason="deny-all gate"
        )


class UnconfirmedFindingGate:
    """Declines every step that needs approval while the finding is unconfirmed by GuardDuty; others go to
    the inner gate. Why a gate: evidence collection still runs (it changes nothing), containment does not."""

    def __init__(self, inner: ApprovalGate, reason: str) -> None:
        self.inner = inner
        self.reason = reason

    def decide(self, request: ApprovalRequest) -> Approval:
        if request.needs_approval:
            return Approval(
                approved=False, approver="eksir", at=_now(), how="finding-unconfirmed", reason=self.reason
            )
        return self.inner.decide(request)


class StepListGate:
    """Approves exactly the steps named (`--approve-step ID`, repeatable) and the ones needing no approval.

    Why: a scripted run (a runbook, a second responder finishing the job) approves what was reviewed by
    name, not a whole class of steps; anything else that needs approval is declined and says why.
    """

    def __init__(self, step_ids: frozenset[str], actor: str) -> None:
        self.step_ids = step_ids
        self.actor = actor

    def decide(self, request: ApprovalRequest) -> Approval:
        if request.step.id in self.step_ids:
            return Approval(approved=True, approver=self.actor, at=_now(), how="approve-step")
        if not request.needs_approval:
            return Approval(approved=True, approver=self.actor, at=_now(), how="auto:non-destructive")
        return Approval(
            approved=False,
            approver=self.actor,
            at=_now(),
            how="approve-step",
            reason="needs approval; not named by --approve-step",
        )

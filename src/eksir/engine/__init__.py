"""The engine: runs a Plan with approval gates, persists every transition, resumes and rolls back."""

from eksir.engine.approval import (
    ApprovalGate,
    ApprovalPolicy,
    ApprovalRequest,
    DenyAllGate,
    PolicyGate,
    StepListGate,
)
from eksir.engine.interactive import InteractiveGate
from eksir.engine.lab_mode import LabMode
from eksir.engine.retry import RetryPolicy
from eksir.engine.rollback import rollback, rollback_targets
from eksir.engine.runner import ContextFactory, Runner, RunObserver
from eksir.engine.state import TERMINAL, Approval, RunState, StateStore, StepRecord, StepStatus

__all__ = [
    "TERMINAL",
    "Approval",
    "ApprovalGate",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ContextFactory",
    "DenyAllGate",
    "InteractiveGate",
    "LabMode",
    "PolicyGate",
    "RetryPolicy",
    "RunObserver",
    "RunState",
    "Runner",
    "StateStore",
    "StepListGate",
    "StepRecord",
    "StepStatus",
    "rollback",
    "rollback_targets",
]

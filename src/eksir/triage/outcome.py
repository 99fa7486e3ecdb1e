"""What triage decides: the decision, why, and what the responder does with it (kept apart from the rules
so that each rule module can build a `Verdict` without importing the others)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eksir.triage.checks import CheckResult
from eksir.triage.config import ChangeRecord


class Decision(StrEnum):
    AUTHORIZED_CHANGE = "authorized-change"
    SUSPICIOUS = "suspicious"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class Verdict:
    """`debug_pod` says what a `kubectl debug node` pod looked like; `scope` holds an attack sequence's
    resources, each workload with its own decision (plain JSON, as the triage document prints them)."""

    decision: Decision
    reasons: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    change_record: ChangeRecord | None = None
    suppression_filter: dict[str, Any] | None = None
    follow_ups: tuple[str, ...] = field(default_factory=tuple)
    debug_pod: dict[str, Any] | None = None
    scope: tuple[dict[str, Any], ...] = ()

"""What the game day says about each phase's steps, and the highlights a responder reads first.

Why a phase is judged by its steps and not by its runner returning: a runner that finishes with a failed or
blocked step is a phase that did not do its job, and a game day that calls it `ok` teaches the wrong lesson.
A step the lab cannot perform (`unavailable-in-lab`) is named with its reason and is not a failure
(DESIGN.md, "Lab modes"); it is never counted as verified either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing this module must stay cheap for the CLI's start-up
    from eksir.engine.state import RunState
    from eksir.hunt.result import HuntResult

NOT_DONE = frozenset({"failed", "blocked", "rollback-failed"})
"""Step outcomes that make a phase (and the day) not ok."""
UNAVAILABLE = "unavailable-in-lab"
NOT_EFFECTIVE = "not-effective"
"""Applied but containing nothing (e.g. pod isolation no CNI enforces): not a failure, never verified; named
with its reason under the phase, like a step the lab cannot perform."""
HIGHLIGHTS = 6
QUIET_CATEGORIES = frozenset({"discovery", "read", "other"})
"""Hunt categories left out of the highlights (still counted): reconnaissance noise."""


@dataclass(frozen=True)
class StepLine:
    """One step as the summary shows it: id, action, outcome and why."""

    step: str
    action: str
    status: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @property
    def explained(self) -> str:
        """`<outcome>: <reason>`, without repeating an outcome the reason already starts with."""
        return self.reason if self.reason.startswith(self.status) else f"{self.status}: {self.reason}"


def engine_steps(state: RunState) -> list[StepLine]:
    """Every step of an engine run in plan order, with its detail (and what it ran without, in the lab)."""
    return [
        StepLine(
            step.id, step.action_id, state.steps[step.id].status.value, state.steps[step.id].full_detail()
        )
        for step in state.plan.order()
    ]


def document_steps(steps: Iterable[dict[str, Any]]) -> list[StepLine]:
    """Steps from a JSON document that lists `step_id`, `action_id`, `status`, `detail` (recovery)."""
    return [
        StepLine(str(s["step_id"]), str(s["action_id"]), str(s["status"]), str(s.get("detail") or ""))
        for s in steps
    ]


def problems(lines: Iterable[StepLine]) -> list[StepLine]:
    """The steps that failed, were blocked or could not be rolled back."""
    return [line for line in lines if line.status in NOT_DONE]


def counts(lines: Iterable[StepLine]) -> str:
    """`1 unavailable-in-lab, 9 verified`-style totals, sorted by outcome."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.status] = totals.get(line.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(totals.items()))


def verdict_summary(triage: dict[str, Any]) -> dict[str, Any]:
    """The triage decision and its reasons, from the triage document."""
    verdict = triage.get("verdict") or {}
    return {"decision": verdict.get("decision"), "reasons": list(verdict.get("reasons") or [])}


def hunt_highlights(result: HuntResult) -> dict[str, Any]:
    """Totals per category and the first few calls that changed or took something, in time order."""
    loud = [e for e in result.events if e.category not in QUIET_CATEGORIES]
    loud.sort(key=lambda e: e.event_time.timestamp() if e.event_time else float("inf"))
    notable = [
        " ".join(p for p in ((e.service or "").removesuffix(".amazonaws.com"), e.action or "") if p)
        + f" ({e.category}{', failed' if e.failed else ''})"
        for e in loud[:HIGHLIGHTS]
    ]
    return {
        "calls": len(result.events),
        "by_category": result.counts_by_category(),
        "principals": [*result.principals, *result.chained_principals],
        "highlights": notable,
        "more": max(0, len(loud) - HIGHLIGHTS),
    }

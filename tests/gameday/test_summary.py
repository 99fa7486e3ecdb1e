"""The game day's judgement of steps and its hunt highlights, on hand-made records (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eksir.cli.gameday_summary import StepLine, counts, hunt_highlights, problems
from eksir.hunt.result import HuntEvent, HuntResult, Origin

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _line(status: str, reason: str = "why") -> StepLine:
    return StepLine(f"s-{status}", "x.y", status, reason)


def test_failed_blocked_and_rollback_failed_steps_are_problems_unlike_unavailable_in_lab() -> None:
    lines = [
        _line(s)
        for s in ("failed", "blocked", "rollback-failed", "unavailable-in-lab", "verified", "skipped")
    ]
    assert [line.status for line in problems(lines)] == ["failed", "blocked", "rollback-failed"]


def test_counts_total_each_outcome_in_order() -> None:
    lines = [_line("verified"), _line("unavailable-in-lab"), _line("verified")]
    assert counts(lines) == "1 unavailable-in-lab, 2 verified"


def test_a_reason_is_led_by_its_outcome_once() -> None:
    assert _line("failed", "precondition failed: gone").explained == "failed: precondition failed: gone"
    assert _line("blocked", "blocked: s1 is failed").explained == "blocked: s1 is failed"


def _event(action: str, category: str, minutes: int | None, failed: bool = False) -> HuntEvent:
    at = None if minutes is None else T0 + timedelta(minutes=minutes)
    return HuntEvent(
        origin=Origin.CLOUDTRAIL,
        event_time=at,
        service="iam.amazonaws.com",
        action=action,
        category=category,
        rule_id="r",
        failed=failed,
    )


def test_hunt_highlights_skip_reconnaissance_keep_time_order_and_count_what_is_left_out() -> None:
    events = [
        _event("ListUsers", "discovery", 0),
        _event("NoTime", "deletion", None),
        *(_event(f"Create{i}", "identity-persistence", 10 - i) for i in range(6)),
        _event("DeleteTrail", "defense-evasion", 1, failed=True),
    ]
    result = HuntResult(since=T0, until=T0, principals=["AKIA1"], events=events)
    summary = hunt_highlights(result)
    assert summary["calls"] == 9
    assert summary["by_category"]["discovery"] == 1
    assert summary["highlights"][0] == "iam DeleteTrail (defense-evasion, failed)"
    assert summary["highlights"][1:] == [f"iam Create{i} (identity-persistence)" for i in (5, 4, 3, 2, 1)]
    assert summary["more"] == 2
    assert all("ListUsers" not in h for h in summary["highlights"])

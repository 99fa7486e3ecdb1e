"""The time window of a hunt: every source is bounded by it, so nothing outside it is listed, read or queried.

Responders type times in a hurry (`2024-08-01`, `2024-08-01T13:00Z`, `36h`, `7d` ago), so parsing is
forgiving, but a window that cannot be understood is a `BadInputError`, never a silent "all time".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from eksir.errors import BadInputError

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """Parse an ISO 8601 time, a date, or a relative age (`90m`, `36h`, `7d`, `2w` before now) into UTC."""
    value = text.strip()
    current = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return current - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T", 1) if len(value) > 10 else value)
    except ValueError as exc:
        raise BadInputError(
            f"cannot read time {text!r}: use ISO 8601 (2024-08-01T13:00Z) or an age (36h, 7d)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_event_time(value: object) -> datetime | None:
    """Read a CloudTrail/audit timestamp; None for anything unreadable (anonymised data is not strict)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval [since, until] in UTC."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise BadInputError("time window bounds must carry a time zone")
        if self.until < self.since:
            raise BadInputError(
                f"--until {self.until.isoformat()} is before --since {self.since.isoformat()}"
            )

    @classmethod
    def parse(cls, since: str, until: str | None = None, *, now: datetime | None = None) -> TimeWindow:
        """Build a window from user text; `until` defaults to now."""
        current = now or datetime.now(UTC)
        end = parse_time(until, now=current) if until else current
        return cls(parse_time(since, now=current), end)

    def contains(self, moment: datetime | None) -> bool:
        """True when the moment is inside; an unknown time is kept (better a false positive than a miss)."""
        return moment is None or self.since <= moment <= self.until

    def days(self, slack_after: int = 1) -> Iterator[date]:
        """Every UTC day the window touches, plus `slack_after` days for late log delivery."""
        day = self.since.date()
        last = self.until.date() + timedelta(days=slack_after)
        while day <= last:
            yield day
            day += timedelta(days=1)

    def day_may_hold(self, day: date, slack_after: int = 1) -> bool:
        """Whether a date folder can hold records of the window (delivery is never before the event)."""
        return self.since.date() <= day <= self.until.date() + timedelta(days=slack_after)

    def as_dict(self) -> dict[str, str]:
        """JSON form for the hunt result."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}

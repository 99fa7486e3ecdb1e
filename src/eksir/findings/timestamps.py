"""Every timestamp form GuardDuty findings arrive in, turned into a timezone-aware UTC `datetime`.

The same instant is written differently depending on the path the finding took: ISO 8601 with `Z`
(finding-level `createdAt`, a string in the API model), the AWS CLI's local-offset rendering of a model
`timestamp` (`2023-03-22T15:48:25.752000-05:00`), `str(datetime)` from boto3 output dumped with
`default=str` (space separator), epoch seconds as a float on the wire (`1636625755.218`, also in exponent
form `1.716854656938E9`), and epoch milliseconds or microseconds in other GuardDuty events. Numbers are
told apart by magnitude. A value we cannot read yields `None` (the raw value stays in `Finding.raw`): one
odd timestamp must not stop a responder from seeing the rest of the finding.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_fromisoformat = datetime.fromisoformat

# Magnitude thresholds: 1e11 s is the year 5138, 1e14 ms the year 5138, and so on; GuardDuty never emits
# seconds that large, so anything above a threshold must be the next finer unit.
_SCALES = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (1e20, 1e9))


def parse_timestamp(value: Any) -> datetime | None:
    """Return `value` as an aware UTC datetime, or None when it is missing or not a timestamp."""
    kind = type(value)
    if kind is str:  # the common cases first: ISO strings and wire floats, tested by exact type
        text = value.strip()
        if len(text) > 10 and text[4] == "-" and text[:4].isdigit():  # ISO date; never a number
            # `_from_iso` inlined for the usual `...Z` / `+00:00` forms: five per finding, so it shows.
            if text[-1] in "zZ":
                text = text[:-1] + "+00:00"
            try:
                parsed = _fromisoformat(text)
            except ValueError:
                return None
            return parsed if parsed.tzinfo is UTC else _as_utc(parsed)
        return _from_text(text)
    if kind is float:
        return _from_epoch(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, int):
        return _from_epoch_int(value)
    if isinstance(value, float):
        return _from_epoch(value)
    if isinstance(value, str):
        return _from_text(value.strip())
    return None


def _from_text(text: str) -> datetime | None:
    if _NUMBER.fullmatch(text):
        return _from_epoch_int(int(text)) if text.isdigit() else _from_epoch(float(text))
    return _from_iso(text)


def _from_epoch(number: float) -> datetime | None:
    if not math.isfinite(number) or number < 0:
        return None
    for limit, divisor in _SCALES:
        if number < limit:
            try:
                return _EPOCH + timedelta(seconds=number / divisor)
            except OverflowError:  # pragma: no cover - thresholds keep us inside datetime's range
                return None
    return None


def _from_epoch_int(number: int) -> datetime | None:
    """Integers are exact: no float rounding for epoch milliseconds or microseconds."""
    for limit, divisor in _SCALES:
        if 0 <= number < limit:
            return _EPOCH + timedelta(microseconds=number * 1_000_000 // int(divisor))
    return None


def _from_iso(text: str) -> datetime | None:
    if not text or not text[0].isdigit():
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _as_utc(parsed)


def _as_utc(value: datetime) -> datetime | None:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 with a positive offset, year 9999 with a negative one
        return None

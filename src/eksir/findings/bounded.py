"""Typed, bounded accessors for the parts of a finding read rarely (runtime details, attack sequences).

Everything in a finding is attacker-controlled. These accessors answer `None` (or an empty tuple) for a
missing or mistyped value, cut every string at `MAX_TEXT` characters and every list at the bound its caller
gives, so a hostile finding can neither crash the reader nor make one field cost unbounded memory.
Validation goes through the pydantic models (these findings are rare; bulk reading does not pay for it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from eksir.findings.timestamps import parse_timestamp

MAX_TEXT = 2048
M = TypeVar("M", bound=BaseModel)


def obj(parent: Any, key: str) -> dict[str, Any] | None:
    value = parent.get(key) if type(parent) is dict else None
    return value if type(value) is dict else None


def text(parent: dict[str, Any] | None, key: str) -> str | None:
    value = parent.get(key) if parent is not None else None
    if type(value) is int or type(value) is float:
        value = str(value)
    return value[:MAX_TEXT] if type(value) is str and value else None


def integer(parent: dict[str, Any] | None, key: str) -> int | None:
    value = parent.get(key) if parent is not None else None
    if type(value) is float and value.is_integer():
        return int(value)
    return value if type(value) is int else None


def number(parent: dict[str, Any] | None, key: str) -> float | None:
    value = parent.get(key) if parent is not None else None
    return float(value) if type(value) is int or type(value) is float else None


def moment(parent: dict[str, Any] | None, key: str) -> datetime | None:
    return parse_timestamp(parent.get(key)) if parent is not None else None


def texts(parent: dict[str, Any] | None, key: str, limit: int) -> tuple[str, ...]:
    value = parent.get(key) if parent is not None else None
    if type(value) is not list:
        return ()
    return tuple(item[:MAX_TEXT] for item in value[:limit] if type(item) is str and item)


def dicts(parent: dict[str, Any] | None, key: str, limit: int) -> list[dict[str, Any]]:
    value = parent.get(key) if parent is not None else None
    if type(value) is not list:
        return []
    return [item for item in value[:limit] if type(item) is dict]


def build(cls: type[M], **values: Any) -> M:
    """`cls(**values)`, validated, with every field given (defaults filled in).

    Every model the reader builds has all its fields set, the same as `trusted` gives the hot path
    (tests/findings/test_trusted.py checks both against a re-validated copy).
    """
    given = {
        name: values[name] if name in values else info.get_default(call_default_factory=True)
        for name, info in cls.model_fields.items()
    }
    return cls(**given)

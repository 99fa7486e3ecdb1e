"""The finding exactly as read, kept as its JSON text and decoded only when someone looks at it.

Why: every `Finding` keeps its source document (evidence, and the fields eksir does not model), but a
decoded GuardDuty finding is ~12 KB of Python objects against ~3 KB of JSON text. Holding the dicts made
reading a 100,000-finding S3 export touch 1.2 GB more memory than the text does, and the page faults and
cache misses of that were a sixth of the read. Almost nobody reads `raw` afterwards, so the reader hands
over the line it parsed and the dict is rebuilt (once, then kept) on first access.

It behaves as a read-only mapping equal to the decoded dict; pydantic validates a plain dict into it and
serialises it back as that dict, so `Finding` JSON is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class RawFinding(Mapping[str, Any]):
    """A JSON object, held as text until first read (or as the dict it was given)."""

    __slots__ = ("_text", "_value")

    def __init__(self, value: Mapping[str, Any] | None = None, *, text: bytes | None = None) -> None:
        if (value is None) == (text is None):
            raise TypeError("RawFinding takes either a decoded mapping or its JSON text")
        self._value: dict[str, Any] | None = None if value is None else dict(value)
        self._text = text

    @classmethod
    def of(cls, value: Any) -> RawFinding:
        """Pydantic's validator: a RawFinding as is, any mapping copied in; anything else is refused."""
        if isinstance(value, RawFinding):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        raise ValueError(f"raw finding must be a JSON object, not {type(value).__name__}")

    @property
    def value(self) -> dict[str, Any]:
        """The decoded object (decoded on first use, then kept)."""
        if self._value is None:
            decoded = orjson.loads(self._text or b"{}")
            self._value = decoded if isinstance(decoded, dict) else {}
            self._text = None
        return self._value

    def as_json(self) -> tuple[bytes, bool]:
        """The object as JSON text and whether that text is exactly as read (a whole JSON Lines line);
        otherwise it is the decoded object serialised again (same content, not the same bytes)."""
        text = self._text
        if text is not None:
            return text, True
        return orjson.dumps(self.value), False

    def __getitem__(self, key: str) -> Any:
        return self.value[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RawFinding):
            return self.value == other.value
        if isinstance(other, Mapping):
            return self.value == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable content, as a dict's

    def __repr__(self) -> str:
        return f"RawFinding({self.value!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return RawFinding, (self.value,)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.of,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda raw: raw.value),
        )

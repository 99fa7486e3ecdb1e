"""The append-only, hash-chained case event log (`events.jsonl`).

Each event's hash is sha256 over its canonical JSON (sorted keys, no `hash` field) which includes the previous
event's hash, so altering, removing or reordering any line breaks the chain from that line on. A line torn by
a crash mid-append is detected, never silently repaired.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from eksir.errors import CaseInvalidError
from eksir.models.case import CaseEvent
from eksir.store.atomic import sha256_bytes

GENESIS_HASH = "0" * 64


def canonical_event_bytes(fields: dict[str, Any]) -> bytes:
    """Serialise an event for hashing: stable key order, UTC timestamps, no hash field."""
    body = {key: value for key, value in fields.items() if key != "hash"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


@dataclass(frozen=True)
class ChainProblem:
    line: int
    message: str


class EventLog:
    """Appends events under an exclusive file lock so concurrent steps never interleave a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event_type: str, actor: str, data: dict[str, Any]) -> CaseEvent:
        """Append one event; returns it with its sequence number and hash."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                last = _last_event(self.path)
                seq = 1 if last is None else last.seq + 1
                prev = GENESIS_HASH if last is None else last.hash
                fields: dict[str, Any] = {
                    "seq": seq,
                    "at": datetime.now(UTC),
                    "actor": actor,
                    "type": event_type,
                    "data": data,
                    "prev_hash": prev,
                }
                digest = sha256_bytes(canonical_event_bytes(fields))
                event = CaseEvent(**fields, hash=digest)
                line = orjson.dumps(event.model_dump(mode="json")) + b"\n"
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
                return event
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def events(self) -> Iterator[CaseEvent]:
        """Yield every event; raises CaseInvalidError on a line that is not a valid event."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield _parse_line(raw, number, self.path)

    def verify(self) -> list[ChainProblem]:
        """Recompute every hash and link; name the first line of each break."""
        problems: list[ChainProblem] = []
        prev = GENESIS_HASH
        expected_seq = 1
        if not self.path.exists():
            return [ChainProblem(0, f"{self.path.name} is missing")]
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    event = _parse_line(raw, number, self.path)
                except CaseInvalidError as exc:
                    problems.append(ChainProblem(number, exc.message))
                    break
                fields = event.model_dump()
                if event.seq != expected_seq:
                    problems.append(
                        ChainProblem(number, f"sequence {event.seq} where {expected_seq} expected")
                    )
                if event.prev_hash != prev:
                    problems.append(
                        ChainProblem(number, "previous-hash link broken (a line was removed or reordered)")
                    )
                if sha256_bytes(canonical_event_bytes(fields)) != event.hash:
                    problems.append(ChainProblem(number, f"event {event.seq} ({event.type}) was altered"))
                prev = event.hash
                expected_seq = event.seq + 1
        return problems


def _parse_line(raw: bytes, number: int, path: Path) -> CaseEvent:
    if not raw.endswith(b"\n"):
        raise CaseInvalidError(
            f"{path}: line {number} is incomplete (torn write; `eksir case repair` records it and cuts it)"
        )
    try:
        return CaseEvent.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise CaseInvalidError(
            f"{path}: line {number} is not a valid case event ({exc.__class__.__name__})"
        ) from exc


def _last_event(path: Path) -> CaseEvent | None:
    """Read only the log's tail: appends stay O(1) however long the case runs."""
    size = path.stat().st_size
    if size == 0:
        return None
    with path.open("rb") as handle:
        window = 4096
        while True:
            start = max(0, size - window)
            handle.seek(start)
            chunk = handle.read(size - start)
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or start == 0:
                if not chunk.endswith(b"\n"):
                    raise CaseInvalidError(
                        f"{path}: the last line is incomplete (a write torn by a crash): "
                        "run `eksir case repair` to record it and go on"
                    )
                return _parse_line(lines[-1] + b"\n", -1, path)
            window *= 4

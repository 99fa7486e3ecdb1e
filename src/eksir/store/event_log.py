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
from typing import Any, BinaryIO, Protocol

import orjson

from eksir.errors import CaseInvalidError, RefusedError
from eksir.models.case import CaseEvent
from eksir.store.atomic import sha256_bytes

GENESIS_HASH = "0" * 64


MAX_CONFLICTS = 20
"""How many times an append to a shared store re-reads and retries when other writers keep appending."""


def canonical_event_bytes(fields: dict[str, Any]) -> bytes:
    """Serialise an event for hashing: stable key order, UTC timestamps, no hash field, and no `fence`
    unless it is set (events written before the field existed keep their hashes)."""
    body = {
        key: value
        for key, value in fields.items()
        if key != "hash" and not (key == "fence" and value is None)
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def event_line(event: CaseEvent) -> bytes:
    """One line of `events.jsonl` (and the body of an event object in S3)."""
    return orjson.dumps(event.model_dump(mode="json")) + b"\n"


class RemoteLog(Protocol):
    """The record a log is mirrored from (a shared store: store/s3_case.py); the local file is a copy."""

    def fence(self) -> int | None:
        """The lease token to record (None without a lease); raises RefusedError when the lease was lost."""
        ...

    def put_event(self, seq: int, line: bytes) -> bool:
        """Write event `seq` unless another writer did: False then."""
        ...

    def lines_after(self, seq: int) -> list[bytes]:
        """The record's event lines after `seq`, to bring the local copy up to date."""
        ...


@dataclass(frozen=True)
class ChainProblem:
    line: int
    message: str


class EventLog:
    """Appends events under an exclusive file lock so concurrent steps never interleave a line."""

    def __init__(self, path: Path, remote: RemoteLog | None = None) -> None:
        self.path = path
        self.remote = remote

    def append(self, event_type: str, actor: str, data: dict[str, Any]) -> CaseEvent:
        """Append one event; returns it with its sequence number and hash.

        With a remote record (S3) the event is written there first, conditionally: when another writer
        appended in between, the local copy catches up and the event is rebuilt on the new head (a linear
        chain, never a fork). Raises CaseExistsError when event 1 exists already (the case was created by
        another writer), RefusedError when the lease was lost or writers keep colliding.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                for _ in range(MAX_CONFLICTS):
                    event = self._next(event_type, actor, data)
                    line = event_line(event)
                    if self.remote is None or self.remote.put_event(event.seq, line):
                        _write(handle, line, durable=self.remote is None)
                        return event
                    if event.seq == 1:
                        raise CaseExistsError(f"case record {self.path.parent.name} exists already")
                    _write(handle, b"".join(self.remote.lines_after(event.seq - 1)), durable=False)
                raise RefusedError(
                    f"{self.path.parent.name}: other writers kept appending ({MAX_CONFLICTS} tries): "
                    "the event was not written"
                )
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append_at_head(self, event_type: str, actor: str, data: dict[str, Any]) -> CaseEvent | None:
        """Append one event on the head this copy knows, or nothing: None when the remote record has
        another event of that number (another writer appended first; the copy is left as it was, and the
        caller decides what to re-read). Why not `append`'s catch-up and retry: a writer that skips the
        case's full re-open must not build on events it has not looked at (e.g. the case being closed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                event = self._next(event_type, actor, data)
                line = event_line(event)
                if self.remote is not None and not self.remote.put_event(event.seq, line):
                    return None
                _write(handle, line, durable=self.remote is None)
                return event
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _next(self, event_type: str, actor: str, data: dict[str, Any]) -> CaseEvent:
        last = _last_event(self.path)
        fields: dict[str, Any] = {
            "seq": 1 if last is None else last.seq + 1,
            "at": datetime.now(UTC),
            "actor": actor,
            "type": event_type,
            "data": data,
            "prev_hash": GENESIS_HASH if last is None else last.hash,
        }
        fence = self.remote.fence() if self.remote is not None else None
        if fence is not None:
            fields["fence"] = fence
        return CaseEvent(**fields, hash=sha256_bytes(canonical_event_bytes(fields)))

    def events(self) -> Iterator[CaseEvent]:
        """Yield every event; raises CaseInvalidError on a line that is not a valid event."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield _parse_line(raw, number, self.path)

    def has_type(self, event_type: str) -> bool:
        """Whether any event of the log has this type: each line's top-level `type` only, without building
        the events (a worker asks this for every repeat GuardDuty sends; validating every event of a
        150-event case each time was most of a repeat's cost). Nested data cannot answer for a line: only
        the parsed line's own `type` counts. The chain's integrity is `verify`'s job, not this one's."""
        if not self.path.exists():
            return False
        with self.path.open("rb") as handle:
            for raw in handle:
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(line, dict) and line.get("type") == event_type:
                    return True
        return False

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


class CaseExistsError(FileExistsError):
    """The first event of a case is in the shared record already: another writer created the case."""


def _write(handle: BinaryIO, data: bytes, durable: bool) -> None:
    """Append to the local log; `durable` (a case folder, where this file is the record) syncs it to disk.

    A shared case's local log is a copy of S3's record: a copy torn by a crash is rebuilt from S3 the next
    time it is opened (s3_case.materialise), so syncing each of its lines would only cost time."""
    if data:
        handle.write(data)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())


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

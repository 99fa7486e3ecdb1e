"""A case whose record is in S3, worked on through a local copy: the glue between CaseHandle and S3.

Why a local copy at all: every reader of a case (status, report, resume, export, verify's checks) reads
files from a directory, and a case is read far more often than written. So opening an S3 case
*materialises* it (`materialise`): the events not yet in the copy are appended, and each file the events log
is fetched at its last logged version when the copy lacks it. Writes go to S3 first and to the copy after:
a file version is uploaded (content-addressed, store/s3_record.py) before the event that logs it, and the
event is written conditionally, so the record is complete whatever process dies when. The copy is never
trusted over S3: when its last event is not S3's event of that number, it is rebuilt.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from eksir.errors import RefusedError
from eksir.models.case import CaseEvent
from eksir.store.atomic import sha256_file
from eksir.store.dynamo_lease import DynamoCaseLock
from eksir.store.lock import CaseLock, held_lock
from eksir.store.s3_record import S3Record, event_seq

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

EVENTS_FILE = "events.jsonl"


@dataclass(eq=False)
class RemoteCase:
    """One S3 case and its lease; implements the event log's `RemoteLog` and the uploads of a handle.

    `case_dir` is the local copy this process works on (files logged by events other writers appended are
    fetched into it as those events are pulled).
    """

    record: S3Record
    dynamo: DynamoDBClient
    table: str
    case_dir: Path

    @property
    def lease_key(self) -> str:
        """The lease item's key, and this process's key for the lease it holds (store/lock.py)."""
        return self.record.url.removeprefix("s3://")

    def new_lock(self) -> CaseLock:
        return DynamoCaseLock(self.dynamo, self.table, self.lease_key)

    def fence(self) -> int | None:
        """This process's lease token after checking it is still current; None when it holds no lease."""
        lock = held_lock(self.lease_key)
        if lock is None:
            return None
        if not isinstance(lock, DynamoCaseLock):
            raise RefusedError(f"{self.record.url} is held by a lock that cannot fence S3 writes")
        return lock.check()

    def put_event(self, seq: int, line: bytes) -> bool:
        return self.record.put_event(seq, line)

    def lines_after(self, seq: int) -> list[bytes]:
        """Events other writers appended after `seq`, with the files they log fetched into the copy."""
        lines = [_as_line(body) for _, body in self.record.events_following(seq)]
        fetch_files(self.record, self.case_dir, _expected(_parse(lines)))
        return lines

    def upload(self, data: bytes) -> None:
        """Write-ahead for a file version: in S3 before the event that logs it."""
        self.record.put_blob(data)

    def refresh(self) -> None:
        """Bring the copy up to date after taking the lease: what others wrote since it was made."""
        materialise(self, full=False)


def _as_line(body: bytes) -> bytes:
    """An event object as one line of the local log (a body holding a newline stays one, invalid, line)."""
    return body.rstrip(b"\n").replace(b"\n", b" ") + b"\n"


def materialise(remote: RemoteCase, *, full: bool = True) -> None:
    """Bring the local copy up to date with S3: events first, then the files they log.

    `full` (opening a case) also checks the copy's last event against S3's (rebuilding a copy that
    disagrees) and every logged file; otherwise only the files logged by newly pulled events. Raises the
    errors of S3Record.
    """
    case_dir = remote.case_dir
    case_dir.mkdir(parents=True, exist_ok=True)
    log = case_dir / EVENTS_FILE
    with log.open("ab+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            last = _local_last(log)
            if last is None or (full and _hash_of(remote.record.event_body(last[0])) != last[1]):
                handle.truncate(0)  # empty, torn or unreadable, or not S3's: the copy is rebuilt
                last = None
            lines = remote.lines_after(last[0] if last else 0)
            handle.write(b"".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    if full:
        fetch_files(remote.record, case_dir, logged_files(log))


def _expected(events: list[CaseEvent]) -> dict[str, str]:
    from eksir.store.verify import expected_hashes  # noqa: PLC0415 - verify imports the case store

    return expected_hashes(events)


def _parse(lines: list[bytes]) -> list[CaseEvent]:
    """The readable events among `lines` (up to the first that is not one)."""
    events: list[CaseEvent] = []
    for raw in lines:
        try:
            events.append(CaseEvent.model_validate(orjson.loads(raw)))
        except (orjson.JSONDecodeError, ValueError):
            break
    return events


def logged_files(log: Path) -> dict[str, str]:
    """path -> sha256 of the last logged version of each file (what store/verify.py expects too)."""
    try:
        return _expected(_parse(log.read_bytes().splitlines(keepends=True)))
    except OSError:
        return {}


def fetch_files(record: S3Record, case_dir: Path, files: dict[str, str]) -> list[str]:
    """Download each logged file whose local copy is absent or differs; returns the paths missing in S3."""
    missing: list[str] = []
    for relative, digest in files.items():
        target = case_dir / relative
        if not _safe_relative(relative):
            missing.append(relative)
            continue
        if target.is_file() and sha256_file(target) == digest:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(descriptor)
        if record.download_blob(digest, Path(temporary)):
            os.replace(temporary, target)
        else:
            Path(temporary).unlink(missing_ok=True)
            missing.append(relative)
    return missing


def _safe_relative(relative: str) -> bool:
    """A logged path stays inside the case (an event in S3 is input like any other)."""
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _local_last(log: Path) -> tuple[int, str] | None:
    """(seq, hash) of the copy's last event; None when empty or unreadable (the copy is then rebuilt)."""
    try:
        lines = log.read_bytes().rstrip(b"\n").split(b"\n")
        if not lines or not lines[-1]:
            return None
        event = orjson.loads(lines[-1])
        return int(event["seq"]), str(event["hash"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _hash_of(body: bytes | None) -> str | None:
    try:
        return str(orjson.loads(body or b"")["hash"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def fresh_copy(remote: RemoteCase, target: Path) -> list[str]:
    """A copy made from S3 alone (verification never trusts the cache): every event object in key order,
    then every logged file. Returns what S3 itself shows wrong (object names, gaps, fencing)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    problems: list[str] = []
    objects = remote.record.events_after(0)
    tokens: list[tuple[int, int]] = []
    for name, body in objects:
        seq = event_seq(name)
        if seq is None:
            problems.append(f"events/{name}: not an event object (unexpected name)")
            continue
        with suppress(orjson.JSONDecodeError, TypeError, AttributeError):
            parsed = orjson.loads(body)
            if parsed.get("seq") != seq:
                problems.append(f"events/{name}: holds event {parsed.get('seq')} (moved or renamed)")
            if isinstance(parsed.get("fence"), int):
                tokens.append((seq, parsed["fence"]))
    (target / EVENTS_FILE).write_bytes(b"".join(_as_line(b) for n, b in objects if event_seq(n) is not None))
    problems += _fencing_problems(tokens)
    fetch_files(remote.record, target, logged_files(target / EVENTS_FILE))  # a missing one: verify says so
    return problems


def _fencing_problems(tokens: list[tuple[int, int]]) -> list[str]:
    """An event written under a lease token lower than an earlier event's: a stale holder wrote it."""
    problems: list[str] = []
    highest = 0
    for seq, token in tokens:
        if token < highest:
            problems.append(f"event {seq} was written under lease token {token} after token {highest}")
        highest = max(highest, token)
    return problems

"""GuardDuty repeating itself: the same finding id with a higher count and a newer updatedAt, recorded in the
finding's case as an update (`finding.received-again`), once per repeat, never as a second run.

Why once per (finding id, count, updatedAt) and not per message: SQS delivers at least once (a message whose
delete failed comes back) and EventBridge may deliver one event twice under two message ids; GuardDuty itself
never sends two different repeats with the same count and updatedAt. So the event carries `repeat`, a digest
of the three, and a repeat whose digest the case already holds is not recorded again.

Why a repeat's body is kept only when it says something new: a repeat is what GuardDuty said at that time,
so when it carries new detail it is evidence of the incident's course and is stored, content-addressed
(`repeats/<sha256>.json`, logged by the event with its sha256 like any file). But most repeats differ from
the finding already held only in what makes them a repeat (count, updatedAt, eventLastSeen, and the
EventBridge envelope's id and time), which the event records as data; storing every such body would cost an
upload per repeat (and a download into every other copy of the case) for nothing. So each event carries the
body's `essence` (a digest of it without those fields) and the body is stored only for an essence the case
does not hold yet.

Two ways to record, the same event either way: `record_repeat` (the store's full path: the case freshly
materialised, the append re-read on a conflict) and `record_at_head` (a worker that holds the case's copy:
one append on the head it knows; when another writer appended meanwhile, S3 refuses event N and nothing is
written here, so the caller re-reads and never forks the chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from eksir.store.atomic import commit, sha256_bytes, stage

if TYPE_CHECKING:
    from eksir.models.case import CaseEvent
    from eksir.models.finding import Finding
    from eksir.store.case_store import CaseHandle

REPEAT_EVENT = "finding.received-again"
REPEATS_DIR = "repeats"
_VOLATILE = frozenset({"updatedat", "count", "eventlastseen"})
"""What changes in every repeat of a finding (any spelling: wire camelCase, boto3 PascalCase)."""


def repeat_key(finding: Finding) -> str:
    """The repeat's identity: a digest of (finding id, count, updatedAt), safe to search for as text."""
    updated = finding.updated_at.isoformat() if finding.updated_at else ""
    text = f"{finding.id}\n{finding.count}\n{updated}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def already_recorded(handle: CaseHandle, key: str) -> bool:
    """Whether the case's copy holds a repeat with this key."""
    return _holds(handle, "repeat", key)


def essence(body: bytes) -> str:
    """A digest of what a repeat says apart from being a repeat: the finding (an EventBridge event's
    `detail`, without the envelope's id and time) without its count, updatedAt and eventLastSeen, keys
    sorted. A body that is not JSON is its own essence."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return sha256_bytes(body)
    if isinstance(doc, dict) and isinstance(doc.get("detail"), dict):
        doc = doc["detail"]
    if isinstance(doc, dict):
        doc = _without_volatile(doc)
        for key, value in doc.items():
            if key.lower() == "service" and isinstance(value, dict):
                doc[key] = _without_volatile(value)
    return sha256_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def _without_volatile(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k.lower() not in _VOLATILE}


def _holds(handle: CaseHandle, field: str, value: str) -> bool:
    """Whether the case's copy has an event with `"field":"value"` (one substring search over the log: a
    worker asks this for every repeat; the values searched are hex digests no other field is mistaken for)."""
    try:
        return f'"{field}":"{value}"'.encode() in (handle.path / "events.jsonl").read_bytes()
    except FileNotFoundError:
        return False


def repeat_data(
    handle: CaseHandle, finding: Finding, body: bytes, input_name: str, info: dict[str, Any]
) -> dict[str, Any]:
    """The event's data: which repeat (finding id, count, updatedAt, key), from which input, the body's
    essence and, when the case does not hold that essence yet, the body's content-addressed path and hash."""
    data: dict[str, Any] = {
        "finding_id": finding.id,
        "count": finding.count,
        "updated_at": finding.updated_at.isoformat() if finding.updated_at else None,
        "repeat": repeat_key(finding),
        "input": input_name,
        "essence": essence(body),
        **info,
    }
    if not _holds(handle, "essence", data["essence"]):
        digest = sha256_bytes(body)
        data |= {"path": f"{REPEATS_DIR}/{digest}.json", "sha256": digest, "size": len(body)}
    return data


def record_repeat(
    handle: CaseHandle, finding: Finding, body: bytes, input_name: str, info: dict[str, Any]
) -> bool:
    """Record the repeat unless the case holds it already; False when it did. Raises the store's errors."""

    def append(data: dict[str, Any]) -> CaseEvent:
        return handle.append(REPEAT_EVENT, data)

    return _record(handle, finding, body, input_name, info, append=append) is True


def record_at_head(
    handle: CaseHandle, finding: Finding, body: bytes, input_name: str, info: dict[str, Any]
) -> bool | None:
    """Record the repeat with one append on the head this copy knows: True when recorded, False when the
    case held it already, None when another writer appended first (nothing written; the caller re-reads)."""

    def append(data: dict[str, Any]) -> CaseEvent | None:
        return handle.log.append_at_head(REPEAT_EVENT, handle.actor, data)

    return _record(handle, finding, body, input_name, info, append=append)


def _record(
    handle: CaseHandle,
    finding: Finding,
    body: bytes,
    input_name: str,
    info: dict[str, Any],
    *,
    append: Callable[[dict[str, Any]], CaseEvent | None],
) -> bool | None:
    """The repeat's event through `append` (None: not written), its body staged before and committed after."""
    if already_recorded(handle, repeat_key(finding)):
        return False
    data = repeat_data(handle, finding, body, input_name, info)
    with _body_staged(handle, data.get("path"), body) as pending:
        if append(data) is None:
            return None
        _commit(pending, handle.path / data.get("path", ""))
    return True


@contextmanager
def _body_staged(handle: CaseHandle, relative: str | None, body: bytes) -> Iterator[Path | None]:
    """Write-ahead for the body: uploaded (S3) and staged locally before the event, committed after it
    (by the caller); a staged copy the event never logged is removed. Nothing to stage when the body is
    not kept (`relative` None) or the copy has it already (the same body, by its name)."""
    if relative is None:
        yield None
        return
    if handle.remote is not None:
        handle.remote.upload(body)
    target = handle.path / relative
    pending = None if target.is_file() else stage(target, body)
    try:
        yield pending
    finally:
        if pending is not None:
            pending.unlink(missing_ok=True)


def _commit(pending: Path | None, target: Path) -> None:
    if pending is not None and pending.is_file():
        commit(pending, target)

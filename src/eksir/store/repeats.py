"""GuardDuty repeating itself: the same finding id with a higher count and a newer updatedAt, recorded in the
finding's case as an update (`finding.received-again`), once per repeat, never as a second run.

Why once per (finding id, count, updatedAt) and not per message: SQS delivers at least once (a message whose
delete failed comes back) and EventBridge may deliver one event twice under two message ids; GuardDuty itself
never sends two different repeats with the same count and updatedAt. So the event carries `repeat`, a digest
of the three, and a repeat whose digest the case already holds is not recorded again.

Why the repeat's body is kept, and content-addressed (`repeats/<sha256>.json`, logged by the event with its
sha256 like any file): a repeat is what GuardDuty said at that time (its count, its updatedAt, sometimes new
detail), so it is evidence of the incident's course; but the same body delivered again says nothing new, and
named by its hash it is stored once (on S3 a second upload of a blob is a refused conditional PUT, locally
the file is there already) and every event naming it checks against the one copy.

Two ways to record, the same event either way: `record_repeat` (the store's full path: the case freshly
materialised, the append re-read on a conflict) and `record_at_head` (a worker that holds the case's copy:
one append on the head it knows; when another writer appended meanwhile, S3 refuses event N and nothing is
written here, so the caller re-reads and never forks the chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eksir.store.atomic import commit, sha256_bytes, stage

if TYPE_CHECKING:
    from eksir.models.finding import Finding
    from eksir.store.case_store import CaseHandle

REPEAT_EVENT = "finding.received-again"
REPEATS_DIR = "repeats"


def repeat_key(finding: Finding) -> str:
    """The repeat's identity: a digest of (finding id, count, updatedAt), safe to search for as text."""
    updated = finding.updated_at.isoformat() if finding.updated_at else ""
    text = f"{finding.id}\n{finding.count}\n{updated}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def already_recorded(handle: CaseHandle, key: str) -> bool:
    """Whether the case's copy holds a repeat with this key (one substring search over the log: a worker
    asks this for every repeat, and the key is a hex digest no other field can be mistaken for)."""
    try:
        return f'"repeat":"{key}"'.encode() in (handle.path / "events.jsonl").read_bytes()
    except FileNotFoundError:
        return False


def repeat_data(finding: Finding, body: bytes, input_name: str, info: dict[str, Any]) -> dict[str, Any]:
    """The event's data: which repeat (finding id, count, updatedAt, key), from which input, and the body's
    content-addressed path and hash."""
    digest = sha256_bytes(body)
    return {
        "finding_id": finding.id,
        "count": finding.count,
        "updated_at": finding.updated_at.isoformat() if finding.updated_at else None,
        "repeat": repeat_key(finding),
        "input": input_name,
        "path": f"{REPEATS_DIR}/{digest}.json",
        "sha256": digest,
        "size": len(body),
        **info,
    }


def record_repeat(
    handle: CaseHandle, finding: Finding, body: bytes, input_name: str, info: dict[str, Any]
) -> bool:
    """Record the repeat unless the case holds it already; False when it did. Raises the store's errors."""
    if already_recorded(handle, repeat_key(finding)):
        return False
    data = repeat_data(finding, body, input_name, info)
    with _body_staged(handle, data["path"], body) as pending:
        handle.append(REPEAT_EVENT, data)
        _commit(pending, handle.path / data["path"])
    return True


def record_at_head(
    handle: CaseHandle, finding: Finding, body: bytes, input_name: str, info: dict[str, Any]
) -> bool | None:
    """Record the repeat with one append on the head this copy knows: True when recorded, False when the
    case held it already, None when another writer appended first (nothing written; the caller re-reads)."""
    if already_recorded(handle, repeat_key(finding)):
        return False
    data = repeat_data(finding, body, input_name, info)
    with _body_staged(handle, data["path"], body) as pending:
        if handle.log.append_at_head(REPEAT_EVENT, handle.actor, data) is None:
            return None
        _commit(pending, handle.path / data["path"])
    return True


@contextmanager
def _body_staged(handle: CaseHandle, relative: str, body: bytes) -> Iterator[Path | None]:
    """Write-ahead for the body: uploaded (S3) and staged locally before the event, committed after it
    (by the caller); a staged copy the event never logged is removed. Nothing to stage when the copy has
    it already (the same body, by its name)."""
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

"""`eksir case verify`: recompute every hash in a case bundle and name what was altered.

Checks, in order: the event chain (every line's hash and link); case.json against the last logged version;
each evidence item against the hash taken at collection; each logged document against its last logged hash;
files present in the bundle that no event accounts for; an evidence path collected twice (evidence is written
once: a second collection under the same path means one overwrote the other); and case.json's evidence list
against the `evidence.collected` events (an item missing from either side).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eksir.errors import CaseInvalidError
from eksir.models.case import CaseEvent
from eksir.store.anchor import PublishedHead, check_anchors
from eksir.store.atomic import pending_path, sha256_file
from eksir.store.case_store import CASE_FILE, EVENTS_FILE, CaseHandle
from eksir.store.repeats import REPEAT_EVENT

REPAIR_HINT = "a write did not complete: run `eksir case repair`"


@dataclass
class VerificationReport:
    case_path: Path | str
    """The case directory, or `s3://bucket/prefix/case` for a shared case (verified from S3)."""
    events_checked: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)
    anchoring: str = "not anchored"

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_case(handle: CaseHandle, published: Sequence[PublishedHead] = ()) -> VerificationReport:
    """Verify one case bundle (and that its chain still reaches each published head); never raises for
    tampering, it reports it.

    A shared (S3) case is verified from S3 alone, never from the local copy: a fresh copy is made from the
    event objects and the blobs they log, checked like a directory, plus what only S3 can show (an event
    object under another number, a stale lease holder's write). Raises the S3 read errors.
    """
    if handle.remote is not None:
        from eksir.store.s3_case import fresh_copy  # noqa: PLC0415 - S3 cases only load the AWS layer

        with tempfile.TemporaryDirectory(prefix="eksir-verify-") as scratch:
            fresh = Path(scratch) / handle.case_id
            s3_problems = fresh_copy(handle.remote, fresh)
            report = _verify_directory(CaseHandle(fresh, handle.actor), published)
        report.case_path = handle.remote.record.url
        report.problems[:0] = s3_problems
        return report
    return _verify_directory(handle, published)


def _verify_directory(handle: CaseHandle, published: Sequence[PublishedHead]) -> VerificationReport:
    report = VerificationReport(handle.path)
    report.problems.extend(f"{EVENTS_FILE} line {p.line}: {p.message}" for p in handle.log.verify())
    events = readable_events(handle)
    report.events_checked = len(events)
    expected = expected_hashes(events)
    for relative, digest in sorted(expected.items()):
        report.files_checked += 1
        report.problems.extend(_check_file(handle.path, relative, digest))
    known = set(expected) | {EVENTS_FILE}
    for path in sorted(handle.path.rglob("*")):
        relative = path.relative_to(handle.path).as_posix()
        if path.is_file() and relative not in known and not path.name.startswith("."):
            report.problems.append(f"{relative}: not recorded in the event log")
    report.problems.extend(_evidence_problems(handle, events))
    anchor_problems, report.anchoring = check_anchors(events, published)
    report.problems.extend(anchor_problems)
    return report


def readable_events(handle: CaseHandle) -> list[CaseEvent]:
    """Every event up to the first unreadable line (which the chain check has already reported)."""
    events: list[CaseEvent] = []
    with contextlib.suppress(CaseInvalidError):
        for event in handle.log.events():
            events.append(event)  # one by one: keep what was read before a bad line
    return events


_LOGGING_FILES = frozenset({"document.written", "evidence.collected", "repair.orphan-recorded"})
"""Events whose data logs a file (path, sha256); a repeat's body (store/repeats.py) from its format on."""


def expected_hashes(events: list[CaseEvent]) -> dict[str, str]:
    """The last logged sha256 of every file the log accounts for (repair records count too)."""
    expected: dict[str, str] = {}
    for event in events:
        if event.type == "case.written":
            expected[CASE_FILE] = str(event.data["sha256"])
        elif event.type in _LOGGING_FILES or (event.type == REPEAT_EVENT and "path" in event.data):
            expected[str(event.data["path"])] = str(event.data["sha256"])
    return expected


def _check_file(root: Path, relative: str, digest: str) -> list[str]:
    path = root / relative
    pending = pending_path(path)
    hint = f" ({REPAIR_HINT})" if pending.is_file() and sha256_file(pending) == digest else ""
    if not path.is_file():
        return [f"{relative}: missing{hint}"]
    if sha256_file(path) != digest:
        return [f"{relative}: altered (sha256 differs from the logged hash){hint}"]
    return []


def _evidence_problems(handle: CaseHandle, events: list[CaseEvent]) -> list[str]:
    problems: list[str] = []
    logged: dict[str, int] = {}
    for event in events:
        if event.type == "evidence.collected":
            path = str(event.data.get("path"))
            logged[path] = logged.get(path, 0) + 1
    problems.extend(
        f"{path}: collected {count} times (evidence is written once; one write replaced another)"
        for path, count in sorted(logged.items())
        if count > 1
    )
    try:
        listed = {item.path for item in handle.load().evidence}
    except CaseInvalidError as exc:
        return [*problems, exc.message]
    problems.extend(
        f"{path}: logged as collected but missing from {CASE_FILE}'s evidence list ({REPAIR_HINT})"
        for path in sorted(set(logged) - listed)
    )
    problems.extend(
        f"{path}: listed in {CASE_FILE} but never logged as collected"
        for path in sorted(listed - set(logged))
    )
    return problems

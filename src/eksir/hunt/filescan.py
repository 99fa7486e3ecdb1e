"""One chunk of files, scanned: read, inflate, pre-filter, parse only around the hits, keep the attacker's.

This is the work a scan process does, kept apart from the coordination (`scan`) and the processes
(`workers`) so that both can hand it around without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eksir.hunt.decode import DecodeError, Inflated, inflate, parse_records
from eksir.hunt.locate import records_at
from eksir.hunt.prefilter import TokenMatcher, count_records
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import FileRef, read_bytes
from eksir.hunt.window import TimeWindow, parse_event_time

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client


@dataclass
class FileOutcome:
    """What one file gave: sizes, record count, the matching records, or why it was skipped."""

    location: str
    bytes_read: int = 0
    bytes_inflated: int = 0
    events: int = 0
    candidate: bool = False
    matched: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def __reduce__(self) -> tuple[type[FileOutcome], tuple[Any, ...]]:
        """Pickled as its field values only: thousands cross from the workers on every hunt."""
        fields = (self.bytes_read, self.bytes_inflated, self.events, self.candidate, self.matched, self.error)
        return FileOutcome, (self.location, *fields)


@dataclass(frozen=True)
class ScanJob:
    """One chunk of files for a worker, with the principal set and tokens to check them against."""

    files: tuple[FileRef, ...]
    principals: PrincipalSet
    matcher: TokenMatcher
    window: TimeWindow
    access: AwsAccess | None
    count_events: bool = False


def scan_file(ref: FileRef, job: ScanJob, s3_client: S3Client | None) -> FileOutcome:
    """Read, inflate, pre-filter and (if needed) parse one file; never raises for bad input."""
    outcome = FileOutcome(ref.location)
    try:
        raw = read_bytes(ref, s3_client)
        outcome.bytes_read = len(raw)
        data = inflate(raw)
        del raw
        outcome.bytes_inflated = len(data)
        if job.count_events:
            outcome.events = count_records(data)
        if not job.matcher.search(data):
            if not _looks_complete(data):
                outcome.error = "truncated JSON: the file does not end with '}' or ']'"
            return outcome
        outcome.candidate = True
        records = records_at(data, job.matcher.positions(data))
        if records is None:
            decoded = parse_records(data)
            records = decoded.records
            if job.count_events:
                outcome.events = len(records)
            if decoded.bad_lines:
                outcome.error = f"{len(decoded.bad_lines)} unreadable line(s), first: {decoded.bad_lines[0]}"
    except DecodeError as exc:
        outcome.error = str(exc)
        return outcome
    except Exception as exc:  # an unreadable object or file is reported, never fatal
        outcome.error = _describe(exc)
        return outcome
    for record in records:
        if job.principals.match(record) and job.window.contains(parse_event_time(record.get("eventTime"))):
            outcome.matched.append(record)
    return outcome


def _looks_complete(data: Inflated) -> bool:
    """An O(1) check that catches cut-off files without parsing them (most files are never parsed)."""
    tail = data[-64:].rstrip()
    return not tail or tail.endswith((b"}", b"]"))


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"unreadable: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return f"unreadable: {exc.__class__.__name__}: {exc}"


def scan_job(job: ScanJob) -> list[FileOutcome]:
    """Worker entry point: scan a chunk; S3 files share one client made in the worker."""
    client = job.access.client("s3") if job.access and any(f.is_s3 for f in job.files) else None
    return [scan_file(ref, job, client) for ref in job.files]

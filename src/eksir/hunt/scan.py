"""The local CloudTrail engine: inflate, pre-filter, parse only what may match, on both cores, to a fixed
point.

Per file: libdeflate inflates it, `TokenMatcher` rejects it unless a principal token occurs, and only then
orjson parses the records around the hits (`locate`) and `PrincipalSet.match` keeps the attacker's. Files
go to a process pool in delivery-time order, in chunks, each chunk carrying the principal set known when
it was sent.

Role chaining makes the set grow mid-scan (an AssumeRole by the attacker hands out an ASIA key whose
calls sit in files that hold none of the original tokens). Every file remembers the set it was checked
against; when the scan ends, files checked against an older set are checked again for the new tokens
only, limited to files delivered after the credential was issued, until nothing new appears. In-order
dispatch keeps that second look small.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eksir.hunt.decode import DecodeError, Inflated, inflate, parse_records
from eksir.hunt.locate import records_at
from eksir.hunt.prefilter import TokenMatcher, count_records
from eksir.hunt.principals import PrincipalSet, tokens_for
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import FileRef, read_bytes
from eksir.hunt.window import TimeWindow, parse_event_time

CHUNK_BYTES = 8 * 1024 * 1024
CHUNK_FILES = 32
ISSUE_SLACK = timedelta(minutes=15)
MAX_ROUNDS = 16


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


def scan_file(ref: FileRef, job: ScanJob, s3_client: Any | None) -> FileOutcome:
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


def _start_context() -> multiprocessing.context.BaseContext:
    """`fork` when this process runs one thread, else `forkserver`.

    Forking is safe only without other threads (one could hold a lock the child then waits on forever),
    but it starts both workers in about 15 ms where `forkserver` takes half a second to import eksir
    again: a sixth of a whole 1 GB hunt. The CLI keeps its progress display off threads for this reason.
    """
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


def scan_job(job: ScanJob) -> list[FileOutcome]:
    """Worker entry point: scan a chunk; S3 files share one client made in the worker."""
    client = job.access.client("s3") if job.access and any(f.is_s3 for f in job.files) else None
    return [scan_file(ref, job, client) for ref in job.files]


@dataclass
class ScanProgress:
    """Running totals for the progress bar."""

    files: int = 0
    bytes_read: int = 0
    bytes_inflated: int = 0
    events: int = 0
    matched: int = 0


@dataclass
class ScanReport:
    """The engine's answer: matched records (unique), final principal set, per-file outcomes, totals."""

    records: list[tuple[dict[str, Any], str]]
    principals: PrincipalSet
    skipped: list[FileOutcome]
    progress: ScanProgress
    by_label: dict[str, ScanProgress]
    rescanned_files: int = 0
    candidates: int = 0


def chunked(
    files: list[FileRef], chunk_bytes: int = CHUNK_BYTES, chunk_files: int = CHUNK_FILES
) -> Iterator[tuple[FileRef, ...]]:
    """Group files in order into chunks of bounded size, so both workers stay busy and memory stays flat."""
    batch: list[FileRef] = []
    size = 0
    for ref in files:
        batch.append(ref)
        size += ref.size
        if size >= chunk_bytes or len(batch) >= chunk_files:
            yield tuple(batch)
            batch, size = [], 0
    if batch:
        yield tuple(batch)


def record_key(record: dict[str, Any]) -> str:
    """Identity of a record for de-duplication across rescans and overlapping sources."""
    event_id = record.get("eventID")
    if isinstance(event_id, str) and event_id:
        return event_id
    return f"{record.get('eventTime')}|{record.get('eventName')}|{record.get('requestID')}"


class Chainer:
    """Keeps the growing principal set, the records found, and when each chained credential was issued."""

    def __init__(self, principals: PrincipalSet) -> None:
        self.principals = principals
        self.issued_at: dict[str, datetime | None] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.found_in: dict[str, str] = {}

    def add(self, records: Iterable[dict[str, Any]], found_in: str) -> bool:
        """Fold matching records in; True when they chained into new credentials.

        Only the records new to the chain are looked at: every stored record matched a set that the
        current one contains, and a record's credentials, once in the set, can never chain again, so
        the older records have nothing left to give. (Re-walking all of them for each file made the
        parent process the bottleneck of a large hunt.)
        """
        fresh: list[dict[str, Any]] = []
        for record in records:
            key = record_key(record)
            if key not in self.records:
                self.records[key] = record
                self.found_in[key] = found_in
                fresh.append(record)
        grew = False
        for record in fresh:
            issued = self.principals.issued_by(record)
            if issued is None:
                continue
            when = parse_event_time(record.get("eventTime"))
            for value in issued.values():
                self._note_issued(value, when)
            self.principals = self.principals.union(issued)
            grew = True
        return grew

    def _note_issued(self, value: str, when: datetime | None) -> None:
        """Keep the earliest time a credential was handed out; an unknown time counts as earliest."""
        if value not in self.issued_at:
            self.issued_at[value] = when
            return
        known = self.issued_at[value]
        if known is not None and (when is None or when < known):
            self.issued_at[value] = when

    def new_tokens_for(self, ref: FileRef, seen: PrincipalSet) -> tuple[bytes, ...]:
        """Tokens added since `seen` that could appear in this file, judged by its delivery time."""
        known = set(seen.values())
        fresh = [v for v in self.principals.values() if v not in known]
        if ref.delivered is not None:
            horizon = ref.delivered + ISSUE_SLACK
            fresh = [v for v in fresh if _issued_before(self.issued_at.get(v), horizon)]
        return tokens_for(fresh)


def _issued_before(issued: datetime | None, horizon: datetime) -> bool:
    return issued is None or issued <= horizon


_Planned = tuple[tuple[FileRef, ...], tuple[bytes, ...] | None, PrincipalSet | None]
"""Files to scan, the tokens to look for (None: all of the set's) and the set those tokens came from."""


class Scanner:
    """Runs scan jobs inline or on a process pool and drives the fixed point."""

    def __init__(
        self,
        window: TimeWindow,
        *,
        workers: int = 2,
        access: AwsAccess | None = None,
        inline_below_bytes: int = 8 * 1024 * 1024,
        engine: str = "auto",
        count_events: bool = False,
        on_progress: Callable[[ScanProgress], None] | None = None,
    ) -> None:
        """`count_events`: count every record read, at the price of one more pass over every byte (about
        12% of the scan's speed); without it bytes and files are totalled, which coverage is judged by.
        """
        self.window = window
        self.workers = max(1, workers)
        self.access = access
        self.inline_below_bytes = inline_below_bytes
        self.engine = engine
        self.count_events = count_events
        self.on_progress = on_progress
        self.progress = ScanProgress()
        self.by_label: dict[str, ScanProgress] = {}
        self.labels: dict[str, str] = {}

    def run(
        self, files: list[FileRef], principals: PrincipalSet, labels: dict[str, str] | None = None
    ) -> ScanReport:
        """Scan every file; returns the attacker's records (with the file each came from), chains included.

        `labels` maps a file location to the source it was listed from, for per-source totals.
        """
        self.labels = labels or {}
        ordered = sorted(files, key=lambda f: (f.delivered is None, f.delivered or datetime.min, f.location))
        chainer = Chainer(principals)
        seen_with: dict[str, PrincipalSet] = {}
        skipped: dict[str, FileOutcome] = {}
        candidates = 0
        inline = self.workers == 1 or sum(f.size for f in ordered) < self.inline_below_bytes
        pool = None if inline else ProcessPoolExecutor(self.workers, mp_context=_start_context())
        try:
            jobs = ((chunk, None, None) for chunk in chunked(ordered))
            candidates += self._pump(pool, jobs, chainer, seen_with, skipped, count=True)
            rescanned = 0
            by_location = {f.location: f for f in ordered}
            for _round in range(MAX_ROUNDS):
                todo = self._rescan_plan(by_location, chainer, seen_with, skipped)
                if not todo:
                    break
                rescanned += sum(len(files) for files, _tokens, _set in todo)
                candidates += self._pump(pool, iter(todo), chainer, seen_with, skipped, count=False)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        keys = sorted(chainer.records, key=lambda k: str(chainer.records[k].get("eventTime", "")))
        records = [(chainer.records[k], chainer.found_in[k]) for k in keys]
        return ScanReport(
            records,
            chainer.principals,
            list(skipped.values()),
            self.progress,
            self.by_label,
            rescanned,
            candidates,
        )

    def _rescan_plan(
        self,
        by_location: dict[str, FileRef],
        chainer: Chainer,
        seen_with: dict[str, PrincipalSet],
        skipped: dict[str, FileOutcome],
    ) -> list[_Planned]:
        by_tokens: dict[tuple[bytes, ...], list[FileRef]] = {}
        for location, seen in seen_with.items():
            if seen is chainer.principals or location in skipped:
                continue
            tokens = chainer.new_tokens_for(by_location[location], seen)
            if tokens:
                by_tokens.setdefault(tokens, []).append(by_location[location])
            else:
                seen_with[location] = chainer.principals
        return [
            (chunk, tokens, chainer.principals)
            for tokens, files in by_tokens.items()
            for chunk in chunked(files)
        ]

    def _job(
        self,
        files: tuple[FileRef, ...],
        principals: PrincipalSet,
        tokens: tuple[bytes, ...] | None,
        count: bool,
    ) -> ScanJob:
        matcher = TokenMatcher(tokens if tokens is not None else principals.tokens(), engine=self.engine)
        return ScanJob(files, principals, matcher, self.window, self.access, count and self.count_events)

    def _pump(
        self,
        pool: ProcessPoolExecutor | None,
        jobs: Iterator[_Planned],
        chainer: Chainer,
        seen_with: dict[str, PrincipalSet],
        skipped: dict[str, FileOutcome],
        *,
        count: bool,
    ) -> int:
        """Feed jobs (at most two per worker in flight) and fold each result into the chain as it lands."""
        candidates = 0
        in_flight: list[tuple[Future[list[FileOutcome]], PrincipalSet]] = []

        def fold(outcomes: list[FileOutcome], used: PrincipalSet) -> None:
            nonlocal candidates
            for outcome in outcomes:
                seen_with[outcome.location] = used
                candidates += outcome.candidate
                if outcome.error:
                    skipped[outcome.location] = outcome
                if count:
                    self._advance(outcome)
                chainer.add(outcome.matched, outcome.location)
            if count and self.on_progress:
                self.on_progress(self.progress)

        for files, tokens, snapshot in jobs:
            used = snapshot or chainer.principals  # the set the tokens were computed from
            job = self._job(files, used, tokens, count)
            if pool is None:
                fold(scan_job(job), used)
                continue
            in_flight.append((pool.submit(scan_job, job), used))
            while len(in_flight) >= 2 * self.workers:
                oldest, oldest_set = in_flight.pop(0)
                fold(oldest.result(), oldest_set)
        for future, future_set in in_flight:
            fold(future.result(), future_set)
        return candidates

    def _advance(self, outcome: FileOutcome) -> None:
        label = self.labels.get(outcome.location, "")
        for totals in (self.progress, self.by_label.setdefault(label, ScanProgress())):
            totals.files += 1
            totals.bytes_read += outcome.bytes_read
            totals.bytes_inflated += outcome.bytes_inflated
            totals.events += outcome.events
            totals.matched += len(outcome.matched)

"""The local CloudTrail engine: inflate, pre-filter, parse only what may match, on both cores, to a fixed
point.

Per file (`filescan`): libdeflate inflates it, `TokenMatcher` rejects it unless a principal token occurs,
and only then orjson parses the records around the hits (`locate`) and `PrincipalSet.match` keeps the
attacker's. Files are scanned in delivery-time order, in chunks, by processes that take the next chunk
themselves (`workers`).

Role chaining makes the set grow mid-scan (an AssumeRole by the attacker hands out an ASIA key whose
calls sit in files that hold none of the original tokens). The grown set is published to the workers at
once, and every file remembers the set it was checked against; when the scan ends, files checked against
an older set (those in progress when the chain was found) are checked again for the new tokens only,
limited to files delivered after the credential was issued, until nothing new appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eksir.hunt.filescan import FileOutcome
from eksir.hunt.prefilter import TokenMatcher
from eksir.hunt.principals import PrincipalSet, tokens_for
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import FileRef
from eksir.hunt.window import TimeWindow, parse_event_time
from eksir.hunt.workers import Matchers, Planned, ScanSettings, run_chunks, scan_planned

CHUNK_BYTES = 8 * 1024 * 1024
CHUNK_FILES = 16
ISSUE_SLACK = timedelta(minutes=15)
MAX_ROUNDS = 16


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


class Scanner:
    """Runs the chunks here or on the scan processes (`workers`) and drives the fixed point."""

    def __init__(
        self,
        window: TimeWindow,
        *,
        workers: int = 2,
        access: AwsAccess | None = None,
        inline_below_bytes: int = 1024 * 1024,
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
        TokenMatcher(principals.tokens(), engine=self.engine)  # an engine that is not installed fails here
        ordered = sorted(files, key=lambda f: (f.delivered is None, f.delivered or datetime.min, f.location))
        chainer = Chainer(principals)
        seen_with: dict[str, PrincipalSet] = {}
        skipped: dict[str, FileOutcome] = {}
        candidates = 0
        first = [Planned(chunk) for chunk in chunked(ordered)]
        candidates += self._pump(first, chainer, seen_with, skipped, count=True)
        rescanned = 0
        by_location = {f.location: f for f in ordered}
        for _round in range(MAX_ROUNDS):
            todo = self._rescan_plan(by_location, chainer, seen_with, skipped)
            if not todo:
                break
            rescanned += sum(len(chunk.files) for chunk in todo)
            candidates += self._pump(todo, chainer, seen_with, skipped, count=False)
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
    ) -> list[Planned]:
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
            Planned(chunk, tokens, chainer.principals)
            for tokens, files in by_tokens.items()
            for chunk in chunked(files)
        ]

    def _pump(
        self,
        plan: Sequence[Planned],
        chainer: Chainer,
        seen_with: dict[str, PrincipalSet],
        skipped: dict[str, FileOutcome],
        *,
        count: bool,
    ) -> int:
        """Scan `plan` (on the workers, or here when it is small) and fold each chunk's result as it lands."""
        candidates = 0

        def fold(outcomes: list[FileOutcome], used: PrincipalSet) -> PrincipalSet:
            nonlocal candidates
            for outcome in outcomes:
                seen_with[outcome.location] = used
                candidates += outcome.candidate
                if outcome.error:
                    skipped[outcome.location] = outcome
                self._advance(outcome, first_look=count)
                chainer.add(outcome.matched, outcome.location)
            if self.on_progress:
                self.on_progress(self.progress)
            return chainer.principals

        settings = ScanSettings(self.window, self.access, self.engine, self.count_events)
        size = sum(ref.size for chunk in plan for ref in chunk.files)
        if self.workers == 1 or size < self.inline_below_bytes:
            matchers = Matchers(self.engine)
            for chunk in plan:
                used = chainer.principals if chunk.principals is None else chunk.principals
                fold(scan_planned(chunk, used, settings, matchers), used)
        else:
            run_chunks(plan, workers=self.workers, initial=chainer.principals, settings=settings, fold=fold)
        return candidates

    def _advance(self, outcome: FileOutcome, *, first_look: bool) -> None:
        """Add a file to the totals; a rescan adds only what it matched (its bytes were counted once)."""
        label = self.labels.get(outcome.location, "")
        for totals in (self.progress, self.by_label.setdefault(label, ScanProgress())):
            totals.matched += len(outcome.matched)
            if first_look:
                totals.files += 1
                totals.bytes_read += outcome.bytes_read
                totals.bytes_inflated += outcome.bytes_inflated
                totals.events += outcome.events

"""Read a case record for reporting: case.json, the event log, documents and evidence, each hash-checked.

Why the report reads through here and nowhere else: a report is evidence about the incident, so every
input it uses must be what the case logged. A document whose bytes no longer match the sha256 in its last
`document.written` event is refused (CaseInvalidError), as is a broken event chain. Files other engineers'
components write without logging them (e.g. a plan-state file) are read but flagged as unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from eksir.errors import CaseInvalidError
from eksir.models.case import Case, CaseEvent, EvidenceItem
from eksir.store.atomic import sha256_bytes, sha256_file
from eksir.store.case_store import CASE_FILE, CaseHandle

REPORT_KIND = "report"
REPORT_FILES = {"md": "report.md", "html": "report.html", "json": "report.json"}


@dataclass(frozen=True)
class DocumentRef:
    """The last logged version of a document: its path, hash, kind and when it was written."""

    path: str
    sha256: str
    kind: str
    seq: int


@dataclass
class CaseRecord:
    """Everything the case holds, loaded once and checked against the log."""

    path: Path
    case: Case
    events: list[CaseEvent]
    documents: dict[str, DocumentRef]
    unverified: list[str] = field(default_factory=list)

    def evidence_item(self, name_suffix: str) -> EvidenceItem | None:
        """The newest evidence item whose name ends with `name_suffix` (e.g. `hunt.json`)."""
        for item in reversed(self.case.evidence):
            if item.name.endswith(name_suffix):
                return item
        return None

    def read_bytes(self, relative: str) -> bytes | None:
        """A logged document or evidence file, verified against its logged hash; None when absent."""
        expected = self._logged_hash(relative)
        path = self.path / relative
        if expected is None:
            return None
        if not path.is_file():
            raise CaseInvalidError(f"{relative} is logged in the case but missing")
        if sha256_file(path) != expected:
            raise CaseInvalidError(f"{relative} was altered after it was logged; run `eksir case verify`")
        return path.read_bytes()

    def read_json(self, relative: str) -> Any:
        """A logged JSON document (None when absent); raises CaseInvalidError when unparseable."""
        data = self.read_bytes(relative)
        if data is None:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CaseInvalidError(f"{relative} in the case is not valid JSON") from exc

    def read_unlogged_json(self, relative: str) -> Any:
        """A JSON file some component writes without logging (flagged unverified); None when absent/bad."""
        if self._logged_hash(relative) is not None:
            return self.read_json(relative)
        path = self.path / relative
        if not path.is_file():
            return None
        self.unverified.append(relative)
        try:
            return orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None

    def _logged_hash(self, relative: str) -> str | None:
        if relative in self.documents:
            return self.documents[relative].sha256
        for item in self.case.evidence:
            if item.path == relative:
                return item.sha256
        return None

    def events_of(self, *prefixes: str) -> list[CaseEvent]:
        return [e for e in self.events if e.type.startswith(prefixes)]

    def hunt(self) -> dict[str, Any] | None:
        """The newest hunt result: the `hunt.json` document, else evidence named `*hunt.json`."""
        candidates: list[tuple[int, str]] = []
        if "hunt.json" in self.documents:
            candidates.append((self.documents["hunt.json"].seq, "hunt.json"))
        item = self.evidence_item("hunt.json")
        if item is not None:
            seq = max((e.seq for e in self.events if e.data.get("path") == item.path), default=0)
            candidates.append((seq, item.path))
        if not candidates:
            return None
        value = self.read_json(max(candidates)[1])
        return value if isinstance(value, dict) else None


def load_record(handle: CaseHandle) -> CaseRecord:
    """Load and check the case; raises CaseInvalidError when the event chain is broken or case.json is not
    the version last logged."""
    problems = handle.log.verify()
    if problems:
        first = problems[0]
        raise CaseInvalidError(
            f"{handle.path}: events.jsonl line {first.line}: {first.message}; run `eksir case verify`"
        )
    events = list(handle.log.events())
    case = _checked_case(handle, events)
    documents: dict[str, DocumentRef] = {}
    for event in events:
        if event.type == "document.written" and "path" in event.data:
            ref = DocumentRef(
                str(event.data["path"]), str(event.data.get("sha256")), str(event.data.get("kind")), event.seq
            )
            documents[ref.path] = ref
    return CaseRecord(handle.path, case, events, documents)


def _checked_case(handle: CaseHandle, events: list[CaseEvent]) -> Case:
    """case.json, parsed from the very bytes whose sha256 matched its last `case.written` event.

    The header carries the verdict and status the report states first; a hand-edited verdict must be refused
    like any other altered document, not reported.
    """
    logged = [str(e.data.get("sha256")) for e in events if e.type == "case.written"]
    try:
        data = (handle.path / CASE_FILE).read_bytes()
    except OSError as exc:
        raise CaseInvalidError(f"{handle.path} has no readable {CASE_FILE}: not a case directory") from exc
    if not logged or sha256_bytes(data) != logged[-1]:
        raise CaseInvalidError(f"{CASE_FILE} was altered after it was logged; run `eksir case verify`")
    try:
        return Case.model_validate(orjson.loads(data))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise CaseInvalidError(f"{handle.path / CASE_FILE} is not a valid case record") from exc


def report_written_after(record: CaseRecord) -> int | None:
    """The sequence number of the newest report document, or None when no report was written."""
    seqs = [ref.seq for ref in record.documents.values() if ref.kind.startswith(REPORT_KIND)]
    return max(seqs) if seqs else None

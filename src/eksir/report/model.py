"""The report as data: one structure rendered three ways (Markdown, HTML, JSON).

Why a model between the case record and the renderers: every fact appears once, computed once, so the
three formats cannot disagree, and `report.json` is a stable contract for tools (`schema` is versioned,
fields are only added). Times are timezone-aware UTC datetimes; renderers format them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

REPORT_SCHEMA = "eksir.report/v1"


class Lane(StrEnum):
    """Timeline lanes: who or what the entry is about (one row each in the SVG chart)."""

    ATTACKER = "attacker"
    DETECTION = "detection"
    RESPONSE = "response"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    lane: Lane
    title: str
    detail: str = ""
    actor: str = ""
    source: str = ""
    status: str = ""
    """A step's latest status (one timeline row per step); empty for other entries."""
    history: tuple[str, ...] = ()
    """A step's transitions, oldest first, folded under its row."""


@dataclass(frozen=True)
class StepRow:
    """One response step as the case's step events describe it (latest status wins)."""

    step_id: str
    action_id: str
    phase: str
    status: str
    approver: str | None = None
    applied_at: datetime | None = None
    verified_at: datetime | None = None
    detail: str = ""
    before: Any = None
    after: Any = None
    history: tuple[tuple[datetime, str], ...] = ()
    declined_by: str | None = None
    """Who declined the step at its approval gate (it stays `skipped` until approved on a later run)."""


@dataclass(frozen=True)
class Metric:
    name: str
    seconds: float | None
    text: str
    basis: str


@dataclass(frozen=True)
class EvidenceRow:
    number: int
    name: str
    path: str
    sha256: str
    size: int
    collected_at: datetime
    collected_by: str
    source: str
    description: str
    custody: tuple[str, ...] = ()
    sensitive: str | None = None
    """Why the item holds secrets (process environments, Secret values), or None."""


@dataclass(frozen=True)
class HuntCategory:
    category: str
    count: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class HuntAccount:
    """The attacker's calls in one account (an organisation-wide hunt spans several)."""

    account: str
    count: int
    regions: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class OwnerRow:
    owner: str
    applications: tuple[str, ...]
    resources: tuple[str, ...]
    events: int
    notified: bool


@dataclass(frozen=True)
class Lesson:
    topic: str
    finding: str
    recommendation: str


@dataclass(frozen=True)
class ImpactItem:
    """One attacker call a page-1 reader must know about, in words, and what became of it."""

    at: str
    call: str
    target: str
    principal: str
    outcome: str = ""


@dataclass
class Briefing:
    """The page-1 facts; each list is bounded (briefing.ITEM_LIMIT) with the remainder counted in `more`."""

    data_read: list[ImpactItem] = field(default_factory=list)
    persistence: list[ImpactItem] = field(default_factory=list)
    logging_tampered: list[ImpactItem] = field(default_factory=list)
    containment: list[str] = field(default_factory=list)
    open_risks: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    more: dict[str, int] = field(default_factory=dict)
    hunted: bool = False
    headline: list[str] = field(default_factory=list)
    """The summary without what page 1's own sections say (impact, steps needing attention): the printed
    page 1 leads with it and must fit one page."""


@dataclass(frozen=True)
class SignedHead:
    """One signed chain head as the case recorded it."""

    at: str
    phase: str
    seq: int
    head: str
    key_fingerprint: str
    signature_valid: bool
    published_to: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class ExportRow:
    at: str
    archive: str
    manifest_sha256: str
    key_fingerprint: str
    chain_head: str


@dataclass
class Custody:
    """The record's custody: its head when the report was built, the signed heads and the signed exports."""

    head_seq: int | None = None
    head_hash: str = ""
    events: int = 0
    signed_heads: list[SignedHead] = field(default_factory=list)
    exports: list[ExportRow] = field(default_factory=list)


@dataclass
class Report:
    case_id: str
    generated_at: datetime
    status: str
    verdict: str | None
    title: str
    summary: list[str]
    finding: dict[str, Any]
    actor: dict[str, Any]
    timeline: list[TimelineEntry]
    steps: list[StepRow]
    hunt_categories: list[HuntCategory]
    hunt_total: int | None
    owners: list[OwnerRow]
    evidence: list[EvidenceRow]
    metrics: list[Metric]
    lessons: list[Lesson]
    prevention: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    briefing: Briefing = field(default_factory=Briefing)
    custody: Custody = field(default_factory=Custody)
    hunt_accounts: list[HuntAccount] = field(default_factory=list)

    def steps_in(self, *phases: str) -> list[StepRow]:
        return [s for s in self.steps if s.phase in phases]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (ISO-8601 UTC strings for times) with the schema marker first."""
        return {"schema": REPORT_SCHEMA, **_jsonable(asdict(self))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, the way AWS writes times."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def utc_text(value: datetime | None) -> str:
    """`2026-11-20 10:30:00Z`, or `n/a` — the format every human-facing table uses."""
    return "n/a" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")

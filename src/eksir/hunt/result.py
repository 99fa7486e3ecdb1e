"""What a hunt found, as one JSON-serialisable record the case keeps as evidence.

Everything a reviewer needs to trust or repeat the hunt is in it: each call with its category and the
rule that gave it, the resources and owners it touched, every source read (with byte and record counts),
every file that could not be read and why, and the exact queries that were generated or run.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Origin(StrEnum):
    """Which log an event came from."""

    CLOUDTRAIL = "cloudtrail"
    KUBERNETES = "kubernetes"


class ResourceRef(_Model):
    """A resource a call touched, with who owns it when tags or the CMDB say."""

    arn: str
    application: str | None = None
    owner: str | None = None
    team: str | None = None
    owner_source: str | None = None


class HuntEvent(_Model):
    """One call by a hunted principal, classified."""

    origin: Origin
    event_time: datetime | None
    event_id: str | None = None
    service: str | None = None
    action: str | None = None
    principal: str | None = None
    access_key_id: str | None = None
    matched_on: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    region: str | None = None
    account_id: str | None = None
    category: str
    rule_id: str
    tags: list[str] = Field(default_factory=list)
    failed: bool = False
    error_code: str | None = None
    resources: list[ResourceRef] = Field(default_factory=list)
    found_in: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def owners(self) -> list[str]:
        """Distinct owners of the resources touched."""
        return sorted({r.owner for r in self.resources if r.owner})


class SourceStat(_Model):
    """One source that was read, and how much."""

    name: str
    kind: str
    files: int = 0
    bytes_read: int = 0
    bytes_scanned: int = 0
    events_scanned: int | None = None
    """Records read; None when they were not counted (local files are counted only on request)."""
    events_matched: int = 0
    seconds: float = 0.0


class SkippedInput(_Model):
    """A file or object that could not be (fully) read; the hunt carried on without it."""

    name: str
    reason: str


class GeneratedQuery(_Model):
    """A query the hunt built, and whether and where it ran."""

    kind: str
    text: str
    executed: bool = False
    execution_id: str | None = None
    note: str | None = None
    round: int | None = None
    """Athena hunt round (1 = the principals given; later rounds: the sessions earlier rounds issued)."""
    bytes_scanned: int | None = None
    """Bytes the engine reported scanned (Athena's DataScannedInBytes; moto always reports 0)."""
    rows: int | None = None


class OwnerNotice(_Model):
    """Someone to tell: an owner, their applications and how many calls touched their resources."""

    owner: str
    applications: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    events: int = 0


class AccountActivity(_Model):
    """What the hunted principals did in one account (an org trail's hunt spans many)."""

    account_id: str
    events: int = 0
    failed: int = 0
    by_category: dict[str, int] = Field(default_factory=dict)
    regions: list[str] = Field(default_factory=list)
    principals: list[str] = Field(default_factory=list)


class HuntResult(_Model):
    """The whole hunt."""

    since: datetime
    until: datetime
    principals: list[str]
    chained_principals: list[str] = Field(default_factory=list)
    events: list[HuntEvent] = Field(default_factory=list)
    sources: list[SourceStat] = Field(default_factory=list)
    skipped: list[SkippedInput] = Field(default_factory=list)
    queries: list[GeneratedQuery] = Field(default_factory=list)
    owners: list[OwnerNotice] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    athena_estimate: dict[str, Any] | None = None
    """Partitions, bytes and price of the Athena hunt, computed before it ran (`hunt.cost`)."""
    accounts: list[AccountActivity] = Field(default_factory=list)
    """The events grouped by the account they happened in (`recipientAccountId`), busiest first."""

    def to_json(self) -> str:
        """Stable JSON for the case store (raw records included: they are the evidence)."""
        return self.model_dump_json(indent=2)

    def group_by_account(self) -> list[AccountActivity]:
        """The CloudTrail events per account (Kubernetes events have none and are not grouped)."""
        groups: dict[str, AccountActivity] = {}
        for event in self.events:
            if not event.account_id:
                continue
            group = groups.setdefault(event.account_id, AccountActivity(account_id=event.account_id))
            group.events += 1
            group.failed += event.failed
            group.by_category[event.category] = group.by_category.get(event.category, 0) + 1
            group.regions = sorted({*group.regions, *([event.region] if event.region else [])})
            group.principals = sorted({*group.principals, *([event.principal] if event.principal else [])})
        return sorted(groups.values(), key=lambda g: (-g.events, g.account_id))

    def counts_by_category(self) -> dict[str, int]:
        """How many events fell in each category, for the summary line."""
        counts: dict[str, int] = {}
        for event in self.events:
            counts[event.category] = counts.get(event.category, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

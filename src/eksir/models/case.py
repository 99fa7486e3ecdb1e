"""Case record models: the case header, its append-only events, and evidence items with custody.

The case bundle is the single source of truth for an incident: the report is built only from it, and a run
that dies halfway resumes from it. Models are frozen so that a loaded record cannot be altered in memory by
accident before it is written back through the store.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

CASE_SCHEMA_VERSION = 1


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class EvidenceItem(BaseModel):
    """One collected artefact: where it is in the bundle, its hash at collection, and who collected it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    name: str
    path: str
    sha256: str
    size: int
    collected_at: datetime
    collected_by: str
    source: str
    description: str = ""
    media_type: str = "application/octet-stream"


class CaseEvent(BaseModel):
    """One line of `events.jsonl`; `hash` covers every other field and the previous event's hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    at: datetime
    actor: str
    type: str
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str
    fence: int | None = None
    """The writer's lease token on a shared (S3) store: every event a lease holder writes carries it, so a
    stale holder's write is visible. Absent (and not hashed) everywhere else, so events written before it
    existed keep their hashes."""

    @model_serializer(mode="wrap")
    def _without_absent_fence(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An event without a lease token serialises exactly as before the field existed."""
        body: dict[str, Any] = handler(self)
        if body.get("fence") is None:
            body.pop("fence", None)
        return body


class Case(BaseModel):
    """The header of a case, kept in `case.json`; rewritten atomically, its hash logged as an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = CASE_SCHEMA_VERSION
    id: str
    status: CaseStatus = CaseStatus.OPEN
    opened_at: datetime
    opened_by: str
    finding_id: str
    finding_arn: str | None = None
    finding_type: str
    cluster_name: str | None = None
    account_id: str | None = None
    region: str | None = None
    title: str = ""
    verdict: str | None = None
    evidence: tuple[EvidenceItem, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

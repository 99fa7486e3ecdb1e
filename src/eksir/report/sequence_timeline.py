"""An attack sequence's signals on the report's timeline (attacker lane), from the case's finding only.

GuardDuty correlated these signals (earlier findings, audit-log and CloudTrail events, runtime events) into
the sequence; each is placed at its first sighting, with its type, name and the resources it names, so the
review sees the attack's steps beside the hunt's calls and the response. Text is the finding's: rendered
escaped by the views like every other timeline entry.
"""

from __future__ import annotations

from pydantic import ValidationError

from eksir.models.finding import Finding
from eksir.report.model import Lane, TimelineEntry
from eksir.report.steps import aware
from eksir.store.record import CaseRecord

JOINED_FINDING_KIND = "joined-normalised-finding"  # as triage/joined.py writes it

_MAX_NAMED = 5


def sequence_entries(finding: Finding | None) -> list[TimelineEntry]:
    """One attacker-lane entry per signal with a time (none for a finding without a sequence)."""
    sequence = finding.sequence if finding is not None else None
    if sequence is None:
        return []
    entries = []
    for signal in sequence.signals:
        at = signal.first_seen or signal.last_seen
        if at is None:
            continue
        named = ", ".join(signal.resource_uids[:_MAX_NAMED])
        more = (
            f" (+{len(signal.resource_uids) - _MAX_NAMED})" if len(signal.resource_uids) > _MAX_NAMED else ""
        )
        count = f", seen {signal.count} times" if signal.count and signal.count > 1 else ""
        entries.append(
            TimelineEntry(
                aware(at),
                Lane.ATTACKER,
                f"Sequence signal ({signal.type or 'unknown'}): {signal.name or signal.uid}",
                f"{signal.description or ''} resources: {named or 'none named'}{more}{count}".strip(),
                ", ".join(signal.actor_ids[:_MAX_NAMED]),
                f"attack sequence {sequence.uid}",
            )
        )
    return entries


def joined_findings(record: CaseRecord) -> list[Finding]:
    """The findings that joined the case after it opened (their normalised documents, hash-checked)."""
    paths = [
        str(e.data.get("path"))
        for e in record.events
        if e.type == "document.written" and e.data.get("kind") == JOINED_FINDING_KIND
    ]
    found = []
    for path in dict.fromkeys(paths):
        try:
            found.append(Finding.model_validate(record.read_json(path)))
        except ValidationError:
            record.unverified.append(f"{path} (unexpected shape; left off the timeline)")
    return found

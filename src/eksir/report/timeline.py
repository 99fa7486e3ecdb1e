"""The incident timeline (UTC) and the response metrics derived from it.

Why one merged timeline: the question every review asks is "how long was the attacker active before we saw
them, and before we stopped them". Attacker activity comes from the finding (eventFirstSeen/eventLastSeen)
and the hunt's classified calls; detection from the finding's createdAt; the response from the case's own
events (every eksir step with its approver). Metrics are measured from the first attacker event and are
`unknown` (with the reason) whenever a bound is unknown, never guessed and never `0m 0s`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eksir.models.case import CaseEvent
from eksir.models.finding import Finding
from eksir.report.model import Lane, Metric, StepRow, TimelineEntry
from eksir.report.steps import STEP_PREFIX, aware, flatten

RESPONSE_EVENT_TITLES = {
    "case.opened": "Case opened",
    "case.joined": "Another finding joined the case (it names a workload of this case)",
    "triage.completed": "Triage completed",
    "case.closed": "Case closed",
    "case.exported": "Case exported",
    "finding.confirmed": "Finding confirmed with GuardDuty (GetFindings)",
    "finding.unconfirmed": "Finding NOT confirmed by GuardDuty: destructive steps blocked",
    "finding.trusted-as-given": "Finding file trusted without GuardDuty confirmation (--trust-finding-file)",
}
RESPONSE_PREFIXES = ("step.", "prevention.", "closeout.", "hunt.")
CONTAINMENT_PHASES = ("containment",)
RECOVERY_PHASES = ("recovery", "eradication")


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from an ISO-8601 string or datetime; None for anything else."""
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, str) and value:
        try:
            return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def attacker_entries(finding: Finding | None, hunt: dict[str, Any] | None) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    if finding is not None:
        who = (finding.actor.username if finding.actor else None) or ""
        call = finding.api_call
        what = f"{call.verb} {call.request_uri}" if call and call.verb else "privileged pod created"
        if finding.event_first_seen:
            entries.append(
                TimelineEntry(
                    aware(finding.event_first_seen),
                    Lane.ATTACKER,
                    f"First seen: {what}",
                    "",
                    who,
                    "finding eventFirstSeen",
                )
            )
        if finding.event_last_seen and finding.event_last_seen != finding.event_first_seen:
            entries.append(
                TimelineEntry(
                    aware(finding.event_last_seen),
                    Lane.ATTACKER,
                    "Last seen by GuardDuty",
                    "",
                    who,
                    "finding eventLastSeen",
                )
            )
    for event in (hunt or {}).get("events") or []:
        at = parse_time(event.get("event_time")) if isinstance(event, dict) else None
        if at is None:
            continue
        action = " ".join(str(p) for p in (event.get("service"), event.get("action")) if p)
        outcome = f" (failed: {event.get('error_code')})" if event.get("failed") else ""
        entries.append(
            TimelineEntry(
                at,
                Lane.ATTACKER,
                f"{action or 'call'}{outcome}",
                str(event.get("category", "")),
                str(event.get("principal") or ""),
                f"hunt ({event.get('origin', 'log')})",
            )
        )
    return entries


def detection_entries(finding: Finding | None) -> list[TimelineEntry]:
    if finding is None or finding.created_at is None:
        return []
    title = f"GuardDuty finding created: {finding.type}"
    detail = f"severity {finding.severity}" if finding.severity is not None else ""
    return [
        TimelineEntry(
            aware(finding.created_at), Lane.DETECTION, title, detail, "GuardDuty", "finding createdAt"
        )
    ]


def response_entries(events: list[CaseEvent], steps: dict[str, StepRow]) -> list[TimelineEntry]:
    """Case events in words, with one row per step (its latest transition) rather than one per transition."""
    entries: list[TimelineEntry] = []
    for event in events:
        if event.type in RESPONSE_EVENT_TITLES:
            title = RESPONSE_EVENT_TITLES[event.type]
            detail = str(event.data.get("decision") or event.data.get("reason") or "")
        elif event.type.startswith(RESPONSE_PREFIXES) and not event.type.startswith(STEP_PREFIX):
            title, detail = _describe(event)
        else:
            continue
        entries.append(
            TimelineEntry(aware(event.at), Lane.RESPONSE, title, detail, event.actor, "case event")
        )
    return entries + [_step_entry(row) for row in steps.values() if row.history]


def _step_entry(row: StepRow) -> TimelineEntry:
    """A step's row: when it last changed, what it is now, who approved; its transitions folded beneath."""
    at = row.history[-1][0]
    detail = f"approved by {row.approver}" if row.approver else ""
    return TimelineEntry(
        at,
        Lane.RESPONSE,
        f"Step {row.step_id} ({row.action_id}): {row.status}",
        detail,
        row.approver or "",
        "case events",
        status=row.status,
        history=tuple(f"{when:%Y-%m-%d %H:%M:%SZ} {status}" for when, status in row.history),
    )


def _describe(event: CaseEvent) -> tuple[str, str]:
    data = flatten(event.data)
    detail = str(data.get("detail") or data.get("summary") or data.get("status") or "")
    return event.type, detail


def merge(*groups: list[TimelineEntry]) -> list[TimelineEntry]:
    """All entries in time order; attacker before detection before response at the same instant."""
    order = {Lane.ATTACKER: 0, Lane.DETECTION: 1, Lane.RESPONSE: 2}
    return sorted((e for g in groups for e in g), key=lambda e: (e.at, order[e.lane]))


def _phase_done(steps: list[StepRow], phases: tuple[str, ...]) -> tuple[datetime | None, str]:
    """When the last step of these phases was verified; None (with why) if any is not verified."""
    chosen = [s for s in steps if s.phase in phases]
    if not chosen:
        return None, f"no {'/'.join(phases)} step in the case"
    unverified = [s.step_id for s in chosen if s.verified_at is None]
    if unverified:
        return None, f"not verified: {', '.join(unverified)}"
    return max(s.verified_at for s in chosen if s.verified_at is not None), "last step verified"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    total = round(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    parts += [f"{minutes}m", f"{secs}s"] if not days else [f"{minutes}m"]
    return sign + " ".join(parts)


UNKNOWN = "unknown"


def _measure(name: str, start: datetime | None, end: datetime | None, why: tuple[str, str]) -> Metric:
    """One duration, or `unknown` with the reason: a missing bound, or two bounds that are the same instant
    (a finding whose first-seen is its creation time measures nothing: never shown as `0m 0s`)."""
    if start is None:
        return Metric(name, None, UNKNOWN, why[0])
    if end is None:
        return Metric(name, None, UNKNOWN, why[1])
    if end == start:
        return Metric(name, None, UNKNOWN, "both ends carry the same time: no earlier event recorded")
    seconds = (end - start).total_seconds()
    return Metric(name, seconds, duration_text(seconds), why[1])


def metrics(first_attacker: datetime | None, detected: datetime | None, steps: list[StepRow]) -> list[Metric]:
    """Time from the first attacker event to the finding, to containment and to recovery; then from the
    finding's creation to containment and to recovery (what the responders controlled)."""
    contained, contained_basis = _phase_done(steps, CONTAINMENT_PHASES)
    recovered, recovered_basis = _phase_done(steps, RECOVERY_PHASES)
    no_attacker = "first attacker event unknown"
    no_finding = "finding createdAt unknown"
    detected_basis = "finding createdAt" if detected else no_finding
    to_recovery = (no_attacker, recovered_basis)
    return [
        _measure("first attacker event -> finding", first_attacker, detected, (no_attacker, detected_basis)),
        _measure(
            "first attacker event -> containment", first_attacker, contained, (no_attacker, contained_basis)
        ),
        _measure("first attacker event -> recovery", first_attacker, recovered, to_recovery),
        _measure("finding created -> containment", detected, contained, (no_finding, contained_basis)),
        _measure("finding created -> recovery", detected, recovered, (no_finding, recovered_basis)),
    ]

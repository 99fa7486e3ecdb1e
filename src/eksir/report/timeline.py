"""The incident timeline (UTC) and the response metrics derived from it.

Why one merged timeline: the question every review asks is "how long was the attacker active before we saw
them, and before we stopped them". Attacker activity comes from the finding (eventFirstSeen/eventLastSeen)
and the hunt's classified calls; detection from the finding's createdAt; the response from the case's own
events (every eksir step with its approver). Metrics are measured from the first attacker event and are
`n/a` whenever a bound is unknown, never guessed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eksir.models.case import CaseEvent
from eksir.models.finding import Finding
from eksir.report.model import Lane, Metric, StepRow, TimelineEntry
from eksir.report.steps import approver_of, aware, flatten

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
    entries: list[TimelineEntry] = []
    for event in events:
        if event.type in RESPONSE_EVENT_TITLES:
            title = RESPONSE_EVENT_TITLES[event.type]
            detail = str(event.data.get("decision") or event.data.get("reason") or "")
        elif event.type.startswith(RESPONSE_PREFIXES):
            title, detail = _describe(event, steps)
        else:
            continue
        entries.append(
            TimelineEntry(aware(event.at), Lane.RESPONSE, title, detail, event.actor, "case event")
        )
    return entries


def _describe(event: CaseEvent, steps: dict[str, StepRow]) -> tuple[str, str]:
    data = flatten(event.data)
    if event.type.startswith("step."):
        step_id = str(data.get("step_id") or data.get("step") or data.get("action_id") or "")
        row = steps.get(step_id)
        action = row.action_id if row else str(data.get("action_id") or "")
        approver = approver_of(data)
        detail = f"approved by {approver}" if approver else ""
        return f"{event.type}: {step_id} ({action})", detail
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


def metrics(first_attacker: datetime | None, detected: datetime | None, steps: list[StepRow]) -> list[Metric]:
    """Time from the first attacker event to the finding, to containment and to recovery."""
    contained, contained_basis = _phase_done(steps, CONTAINMENT_PHASES)
    recovered, recovered_basis = _phase_done(steps, RECOVERY_PHASES)
    detected_basis = "finding createdAt" if detected else "finding createdAt unknown"
    rows = []
    for name, end, basis in (
        ("first attacker event -> finding", detected, detected_basis),
        ("first attacker event -> containment", contained, contained_basis),
        ("first attacker event -> recovery", recovered, recovered_basis),
    ):
        if first_attacker is None:
            rows.append(Metric(name, None, "n/a", "first attacker event unknown"))
        elif end is None:
            rows.append(Metric(name, None, "n/a", basis))
        else:
            seconds = (end - first_attacker).total_seconds()
            rows.append(Metric(name, seconds, duration_text(seconds), basis))
    return rows

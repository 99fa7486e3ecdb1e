"""Render the report as Markdown: the format that goes into the ticket and the post-incident review doc.

Every value from the case is escaped with `eksir.safetext.md_escape` (pod names, images, user agents and
summaries are attacker-influenced): a hostile value cannot break the table layout, add a link or emphasis, or
carry raw HTML into the rendered review document.
"""

from __future__ import annotations

import json
from typing import Any

from eksir.report.model import ImpactItem, Report, StepRow, TimelineEntry, utc_text
from eksir.safetext import md_escape

TIMELINE_LIMIT = 200


def cell(value: Any) -> str:
    """One table cell or list item: the value as text, on one line, with no Markdown or HTML in effect."""
    return md_escape(value)


def state_text(value: Any, limit: int = 300) -> str:
    if value is None:
        return "n/a"
    text = json.dumps(value, sort_keys=True, default=str)
    return cell(text if len(text) <= limit else text[: limit - 1] + "…")


def status_text(step: StepRow, limit: int = 300) -> str:
    """The status; a step applied but not effective carries its reason (it must never read as done)."""
    if step.status != "not-effective":
        return step.status
    detail = step.detail if len(step.detail) <= limit else step.detail[: limit - 1] + "…"
    return f"NOT EFFECTIVE: {detail}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _steps(title: str, steps: list[StepRow]) -> list[str]:
    lines = ["", f"### {title}", ""]
    if not steps:
        return [*lines, "No steps recorded."]
    rows = [
        [
            s.step_id,
            s.action_id,
            status_text(s),
            s.approver or "n/a",
            utc_text(s.applied_at),
            utc_text(s.verified_at),
            s.detail,
        ]
        for s in steps
    ]
    return lines + _table(["step", "action", "status", "approver", "applied", "verified", "detail"], rows)


def _appendix(report: Report) -> list[str]:
    """The raw before/after state of each step: for the engineer, out of the way of the other readers."""
    out = ["", "## Appendix: step states (raw JSON)", ""]
    rows = [[s.step_id, state_text(s.before), state_text(s.after)] for s in report.steps]
    return out + (_table(["step", "before", "after"], rows) if rows else ["No steps recorded."])


def _items(title: str, items: list[ImpactItem], more: int, none: str) -> list[str]:
    out = ["", f"### {title}", ""]
    if not items:
        return [*out, none]
    out += _table(
        ["when (UTC)", "call", "what", "by", "outcome"],
        [[i.at, i.call, i.target, i.principal, i.outcome] for i in items],
    )
    return out + (["", f"{more} more in report.json."] if more else [])


def _briefing(report: Report) -> list[str]:
    """Page 1, for the CISO: what was taken, left behind, tampered with; containment, risks, approvals."""
    brief = report.briefing
    unhunted = "Unknown: no hunt in the case." if not brief.hunted else "None found by the hunt."
    out = ["", "## Impact", ""]
    out += _items("Data read", brief.data_read, brief.more.get("data_read", 0), unhunted)
    out += _items("Persistence created", brief.persistence, brief.more.get("persistence", 0), unhunted)
    out += _items(
        "Logging tampered with", brief.logging_tampered, brief.more.get("logging_tampered", 0), unhunted
    )
    for title, lines in (
        ("Containment now", brief.containment),
        ("Open risks and worklist", brief.open_risks or ["None recorded."]),
        ("Who approved what", brief.approvals),
    ):
        out += ["", f"## {title}", ""] + [f"- {md_escape(line, starts_line=True)}" for line in lines]
    return out


def _custody(report: Report) -> list[str]:
    """Page 2, for legal: the record's head, every signed head and where it was published, signed exports."""
    custody = report.custody
    out = ["", "## Chain of custody", ""]
    out.append(
        f"The case's event log holds {custody.events} hash-chained events; its head when this report was "
        f"built: event {custody.head_seq}, sha256 {cell(custody.head_hash)}."
    )
    out += ["", "### Signed chain heads", ""]
    out += (
        _table(
            ["signed (UTC)", "phase", "event", "sha256", "key", "signature", "published to"],
            [
                [
                    s.at,
                    s.phase,
                    s.seq,
                    s.head,
                    s.key_fingerprint,
                    "valid" if s.signature_valid else "INVALID",
                    "; ".join(s.published_to) or "not published outside the case",
                ]
                for s in custody.signed_heads
            ],
        )
        if custody.signed_heads
        else ["No chain head was signed (the case is not anchored)."]
    )
    if custody.exports:
        out += ["", "### Signed exports", ""]
        out += _table(
            ["exported (UTC)", "archive", "manifest sha256", "key", "chain head"],
            [[e.at, e.archive, e.manifest_sha256, e.key_fingerprint, e.chain_head] for e in custody.exports],
        )
    return out


def render_markdown(report: Report) -> str:
    """Page 1 (summary, impact, containment, risks, approvals), page 2 (custody, evidence), then the rest."""
    out = [
        f"# Incident report: case {cell(report.case_id)}",
        "",
        f"Generated {utc_text(report.generated_at)} from the case record only. "
        f"Status **{cell(report.status)}**, verdict **{cell(report.verdict or 'n/a')}**.",
        "",
        "## Executive summary",
        "",
    ]
    out += [f"- {md_escape(line, starts_line=True)}" for line in report.summary]
    out += _briefing(report)
    out += _custody(report)
    out += _evidence(report)
    out += ["", "## Timeline (UTC)", ""]
    shown = report.timeline[:TIMELINE_LIMIT]
    out += _table(
        ["time (UTC)", "lane", "what", "detail", "who"],
        [[utc_text(e.at), e.lane.value, e.title, _with_history(e), e.actor] for e in shown],
    )
    if len(report.timeline) > len(shown):
        out += ["", f"{len(report.timeline) - len(shown)} more entries in report.json."]
    out += _finding(report)
    out += ["", "## Containment and recovery"]
    out += _steps("Evidence", report.steps_in("evidence"))
    out += _steps("Containment", report.steps_in("containment"))
    out += _steps("Eradication and recovery", report.steps_in("eradication", "recovery"))
    out += _steps("Post-incident", report.steps_in("post-incident", "unknown"))
    out += _hunt(report)
    out += ["", "## Metrics", ""]
    out += _table(["measure", "value", "basis"], [[m.name, m.text, m.basis] for m in report.metrics])
    out += ["", "## Lessons learned (pre-filled from the case; review and edit)", ""]
    for lesson in report.lessons:
        out += [
            f"- **{cell(lesson.topic)}**: {cell(lesson.finding)}",
            f"  - Recommendation: {cell(lesson.recommendation)}",
        ]
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {md_escape(n, starts_line=True)}" for n in report.notes]
    out += _appendix(report)
    return "\n".join(out) + "\n"


def _with_history(entry: TimelineEntry) -> str:
    """A step row's detail with its transitions folded into one cell."""
    return "; ".join(filter(None, (entry.detail, ", ".join(entry.history))))


def _finding(report: Report) -> list[str]:
    finding, actor = report.finding, report.actor
    workload = finding.get("workload") or {}
    rows = _table(
        ["field", "value"],
        [
            ["finding id", finding.get("id")],
            ["type", finding.get("type")],
            ["severity", finding.get("severity")],
            ["created", finding.get("created_at")],
            ["cluster", (finding.get("cluster") or {}).get("name")],
            ["pod", f"{workload.get('namespace')}/{workload.get('name')} (uid {workload.get('uid')})"],
            ["images", ", ".join(str(c.get("image")) for c in workload.get("containers") or [])],
            ["actor", f"{actor.get('kind')} {actor.get('username')}"],
            ["groups", ", ".join(actor.get("groups") or [])],
            ["access key", actor.get("access_key_id")],
            ["session", actor.get("session_name")],
            ["source IPs", ", ".join((finding.get("api_call") or {}).get("source_ips") or [])],
            ["user agent", (finding.get("api_call") or {}).get("user_agent")],
        ],
    )
    return ["", "## Finding and actor", "", *rows]


def _hunt(report: Report) -> list[str]:
    out = ["", "## Hunt results", ""]
    if report.hunt_total is None:
        return [*out, "No hunt result in the case."]
    out += [f"{report.hunt_total} call(s) by the attacker's principals.", ""]
    out += _table(
        ["category", "calls", "examples"],
        [[c.category, c.count, ", ".join(c.examples)] for c in report.hunt_categories],
    )
    if report.hunt_accounts:
        out += ["", "By account:", ""]
        out += _table(
            ["account", "calls", "regions", "categories"],
            [
                [a.account, a.count, ", ".join(a.regions), ", ".join(a.categories)]
                for a in report.hunt_accounts
            ],
        )
    out += ["", "Owners of touched resources:", ""]
    if not report.owners:
        return [*out, "None identified."]
    return out + _table(
        ["owner", "applications", "resources", "calls", "notified"],
        [
            [
                o.owner,
                ", ".join(o.applications),
                ", ".join(o.resources[:10]),
                o.events,
                "yes" if o.notified else "not recorded",
            ]
            for o in report.owners
        ],
    )


def _evidence(report: Report) -> list[str]:
    """The evidence manifest; items that hold secrets are counted above it and marked in their row."""
    out = ["", "## Evidence manifest", ""]
    sensitive = [e for e in report.evidence if e.sensitive]
    if sensitive:
        out += [
            f"**{len(sensitive)} item(s) hold secrets** (marked SENSITIVE below): handle, store and share "
            "them as credentials; rotate what they expose.",
            "",
        ]
    return out + _table(
        ["#", "name", "sha256", "size", "collected (UTC)", "by", "custody", "sensitive"],
        [
            [
                e.number,
                e.name,
                e.sha256,
                e.size,
                utc_text(e.collected_at),
                e.collected_by,
                "; ".join(e.custody),
                f"SENSITIVE: {e.sensitive}" if e.sensitive else "",
            ]
            for e in report.evidence
        ],
    )

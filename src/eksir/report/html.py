"""Render the report as one self-contained HTML page: inline CSS, an inline SVG timeline, no scripts.

Laid out for two readers before the engineer: page 1 for the executive (what happened, impact, containment,
open risks, approvals), page 2 for legal (custody, signed chain heads, evidence with hashes); then the
timeline (one row per step, its transitions folded), the steps, and the raw JSON states in an appendix. The
print CSS breaks pages there, keeps status words on one line and lets long values (ARNs, hashes) wrap
inside their cell rather than overflow it.

Why jinja2 with autoescaping: almost every value in the report (pod names, images, user agents, hunt
calls) is attacker-influenced, so escaping must be the default, not something each field remembers. The
page carries a Content-Security-Policy that forbids every external resource and all scripts, so even a
missed escape cannot load or run anything.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from eksir.report.markdown import TIMELINE_LIMIT
from eksir.report.model import Report, utc_text
from eksir.report.status import status_label, status_tone
from eksir.report.svg import timeline_svg

_STATE_LIMIT = 4000


def _state(value: Any) -> str:
    """A step's raw state for the appendix: indented JSON, bounded (a state can hold a whole manifest)."""
    if value is None:
        return "n/a"
    text = json.dumps(value, sort_keys=True, default=str, indent=1)
    return text if len(text) <= _STATE_LIMIT else text[: _STATE_LIMIT - 1] + "…"


def _time(value: datetime | None) -> str:
    return utc_text(value)


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("eksir.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=False,
    )


def _finding_rows(report: Report) -> list[tuple[str, Any]]:
    finding, actor = report.finding, report.actor
    workload = finding.get("workload") or {}
    call = finding.get("api_call") or {}
    return [
        ("finding id", finding.get("id")),
        ("type", finding.get("type")),
        ("severity", finding.get("severity")),
        ("created", finding.get("created_at")),
        ("cluster", (finding.get("cluster") or {}).get("name")),
        ("pod", f"{workload.get('namespace')}/{workload.get('name')} (uid {workload.get('uid')})"),
        ("images", ", ".join(str(c.get("image")) for c in workload.get("containers") or [])),
        ("actor", f"{actor.get('kind')} {actor.get('username')}"),
        ("groups", ", ".join(actor.get("groups") or [])),
        ("access key", actor.get("access_key_id")),
        ("session", actor.get("session_name")),
        ("source IPs", ", ".join(call.get("source_ips") or [])),
        ("user agent", call.get("user_agent")),
    ]


def render_html(report: Report) -> str:
    template = _environment().get_template("report.html.j2")
    shown = report.timeline[:TIMELINE_LIMIT]
    brief = report.briefing
    return template.render(
        r=report,
        b=brief,
        c=report.custody,
        t=_time,
        tone=status_tone,
        label=status_label,
        state=_state,
        impact=[
            ("Data read", "data_read", brief.data_read),
            ("Persistence created", "persistence", brief.persistence),
            ("Logging tampered with", "logging_tampered", brief.logging_tampered),
        ],
        sensitive=sum(1 for e in report.evidence if e.sensitive),
        raw_steps=[s for s in report.steps if s.before is not None or s.after is not None],
        svg=Markup(timeline_svg(shown)),
        timeline=shown,
        hidden=len(report.timeline) - len(shown),
        finding_rows=_finding_rows(report),
        step_groups=[
            ("Evidence", report.steps_in("evidence")),
            ("Containment", report.steps_in("containment")),
            ("Eradication and recovery", report.steps_in("eradication", "recovery")),
            ("Post-incident", report.steps_in("post-incident", "unknown")),
        ],
    )

"""The timeline as an inline SVG chart: one lane per actor (attacker, detection, response), time left to
right.

Why SVG built here and not a charting library: the HTML report must be one self-contained file that
renders offline without JavaScript; a few dozen shapes with `<title>` tooltips do that. Every label is
XML-escaped (pod names and user agents come from the attacker).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from eksir.report.model import Lane, TimelineEntry, utc_text

WIDTH = 1100
LANE_HEIGHT = 56
LEFT = 110
RIGHT = 30
TOP = 30
COLOURS = {Lane.ATTACKER: "#c0392b", Lane.DETECTION: "#d68910", Lane.RESPONSE: "#1f618d"}
TICKS = 6


def _x(at: datetime, start: datetime, span: float) -> float:
    return LEFT + (at - start).total_seconds() / span * (WIDTH - LEFT - RIGHT)


def timeline_svg(entries: list[TimelineEntry]) -> str:
    """An `<svg id="timeline-chart">` element (markup) for the entries, or an empty-state chart."""
    lanes = list(Lane)
    height = TOP + LANE_HEIGHT * len(lanes) + 40
    parts = [
        f'<svg id="timeline-chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" aria-label="Incident timeline (UTC)">',
        "<title>Incident timeline (UTC)</title>",
    ]
    for index, lane in enumerate(lanes):
        y = TOP + LANE_HEIGHT * index + LANE_HEIGHT / 2
        parts.append(
            f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#ccc" stroke-width="1"/>'
            f'<text x="8" y="{y + 4}" font-size="13" fill="{COLOURS[lane]}">{lane.value}</text>'
        )
    if not entries:
        parts.append(
            f'<text x="{LEFT}" y="{TOP - 10}" font-size="12">no timed events in the case</text></svg>'
        )
        return "".join(parts)
    start = min(e.at for e in entries)
    end = max(e.at for e in entries)
    if end - start < timedelta(seconds=1):
        end = start + timedelta(seconds=1)
    span = (end - start).total_seconds()
    axis_y = TOP + LANE_HEIGHT * len(lanes) + 5
    for tick in range(TICKS + 1):
        at = start + timedelta(seconds=span * tick / TICKS)
        x = _x(at, start, span)
        anchor = "start" if tick == 0 else "end" if tick == TICKS else "middle"
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{axis_y}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{axis_y + 16}" font-size="10" text-anchor="{anchor}">'
            f"{escape(at.strftime('%m-%d %H:%M:%SZ'))}</text>"
        )
    for entry in entries:
        x = _x(entry.at, start, span)
        y = TOP + LANE_HEIGHT * lanes.index(entry.lane) + LANE_HEIGHT / 2
        tip = escape(f"{utc_text(entry.at)} {entry.title} {entry.detail} {entry.actor}".strip())
        parts.append(
            f'<circle class="tl-{entry.lane.value}" cx="{x:.1f}" cy="{y}" r="6" fill="{COLOURS[entry.lane]}" '
            f'fill-opacity="0.75"><title>{tip}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)

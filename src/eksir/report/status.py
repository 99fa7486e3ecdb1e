"""How each step status reads in the report: its tone (only `ok` is shown green) and nothing else.

Why a table: statuses are added over time (the engine's, lab mode's `unavailable-in-lab`, containment's
`not-effective`), and a status nobody listed must never look like success. One row here decides how a status
is coloured in the HTML, whether page 1 counts it as in effect, and whether it is an open risk; an unknown
status is `neutral`, never `ok`.
"""

from __future__ import annotations

from typing import Literal

Tone = Literal["ok", "warn", "bad", "neutral"]

STATUS_TONES: dict[str, Tone] = {
    "verified": "ok",
    "applied": "warn",
    "applying": "warn",
    "unavailable-in-lab": "warn",
    "rolling-back": "warn",
    "failed": "bad",
    "blocked": "bad",
    "rollback-failed": "bad",
    "not-effective": "bad",
    "rolled-back": "neutral",
    "skipped": "neutral",
    "pending": "neutral",
    "checked": "neutral",
    "approved": "neutral",
}


STATUS_LABELS: dict[str, str] = {
    "not-effective": "NOT EFFECTIVE",
}
"""Statuses spelled out where a reader could take them for done (the reason is in the step's detail)."""


def status_label(status: str) -> str:
    """How the HTML report writes a status: its label when it has one, else the status itself."""
    return STATUS_LABELS.get(status, status)


def status_tone(status: str) -> Tone:
    """The tone of a status; `neutral` for one this table does not know."""
    return STATUS_TONES.get(status, "neutral")

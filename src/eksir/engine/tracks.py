"""Tracks: the separate plans one case runs through the one engine (response, recovery, prevention,
close-out).

Why tracks: a case runs several plans over its life. The response plan comes first; recovery, prevention and
close-out are planned later from what the case has learned. Each keeps its own plan document and state file,
while every transition of every track goes to the same hash-chained event log (each event carries its plan's
digest, so replay never mixes tracks). One Runner, one rollback and one resume serve them all.

A track that *accumulates* (prevention, close-out) is run a few steps at a time, by separate commands: a
new plan there adds its steps to the ones already applied instead of replacing it (engine/accumulate.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Track:
    name: str
    state_file: str
    plan_file: str
    plan_recorded_event: str
    accumulates: bool = False

    @property
    def plan_kind(self) -> str:
        """The document kind logged when the plan file is written (what `eksir case verify` names)."""
        return "plan" if self.name == "response" else f"{self.name}-plan"

    @property
    def state_kind(self) -> str:
        return "plan-state" if self.name == "response" else f"{self.name}-state"


RESPONSE = Track("response", "plan-state.json", "plan.json", "plan.recorded")
RECOVERY = Track("recovery", "recovery-state.json", "recovery-plan.json", "recovery.plan-recorded")
PREVENTION = Track(
    "prevention",
    "prevention-state.json",
    "prevention-plan.json",
    "prevention.plan-recorded",
    accumulates=True,
)
CLOSEOUT = Track(
    "closeout", "closeout-state.json", "closeout-plan.json", "closeout.plan-recorded", accumulates=True
)
TRACKS: tuple[Track, ...] = (RESPONSE, RECOVERY, PREVENTION, CLOSEOUT)


class TrackName(StrEnum):
    """The tracks by name, for the command line (`eksir rollback --track prevention`)."""

    RESPONSE = RESPONSE.name
    RECOVERY = RECOVERY.name
    PREVENTION = PREVENTION.name
    CLOSEOUT = CLOSEOUT.name


def track_named(name: str) -> Track:
    return next(track for track in TRACKS if track.name == name)

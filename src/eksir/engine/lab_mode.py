"""Lab mode: the explicit signal that a run is against the local lab, and what the lab cannot perform.

Why explicit: a step the lab cannot perform (moto runs no SSM command, so nothing captures volatile evidence)
must be reported as `unavailable-in-lab` with its reason, never as failed and never as verified (DESIGN.md,
"Lab modes"). Only the caller knows it drives the lab (the game day starts it); the engine never guesses from
an endpoint, so in production the same failure stays a failure and still blocks what depends on it.

Why the step is still attempted: the record then shows what the lab actually answered, and the day a lab
component learns to perform it (a real node with an SSM agent), the step verifies without anyone editing
this list first. Only a step that would otherwise end `failed` becomes `unavailable-in-lab`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

UNAVAILABLE_PREFIX = "unavailable-in-lab"


@dataclass(frozen=True)
class LabMode:
    """Action id -> why the lab cannot perform it; given to the Runner by the code that started the lab."""

    unavailable: Mapping[str, str] = field(default_factory=dict)

    def reason(self, action_id: str) -> str | None:
        """Why the lab cannot perform `action_id`, or None when the lab is expected to perform it."""
        return self.unavailable.get(action_id)


def unavailable_detail(reason: str, attempt: str) -> str:
    """The step's detail: the lab's reason first, then what the attempt itself ended with."""
    return f"{UNAVAILABLE_PREFIX}: {reason} (the attempt ended: {attempt})"


def ran_without_detail(waived: Mapping[str, str]) -> str:
    """One line for a step that ran although a dependency was unavailable in the lab."""
    parts = "; ".join(f"{step_id} ({reason})" for step_id, reason in waived.items())
    return f"ran without {parts}: that step is unavailable in the lab"

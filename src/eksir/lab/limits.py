"""What the local lab cannot perform, with the reason a responder reads in the game day's summary.

Why here: only the lab knows its own limits (DESIGN.md, "Lab modes"); the game day hands this table to the
engine as its explicit lab-mode signal, and the product never consults it. An entry leaves the table when a
lab component learns to perform the step; until then, a step that fails on it is `unavailable-in-lab`
(never failed, never verified), and a step that succeeds anyway is simply verified.
"""

from __future__ import annotations

from types import MappingProxyType

UNAVAILABLE_IN_LAB = MappingProxyType(
    {
        "ssm.capture_volatile": (
            "the lab's nodes run no SSM agent: moto accepts SSM Run Command but runs nothing on an instance, "
            "so no volatile evidence reaches the bucket"
        ),
    }
)
"""Action id -> why the lab cannot perform it."""

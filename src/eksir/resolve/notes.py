"""Partial answers instead of failures for the lookups that only enrich a resolution.

Why: at 3 a.m. a resolution that names the pod, node and principal but says "could not list Pod Identity
associations: permission denied" is worth far more than a traceback or an exit. Lookups that the plan
cannot do without (DescribeCluster, reaching the API server) are not wrapped and raise; an unreachable
endpoint always raises, because every later lookup would fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from eksir.errors import EksirError, UnreachableError

T = TypeVar("T")
_MAX_NOTE = 300


def one_line(text: str, limit: int = _MAX_NOTE) -> str:
    """Collapse an SDK message (moto answers unknown APIs with an HTML page) to one short line."""
    flat = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def optional(notes: list[str], fn: Callable[[], T]) -> T | None:
    """Run an enrichment lookup; on an eksir error other than UnreachableError, note it and return None."""
    try:
        return fn()
    except UnreachableError:
        raise
    except EksirError as exc:
        notes.append(one_line(exc.message))
        return None

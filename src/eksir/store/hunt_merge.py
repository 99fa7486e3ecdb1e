"""Every hunt of a case, read as one: each `eksir hunt CASE` run is its own evidence item, and the case's
hunt is their union.

Why: a responder hunts again with more sources (the audit log after CloudTrail, another region, Athena),
and a later, narrower hunt must never erase what an earlier one found (it did: a re-run with no source
replaced 14 calls with none). Each call is kept once (by its event id, else its source and time), with every
source that found it, and the window, principals and sources of all runs.
"""

from __future__ import annotations

from typing import Any

_LISTS = ("sources", "skipped", "queries", "warnings")


def merge_hunts(hunts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One hunt document from several (oldest first); None when there are none."""
    if not hunts:
        return None
    merged: dict[str, Any] = {**hunts[-1]}
    merged["since"] = min(str(h.get("since") or "") for h in hunts) or hunts[-1].get("since")
    merged["until"] = max(str(h.get("until") or "") for h in hunts) or hunts[-1].get("until")
    for key in ("principals", "chained_principals"):
        merged[key] = list(dict.fromkeys(p for h in hunts for p in h.get(key) or []))
    for key in _LISTS:
        merged[key] = [entry for h in hunts for entry in h.get(key) or []]
    merged["events"] = _events(hunts)
    merged["owners"] = _owners(hunts)
    merged["runs"] = len(hunts)
    return merged


def _key(event: dict[str, Any]) -> str:
    return str(
        event.get("event_id") or f"{event.get('found_in')}|{event.get('event_time')}|{event.get('action')}"
    )


def _events(hunts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call once, with `found_in_all`: every source (of every run) that found it; in time order."""
    events: dict[str, dict[str, Any]] = {}
    for hunt in hunts:
        for event in hunt.get("events") or []:
            if not isinstance(event, dict):
                continue
            kept = events.setdefault(_key(event), {**event, "found_in_all": []})
            source = event.get("found_in")
            if source and source not in kept["found_in_all"]:
                kept["found_in_all"].append(source)
    return sorted(events.values(), key=lambda e: str(e.get("event_time") or ""))


def _owners(hunts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Owners by name; the run that saw most of an owner's calls speaks for it."""
    best: dict[str, dict[str, Any]] = {}
    for hunt in hunts:
        for notice in hunt.get("owners") or []:
            name = str(notice.get("owner"))
            if name not in best or int(notice.get("events") or 0) > int(best[name].get("events") or 0):
                best[name] = notice
    return list(best.values())

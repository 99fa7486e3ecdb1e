"""Marks on a node (or NodeClaim) that several cases share: one value per object, one hold per case.

Why: in fleet mode several incidents sit on one node and every case labels it, cordons it and holds it
against Karpenter. A mark with one value per object (a label value, `spec.unschedulable`,
`karpenter.sh/do-not-disrupt`) cannot say which case wants it: the last case to write it used to win, the
earlier case's verify then failed, and its rollback undid the mark for every other case (or restored
another case's value). Here:

- the shared mark is case-independent (`eksir.io/investigation=true`, `unschedulable: true`, ...);
- each case owns a key of its own, `<kind>.eksir.io/<case-id>` (a label, or an annotation where no one filters
  on it), so holds of different cases never touch each other;
- the value the mark had before eksir's first case is noted once, in an annotation written in the same patch
  as the first hold (a crash between patch and case record cannot lose it), and is restored only by the
  rollback that removes the last hold;
- every patch carries the resourceVersion it was computed from, so a change in between (another case
  applying or rolling back) makes the API server answer 409 and the patch is recomputed from a fresh read,
  instead of one case's read-modify-write undoing the other's.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from eksir.actions.containment.casework import json_pointer
from eksir.errors import BadInputError, TemporaryError

_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
CONFLICT_TRIES = 6


def case_key(prefix: str, case_id: str) -> str:
    """`<prefix>/<case-id>` as a Kubernetes label or annotation key; BadInputError if the case id cannot be.

    The part after the `/` of a qualified name is at most 63 characters of letters, digits, `-`, `_` and `.`,
    starting and ending with a letter or digit. eksir's own ids (`eksir-YYYYMMDD-<10 hex>`, 25 characters)
    always fit; an id given from outside may not, and is refused before anything changes.
    """
    if not _NAME_PART.match(case_id):
        raise BadInputError(
            f"case id {case_id!r} cannot name the Kubernetes key {prefix}/<case-id>: it must be 1-63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return f"{prefix}/{case_id}"


class MetaPatch:
    """Label and annotation changes collected into JSON-patch ops, each map created at most once (a second
    `add /metadata/labels {}` in one patch would empty what the first ops put there)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.changes: dict[str, dict[str, str | None]] = {"labels": {}, "annotations": {}}

    def put(self, field: str, key: str, value: str | None) -> None:
        """Set `key` in metadata.<field> to `value`; None removes it (if it is there)."""
        self.changes[field][key] = value

    def ops(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for field, changes in self.changes.items():
            present = self.meta.get(field) or {}
            if not self.meta.get(field) and any(v is not None for v in changes.values()):
                out.append({"op": "add", "path": f"/metadata/{field}", "value": {}})
            for key, value in changes.items():
                path = json_pointer("metadata", field, key)
                if value is not None:
                    out.append({"op": "add", "path": path, "value": value})
                elif key in present:
                    out.append({"op": "remove", "path": path})
        return out


class SharedMark(ABC):
    """One shared mark: where the cases' own keys live, the note of the value before eksir, and how to set and
    restore the mark itself."""

    hold_field: str = "annotations"
    """`labels` or `annotations`: where each case's own key lives."""
    hold_prefix: str
    hold_value: str
    note: str
    """The annotation noting the mark's value before eksir's first case."""

    @abstractmethod
    def is_set(self, obj: dict[str, Any]) -> bool:
        """The mark has the value every holding case wants."""

    @abstractmethod
    def before(self, obj: dict[str, Any]) -> str:
        """The note text for the mark's current value (read before eksir's first hold)."""

    @abstractmethod
    def set_ops(self, obj: dict[str, Any], patch: MetaPatch) -> list[dict[str, Any]]:
        """Put the held value: label/annotation changes into `patch`, any other change as returned ops."""

    @abstractmethod
    def restore_ops(self, obj: dict[str, Any], note: str, patch: MetaPatch) -> list[dict[str, Any]]:
        """Put back the noted value (the same way as `set_ops`)."""

    def key(self, case_id: str) -> str:
        return case_key(self.hold_prefix, case_id)

    def holders(self, obj: dict[str, Any]) -> list[str]:
        """The case ids holding the mark on this object."""
        keys = (obj["metadata"].get(self.hold_field) or {}).keys()
        return sorted(k.split("/", 1)[1] for k in keys if k.startswith(self.hold_prefix + "/"))

    def noted(self, obj: dict[str, Any]) -> str | None:
        return (obj["metadata"].get("annotations") or {}).get(self.note)

    def held_by(self, obj: dict[str, Any], case_id: str) -> bool:
        """This case holds the mark and the mark is in effect."""
        return case_id in self.holders(obj) and self.is_set(obj)

    def hold_ops(self, obj: dict[str, Any], case_id: str) -> list[dict[str, Any]]:
        """Ops adding this case's hold (and the mark, and the note when no case noted it yet); [] when the
        case already holds it with the note in place."""
        meta, key = obj["metadata"], self.key(case_id)
        if self.held_by(obj, case_id) and self.noted(obj) is not None:
            return []
        patch = MetaPatch(meta)
        raw = [] if self.is_set(obj) else self.set_ops(obj, patch)
        patch.put(self.hold_field, key, self.hold_value)
        if self.noted(obj) is None:
            patch.put("annotations", self.note, self.before(obj))
        return [*version_guard(meta), *raw, *patch.ops()]

    def release_ops(self, obj: dict[str, Any], case_id: str) -> list[dict[str, Any]]:
        """Ops removing this case's hold; the last hold to go also restores the noted value and drops the
        note. [] when there is nothing of this case's to remove and other cases still hold the mark."""
        meta, key = obj["metadata"], self.key(case_id)
        patch = MetaPatch(meta)
        patch.put(self.hold_field, key, None)
        raw: list[dict[str, Any]] = []
        note = self.noted(obj)
        if note is not None and not [c for c in self.holders(obj) if c != case_id]:
            raw = self.restore_ops(obj, note, patch)
            patch.put("annotations", self.note, None)
        ops = [*patch.ops(), *raw]
        return [*version_guard(meta), *ops] if ops else []


def version_guard(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The same object (uid), unchanged since it was read: a stale resourceVersion makes the patch a 409."""
    return [
        {"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
    ]


def patch_fresh(
    read: Callable[[], dict[str, Any] | None],
    build: Callable[[dict[str, Any]], list[dict[str, Any]]],
    send: Callable[[list[dict[str, Any]]], object],
) -> dict[str, Any] | None:
    """Read, build the ops from what was read, send; on a conflict (409: someone wrote in between) read again.

    Returns the object the sent ops were built from (None when `read` found nothing); raises the last
    TemporaryError when every try conflicted.
    """
    for attempt in range(CONFLICT_TRIES):
        obj = read()
        if obj is None:
            return None
        ops = build(obj)
        if not ops:
            return obj
        try:
            send(ops)
        except TemporaryError:
            if attempt == CONFLICT_TRIES - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
            continue
        return obj
    return None  # pragma: no cover: the loop returns or raises

"""How an action puts what it collected into the case: through the case handle in `ActionContext.extras`.

Why `extras["case"]` and not a new ActionContext field: actions must not depend on the store's layout, and the
engine already hands every step `extras` from its ContextFactory; the CLI (or a test) puts the open
`CaseHandle` there. Without a handle (a bare dry run, a unit test that does not care) nothing is lost: the
digest and size of every artefact still go into the step's applied/verify record, which the engine persists.

Entering an artefact twice (a verify retried, a resumed run) must not list it twice in the evidence
manifest, so an item whose source and sha256 are already in the case is not added again.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from eksir.actions.base import ActionContext

CASE_EXTRA = "case"
"""The key under which the engine's ContextFactory passes the open CaseHandle in `ActionContext.extras`."""


class _Item(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def name(self) -> str: ...


class EvidenceSink(Protocol):
    """The part of `eksir.store.case_store.CaseHandle` an action uses (no import: actions sit below store)."""

    def add_evidence(
        self, name: str, data: bytes, source: str, description: str = "", media_type: str = ...
    ) -> Any: ...

    def load(self) -> Any: ...


def case_sink(ctx: ActionContext) -> EvidenceSink | None:
    """The case handle the engine passed, or None when the step runs without one."""
    sink = ctx.extras.get(CASE_EXTRA)
    return sink if sink is not None and hasattr(sink, "add_evidence") else None


def _existing(sink: EvidenceSink, source: str, digest: str) -> _Item | None:
    items: tuple[_Item, ...] = tuple(sink.load().evidence)
    return next((i for i in items if i.source == source and i.sha256 == digest), None)


def record_evidence(
    ctx: ActionContext,
    name: str,
    data: bytes,
    *,
    source: str,
    description: str,
    media_type: str = "application/json",
) -> dict[str, Any]:
    """Hash `data`, enter it into the case (once) and return what the step record keeps about it.

    Raises whatever the case store raises (CaseInvalidError) when the case cannot be written.
    """
    digest = hashlib.sha256(data).hexdigest()
    record: dict[str, Any] = {"name": name, "source": source, "sha256": digest, "size": len(data)}
    sink = case_sink(ctx)
    if sink is None:
        record["in_case"] = False
        return record
    item = _existing(sink, source, digest)
    if item is None:
        item = sink.add_evidence(name, data, source=source, description=description, media_type=media_type)
    record.update(in_case=True, evidence_number=item.number, path=item.path)
    return record


def find_evidence(ctx: ActionContext, name: str) -> bytes | None:
    """The newest case artefact called `name`, or None (no case handle, or never collected).

    Used to recover a before-state backed up into the case when the process died before the engine could
    persist the step's applied record.
    """
    sink = case_sink(ctx)
    path = getattr(sink, "path", None)
    if sink is None or path is None:
        return None
    items: tuple[_Item, ...] = tuple(sink.load().evidence)
    for item in reversed(items):
        if item.name == name:
            data: bytes = (path / item.path).read_bytes()
            return data
    return None

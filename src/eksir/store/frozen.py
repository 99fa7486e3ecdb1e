"""Closed cases are frozen: a command that would change a closed case (or act on the world for it) refuses.

Why at the writer lease: every command that changes a case takes the case's one-writer lease first
(store/lock.py), so checking there covers rollback, resume, respond, recover, prevent, hunt, report and
triage alike, and a command added later cannot forget it. A responder who must act on a closed case says so
with `--reopen --reason TEXT`: the reopening is recorded (who, why, which command) and the case is open again,
so closing it needs a fresh report like any other close. Read-only and custody commands (export, verify,
repair, close itself) pass `closed_ok`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from eksir.errors import RefusedError, UsageError
from eksir.models.case import CaseStatus

if TYPE_CHECKING:
    from eksir.store.case_store import CaseHandle

_REOPEN_REASON: ContextVar[str | None] = ContextVar("eksir_reopen_reason", default=None)


@contextmanager
def reopening(reopen: bool, reason: str | None) -> Iterator[None]:
    """Within the block, a closed case this command writes is reopened for `reason` (recorded).

    `--reopen` without a reason (or a reason without `--reopen`) is a usage error: the reason is the record.
    """
    if reason is not None and not reopen:
        raise UsageError("--reason is given with --reopen only")
    if reopen and not (reason and reason.strip()):
        raise UsageError("--reopen needs --reason TEXT: why a closed case must change is part of its record")
    token = _REOPEN_REASON.set(reason.strip() if reopen and reason else None)
    try:
        yield
    finally:
        _REOPEN_REASON.reset(token)


def ensure_open(handle: CaseHandle, command: str) -> None:
    """Refuse (exit 12) when the case is closed, unless this command was asked to reopen it."""
    case = handle.load()
    if case.status is not CaseStatus.CLOSED:
        return
    reason = _REOPEN_REASON.get()
    if reason is None:
        raise RefusedError(
            f"case {case.id} is closed: `{command}` would change it or act for it; "
            "re-run with --reopen --reason TEXT to reopen it (recorded)"
        )
    handle.append("case.reopened", {"reason": reason, "command": command, "detail": reason})
    handle.save(case.model_copy(update={"status": CaseStatus.OPEN}), f"case reopened: {reason}")

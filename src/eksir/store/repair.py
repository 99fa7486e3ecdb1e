"""`eksir case repair`: put a case a crash left behind back in a verifiable state, on the record.

What a crash can leave (writes are write-ahead: staged under a hidden `.NAME.pending`, intent logged with
the hash, renamed into place):
- a torn last line of `events.jsonl` (killed mid-append): every later append would fail. The torn bytes are
  cut off and kept, base64, in a `repair.torn-tail` event.
- a logged intent whose rename never happened: the staged file has the logged hash, so the write is finished
  (`repair.write-completed`).
- a staged or plain file no event accounts for (killed before logging; or a case written by an earlier
  version, which wrote first and logged after): its hash is recorded (`repair.orphan-recorded`); a staged one
  is first moved out of hiding to `orphans/`, so nothing is thrown away.
- evidence logged as collected but missing from case.json (killed before case.json was rewritten): listed
  again (`repair.evidence-listed`).
Nothing is repaired silently and nothing is deleted; altered files (a hash that no staged file explains) are
not "repaired": that is tampering, and `case verify` keeps reporting it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from eksir.store.atomic import commit, fsync_dir, sha256_bytes, sha256_file
from eksir.store.case_store import EVENTS_FILE, CaseHandle
from eksir.store.verify import expected_hashes, readable_events

PENDING_SUFFIX = ".pending"
ORPHANS_DIR = "orphans"
_MAX_TORN_BYTES = 1 << 20


def repair_case(handle: CaseHandle, *, wait: bool = False) -> list[str]:
    """Repair under the case's writer lease; returns one line per repair made (empty: nothing to do)."""
    with handle.writer("eksir case repair", wait=wait, closed_ok=True):
        done = _cut_torn_tail(handle)
        done += _finish_pending(handle)
        done += _record_orphans(handle)
        done += _relist_evidence(handle)
        return done


def _cut_torn_tail(handle: CaseHandle) -> list[str]:
    path = handle.path / EVENTS_FILE
    data = path.read_bytes() if path.is_file() else b""
    if not data or data.endswith(b"\n"):
        return []
    keep = data.rfind(b"\n") + 1
    torn = data[keep:]
    with path.open("r+b") as log:
        log.truncate(keep)
        log.flush()
        os.fsync(log.fileno())
    handle.append(
        "repair.torn-tail",
        {
            "size": len(torn),
            "sha256": sha256_bytes(torn),
            "bytes_b64": base64.b64encode(torn[:_MAX_TORN_BYTES]).decode(),
            "truncated": len(torn) > _MAX_TORN_BYTES,
        },
    )
    return [f"{EVENTS_FILE}: cut a torn last line of {len(torn)} bytes (kept in the repair event)"]


def _pending_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(f".*{PENDING_SUFFIX}") if p.is_file())


def _finish_pending(handle: CaseHandle) -> list[str]:
    """Finish each write whose intent was logged; move the others out of hiding as orphans."""
    expected = expected_hashes(readable_events(handle))
    done: list[str] = []
    for pending in _pending_files(handle.path):
        target = pending.with_name(pending.name[1 : -len(PENDING_SUFFIX)])
        relative = target.relative_to(handle.path).as_posix()
        digest = sha256_file(pending)
        if expected.get(relative) == digest and not (target.is_file() and sha256_file(target) == digest):
            commit(pending, target, exclusive=not target.exists())
            handle.append("repair.write-completed", {"path": relative, "sha256": digest})
            done.append(f"{relative}: finished a logged write that a crash interrupted")
            continue
        kept = _unhide(handle.path, pending, relative)
        done.append(f"{relative}: an unlogged write moved to {kept}")
    return done


def _unhide(root: Path, pending: Path, relative: str) -> str:
    folder = root / ORPHANS_DIR
    folder.mkdir(exist_ok=True)
    base = relative.replace("/", "_")
    target = folder / f"{base}.pending"
    number = 1
    while target.exists():
        number += 1
        target = folder / f"{base}.pending.{number}"
    os.link(pending, target)
    pending.unlink()
    fsync_dir(folder)
    return target.relative_to(root).as_posix()


def _record_orphans(handle: CaseHandle) -> list[str]:
    known = set(expected_hashes(readable_events(handle))) | {EVENTS_FILE}
    done: list[str] = []
    for path in sorted(handle.path.rglob("*")):
        relative = path.relative_to(handle.path).as_posix()
        if not path.is_file() or path.name.startswith(".") or relative in known:
            continue
        digest, size = sha256_file(path), path.stat().st_size
        handle.append(
            "repair.orphan-recorded",
            {"path": relative, "sha256": digest, "size": size, "note": "found in the case, never logged"},
        )
        done.append(f"{relative}: recorded a file no event accounted for (sha256 {digest[:12]}...)")
    return done


def _relist_evidence(handle: CaseHandle) -> list[str]:
    listed = handle.list_logged_evidence(readable_events(handle))
    return [f"{item.path}: logged as collected, now listed in case.json" for item in listed]

"""Write-ahead file writes: a reader (or a crash) never sees half a file, and no write goes unrecorded.

Every file of a case bundle other than the append-only event log is staged under a hidden pending name in the
same directory and fsynced (`stage`), its intent and hash are logged by the caller, and only then is it moved
into place (`commit`: rename, atomic on POSIX file systems, or a hard link for evidence, which must never
replace a file). `eksir case repair` finishes a staged write whose intent was logged.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hash a file in chunks so large evidence (memory captures) never sits in memory whole."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pending_path(path: Path) -> Path:
    """Where a write-ahead stages `path`: hidden (no verify or export sees it) and named after its target, so
    `eksir case repair` can finish a write whose intent was logged."""
    return path.parent / f".{path.name}.pending"


def stage(path: Path, data: bytes) -> Path:
    """Write-ahead, step 1: the new content, fsynced, under the pending name; returns that name.

    A stale pending file of the same target (a crash before its intent was logged) is replaced: only a logged
    intent makes a pending file worth keeping, and repair finishes those before anything else writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pending = pending_path(path)
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return pending


def commit(pending: Path, path: Path, *, exclusive: bool = False) -> None:
    """Write-ahead, last step (after the intent is logged): move the staged file into place.

    `exclusive` (evidence) links instead of renaming, so an existing file is never replaced: raises
    FileExistsError and leaves both files as they are.
    """
    if exclusive:
        os.link(pending, path)
        pending.unlink()
    else:
        os.replace(pending, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Persist a rename: without it a power cut can forget that the new name exists."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

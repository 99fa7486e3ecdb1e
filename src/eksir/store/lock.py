"""One writer per case: a lease every command that writes a case holds for as long as it writes.

Why a lease and not only the per-line lock of the event log: two processes each running the same plan
(two `eksir respond`, or `respond` beside `recover`) would both apply every destructive step, and two
collectors would both number evidence from the same case.json. The lease is held by the *process* (its
threads share it), so the runner's parallel steps keep working while a second process is refused (exit 12
naming the holder) or queues (`--wait`).

`CaseLock` is the contract; `FileCaseLock` implements it with an advisory `flock` on `<case>/.lock`, whose
content names the holder and carries a fencing token (one more at every acquisition) so a shared store can
implement the same contract with a DynamoDB lease (conditional put on the token) and reject writes from a
stale holder.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from eksir.errors import RefusedError

LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Lease:
    """Who holds a case: enough for a person to find the other process, and a token to fence stale writers."""

    pid: int
    host: str
    command: str
    since: datetime
    token: int

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}, since {self.since:%Y-%m-%dT%H:%M:%SZ})"


class CaseLockedError(RefusedError):
    """Another process writes this case (exit 12): wait for it, or pass --wait to queue."""


class CaseLock(Protocol):
    """The contract of a case lease; the directory store and a shared store implement it alike."""

    def acquire(self, command: str, *, wait: bool) -> Lease:
        """Take the lease (blocking when `wait`); raises CaseLockedError naming the holder otherwise."""
        ...

    def release(self) -> None:
        """Give the lease back; the next holder's token will be higher."""
        ...


class FileCaseLock:
    """`flock` on `<case>/.lock`: the kernel drops it when its process dies, so a crash never wedges it."""

    def __init__(self, case_dir: Path) -> None:
        self.path = case_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, command: str, *, wait: bool) -> Lease:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _read_lease(fd)
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise CaseLockedError(
                f"case {self.path.parent.name} is being written by {who}: "
                "wait for it to finish or pass --wait"
            ) from None
        previous = _read_lease(fd)
        lease = Lease(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=command[:200],
            since=datetime.now(UTC),
            token=(previous.token if previous else 0) + 1,
        )
        body = orjson.dumps({**lease.__dict__, "since": lease.since.isoformat()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, body, 0)
        os.fsync(fd)
        self._fd = fd
        return lease

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_lease(fd: int) -> Lease | None:
    """The holder's record; None when it is unreadable (a holder between truncate and write)."""
    try:
        raw = orjson.loads(os.pread(fd, 4096, 0))
        return Lease(
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            command=str(raw["command"]),
            since=datetime.fromisoformat(str(raw["since"])),
            token=int(raw["token"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


@dataclass
class _Held:
    lock: CaseLock
    lease: Lease
    count: int


_HELD: dict[str, _Held] = {}
_MUTEXES: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _mutex(key: str) -> threading.Lock:
    with _GUARD:
        return _MUTEXES.setdefault(key, threading.Lock())


def held_lock(key: str) -> CaseLock | None:
    """The lock this process holds under `key` (a shared store's fencing check asks), None when not held."""
    with _GUARD:
        held = _HELD.get(key)
    return held.lock if held is not None else None


@contextmanager
def case_lease(
    case_dir: Path,
    command: str,
    *,
    wait: bool = False,
    lock: CaseLock | None = None,
    key: str | None = None,
) -> Iterator[Lease]:
    """Hold the case's lease for the block; re-entrant within this process (a command calling the store).

    `lock` and `key`: a shared store's lock (store/dynamo_lease.py) and the key naming its case; by default
    the case directory's file lock, keyed by the directory.
    """
    key = key or str(case_dir.resolve())
    mutex = _mutex(key)
    with mutex:
        held = _HELD.get(key)
        if held is None:
            chosen = lock or FileCaseLock(case_dir)
            held = _Held(chosen, chosen.acquire(command, wait=wait), 0)
            with _GUARD:
                _HELD[key] = held
        held.count += 1
    try:
        yield held.lease
    finally:
        with mutex:
            held.count -= 1
            if held.count == 0:
                with _GUARD:
                    _HELD.pop(key, None)
                held.lock.release()

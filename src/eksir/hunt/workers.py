"""Scan processes that take the next chunk themselves and pick up a grown principal set between chunks.

Why not `ProcessPoolExecutor`: every job carried the principal set of the moment it was submitted, so
credentials chained mid-scan reached only jobs submitted after the coordinator had folded the chain, and
the files of every job already queued had to be scanned again; its manager and feeder threads also ran
beside the scan on the same two cores. Side by side on the 1 GB bench tree (7 alternating runs, medians):
0.536 s with the executor, 0.518 s with these workers, and half the files scanned twice.

Here each worker takes the next chunk index from a shared counter, so chunks are still scanned in
delivery order and both cores stay busy to the end. Before each chunk a worker compares a shared version
number with the set it holds; the coordinator publishes a grown set by writing it to a file and then
raising the version, so the next chunk any worker starts looks for the new credentials too. The
coordinator only waits on the workers' pipes and folds what they send. A worker that dies (killed,
out of memory) leaves its chunk unreported; the coordinator scans such chunks itself at the end, so no
file is silently left out.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from eksir.hunt.filescan import FileOutcome, ScanJob, scan_job
from eksir.hunt.prefilter import TokenMatcher
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import FileRef
from eksir.hunt.window import TimeWindow

_SNAPSHOT = -1
"""Version reported for a chunk that came with its own set (a rescan), not the published one."""


@dataclass(frozen=True)
class Planned:
    """Files to scan together; a rescan also names the tokens to look for and the set they came from."""

    files: tuple[FileRef, ...]
    tokens: tuple[bytes, ...] | None = None
    principals: PrincipalSet | None = None


@dataclass(frozen=True)
class ScanSettings:
    """What every chunk of one hunt is scanned with, besides the principal set."""

    window: TimeWindow
    access: AwsAccess | None
    engine: str
    count_events: bool


def start_context() -> BaseContext:
    """`fork` when this process runs one thread, else `forkserver`.

    Forking is safe only without other threads (one could hold a lock the child then waits on forever),
    but it starts both workers in about 15 ms where `forkserver` takes half a second to import eksir
    again: a sixth of a whole 1 GB hunt. The CLI keeps its progress display off threads for this reason.
    """
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


class _Board:
    """The published principal set: its version in shared memory, the set itself in a file per version."""

    def __init__(self, context: BaseContext, folder: Path) -> None:
        self.folder = folder
        self._version: Any = context.RawValue("q", 0)

    @property
    def version(self) -> int:
        value: int = self._version.value
        return value

    def publish(self, version: int, principals: PrincipalSet) -> None:
        path = self.folder / f"set-{version}.pickle"
        scratch = path.with_suffix(".partial")
        scratch.write_bytes(pickle.dumps(principals))
        scratch.replace(path)  # whole before the version says it is there
        self._version.value = version

    def load(self, version: int) -> PrincipalSet:
        principals: PrincipalSet = pickle.loads((self.folder / f"set-{version}.pickle").read_bytes())
        return principals


class Matchers:
    """One compiled `TokenMatcher` per token tuple, so a Hyperscan database is built once, not per chunk."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self._built: dict[tuple[bytes, ...], TokenMatcher] = {}

    def for_tokens(self, tokens: tuple[bytes, ...]) -> TokenMatcher:
        matcher = self._built.get(tokens)
        if matcher is None:
            matcher = self._built[tokens] = TokenMatcher(tokens, engine=self.engine)
        return matcher


def scan_planned(
    chunk: Planned, principals: PrincipalSet, settings: ScanSettings, matchers: Matchers
) -> list[FileOutcome]:
    """Scan one chunk against `principals` (or, for a rescan, its own tokens and set)."""
    used = principals if chunk.principals is None else chunk.principals
    tokens = chunk.tokens if chunk.tokens is not None else used.tokens()
    count = settings.count_events and chunk.tokens is None  # a rescan's files were counted the first time
    job = ScanJob(chunk.files, used, matchers.for_tokens(tokens), settings.window, settings.access, count)
    return scan_job(job)


@dataclass(frozen=True)
class _Shared:
    """What every worker of one `run_chunks` gets: the plan, the chunk counter and its lock, the board."""

    plan: Sequence[Planned]
    counter: Any
    lock: Any
    board: _Board
    initial: PrincipalSet
    settings: ScanSettings
    aws_environment: dict[str, str]
    """The coordinator's `AWS_*` variables now. A `forkserver` child inherits the environment the fork server
    was started with (the first hunt of this process), not the coordinator's at this hunt; a worker must read
    S3 as the coordinator would (its credentials, region, endpoint), so it takes these over at start."""

    def next_index(self) -> int:
        with self.lock:
            index: int = self.counter.value
            self.counter.value = index + 1
        return index


def _work(results: Connection, shared: _Shared) -> None:
    """A scan process: take chunks in order until none is left, send (index, set version, outcomes)."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(shared.aws_environment)
    version, principals = 0, shared.initial
    matchers = Matchers(shared.settings.engine)
    try:
        while (index := shared.next_index()) < len(shared.plan):
            chunk = shared.plan[index]
            if chunk.principals is None and shared.board.version != version:
                version = shared.board.version
                principals = shared.board.load(version)
            outcomes = scan_planned(chunk, principals, shared.settings, matchers)
            results.send((index, version if chunk.principals is None else _SNAPSHOT, outcomes))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the coordinator reports it once
        return
    finally:
        results.close()


Fold = Callable[[list[FileOutcome], PrincipalSet], PrincipalSet]
"""Takes a chunk's outcomes and the set they were checked against; answers the coordinator's set now."""


def run_chunks(
    plan: Sequence[Planned],
    *,
    workers: int,
    initial: PrincipalSet,
    settings: ScanSettings,
    fold: Fold,
) -> None:
    """Scan every chunk of `plan` on `workers` processes, folding each result as it arrives."""
    context = start_context()
    with tempfile.TemporaryDirectory(prefix="eksir-hunt-") as folder:
        board = _Board(context, Path(folder))
        aws_environment = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
        shared = _Shared(
            plan, context.RawValue("q", 0), context.Lock(), board, initial, settings, aws_environment
        )
        published: dict[int, PrincipalSet] = {0: initial}
        processes, pipes = [], []
        for _ in range(min(workers, len(plan))):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(sender, shared), daemon=True)  # type: ignore[attr-defined]
            process.start()
            sender.close()
            processes.append(process)
            pipes.append(receiver)
        reported: set[int] = set()
        try:
            live = list(pipes)
            while live:
                for pipe in wait(live):
                    assert isinstance(pipe, Connection)
                    try:
                        index, version, outcomes = pipe.recv()
                    except EOFError:  # finished (or died: its chunk is picked up below)
                        live.remove(pipe)
                        continue
                    reported.add(index)
                    snapshot = plan[index].principals
                    now = fold(outcomes, published[version] if snapshot is None else snapshot)
                    latest = max(published)
                    if now is not published[latest]:
                        published[latest + 1] = now
                        board.publish(latest + 1, now)
        except BaseException:  # Ctrl-C or a failure here: stop the workers now, not after their last chunk
            for process in processes:
                process.terminate()
            raise
        finally:
            for process in processes:
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()
        matchers = Matchers(settings.engine)
        current = published[max(published)]
        for index in range(len(plan)):
            if index not in reported:  # a worker died with this chunk: scan it here
                chunk = plan[index]
                used = current if chunk.principals is None else chunk.principals
                current = fold(scan_planned(chunk, used, settings, matchers), used)

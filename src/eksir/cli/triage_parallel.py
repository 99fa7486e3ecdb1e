"""Bulk triage on every core, in bounded memory: a JSON Lines export read in blocks of whole lines.

Why: one process reads an S3 export at about 10,000 findings/s before any triage is done (bench/README.md),
and reading the whole export first made memory grow with its size. Here the parent reads the input in
blocks of about 4 MB of whole lines, keeps at most two blocks per worker in flight (and two read ahead),
and forked workers run the same pipeline (`triage_stream.judge`) on each block and send back only the JSON
lines they wrote: bytes cost next to nothing to pickle, where sending `Finding`s back cost more than
building them. The parent writes the lines in input order, so the output is the same as one process's.

Used only where that holds: no case is opened (`--no-case`), the input is plain JSON Lines by the reader's
own rule (not gzip, no byte-order mark; its first non-blank line is a whole JSON value and more text
follows) and longer than one block. Anything else is read whole and judged here, as before. A block that
holds a bad line is read again behind the input's first line and as many empty lines as came before it,
so the error names the same line number a single process would, after the findings before it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from multiprocessing.pool import AsyncResult, Pool
from typing import IO

import orjson

from eksir.cli.triage_stream import Judged, judge
from eksir.errors import EksirError
from eksir.findings.envelopes import NoFindingError
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES
from eksir.findings.shapes import finding_plan
from eksir.triage import TriageConfig

BLOCK_BYTES = 4 << 20
"""About 1,400 findings of a typical export: large enough that sending a block costs little."""
MAX_WORKERS = 4
_NOT_JSON_LINES = (b"\x1f\x8b", b"\xef\xbb\xbf")  # gzip, UTF-8 byte-order mark: the reader's whole path


@dataclass(frozen=True)
class Block:
    """Whole lines of the input; `lines_before` lines of the input come before them."""

    data: bytes
    lines_before: int


@dataclass
class BlockResult:
    """A worker's answer: the block's judged lines, the reader's error if a line was bad, and whether the
    block held no finding at all (an error only if no block of the input holds one, as in one process)."""

    judged: Judged
    error: EksirError | None
    empty: NoFindingError | None = None


_config: TriageConfig | None = None
"""The triage config, set in the parent just before the workers are forked."""


def judged_stream(
    stream: IO[bytes], config: TriageConfig, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> Iterator[Judged]:
    """The judged findings of the input, in order: on every core for a JSON Lines export, else here.

    Raises `BadInputError` when the input cannot be read, and the reader's errors as `judge` does; gzip
    input judged here is inflated to at most `max_bytes` (the stream itself is bounded by the caller).
    """
    first = read_block(stream)
    second = read_block(stream) if first else b""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    head = first_line(first)
    if not second or workers < 2 or head is None:
        return judge(first + second + _read_rest(stream), None, config, max_bytes=max_bytes)
    return _in_parallel(head, _blocks(stream, first, second), config, workers)


def read_block(stream: IO[bytes]) -> bytes:
    """About `BLOCK_BYTES` of whole lines (the last line read to its end); empty at the end of input."""
    try:
        chunk = stream.read(BLOCK_BYTES)
        if chunk and not chunk.endswith(b"\n"):
            chunk += stream.readline()
    except OSError as exc:
        raise _unreadable(exc) from exc
    return chunk


def first_line(block: bytes) -> bytes | None:
    """The input up to and including its first non-blank line when that line is a whole JSON value."""
    if block.startswith(_NOT_JSON_LINES):
        return None
    start = len(block) - len(block.lstrip())
    end = block.find(b"\n", start)
    if end < 0:
        return None
    try:
        orjson.loads(block[start:end])
    except orjson.JSONDecodeError:
        return None
    return block[: end + 1]


def _read_rest(stream: IO[bytes]) -> bytes:
    try:
        return stream.read()
    except OSError as exc:
        raise _unreadable(exc) from exc


def _unreadable(exc: OSError) -> EksirError:
    from eksir.errors import BadInputError  # noqa: PLC0415 - the error path only

    return BadInputError(f"cannot read the input: {exc.strerror or exc}")


def _blocks(stream: IO[bytes], first: bytes, second: bytes) -> Iterator[Block]:
    """The input's blocks, each of at least two non-blank lines.

    A block of one line alone would be read as one JSON document rather than a line of JSON Lines (its
    finding would say `wire`, not `s3-export`), so such a block joins the next one, and a short tail of
    the input joins the block before it.
    """
    ahead: deque[bytes] = deque([first, second])
    lines = 0
    while ahead and ahead[0]:
        current = ahead.popleft()
        _look_ahead(ahead, stream)
        while ahead[0] and (_few_lines(current) or (_few_lines(ahead[0]) and not ahead[1])):
            current += ahead.popleft()
            _look_ahead(ahead, stream)
        yield Block(current, lines)
        lines += current.count(b"\n")


def _look_ahead(ahead: deque[bytes], stream: IO[bytes]) -> None:
    """Keep two blocks read ahead, or fewer ending with the empty block that marks the end of the input."""
    while len(ahead) < 2 and (not ahead or ahead[-1]):
        ahead.append(read_block(stream))


def _few_lines(block: bytes) -> bool:
    """Whether `block` has fewer than two non-blank lines (looks at its first lines only)."""
    found = start = 0
    while found < 2 and start < len(block):
        end = block.find(b"\n", start)
        end = len(block) if end < 0 else end
        found += bool(block[start:end].strip())
        start = end + 1
    return found < 2


def _in_parallel(
    head: bytes, blocks: Iterator[Block], config: TriageConfig, workers: int
) -> Iterator[Judged]:
    global _config  # noqa: PLW0603 - handed to the forked workers, cleared afterwards
    finding_plan()  # botocore's model, loaded once here rather than once per worker
    _config = config
    empty: NoFindingError | None = None  # the first block that held no finding
    found = False
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_start) as pool:
            pending: deque[tuple[Block, AsyncResult[BlockResult]]] = deque()
            for block in islice(blocks, 2 * workers):
                pending.append((block, _submit(pool, block)))
            while pending:
                block, future = pending.popleft()
                result = future.get()
                for following in islice(blocks, 1):
                    pending.append((following, _submit(pool, following)))
                yield result.judged
                if result.error is not None:
                    raise _exact_error(head, block, result.error, config)
                found = found or bool(result.judged.lines or result.judged.skipped)
                empty = empty or result.empty
    finally:
        _config = None
    if empty is not None and not found:
        raise empty  # no block held a finding: the input holds none (its count is the first block's)


def _worker_start() -> None:
    """Ctrl-C is the parent's to handle (it stops the workers and says so in one line), not each worker's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _submit(pool: Pool, block: Block) -> AsyncResult[BlockResult]:
    return pool.apply_async(_judge_block, (block.data,))


def _judge_block(data: bytes) -> BlockResult:
    """In a worker: every finding of one block, as JSON lines; stops at the reader's first error."""
    assert _config is not None
    judged = Judged()
    try:
        for batch in judge(data, None, _config):
            judged.lines.extend(batch.lines)
            judged.skipped.extend(batch.skipped)
    except NoFindingError as exc:
        return BlockResult(judged, None, exc)
    except EksirError as exc:
        return BlockResult(judged, exc)
    return BlockResult(judged, None)


def _exact_error(head: bytes, block: Block, error: EksirError, config: TriageConfig) -> EksirError:
    """The error a single process would raise: the block read again behind the input's first line.

    The input's first non-blank line leads (the first block read it without error), then empty lines up
    to the block, so the reader takes the same JSON Lines path and counts the lines from the input's start.
    """
    if block.lines_before == 0:
        return error
    padding = b"\n" * (block.lines_before - head.count(b"\n"))
    try:
        for _batch in judge(head + padding + block.data, None, config):
            pass
    except EksirError as exact:
        return exact
    return error

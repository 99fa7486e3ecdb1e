"""Bounded finding input: read and inflate at most `max_bytes`, so a gzip bomb is an error, not a crash.

Why a cap on the *uncompressed* size: a 3 MB gzip can inflate to 3 GiB, and inflating it whole ended in a
MemoryError traceback. Input is read in chunks and gzip is inflated in chunks, counting as it goes; the first
byte past the cap stops the read with a one-line `BadInputError` (exit 3). The default, 1 GiB, admits a
100,000-finding S3 export (about 285 MB) with room to spare; `--max-input-bytes` changes it.
"""

from __future__ import annotations

import io
import os
import stat
from typing import IO, Any, cast

from isal import isal_zlib

from eksir.errors import BadInputError

DEFAULT_MAX_INPUT_BYTES = 1 << 30
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 16 << 20
_GZIP_WBITS = 31
_INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)  # isal's stubs declare it as an instance


def too_large(name: str, max_bytes: int, what: str = "is larger than") -> BadInputError:
    return BadInputError(
        f"{name}: {what} {max_bytes:,} bytes, the input limit (raise it with --max-input-bytes)"
    )


def read_bounded(stream: IO[bytes], name: str, max_bytes: int) -> bytes:
    """All of `stream` in chunks; raises BadInputError as soon as it holds more than `max_bytes`.

    A regular file is read in one piece of its size (no copy when the chunks are joined); a pipe in chunks.
    """
    pieces: list[bytes] = []
    total = 0
    size = _file_size(stream)
    if size is not None and size > max_bytes:
        raise too_large(name, max_bytes)
    first = _CHUNK if size is None else size + 1
    while chunk := stream.read(min(first, max_bytes + 1 - total) or 1):
        first = _CHUNK
        total += len(chunk)
        if total > max_bytes:
            raise too_large(name, max_bytes)
        pieces.append(chunk)
    return b"".join(pieces)


def _file_size(stream: IO[bytes]) -> int | None:
    """The size of a regular file behind `stream`, or None (a pipe, a terminal, an in-memory stream)."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def inflate_bounded(data: bytes, name: str, max_bytes: int) -> bytes:
    """Inflate gzip `data` (several members allowed, zero padding after them ignored) up to `max_bytes`.

    Raises BadInputError for corrupt or truncated gzip data and for output beyond `max_bytes`.
    """
    pieces: list[bytes] = []
    total = 0
    rest = data
    try:
        while True:
            inflater = isal_zlib.decompressobj(wbits=_GZIP_WBITS)
            pending = rest
            while not inflater.eof:
                chunk = inflater.decompress(pending, _CHUNK)
                pending = inflater.unconsumed_tail
                if not chunk and not pending:
                    raise BadInputError(f"{name}: corrupt or truncated gzip data (unexpected end of data)")
                total += len(chunk)
                if total > max_bytes:
                    raise too_large(name, max_bytes, "inflates to more than")
                pieces.append(chunk)
            rest = inflater.unused_data
            if not rest.strip(b"\0"):
                return b"".join(pieces)
            if not rest.startswith(GZIP_MAGIC):
                raise BadInputError(f"{name}: corrupt gzip data (trailing data after the last member)")
    except _INFLATE_ERROR as exc:
        raise BadInputError(f"{name}: corrupt or truncated gzip data ({exc})") from None


class _BoundedRaw(io.RawIOBase):
    """The raw side of `bounded_stream`: passes reads through, counting, and refuses past `max_bytes`."""

    def __init__(self, stream: IO[bytes], name: str, max_bytes: int) -> None:
        super().__init__()
        self._stream, self._name, self._max, self._total = stream, name, max_bytes, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._stream.read(min(len(view), self._max + 1 - self._total))
        view[: len(data)] = data
        self._total += len(data)
        if self._total > self._max:
            raise too_large(self._name, self._max)
        return len(data)


def bounded_stream(stream: IO[bytes], name: str, max_bytes: int) -> IO[bytes]:
    """`stream` for a reader that consumes it piece by piece (bulk triage): BadInputError past `max_bytes`."""
    return io.BufferedReader(_BoundedRaw(stream, name, max_bytes), buffer_size=_CHUNK)

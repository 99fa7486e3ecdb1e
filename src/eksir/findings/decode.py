"""From raw bytes to JSON values: gzip detection, UTF-8 checks, whole-document JSON or JSON Lines.

Responders paste console JSON, pipe `aws guardduty get-findings`, or point at an S3 export object that may
still be gzip-compressed whatever its name says, so compression is detected by magic bytes, not by
extension. Every failure becomes a one-line `BadInputError` naming the input and, for JSON, the line
and column, because at 3 a.m. "line 412 column 7" is actionable and a traceback is not.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from isal import igzip

from eksir.errors import BadInputError

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True, slots=True)
class Document:
    """The JSON values read from one input; `lines` is True for JSON Lines (one value per line)."""

    name: str
    values: list[tuple[int, Any]]
    lines: bool


def one_line(text: str) -> str:
    """`text` made safe for a one-line error message: control characters escaped, as `repr` does."""
    return text if text.isprintable() else repr(text)[1:-1]


def decompress(data: bytes, name: str) -> bytes:
    """Inflate gzip input (detected by its magic bytes, several members allowed); pass others through."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        inflated: bytes = igzip.decompress(data)  # type: ignore[no-untyped-call]
        return inflated
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise BadInputError(f"{name}: corrupt or truncated gzip data ({exc})") from None


def parse_document(data: bytes, name: str) -> Document:
    """Parse `data` as one JSON document or, failing that, as JSON Lines; raise `BadInputError` otherwise."""
    data = decompress(data, name)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if data.startswith(_UTF16_BOMS):
        raise BadInputError(f"{name}: input is UTF-16 text; eksir reads UTF-8 JSON (re-save it as UTF-8)")
    if not data.strip():
        raise BadInputError(f"{name}: input is empty; expected a GuardDuty finding as JSON")
    try:
        return Document(name, [(1, orjson.loads(data))], lines=False)
    except orjson.JSONDecodeError as whole_error:
        if b"\n" not in data.strip():
            raise _json_error(name, whole_error, 0) from None
        return _parse_lines(data, name, whole_error)


def _parse_lines(data: bytes, name: str, whole_error: orjson.JSONDecodeError) -> Document:
    """JSON Lines (S3 export, several EventBridge events); blank lines are skipped."""
    values: list[tuple[int, Any]] = []
    loads = orjson.loads
    for index, line in enumerate(data.split(b"\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            values.append((index, loads(line)))
        except orjson.JSONDecodeError as line_error:
            if not values:
                # The first line is no JSON value on its own: this is one (broken) multi-line document,
                # and the whole-document error points at the real problem.
                raise _json_error(name, whole_error, 0) from None
            raise _json_error(name, line_error, index - 1) from None
    return Document(name, values, lines=True)


def _json_error(name: str, error: orjson.JSONDecodeError, line_offset: int) -> BadInputError:
    message = str(error.msg)
    if "UTF-8" in message:
        return BadInputError(f"{name}: input is not valid UTF-8 text (line {error.lineno + line_offset})")
    return BadInputError(
        f"{name}: invalid JSON at line {error.lineno + line_offset} column {error.colno}: {message}"
    )

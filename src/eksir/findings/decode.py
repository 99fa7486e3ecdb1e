"""From raw bytes to JSON values: gzip detection, UTF-8 checks, whole-document JSON or JSON Lines.

Responders paste console JSON, pipe `aws guardduty get-findings`, or point at an S3 export object that may
still be gzip-compressed whatever its name says, so compression is detected by magic bytes, not by
extension. Every failure becomes a one-line `BadInputError` naming the input and, for JSON, the line
and column, because at 3 a.m. "line 412 column 7" is actionable and a traceback is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from eksir.errors import BadInputError
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES, GZIP_MAGIC, inflate_bounded, too_large

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


JsonValue = tuple[int, Any, bytes | None]
"""One JSON value read: its line number, the value, and its text when it was a whole line of JSON Lines."""


@dataclass(frozen=True, slots=True)
class Document:
    """The JSON values read from one input; `lines` is True for JSON Lines (one value per line).

    For JSON Lines `values` is a stream: each line is parsed when the reader gets to it, so a large export
    is turned into findings line by line, each while its parsed dict is still in the CPU cache, instead of
    first holding every parsed line at once.
    """

    name: str
    values: Iterable[JsonValue]
    lines: bool


def one_line(text: str) -> str:
    """`text` made safe for a one-line error message: control characters escaped, as `repr` does."""
    return text if text.isprintable() else repr(text)[1:-1]


def decompress(data: bytes, name: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    """Inflate gzip input (detected by its magic bytes, several members allowed) to at most `max_bytes`;
    pass others through (they too must fit in `max_bytes`). Raises BadInputError."""
    if len(data) > max_bytes:
        raise too_large(name, max_bytes)
    if not data.startswith(GZIP_MAGIC):
        return data
    return inflate_bounded(data, name, max_bytes)


def parse_document(data: bytes, name: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> Document:
    """Parse `data` as one JSON document or, failing that, as JSON Lines; raise `BadInputError` otherwise."""
    data = decompress(data, name, max_bytes)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if data.startswith(_UTF16_BOMS):
        raise BadInputError(f"{name}: input is UTF-16 text; eksir reads UTF-8 JSON (re-save it as UTF-8)")
    if not data or data.isspace():  # `isspace` stops at the first non-blank byte; `strip` copied it all
        raise BadInputError(f"{name}: input is empty; expected a GuardDuty finding as JSON")
    lines = _parse_lines_directly(data, name)
    if lines is not None:
        return lines
    try:
        return Document(name, [(1, orjson.loads(data), None)], lines=False)
    except orjson.JSONDecodeError as whole_error:
        if b"\n" not in data.strip():
            raise _json_error(name, whole_error, 0) from None
        return Document(name, list(_parse_lines(data, name, whole_error)), lines=True)


def _parse_lines_directly(data: bytes, name: str) -> Document | None:
    """JSON Lines read without first trying the whole input as one document; None when that is unsafe.

    A large S3 export is JSON Lines, and trying it as one document first cost a failed parse, and the
    `strip` copies of 285 MB around it, for nothing. When the first non-blank line is a complete JSON value
    and more non-blank text follows, the whole input cannot be one JSON document (a value followed by more
    than whitespace), so the whole-document attempt is certain to fail and `_parse_lines` gives exactly the
    result it would have. In every other case (a pretty-printed document, a single line, a first line that
    is no JSON value) the caller takes the original path, with its whole-document error message.
    """
    first = _next_line(data, 0)
    if first is None or _next_line(data, first[1] + 1) is None:
        return None  # at most one non-blank line: a single document
    try:
        orjson.loads(data[first[0] : first[1]])
    except orjson.JSONDecodeError:
        return None
    return Document(name, _parse_lines(data, name, None), lines=True)


def _next_line(data: bytes, start: int) -> tuple[int, int] | None:
    """(start, end) of the first non-blank line at or after `start`, without copying the rest of `data`."""
    size = len(data)
    while start < size:
        end = data.find(b"\n", start)
        end = size if end < 0 else end
        line = data[start:end]
        if line and not line.isspace():
            return start, end
        start = end + 1
    return None


def _parse_lines(data: bytes, name: str, whole_error: orjson.JSONDecodeError | None) -> Iterator[JsonValue]:
    """JSON Lines (S3 export, several EventBridge events), one value per non-blank line, parsed on demand.

    Lines are sliced one at a time rather than `split` up front, so a large export is not held twice.
    """
    loads = orjson.loads
    find = data.find
    size = len(data)
    start = index = 0
    first = True
    while start <= size:  # the same segments as `data.split(b"\n")`, the last one after the last newline
        end = find(b"\n", start)
        end = size if end < 0 else end
        line = data[start:end]
        start = end + 1
        index += 1
        if not line or line.isspace():
            continue
        try:
            value = loads(line)
        except orjson.JSONDecodeError as line_error:
            if first and whole_error is not None:
                # The first line is no JSON value on its own: this is one (broken) multi-line document,
                # and the whole-document error points at the real problem. (Without `whole_error` the
                # first line was already parsed, so this line is a later one.)
                raise _json_error(name, whole_error, 0) from None
            raise _json_error(name, line_error, index - 1) from None
        first = False
        yield index, value, line


def _json_error(name: str, error: orjson.JSONDecodeError, line_offset: int) -> BadInputError:
    message = str(error.msg)
    if "UTF-8" in message:
        return BadInputError(f"{name}: input is not valid UTF-8 text (line {error.lineno + line_offset})")
    return BadInputError(
        f"{name}: invalid JSON at line {error.lineno + line_offset} column {error.colno}: {message}"
    )

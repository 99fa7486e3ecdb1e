"""Bytes to log records, for every shape CloudTrail and audit logs arrive in.

A trail writes gzip `{"Records": [...]}`; Stratus captures are JSON arrays; exports are JSON lines;
LookupEvents wraps each record as a string in `CloudTrailEvent`; Logs Insights exports wrap it in
`@message`. One reader accepts them all, so a responder can point the hunt at whatever folder they were
handed. Failures are `DecodeError` with a reason a human can act on; the scan reports them per file and
goes on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import deflate
import orjson
import stringzilla
from isal import igzip, isal_zlib

GZIP_MAGIC = b"\x1f\x8b"
_MEMBER_START = GZIP_MAGIC + b"\x08"  # magic + deflate, the only method gzip defines


class DecodeError(Exception):
    """A file cannot be inflated or parsed; the message names the problem, not the file."""


@dataclass
class Decoded:
    """Records read from one file, and the lines of a JSON-lines file that could not be read."""

    records: list[dict[str, Any]]
    bad_lines: list[str] = field(default_factory=list)


Inflated = bytes | bytearray
"""Inflated data: libdeflate answers a `bytearray`; a copy to `bytes` would cost a tenth of the inflate."""


def inflate(data: bytes) -> Inflated:
    """Gunzip when the data is gzip (by magic bytes, not by file name); else return it as is.

    libdeflate inflates a whole buffer about 1.5x faster than ISA-L here, and inflating is most of what a
    hunt costs. But it reads only the first gzip member, and answers empty, without inflating, when the
    last four bytes (the size field of an intact file) read 0. So its answer is taken only when it is the
    whole file: non-empty, and either no second member can start in the file (no other gzip magic in
    it, which is the case for almost every single-member file, such as the ones CloudTrail writes) or the
    CRC-32 in the file's final trailer is the answer's. Everything else goes to ISA-L, which reads every
    member or names what is wrong with the file. (Only a concatenation of identical members gets past
    both checks: its records are then read once, and they were duplicates the hunt drops anyway.)
    """
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        inflated: bytearray = deflate.gzip_decompress(data)
    except deflate.DeflateError:
        pass
    else:
        if inflated and (
            stringzilla.find(data, _MEMBER_START, 1) < 0
            or deflate.crc32(inflated) == int.from_bytes(data[-8:-4], "little")
        ):
            return inflated
    try:
        return bytes(igzip.decompress(data))  # type: ignore[no-untyped-call]
    except (OSError, EOFError, ValueError, isal_zlib.error) as exc:  # type: ignore[misc]
        raise DecodeError(f"corrupt or truncated gzip: {exc}") from exc


def unwrap(item: object) -> dict[str, Any] | None:
    """One record from an export wrapper (`CloudTrailEvent` string, `@message` object or string) or as is."""
    if not isinstance(item, dict):
        return None
    for wrapper in ("CloudTrailEvent", "@message"):
        inner = item.get(wrapper)
        if isinstance(inner, str):
            try:
                inner = orjson.loads(inner)
            except orjson.JSONDecodeError:
                return None
        if isinstance(inner, dict):
            return inner
    return item


def _from_document(doc: object) -> list[dict[str, Any]]:
    if isinstance(doc, list):
        items: list[object] = doc
    elif isinstance(doc, Mapping):
        for key in ("Records", "Events", "events", "items", "results"):
            value = doc.get(key)
            if isinstance(value, list):
                items = value
                break
        else:
            items = [doc]
    else:
        raise DecodeError("JSON document is neither an object nor an array")
    return [record for record in map(unwrap, items) if record is not None]


def _json_lines(data: bytes) -> Iterator[tuple[int, object | DecodeError]]:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, DecodeError(f"line {number}: {exc}")


def parse_records(data: Inflated) -> Decoded:
    """Parse inflated bytes as one JSON document, or else as JSON lines.

    Raises DecodeError when nothing in the data is JSON (truncated document, binary garbage).
    """
    body = bytes(data).strip()  # one copy, for the few files that are parsed at all
    if not body:
        return Decoded([])
    try:
        return Decoded(_from_document(orjson.loads(body)))
    except orjson.JSONDecodeError as exc:
        whole_error = exc
    if b"\n" not in body:
        raise DecodeError(f"truncated or invalid JSON: {whole_error}")
    decoded = Decoded([])
    for _number, value in _json_lines(body):
        if isinstance(value, DecodeError):
            decoded.bad_lines.append(str(value))
        else:
            decoded.records.extend(_from_document(value))
    if not decoded.records and decoded.bad_lines:
        raise DecodeError(f"no readable JSON line ({decoded.bad_lines[0]})")
    return decoded

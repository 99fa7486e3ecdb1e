"""Parse only the records around the pre-filter's hits, not the whole file they sit in.

A file that holds a principal token usually holds one or two of the attacker's records among hundreds of
others; parsing all of it cost as much as inflating every file of a 1 GB hunt. CloudTrail writes each
file as `{"Records":[{"eventVersion":...},{"eventVersion":...}]}`, and `{"eventVersion"` can only start a
record there: inside a JSON string its quotes would be escaped. So the record around a hit runs from the
last `{"eventVersion"` before it to the next one (or to the closing `]`), and parsing that slice alone
gives exactly the record the whole parse would.

Anything that is not laid out that way (JSON arrays, JSON lines, export wrappers, a cut file, a request
that nests an object whose first key is `eventVersion`) makes a slice fail to parse or the layout check
fail, and the caller parses the whole file instead: the shortcut is never trusted blindly.
"""

from __future__ import annotations

from typing import Any

import orjson
import stringzilla

_FILE_HEAD = b'{"Records":[{"eventVersion"'
_RECORD_START = b'{"eventVersion"'
_BETWEEN_RECORDS = b" \t\r\n,"


def records_at(data: bytes | bytearray, positions: list[int]) -> list[dict[str, Any]] | None:
    """The records of a CloudTrail file that contain `positions`, each once; None: parse the whole file."""
    if not data.startswith(_FILE_HEAD):
        return None
    array_end = data.rfind(b"]")
    if array_end < 0 or data[array_end + 1 :].strip() != b"}":
        return None
    records: list[dict[str, Any]] = []
    last_start = -1
    for position in positions:
        start = data.rfind(_RECORD_START, 0, position + 1)
        if start < 0:
            return None  # a hit in the file's head, outside every record
        if start == last_start:
            continue
        last_start = start
        end: int = stringzilla.find(data, _RECORD_START, position + 1)
        end = array_end if end < 0 or end > array_end else end
        try:
            record = orjson.loads(data[start:end].rstrip(_BETWEEN_RECORDS))
        except orjson.JSONDecodeError:
            return None
        if type(record) is not dict:
            return None
        records.append(record)
    return records

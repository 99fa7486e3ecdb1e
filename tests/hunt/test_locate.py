"""Parsing only the records around the pre-filter's hits gives exactly what parsing the whole file gives."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from eksir.hunt.filescan import ScanJob, scan_file
from eksir.hunt.locate import records_at
from eksir.hunt.prefilter import TokenMatcher
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.sources.files import FileRef
from eksir.hunt.window import TimeWindow

KEY = "AKIAATTACKER00000001"
TOKEN = KEY.encode()


def _record(number: int, key: str, extra: object = None) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accessKeyId": key, "userName": f"user{number}"},
        "eventTime": "2024-08-02T10:00:00Z",
        "eventName": "GetObject",
        "requestParameters": {"note": extra},
        "eventID": f"id-{number}",
    }


def _file(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"Records": records})


def _expected(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if TOKEN in orjson.dumps(r)]


def _located(data: bytes) -> list[dict[str, Any]] | None:
    return records_at(data, TokenMatcher((TOKEN,)).positions(data))


def test_only_the_records_holding_a_token_are_parsed() -> None:
    records = [_record(n, KEY if n in {0, 7, 19} else f"AKIAOTHER{n:011d}") for n in range(20)]
    records[3]["requestParameters"] = {"mentions": KEY}  # a token outside userIdentity still counts
    assert _located(_file(records)) == _expected(records) == [records[0], records[3], records[7], records[19]]


def test_a_record_with_several_hits_comes_back_once() -> None:
    records = [_record(0, KEY, extra=KEY), _record(1, "AKIAOTHER00000000001")]
    assert _located(_file(records)) == [records[0]]


def test_the_marker_inside_a_string_does_not_split_a_record() -> None:
    """`{"eventVersion"` in a string value is escaped in JSON, so it cannot be taken for a record start."""
    records = [_record(0, KEY, extra='{"eventVersion": "forged"}'), _record(1, KEY)]
    assert _located(_file(records)) == records


def test_a_nested_object_starting_with_the_marker_makes_the_caller_parse_the_file() -> None:
    records = [_record(0, "AKIAOTHER00000000001", extra={"eventVersion": "x", "k": KEY}), _record(1, KEY)]
    assert _located(_file(records)) is None


def test_other_layouts_and_cut_files_are_left_to_the_whole_parse() -> None:
    records = [_record(0, KEY), _record(1, KEY)]
    pretty = orjson.dumps({"Records": records}, option=orjson.OPT_INDENT_2)
    lines = b"\n".join(orjson.dumps(r) for r in records)
    array = orjson.dumps(records)
    cut = _file(records)[:-40]
    for data in (pretty, lines, array, cut):
        assert _located(data) is None


def test_scan_file_falls_back_to_the_whole_parse(tmp_path: Path) -> None:
    """The crafted nested marker still yields exactly the attacker's record through `scan_file`."""
    records = [_record(0, "AKIAOTHER00000000001", extra={"eventVersion": "x", "k": KEY}), _record(1, KEY)]
    path = tmp_path / "trail.json.gz"
    path.write_bytes(gzip.compress(_file(records), mtime=0))
    principals = PrincipalSet.from_values([KEY])
    job = ScanJob(
        (FileRef(str(path), path.stat().st_size),),
        principals,
        TokenMatcher(principals.tokens()),
        TimeWindow.parse("2024-08-01", "2024-08-04"),
        None,
        count_events=True,
    )
    outcome = scan_file(job.files[0], job, None)
    assert outcome.error is None
    assert outcome.events == 2
    assert outcome.matched == [records[1]]


_PIECES = ["{", "}", '"', "[", "]", ",", ":", "\\", "e", " ", "\n", "eventVersion", '{"eventVersion"', KEY]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _TEXT), min_size=1, max_size=12))
def test_located_records_equal_the_whole_parse(spec: list[tuple[bool, str]]) -> None:
    """Any string content, escapes and forged markers included: the located records are the whole parse's."""
    records = [
        _record(n, KEY if hit else f"AKIAOTHER{n:011d}", extra=text) for n, (hit, text) in enumerate(spec)
    ]
    assert _located(_file(records)) == _expected(records)

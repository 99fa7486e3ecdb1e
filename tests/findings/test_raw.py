"""`Finding.raw` is the finding as read: kept as its JSON line when it can be, equal to the decoded dict."""

from __future__ import annotations

import copy
import pickle

import orjson
import pytest

from eksir.findings import read_findings
from eksir.models.finding import Finding
from eksir.models.raw import RawFinding

from .conftest import FIXTURES

WIRE = FIXTURES / "iam-user.wire.json"


def _export_lines(count: int) -> bytes:
    finding = orjson.loads(WIRE.read_bytes())
    lines = []
    for number in range(count):
        finding["id"] = f"{number:032x}"
        lines.append(orjson.dumps(finding))
    return b"\n".join(lines) + b"\n"


def test_an_export_line_is_kept_as_text_and_decodes_to_the_line() -> None:
    data = _export_lines(3)
    findings = read_findings(data)
    for finding, line in zip(findings, data.splitlines(), strict=True):
        assert finding.raw._text == line  # not decoded yet: nothing looked at it
        assert finding.raw == orjson.loads(line)
        assert finding.raw["id"] == finding.id
        assert finding.raw._text is None  # decoded once, then kept


def test_other_forms_keep_the_wire_dict() -> None:
    """A boto3-cased finding is re-keyed to wire casing: raw is that wire dict, as before."""
    boto3 = read_findings(FIXTURES / "iam-user.boto3.json")[0]
    assert boto3.raw._text is None
    assert set(boto3.raw) == set(read_findings(WIRE)[0].raw)
    assert "resource" in boto3.raw
    assert "Resource" not in boto3.raw


def test_json_round_trip_and_copies_keep_raw() -> None:
    finding = read_findings(_export_lines(1))[0]
    document = finding.model_dump(mode="json")
    assert document["raw"] == orjson.loads(_export_lines(1))
    again = Finding.model_validate_json(finding.model_dump_json())
    assert again == finding
    assert isinstance(again.raw, RawFinding)
    assert pickle.loads(pickle.dumps(finding)) == finding
    assert copy.deepcopy(finding).raw == finding.raw


def test_raw_is_read_only_and_refuses_non_objects() -> None:
    raw = RawFinding({"a": 1})
    with pytest.raises(TypeError):
        raw["a"] = 2  # type: ignore[index]
    with pytest.raises(ValueError, match="JSON object"):
        Finding.model_validate({**read_findings(WIRE)[0].model_dump(), "raw": [1, 2]})
    with pytest.raises(TypeError):
        RawFinding({"a": 1}, text=b'{"a": 1}')

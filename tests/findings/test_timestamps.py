"""Every timestamp form seen in GuardDuty data becomes the same aware UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eksir.findings import parse_timestamp, read_findings

INSTANT = datetime(2023, 3, 22, 20, 48, 25, 752000, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2023-03-22T20:48:25.752Z",
        "2023-03-22T20:48:25.752+00:00",
        "2023-03-22T20:48:25.752",
        "2023-03-22T15:48:25.752000-05:00",
        "2023-03-22 15:48:25.752000-05:00",
        1679518105.752,
        "1679518105.752",
        "1.679518105752E9",
        1679518105752,
        1679518105752000,
    ],
)
def test_every_form_parses_to_the_same_utc_instant(value: Any) -> None:
    parsed = parse_timestamp(value)
    assert parsed == INSTANT
    assert parsed is not None
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value", [None, True, "", "yesterday", "2023-13-45T00:00:00Z", -1, 1e30, float("nan"), [], {}]
)
def test_unreadable_values_give_none_instead_of_failing(value: Any) -> None:
    assert parse_timestamp(value) is None


def test_unparseable_cluster_timestamp_keeps_the_rest_of_the_finding_and_the_raw_value() -> None:
    data = (
        b'{"id":"a1","type":"PrivilegeEscalation:Kubernetes/PrivilegedContainer","createdAt":"soon",'
        b'"resource":{"eksClusterDetails":{"name":"c","createdAt":"not a time"}}}'
    )
    [finding] = read_findings(data)
    assert finding.created_at is None
    assert finding.cluster is not None
    assert finding.cluster.created_at is None
    assert finding.raw["resource"]["eksClusterDetails"]["createdAt"] == "not a time"

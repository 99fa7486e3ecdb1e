"""A CloudTrail file's delivery time comes from the stamp in its name, and only from a real time."""

from __future__ import annotations

from datetime import UTC, datetime

from eksir.hunt.sources.files import delivery_time


def test_the_stamp_in_a_cloudtrail_file_name_is_its_delivery_time_in_utc() -> None:
    name = "111122223333_CloudTrail_us-east-1_20240803T0705Z_f64ddf4c5c302586.json.gz"
    assert delivery_time(name) == datetime(2024, 8, 3, 7, 5, tzinfo=UTC)


def test_a_name_without_a_stamp_or_with_an_impossible_one_has_no_delivery_time() -> None:
    assert delivery_time("events.json.gz") is None
    assert delivery_time("111122223333_CloudTrail_us-east-1_20241399T2561Z_f64.json.gz") is None

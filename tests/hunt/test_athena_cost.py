"""`eksir hunt ... --dry-run`: the partitions an Athena hunt reads, the bytes under them, price and limits.

The org trail's days around the new year are in moto's S3 (`org_bucket`; ListObjectsV2 gives the sizes).
The partitions the estimate selects must be the ones DuckDB's evaluation of the generated query's partition
predicates admits (`athena_sql`), for windows that cross UTC day, month and year boundaries, and the bytes
the sum of the objects under them. moto reports 0 bytes scanned and enforces no workgroup limit, so the
budget checks are eksir's own, before anything runs: these tests check eksir refuses, not that Athena would.
"""

from __future__ import annotations

import subprocess
import sys

import boto3
import duckdb
import orjson
import pytest

from eksir.errors import BadInputError, ExitCode, RefusedError
from eksir.hunt import cost, queries
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, athena_plan, estimate_athena
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.cloud import AthenaTarget
from eksir.hunt.window import TimeWindow
from tests.hunt import athena_sql, orgtrail
from tests.hunt.conftest import BUCKET, KEY, SOURCE
from tests.hunt.test_athena_sql import TABLE

pytestmark = pytest.mark.usefixtures("aws_env")


def _sizes_by_partition(moto_url: str) -> dict[tuple[str, str, str], int]:
    """Every object of the bucket, totalled by the partition its key falls in (listed independently)."""
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    totals: dict[tuple[str, str, str], int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            found = KEY.match(obj["Key"])
            if found:
                key = (found.group(1), found.group(2), found.group(3))
                totals[key] = totals.get(key, 0) + obj["Size"]
    return totals


WINDOWS = [
    ("2023-12-31T23:30:00Z", "2024-01-01T00:10:00Z"),  # minutes across the new year
    ("2023-12-30T22:00:00Z", "2023-12-30T23:59:59Z"),  # one day, its late delivery in the next folder
    ("2023-11-29T00:00:00Z", "2023-12-30T00:00:00Z"),  # month boundary, before the uploaded days begin
    ("2023-12-30T00:00:00Z", "2024-01-03T23:59:59Z"),  # every uploaded day, and the empty one after
]


@pytest.mark.parametrize(("since", "until"), WINDOWS)
def test_the_estimate_reads_the_partitions_duckdb_needed_and_their_bytes(
    moto_url: str, org_bucket: orgtrail.OrgTrail, since: str, until: str
) -> None:
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    options = HuntOptions(
        athena=AthenaTarget("primary", "s3://r/"), athena_table=TABLE, regions=orgtrail.REGIONS
    )
    principals, window = PrincipalSet.from_values([orgtrail.STOLEN_KEY]), TimeWindow.parse(since, until)
    found = estimate_athena(principals, [SOURCE], window, access=access, options=options)
    plan = athena_plan(principals, [SOURCE], access, options)
    assert plan.accounts == list(orgtrail.ACCOUNTS)  # listed from the trail, the odd folder left out
    con = duckdb.connect()
    needed = athena_sql.needed_partitions(con, plan.ddl, queries.athena_query(TABLE, principals, window))
    assert [(p.account, p.region, p.timestamp) for p in found.partitions] == needed
    sizes = _sizes_by_partition(moto_url)
    assert found.total_bytes == sum(sizes.get(p, 0) for p in needed)
    assert {(p.account, p.region, p.timestamp): n for p, n in found.bytes_by_partition.items()} == {
        p: sizes.get(p, 0) for p in needed
    }
    assert found.billed_bytes == max(found.total_bytes, cost.MIN_BILLED_BYTES)  # tiny trail: the 10 MB floor
    assert found.price == pytest.approx(cost.MIN_BILLED_BYTES / cost.TB * 5.0)


def test_the_workgroup_limit_is_read_and_a_query_over_it_refused(
    moto_url: str, org_bucket: orgtrail.OrgTrail
) -> None:
    athena = boto3.client("athena", endpoint_url=moto_url, region_name="us-east-1")
    athena.create_work_group(
        Name="capped",
        Configuration={"BytesScannedCutoffPerQuery": 10_000_000, "EnforceWorkGroupConfiguration": True},
    )
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    options = HuntOptions(athena=AthenaTarget("capped", "s3://r/"), regions=orgtrail.REGIONS)
    window = TimeWindow.parse(*WINDOWS[-1])
    found = estimate_athena(
        PrincipalSet.from_values([orgtrail.STOLEN_KEY]), [SOURCE], window, access=access, options=options
    )
    assert found.workgroup_limit == 10_000_000
    cost.check_budget(found, None)  # the whole tiny trail is under the cutoff
    first = found.partitions[0]
    found.bytes_by_partition[first] = 10_000_001  # as if that day held more than the cutoff
    with pytest.raises(RefusedError, match="over the workgroup's per-query limit of 10000000 bytes"):
        cost.check_budget(found, None)


def _eksir(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", "from eksir.cli.app import main; main()", *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)


def test_cli_dry_run_prints_the_estimate_and_a_budget_refuses(
    moto_url: str, org_bucket: orgtrail.OrgTrail
) -> None:
    common = [
        "hunt", "-p", orgtrail.STOLEN_KEY, "--since", WINDOWS[0][0], "--until", WINDOWS[0][1], "-s", SOURCE,
        "--athena-workgroup", "primary", "--athena-output", "s3://r/", "--dry-run",
        "--region", "us-east-1", "--endpoint-url", moto_url,
    ]  # fmt: skip
    done = _eksir(*common, "-o", "json")
    assert done.returncode == 0, done.stderr
    shown = orjson.loads(done.stdout)
    sizes = _sizes_by_partition(moto_url)
    days = ("2023/12/31", "2024/01/01", "2024/01/02")
    expected = [(a, r, d) for a in orgtrail.ACCOUNTS for r in orgtrail.REGIONS for d in days]
    assert sorted((p["account"], p["region"], p["timestamp"]) for p in shown["partitions"]) == sorted(
        expected
    )
    assert shown["bytes"] == sum(sizes.get(p, 0) for p in expected) > 0
    refused = _eksir(*common, "--max-scan-bytes", "1000")
    assert refused.returncode == ExitCode.REFUSED
    assert "over --max-scan-bytes of 1000 bytes" in refused.stderr
    assert f"{len(expected)} partition(s)" in refused.stdout  # the estimate is shown before the refusal
    assert "$5/TB" in refused.stdout


def test_prices_come_from_the_shipped_table_and_an_unknown_region_asks_for_a_rate() -> None:
    assert cost.price_for("us-west-1", None) == cost.prices()["us-west-1"] == 6.75
    assert cost.price_for("xx-nowhere-1", 4.5) == 4.5
    with pytest.raises(BadInputError, match="give --athena-price-per-tb"):
        cost.price_for("xx-nowhere-1", None)

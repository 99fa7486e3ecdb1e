"""What an Athena hunt will read and cost, known before it runs.

Athena bills by bytes scanned, and an organisation trail holds terabytes; a responder under pressure must see
the bill (and be stopped by a budget) before the query starts, not after. Partition projection makes the read
set computable offline: the table's enum of accounts and regions times every day the query's `"timestamp"`
bound admits (`queries.athena_query`: from the window's first day to the day after its last, for late
delivery). The bytes are the sizes S3 lists under those prefixes (ListObjectsV2), which is what Athena reads
for a JSON table: it cannot skip inside gzip. Athena rounds each query up to 10 MB.

These checks are ours, client-side: moto reports 0 bytes scanned and enforces no per-query limit, and even
real Athena only enforces a workgroup's cutoff after it has read (and billed) up to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import TYPE_CHECKING

import yaml

from eksir.clients.aws import translate_client_error
from eksir.errors import BadInputError, EksirError, RefusedError
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.window import TimeWindow

if TYPE_CHECKING:
    from types_boto3_athena.client import AthenaClient
    from types_boto3_s3.client import S3Client

#: The $/TB rates by region ship as data (`hunt/athena-prices.yaml`); `--athena-price-per-tb` overrides.
PRICES_FILE = "athena-prices.yaml"
MB = 1024 * 1024
MIN_BILLED_BYTES = 10 * MB
TB = 1024**4


@dataclass(frozen=True, order=True)
class Partition:
    """One projected partition: the values of the table's (account, region, timestamp) keys."""

    account: str
    region: str
    day: date

    @property
    def timestamp(self) -> str:
        """The `timestamp` partition value (projection format yyyy/MM/dd)."""
        return f"{self.day:%Y/%m/%d}"

    def prefix(self, trail_prefix: str) -> str:
        """The S3 key prefix `storage.location.template` maps this partition to."""
        return f"{self.region_prefix(trail_prefix)}{self.timestamp}/"

    def region_prefix(self, trail_prefix: str) -> str:
        """The key prefix of the account's and region's day folders."""
        return f"{trail_prefix}{self.account}/CloudTrail/{self.region}/"


def query_days(window: TimeWindow) -> list[date]:
    """The days `athena_query`'s partition bound admits: first day of the window to the day after its last."""
    first, last = window.since.date(), window.until.date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def partitions(accounts: Sequence[str], regions: Sequence[str], window: TimeWindow) -> list[Partition]:
    """Every partition the hunt query reads, in order."""
    days = query_days(window)
    return sorted(Partition(a, r, d) for a in accounts for r in regions for d in days)


@dataclass
class Estimate:
    """The dry-run's answer: the partitions, the bytes under each, the price, and the limits applied."""

    partitions: list[Partition]
    bytes_by_partition: dict[Partition, int] = field(default_factory=dict)
    objects: int = 0
    price_per_tb: float = 5.0
    workgroup_limit: int | None = None

    @property
    def total_bytes(self) -> int:
        """Sum of the object sizes under the selected partitions."""
        return sum(self.bytes_by_partition.values())

    @property
    def billed_bytes(self) -> int:
        """What Athena bills: rounded up to the megabyte, at least 10 MB per query."""
        return max(math.ceil(self.total_bytes / MB) * MB, MIN_BILLED_BYTES)

    @property
    def price(self) -> float:
        """USD at the rate per TB."""
        return self.billed_bytes / TB * self.price_per_tb

    def as_dict(self) -> dict[str, object]:
        """JSON form for `--dry-run -o json` and the case record."""
        return {
            "partitions": [
                {"account": p.account, "region": p.region, "timestamp": p.timestamp, "bytes": n}
                for p, n in sorted(self.bytes_by_partition.items())
            ],
            "objects": self.objects,
            "bytes": self.total_bytes,
            "billed_bytes": self.billed_bytes,
            "price_per_tb_usd": self.price_per_tb,
            "price_usd": round(self.price, 6),
            "workgroup_bytes_limit": self.workgroup_limit,
        }


def estimate(
    access: AwsAccess, bucket: str, trail_prefix: str, selected: list[Partition], price_per_tb: float
) -> Estimate:
    """Total the object sizes under the selected partitions.

    One ListObjectsV2 walk per (account, region), starting after the first day's folder and stopping past
    the last (keys sort by day): a year of an org trail is not listed to price a week of it.
    Raises PermissionDeniedError / NotFoundError / TemporaryError (`clients.aws.translate_client_error`).
    """
    client: S3Client = access.client("s3")
    result = Estimate(selected, price_per_tb=price_per_tb)
    wanted: dict[tuple[str, str], dict[str, Partition]] = {}
    for partition in selected:
        result.bytes_by_partition[partition] = 0
        wanted.setdefault((partition.account, partition.region), {})[partition.timestamp] = partition
    for days in wanted.values():
        prefix = next(iter(days.values())).region_prefix(trail_prefix)
        try:
            _total_days(client, bucket, prefix, days, result)
        except Exception as exc:
            raise translate_client_error(exc, f"listing s3://{bucket}/{prefix}") from exc
    return result


def _total_days(
    client: S3Client, bucket: str, prefix: str, days: dict[str, Partition], result: Estimate
) -> None:
    """Add the sizes of the objects in `days` (yyyy/MM/dd folders under `prefix`) to `result`."""
    first, last = min(days), max(days)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, StartAfter=prefix + first
    )
    for page in pages:
        for obj in page.get("Contents", []):
            day = str(obj["Key"])[len(prefix) : len(prefix) + 10]
            if day > last:
                return
            if day in days:
                result.bytes_by_partition[days[day]] += int(obj.get("Size", 0))
                result.objects += 1


def workgroup_limit(client: AthenaClient, workgroup: str) -> int | None:
    """The workgroup's per-query data usage control (BytesScannedCutoffPerQuery), None when unset.

    Raises NotFoundError for a missing workgroup and the other `translate_client_error` errors.
    """
    try:
        config = client.get_work_group(WorkGroup=workgroup)["WorkGroup"].get("Configuration", {})
    except Exception as exc:
        raise translate_client_error(exc, f"Athena workgroup {workgroup}") from exc
    limit = config.get("BytesScannedCutoffPerQuery")
    return int(limit) if limit else None


def check_budget(found: Estimate, max_scan_bytes: int | None) -> None:
    """Refuse (exit 12) a query that would read more than the budget or the workgroup's cutoff.

    A query over the workgroup's cutoff would be cancelled by Athena after reading (and billing) up to the
    cutoff, with a partial answer: refusing first is cheaper and never leaves half a hunt.
    """
    limits = [
        (max_scan_bytes, "--max-scan-bytes"),
        (found.workgroup_limit, "the workgroup's per-query limit"),
    ]
    for limit, name in limits:
        if limit is not None and found.total_bytes > limit:
            raise RefusedError(
                f"the Athena hunt would scan {found.total_bytes} bytes in {len(found.partitions)} "
                "partition(s), "
                f"over {name} of {limit} bytes: narrow --since/--until or the regions, or raise the limit"
            )


def prices() -> dict[str, float]:
    """The shipped $/TB rates by region; EksirError if the data file is malformed."""
    text = resources.files("eksir.hunt").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict) or not all(isinstance(v, int | float) for v in loaded.values()):
        raise EksirError(f"{PRICES_FILE} is not a mapping of region to USD per TB")
    return {str(region): float(rate) for region, rate in loaded.items()}


def price_for(region: str | None, override: float | None) -> float:
    """The $/TB rate: the override, else the region's list price; BadInputError for an unknown region."""
    if override is not None:
        return override
    rate = prices().get(region or "us-east-1")
    if rate is None:
        raise BadInputError(f"no Athena price known for region {region}: give --athena-price-per-tb")
    return rate


def megabytes(count: int) -> str:
    """Human size for the dry-run line."""
    return f"{count / 1024 / 1024:,.{0 if count >= 10 * 1024 * 1024 else 3}f} MiB" if count else "0 bytes"

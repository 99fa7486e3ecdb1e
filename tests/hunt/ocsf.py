"""CloudTrail records as Security Lake stores them: OCSF 1.1 API Activity (class 6003), Parquet, partitioned.

Security Lake (source version 2) converts CloudTrail management events to OCSF 1.1 and writes Parquet under
`.../region=<r>/accountId=<a>/eventDay=<yyyyMMdd>/`; its Glue tables expose `region`, `accountid` and
`eventday` as partition columns (Security Lake User Guide, "CloudTrail event logs in Security Lake",
docs.aws.amazon.com/security-lake/latest/userguide/cloudtrail-event-logs.html). The field mapping followed
is the OCSF project's for CloudTrail API Activity, OCSF 1.1.0 (github.com/ocsf/examples,
mappings/markdown/AWS/v1.1.0/CloudTrail): userIdentity.arn -> actor.user.uid, principalId ->
actor.user.uid_alt, accessKeyId ->
actor.user.credential_uid, userName -> actor.user.name, type -> actor.user.type, accountId ->
actor.user.account.uid, sessionContext.sessionIssuer.arn -> actor.session.issuer, invokedBy ->
actor.invoked_by, eventName -> api.operation, eventSource -> api.service.name, requestID -> api.request.uid,
requestParameters -> api.request.data, responseElements -> api.response.data, errorCode ->
api.response.error, awsRegion -> cloud.region, recipientAccountId -> cloud.account.uid, sourceIPAddress ->
src_endpoint.ip, userAgent -> http_request.user_agent, eventID -> metadata.uid, eventTime -> time / time_dt.
Only the members the hunt reads are written; the rest of an OCSF event is beside the point here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_S = pa.string()
SCHEMA = pa.schema(
    [
        ("class_uid", pa.int32()),
        ("time", pa.int64()),
        ("time_dt", pa.timestamp("ms", tz="UTC")),
        ("metadata", pa.struct([("uid", _S), ("product", pa.struct([("name", _S), ("vendor_name", _S)]))])),
        (
            "api",
            pa.struct(
                [
                    ("operation", _S),
                    ("service", pa.struct([("name", _S)])),
                    ("request", pa.struct([("uid", _S), ("data", _S)])),
                    ("response", pa.struct([("data", _S), ("error", _S), ("message", _S)])),
                ]
            ),
        ),
        (
            "actor",
            pa.struct(
                [
                    (
                        "user",
                        pa.struct(
                            [
                                ("uid", _S),
                                ("uid_alt", _S),
                                ("credential_uid", _S),
                                ("name", _S),
                                ("type", _S),
                                ("account", pa.struct([("uid", _S)])),
                            ]
                        ),
                    ),
                    ("session", pa.struct([("issuer", _S)])),
                    ("invoked_by", _S),
                ]
            ),
        ),
        ("cloud", pa.struct([("region", _S), ("account", pa.struct([("uid", _S)])), ("provider", _S)])),
        ("src_endpoint", pa.struct([("ip", _S)])),
        ("http_request", pa.struct([("user_agent", _S)])),
    ]
)


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def to_ocsf(record: dict[str, Any]) -> dict[str, Any]:
    """One CloudTrail record as an OCSF 1.1 API Activity event (the members the module docstring lists)."""
    ident = record.get("userIdentity") or {}
    when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    issuer = ((ident.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    return {
        "class_uid": 6003,
        "time": int(when.timestamp() * 1000),
        "time_dt": when,
        "metadata": {"uid": record["eventID"], "product": {"name": "CloudTrail", "vendor_name": "AWS"}},
        "api": {
            "operation": record.get("eventName"),
            "service": {"name": record.get("eventSource")},
            "request": {"uid": record.get("requestID"), "data": _text(record.get("requestParameters"))},
            "response": {
                "data": _text(record.get("responseElements")),
                "error": record.get("errorCode"),
                "message": record.get("errorMessage"),
            },
        },
        "actor": {
            "user": {
                "uid": ident.get("arn"),
                "uid_alt": ident.get("principalId"),
                "credential_uid": ident.get("accessKeyId"),
                "name": ident.get("userName"),
                "type": ident.get("type"),
                "account": {"uid": ident.get("accountId")},
            },
            "session": {"issuer": issuer},
            "invoked_by": ident.get("invokedBy"),
        },
        "cloud": {
            "region": record.get("awsRegion"),
            "account": {"uid": record.get("recipientAccountId")},
            "provider": "AWS",
        },
        "src_endpoint": {"ip": record.get("sourceIPAddress")},
        "http_request": {"user_agent": record.get("userAgent")},
    }


def write_lake(records: list[dict[str, Any]], root: Path) -> list[Path]:
    """Write the records as Security Lake would: one Parquet file per region, account and event day."""
    by_partition: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        day = record["eventTime"][:10].replace("-", "")
        by_partition[(record["awsRegion"], record["recipientAccountId"], day)].append(to_ocsf(record))
    written = []
    for (region, account, day), events in sorted(by_partition.items()):
        folder = root / f"region={region}" / f"accountId={account}" / f"eventDay={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "part-0.parquet"
        pq.write_table(pa.Table.from_pylist(events, schema=SCHEMA), path)
        written.append(path)
    return written

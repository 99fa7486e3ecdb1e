"""The hunt through AWS query APIs: CloudTrail LookupEvents, Athena, and Logs Insights on EKS audit logs.

LookupEvents needs no trail bucket (90 days of management events) but takes one attribute per call and is
rate-limited (2 requests/s per account and region): one paginated call per access key and user name,
botocore's adaptive retries absorbing throttling. Athena runs the generated DDL and hunt query in the given
workgroup. Logs Insights gets the regex query; because moto (and a careless regex) can return more than
asked, every returned audit event is matched again locally.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eksir.clients.aws import translate_client_error
from eksir.errors import EksirError, TemporaryError
from eksir.hunt.athena import AthenaAnswer
from eksir.hunt.decode import unwrap
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.window import TimeWindow

if TYPE_CHECKING:
    from types_boto3_athena.client import AthenaClient
    from types_boto3_cloudtrail.client import CloudTrailClient
    from types_boto3_cloudtrail.type_defs import LookupAttributeTypeDef

_DONE = {"SUCCEEDED", "FAILED", "CANCELLED", "Complete", "Failed", "Cancelled", "Timeout"}


def lookup_attributes(principals: PrincipalSet) -> list[LookupAttributeTypeDef]:
    """One LookupEvents attribute per access key id and IAM user name (the API takes one at a time)."""
    attributes: list[LookupAttributeTypeDef] = [
        {"AttributeKey": "AccessKeyId", "AttributeValue": k} for k in sorted(principals.access_key_ids)
    ]
    names = principals.user_names | {a.rsplit("/", 1)[-1] for a in principals.user_arns}
    names |= {a.rsplit("/", 1)[-1] for a in principals.session_arns}
    attributes += [{"AttributeKey": "Username", "AttributeValue": n} for n in sorted(names)]
    return attributes


def lookup_events(
    client: CloudTrailClient, principals: PrincipalSet, window: TimeWindow
) -> Iterator[dict[str, Any]]:
    """Every record LookupEvents returns for the principals, deduplicated by event id, matched exactly.

    Raises PermissionDeniedError / TemporaryError / EksirError (see `clients.aws.translate_client_error`).
    """
    seen: set[str] = set()
    for attribute in lookup_attributes(principals):
        try:
            pages = client.get_paginator("lookup_events").paginate(
                LookupAttributes=[attribute], StartTime=window.since, EndTime=window.until
            )
            for page in pages:
                for item in page.get("Events", []):
                    record = unwrap(item)
                    event_id = str(item.get("EventId") or (record or {}).get("eventID") or "")
                    if record is None or event_id in seen:
                        continue
                    seen.add(event_id)
                    if principals.match(record):
                        yield record
        except EksirError:
            raise
        except Exception as exc:
            raise translate_client_error(
                exc, f"CloudTrail LookupEvents {attribute['AttributeValue']}"
            ) from exc


@dataclass(frozen=True)
class AthenaTarget:
    """Where Athena runs: workgroup, result location, database; and the budget it runs under."""

    workgroup: str
    output: str
    database: str = "default"
    max_scan_bytes: int | None = None
    """Refuse (exit 12) a hunt whose estimate is over this many bytes."""
    price_per_tb: float | None = None
    """USD per TB scanned; None: the region's list price (`hunt/athena-prices.yaml`)."""


def run_athena(
    client: AthenaClient,
    target: AthenaTarget,
    statement: str,
    *,
    poll: float = 1.0,
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> AthenaAnswer:
    """Run one statement in the workgroup; its execution id, rows (header first) and bytes scanned.

    Raises TemporaryError when the query does not finish in time, EksirError when it fails (a query the
    workgroup's byte cutoff cancelled fails here too, by name: its rows would be a partial answer).
    """
    try:
        started = client.start_query_execution(
            QueryString=statement,
            WorkGroup=target.workgroup,
            QueryExecutionContext={"Database": target.database},
            ResultConfiguration={"OutputLocation": target.output},
        )
        execution_id = str(started["QueryExecutionId"])
        scanned = _wait_athena(client, execution_id, poll, timeout, sleep)
        rows = _athena_rows(client, execution_id)
    except EksirError:
        raise
    except Exception as exc:
        raise translate_client_error(exc, "Athena query") from exc
    return AthenaAnswer(execution_id, rows, scanned)


def _wait_athena(
    client: AthenaClient, execution_id: str, poll: float, timeout: float, sleep: Callable[[float], None]
) -> int | None:
    """Poll until the query ends; the bytes it scanned (None when Athena does not say)."""
    waited = 0.0
    while True:
        execution = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        status = execution["Status"]
        state = str(status.get("State", ""))
        if state == "SUCCEEDED":
            scanned = execution.get("Statistics", {}).get("DataScannedInBytes")
            return int(scanned) if scanned is not None else None
        if state in _DONE:
            raise EksirError(f"Athena query {execution_id} {state}: {status.get('StateChangeReason', '')}")
        if waited >= timeout:
            raise TemporaryError(f"Athena query {execution_id} still {state} after {timeout:.0f}s")
        sleep(poll)
        waited += poll


def _athena_rows(client: AthenaClient, execution_id: str) -> list[list[str | None]]:
    """Every result row; a NULL cell (no VarCharValue) stays None, not an empty string."""
    rows: list[list[str | None]] = []
    for page in client.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        for row in page.get("ResultSet", {}).get("Rows", []):
            rows.append([cell.get("VarCharValue") for cell in row.get("Data", [])])
    return rows


def run_logs_insights(
    access: AwsAccess,
    log_group: str,
    query: str,
    window: TimeWindow,
    *,
    poll: float = 1.0,
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, list[str]]:
    """Start a Logs Insights query and return (query id, the @message strings).

    Raises NotFoundError when the log group does not exist, TemporaryError on timeout.
    """
    client = access.client("logs")
    try:
        query_id = str(
            client.start_query(
                logGroupName=log_group,
                startTime=int(window.since.timestamp()),
                endTime=math.ceil(window.until.timestamp()),
                queryString=query,
                limit=10000,
            )["queryId"]
        )
        waited = 0.0
        while True:
            answer = client.get_query_results(queryId=query_id)
            status = str(answer.get("status", ""))
            if status == "Complete":
                break
            if status in _DONE:
                raise EksirError(f"Logs Insights query {query_id} ended {status}")
            if waited >= timeout:
                raise TemporaryError(f"Logs Insights query {query_id} still {status} after {timeout:.0f}s")
            sleep(poll)
            waited += poll
    except EksirError:
        raise
    except Exception as exc:
        raise translate_client_error(exc, f"Logs Insights on {log_group}") from exc
    messages = []
    for row in answer.get("results", []):
        for cell in row:
            if cell.get("field") == "@message":
                messages.append(str(cell.get("value", "")))
    return query_id, messages

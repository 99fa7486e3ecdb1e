"""The hunt in Athena: rounds of the hunt query until the role chain is closed, rows back into records.

Why rounds: one query finds the calls of the principals it names, but an `AssumeRole` among them hands out a
session whose calls that query could not name. Like the local scan (`scan.Chainer`), the sessions the found
calls issued (AssumeRole*, GetSessionToken, GetFederationToken, AssumeRoleWithWebIdentity) are queried in the
next round, until a round issues nothing new. Each round is kept with its execution id and bytes scanned.

Why rebuild records: every other source yields CloudTrail records, and everything downstream (matching,
chaining, classification, resources and owners) reads records. The query returns the identity and resources
as JSON (Athena's lower-case column names); here they get CloudTrail's names back, so an event found by
Athena is the same `HuntEvent` as the one the local scan finds in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from eksir.hunt import queries
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.result import GeneratedQuery
from eksir.hunt.scan import Chainer
from eksir.hunt.window import TimeWindow

MAX_ROUNDS = 8

#: CloudTrail's names for the keys Athena's JsonSerDe lower-cased (the DDL's `useridentity` and `resources`).
_NAMES = {
    name.lower(): name
    for name in (
        *("type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName"),
        *("sessionContext", "attributes", "mfaAuthenticated", "creationDate", "sessionIssuer"),
        "sourceIdentity",
    )
}
#: A `resources` item spells its ARN in capitals (`{"ARN": ..., "accountId": ..., "type": ...}`).
_RESOURCE_NAMES = {"arn": "ARN", "accountid": "accountId", "type": "type"}
_TOP = {
    "eventtime": "eventTime",
    "eventsource": "eventSource",
    "eventname": "eventName",
    "awsregion": "awsRegion",
    "recipientaccountid": "recipientAccountId",
    "sourceipaddress": "sourceIPAddress",
    "useragent": "userAgent",
    "errorcode": "errorCode",
    "errormessage": "errorMessage",
    "eventid": "eventID",
}


@dataclass(frozen=True)
class AthenaAnswer:
    """One finished query: its execution id, result rows (header first) and bytes Athena reports scanned."""

    execution_id: str
    rows: list[list[str | None]]
    bytes_scanned: int | None = None


def _camel(value: Any, names: Mapping[str, str] = _NAMES) -> Any:
    """Keys back to CloudTrail's spelling, nulls dropped (a null member is an absent one in CloudTrail)."""
    if isinstance(value, Mapping):
        return {names.get(k, k): _camel(v, names) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_camel(v, names) for v in value]
    return value


def _json(text: str | None) -> Any:
    try:
        return orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return text


def rows_to_records(rows: list[list[str | None]]) -> list[dict[str, Any]]:
    """Athena result rows (header row first) as CloudTrail records."""
    if not rows:
        return []
    header = [str(h) for h in rows[0]]
    records = []
    for row in rows[1:]:
        cells = dict(zip(header, row, strict=False))
        record: dict[str, Any] = {
            name: cells[column] for column, name in _TOP.items() if cells.get(column) not in (None, "")
        }
        identity = _json(cells.get("useridentity_json"))
        if isinstance(identity, Mapping):
            record["userIdentity"] = _camel(identity)
        resources = _json(cells.get("resources_json"))
        if isinstance(resources, list):
            record["resources"] = _camel(resources, _RESOURCE_NAMES)
        for column, key in (
            ("requestparameters", "requestParameters"),
            ("responseelements", "responseElements"),
        ):
            record[key] = _json(cells.get(column))
        records.append(record)
    return records


#: Security Lake's OCSF columns (as `queries.security_lake_query` names them) -> CloudTrail's top-level keys.
_LAKE_TOP = {
    "eventid": "eventID",
    "eventname": "eventName",
    "eventsource": "eventSource",
    "awsregion": "awsRegion",
    "recipientaccountid": "recipientAccountId",
    "errorcode": "errorCode",
    "errormessage": "errorMessage",
    "sourceipaddress": "sourceIPAddress",
    "useragent": "userAgent",
}
#: ... and -> `userIdentity` members (OCSF 1.1's CloudTrail mapping, inverted).
_LAKE_IDENTITY = {
    "usertype": "type",
    "principalid": "principalId",
    "arn": "arn",
    "useraccountid": "accountId",
    "accesskeyid": "accessKeyId",
    "username": "userName",
    "invokedby": "invokedBy",
}


def _epoch_ms_to_iso(value: str | None) -> str | None:
    """OCSF `time` (epoch milliseconds; Athena returns a BIGINT as text) as CloudTrail's `eventTime`."""
    try:
        moment = datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _issuer(arn: str) -> dict[str, str]:
    """OCSF keeps only the session issuer's ARN; its name and account are read back from the ARN."""
    parts = arn.split(":")
    issuer = {"arn": arn, "type": "Role" if ":role/" in arn else "IAMUser" if ":user/" in arn else "Root"}
    if len(parts) > 4 and parts[4]:
        issuer["accountId"] = parts[4]
    issuer["userName"] = arn.rsplit("/", 1)[-1]
    return issuer


def lake_rows_to_records(rows: list[list[str | None]]) -> list[dict[str, Any]]:
    """Security Lake (OCSF 1.1 API Activity) result rows, header first, as CloudTrail records.

    What OCSF does not keep stays absent: the `resources` list (resources are then named from the request
    and response, as for a record without one) and the issuer's details other than its ARN.
    """
    if not rows:
        return []
    header = [str(h) for h in rows[0]]
    records = []
    for row in rows[1:]:
        cells = {k: v for k, v in zip(header, row, strict=False) if v not in (None, "")}
        record: dict[str, Any] = {name: cells[col] for col, name in _LAKE_TOP.items() if col in cells}
        when = _epoch_ms_to_iso(cells.get("time_ms"))
        if when:
            record["eventTime"] = when
        identity: dict[str, Any] = {name: cells[col] for col, name in _LAKE_IDENTITY.items() if col in cells}
        if cells.get("issuer_arn"):
            identity["sessionContext"] = {"sessionIssuer": _issuer(str(cells["issuer_arn"]))}
        if identity:
            record["userIdentity"] = identity
        record["requestParameters"] = _json(cells.get("requestparameters"))
        record["responseElements"] = _json(cells.get("responseelements"))
        records.append(record)
    return records


@dataclass(frozen=True)
class HuntTable:
    """Where the rounds run: a CloudTrail table (`athena`) or a Security Lake OCSF table (`security-lake`).

    The kind names the query each round sends and how its rows become records; everything after that
    (chaining, classification, owners) is the same for both.
    """

    name: str
    kind: str = "athena"

    def query(self, principals: PrincipalSet, window: TimeWindow) -> str:
        if self.kind == "security-lake":
            return queries.security_lake_query(self.name, principals, window)
        return queries.athena_query(self.name, principals, window)

    def records(self, rows: list[list[str | None]]) -> list[dict[str, Any]]:
        return lake_rows_to_records(rows) if self.kind == "security-lake" else rows_to_records(rows)


def minus(have: PrincipalSet, asked: PrincipalSet) -> PrincipalSet:
    """The principals in `have` not yet asked about; a node's addresses stay (they qualify its session)."""
    return PrincipalSet(
        **{
            name: getattr(have, name) - (getattr(asked, name) if name != "instance_ips" else frozenset())
            for name in PrincipalSet.model_fields
        }
    )


@dataclass
class Rounds:
    """What the rounds found: unique records, the grown principal set, each round's query, and whether the
    chain closed (False: `MAX_ROUNDS` ran out with sessions still unsearched, named in `unsearched`)."""

    chainer: Chainer
    queries: list[GeneratedQuery] = field(default_factory=list)
    closed: bool = True
    unsearched: list[str] = field(default_factory=list)


def hunt_rounds(
    principals: PrincipalSet,
    window: TimeWindow,
    table: str | HuntTable,
    execute: Callable[[str], AthenaAnswer],
    max_rounds: int = MAX_ROUNDS,
) -> Rounds:
    """Query, fold the records into the chain, query again for the sessions they issued: to a fixed point.

    `execute` runs one query and returns its answer (Athena in production; the tests hand DuckDB in); its
    errors propagate. Only the new principals are named in a later round: the earlier ones' rows are in.
    """
    where = table if isinstance(table, HuntTable) else HuntTable(table)
    found = Rounds(Chainer(principals))
    asked = PrincipalSet()
    for number in range(1, max_rounds + 1):
        todo = minus(found.chainer.principals, asked)
        if todo.is_empty():
            return found
        text = where.query(todo, window)
        answer = execute(text)
        asked = asked.union(todo)
        records = where.records(answer.rows)
        found.chainer.add(records, where.kind)
        found.queries.append(
            GeneratedQuery(
                kind=where.kind,
                text=text,
                executed=True,
                execution_id=answer.execution_id,
                round=number,
                bytes_scanned=answer.bytes_scanned,
                rows=len(records),
            )
        )
    left = minus(found.chainer.principals, asked)
    found.closed = left.is_empty()
    found.unsearched = left.values()
    return found

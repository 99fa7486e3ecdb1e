"""The Athena hunt end to end against moto as a server: the rows DuckDB computed become the same events.

moto accepts Athena queries but does not run them (docs/moto-notes.md): it answers GetQueryResults from a
queue seeded through its `/moto-api/static/athena/query-results` endpoint. Here the queue holds exactly the
rows DuckDB produced for each round of the generated SQL (`test_athena_sql`), so the path under test is the
real one: StartQueryExecution in the workgroup, polling, paginated GetQueryResults with NULL cells, rows
rebuilt as records, chaining into the next round, classification, owners. moto reports 0 bytes scanned and
enforces no workgroup limit; the cost checks are client-side (`hunt.cost`) and tested in test_athena_cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import requests

from eksir.hunt import queries
from eksir.hunt.athena import hunt_rounds
from eksir.hunt.case import record_hunt
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.result import HuntEvent, HuntResult
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.cloud import AthenaTarget
from eksir.hunt.window import TimeWindow
from eksir.store import CaseStore
from eksir.store.verify import verify_case
from tests.factories import make_finding
from tests.hunt import athena_sql
from tests.hunt.test_athena_sql import TABLE, executor

pytestmark = pytest.mark.usefixtures("aws_env")


def _seed(moto_url: str, results: list[list[list[str | None]]]) -> None:
    """Queue result sets in moto, in the order the queries will ask for them (header row first)."""
    body = {
        "results": [
            {
                "rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows],
                "column_info": [{"Name": str(name), "Type": "varchar"} for name in rows[0]] if rows else [],
            }
            for rows in results
        ]
    }
    answer = requests.post(f"{moto_url}/moto-api/static/athena/query-results", json=body, timeout=10)
    assert answer.status_code == 201


def _upload(moto_url: str, bucket: str, tree: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for path in tree.rglob("*.json.gz"):
        s3.put_object(Bucket=bucket, Key=path.relative_to(tree).as_posix(), Body=path.read_bytes())


def _comparable(event: HuntEvent) -> dict[str, Any]:
    """An event without where it was found and the raw record (Athena returns only the queried columns)."""
    return event.model_dump(exclude={"raw", "found_in"})


def _local(tree: Path, principals: PrincipalSet, window: TimeWindow, cmdb: Path) -> HuntResult:
    return run_hunt(principals, [str(tree)], window, options=HuntOptions(workers=1, cmdb=cmdb))


def test_athena_rows_become_the_events_the_local_scan_finds(
    moto_url: str, tree: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    principals = PrincipalSet.from_values([truth["principal"]])
    window = TimeWindow.parse(truth["since"], truth["until"])
    cmdb = tmp_path / "cmdb.csv"
    cmdb.write_text(
        "arn,application,owner,team\narn:aws:iam::111122223333:*,iam,identity-team@example.com,id\n"
    )
    ddl = queries.athena_ddl(TABLE, "s3://trail-e2e", ["111122223333"], ["us-east-1"])
    con = duckdb.connect()
    athena_sql.load_table(con, ddl, tree, TABLE)
    expected = hunt_rounds(principals, window, TABLE, executor(con))
    answers = [executor(con)(q.text).rows for q in expected.queries]
    _upload(moto_url, "trail-e2e", tree)
    _seed(moto_url, [[], *answers])  # the DDL's (empty) result, then each round's rows
    result = run_hunt(
        principals,
        ["s3://trail-e2e/"],
        window,
        access=AwsAccess(region="us-east-1", endpoint_url=moto_url),
        options=HuntOptions(
            athena=AthenaTarget("primary", "s3://athena-results/e2e/"), athena_table=TABLE, cmdb=cmdb
        ),
    )
    local = _local(tree, principals, window, cmdb)
    assert {e.event_id for e in result.events} == set(truth["event_ids"])
    assert [_comparable(e) for e in result.events] == [_comparable(e) for e in local.events]
    assert {e.found_in for e in result.events} == {"athena"}
    assert result.owners == local.owners
    assert result.owners
    assert result.counts_by_category() == local.counts_by_category()
    assert sorted(result.chained_principals) == sorted(local.chained_principals)
    rounds = [q for q in result.queries if q.kind == "athena"]
    assert [(q.round, q.text, q.rows) for q in rounds] == [
        (q.round, q.text, q.rows) for q in expected.queries
    ]
    athena = boto3.client("athena", endpoint_url=moto_url, region_name="us-east-1")
    for query in rounds:
        sent = athena.get_query_execution(QueryExecutionId=str(query.execution_id))["QueryExecution"]
        assert sent["Query"] == query.text
        assert query.bytes_scanned == sent["Statistics"]["DataScannedInBytes"] == 0  # moto: always 0
    assert [s.kind for s in result.sources] == ["athena"]  # the bucket was queried, not downloaded
    _rounds_are_recorded_in_the_case(tmp_path, result)
    assert result.athena_estimate is not None
    assert result.athena_estimate["bytes"] > 0


def _rounds_are_recorded_in_the_case(tmp_path: Path, result: HuntResult) -> None:
    """Each round's execution id and bytes scanned are in the case's log, and the whole result as evidence."""
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(make_finding(), b"{}", "test")
    record_hunt(handle, result)
    (logged,) = [e for e in handle.log.events() if e.type == "hunt.completed"]
    rounds = [q for q in result.queries if q.kind == "athena"]
    assert logged.data["athena_rounds"] == [
        {"round": q.round, "execution_id": q.execution_id, "bytes_scanned": 0, "rows": q.rows} for q in rounds
    ]
    assert logged.data["accounts"] == {"111122223333": len(result.events)}
    assert verify_case(handle).ok


def test_an_athena_query_that_cannot_start_is_an_error_naming_athena(
    moto_url: str, tree: Path, truth: dict[str, Any]
) -> None:
    """A refused query ends the hunt with a one-line error, never an empty result read as 'nothing found'."""
    from eksir.errors import BadInputError

    with pytest.raises(BadInputError) as caught:
        run_hunt(
            PrincipalSet.from_values([truth["principal"]]),
            [],
            TimeWindow.parse(truth["since"], truth["until"]),
            access=AwsAccess(region="us-east-1", endpoint_url=moto_url),
            options=HuntOptions(athena=AthenaTarget("no-such-workgroup", "s3://r/")),
        )
    assert (
        str(caught.value)
        == "Athena query: rejected as invalid (InvalidRequestException: WorkGroup does not exist)"
    )

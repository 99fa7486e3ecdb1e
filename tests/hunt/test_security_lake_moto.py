"""`eksir hunt --security-lake-table` end to end against moto as a server: the Security Lake (OCSF) hunt run
in Athena, its rows rebuilt into the events the local scan finds in the same CloudTrail records.

moto accepts Athena queries but does not evaluate them (docs/moto-notes.md): GetQueryResults answers from a
queue seeded through `/moto-api/static/athena/query-results`. The queue holds exactly what DuckDB computed
for each round of eksir's OCSF SQL over Security Lake-shaped Parquet (`ocsf`) built from the lab's trail, so
what runs for real is eksir's path: StartQueryExecution in the workgroup, polling, paged results, OCSF rows
to records, the next round for the sessions found, classification, the JSON the user reads.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

from eksir.hunt.athena import HuntTable, hunt_rounds
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.window import TimeWindow
from tests.hunt import ocsf
from tests.hunt.test_athena_moto import _seed
from tests.hunt.test_athena_sql import executor

pytestmark = pytest.mark.usefixtures("aws_env")

TABLE = "amazon_security_lake_glue_db_us_east_1.amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0"


def _records(tree: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted(tree.rglob("*.json.gz")):
        records += json.loads(gzip.decompress(path.read_bytes()))["Records"]
    return records


def _lake_answers(tree: Path, tmp_path: Path, principals: PrincipalSet, window: TimeWindow) -> list[Any]:
    """Each round's rows, as DuckDB computes them over the lab trail written as Security Lake Parquet."""
    assert ocsf.write_lake(_records(tree), tmp_path / "lake")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA amazon_security_lake_glue_db_us_east_1")
    files = str(tmp_path / "lake" / "**" / "*.parquet").replace("'", "''")
    types = {"region": "VARCHAR", "accountId": "VARCHAR", "eventDay": "VARCHAR"}
    con.execute(
        f"CREATE VIEW {TABLE} AS SELECT * FROM "
        f"read_parquet('{files}', hive_partitioning = true, hive_types = {types!r})"
    )
    rounds = hunt_rounds(principals, window, HuntTable(TABLE, "security-lake"), executor(con))
    assert rounds.closed
    return [executor(con)(q.text).rows for q in rounds.queries]


def test_the_cli_hunts_security_lake_in_athena_and_finds_the_ground_truth(
    moto_url: str, tree: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    principals = PrincipalSet.from_values([truth["principal"]])
    window = TimeWindow.parse(truth["since"], truth["until"])
    answers = _lake_answers(tree, tmp_path, principals, window)
    _seed(moto_url, answers)
    argv = [sys.executable, "-c", "from eksir.cli.app import main; main()", "hunt", "-p", truth["principal"]]
    argv += ["--since", truth["since"], "--until", truth["until"], "--athena-workgroup", "primary"]
    argv += ["--athena-output", "s3://athena-results/lake/", "--security-lake-table", TABLE]
    argv += ["--endpoint-url", moto_url, "--region", "us-east-1", "-o", "json"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {e["event_id"] for e in result["events"]} == set(truth["event_ids"])
    assert {e["found_in"] for e in result["events"]} == {"security-lake"}
    rounds = [q for q in result["queries"] if q["kind"] == "security-lake"]
    assert len(rounds) == len(answers)
    assert all(q["executed"] for q in rounds)
    assert not [q for q in result["queries"] if q["kind"] in ("athena-ddl", "athena")]  # no trail bucket
    athena = boto3.client("athena", endpoint_url=moto_url, region_name="us-east-1")
    for query in rounds:
        sent = athena.get_query_execution(QueryExecutionId=query["execution_id"])["QueryExecution"]
        assert sent["Query"] == query["text"]
        assert f"FROM {TABLE}" in sent["Query"]
        assert sent["WorkGroup"] == "primary"


def test_a_security_lake_table_without_a_workgroup_is_not_a_source(truth: dict[str, Any]) -> None:
    argv = [sys.executable, "-c", "from eksir.cli.app import main; main()", "hunt", "-p", truth["principal"]]
    argv += ["--since", truth["since"], "--until", truth["until"], "--security-lake-table", "db.lake"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2  # nothing to hunt in: a printed query is not a source
    assert "--security-lake-table with --athena-workgroup" in done.stderr

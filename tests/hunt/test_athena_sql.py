"""The Athena hunt's SQL, executed: DuckDB runs the generated DDL's table and the hunt rounds over the same
files the local scan reads, and both must name the same events.

Athena is not available here and moto does not evaluate SQL; `athena_sql` transpiles (sqlglot, Trino ->
DuckDB) and builds the table from the DDL text itself (columns, partition template, projection enums). A
wrong JSON path, a case slip, a partition bound that drops the late-delivered day or an account missing from
the projection all show up as a difference from the local scan.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from eksir.hunt import cost, queries
from eksir.hunt.athena import AthenaAnswer, Rounds, hunt_rounds
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.window import TimeWindow
from tests.hunt import athena_sql, orgtrail

TABLE = "cloudtrail_logs_eksir"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> orgtrail.OrgTrail:
    return orgtrail.build(tmp_path_factory.mktemp("org"))


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def executor(con: duckdb.DuckDBPyConnection) -> Any:
    """Run one hunt query in DuckDB and answer as Athena does: a header row, then text cells (NULL: None)."""

    def execute(text: str) -> AthenaAnswer:
        columns, rows = athena_sql.run(con, text)
        cells = [[None if v is None else str(v) for v in row] for row in rows]
        return AthenaAnswer("duckdb", [list(columns), *cells], None)

    return execute


def duckdb_hunt(
    con: duckdb.DuckDBPyConnection, ddl: str, root: Path, principals: PrincipalSet, window: TimeWindow
) -> Rounds:
    athena_sql.load_table(con, ddl, root, TABLE)
    return hunt_rounds(principals, window, TABLE, executor(con))


def test_the_lab_tree_gives_the_ground_truth_through_duckdb(
    con: duckdb.DuckDBPyConnection, tree: Path, truth: dict[str, Any]
) -> None:
    ddl = queries.athena_ddl(TABLE, "s3://trail", ["111122223333"], ["us-east-1"])
    window = TimeWindow.parse(truth["since"], truth["until"])
    rounds = duckdb_hunt(con, ddl, tree, PrincipalSet.from_values([truth["principal"]]), window)
    assert set(rounds.chainer.records) == set(truth["event_ids"])
    assert rounds.closed
    assert [q.round for q in rounds.queries] == [1, 2, 3]  # the key, then each chained session
    assert set(truth["chained"]) <= rounds.chainer.principals.access_key_ids


def test_a_case_slip_in_a_json_path_is_caught(
    con: duckdb.DuckDBPyConnection, tree: Path, truth: dict[str, Any]
) -> None:
    """The harness is not lenient: a misspelt column fails, a partition filter that skips a day loses rows."""
    ddl = queries.athena_ddl(TABLE, "s3://trail", ["111122223333"], ["us-east-1"])
    athena_sql.load_table(con, ddl, tree, TABLE)
    window = TimeWindow.parse(truth["since"], truth["until"])
    good = queries.athena_query(TABLE, PrincipalSet.from_values([truth["principal"]]), window)
    _columns, rows = athena_sql.run(con, good)
    assert rows
    with pytest.raises(duckdb.BinderException):
        athena_sql.run(con, good.replace("useridentity.accesskeyid", "useridentity.accessKeyID_typo"))
    skips_a_day = good.replace("BETWEEN '2024/08/01' AND '2024/08/04'", "IN ('2024/08/01', '2024/08/03')")
    assert skips_a_day != good
    assert not athena_sql.run(con, skips_a_day)[1]  # every call of the key sits in the 08/02 folder


WINDOWS = [
    ("2023-12-05T00:00:00Z", "2024-01-13T23:59:59Z"),  # all 40 days
    ("2023-12-25T23:00:00Z", "2023-12-26T00:30:00Z"),  # the 23:56 AssumeRole, delivered after midnight
    ("2023-12-31T12:00:00Z", "2024-01-02T00:00:00Z"),  # month and year boundary
    ("2024-01-01T23:59:00Z", "2024-01-02T23:59:59Z"),  # starts a minute after the second chain
    ("2023-11-28T00:00:00Z", "2023-12-06T02:00:00Z"),  # starts before the trail does
    ("2023-12-30T00:00:00Z", "2024-01-13T23:59:59Z"),
]
PRINCIPALS: list[list[str] | PrincipalSet] = [
    PrincipalSet.for_instance(orgtrail.NODE, orgtrail.NODE_IPS),
    [orgtrail.STOLEN_KEY],
    [f"arn:aws:sts::{orgtrail.ACCOUNTS[1]}:assumed-role/org-admin/x1"],
    [f"arn:aws:iam::{orgtrail.ACCOUNTS[2]}:role/data-reader"],
]
REGION_SETS = [orgtrail.REGIONS, ("us-east-1",), ("us-west-2", "eu-west-1")]


def _local_ids(
    root: Path, principals: PrincipalSet, window: TimeWindow, regions: tuple[str, ...]
) -> set[str]:
    """The local scan, over the same accounts and regions the projection covers."""
    sources = [
        str(root / "AWSLogs" / orgtrail.ORG / account / "CloudTrail" / region)
        for account in orgtrail.ACCOUNTS
        for region in regions
        if (root / "AWSLogs" / orgtrail.ORG / account / "CloudTrail" / region).exists()
    ]
    result = run_hunt(principals, sources, window, options=HuntOptions(workers=1, regions=regions))
    return {str(e.event_id) for e in result.events}


def test_duckdb_and_the_local_scan_agree_across_principals_windows_and_regions(
    con: duckdb.DuckDBPyConnection, org: orgtrail.OrgTrail
) -> None:
    nonempty = 0
    for regions in REGION_SETS:
        ddl = queries.athena_ddl(
            TABLE, "s3://org-trail", list(orgtrail.ACCOUNTS), list(regions), orgtrail.ORG
        )
        athena_sql.load_table(con, ddl, org.root, TABLE)
        for values, (since, until) in itertools.product(PRINCIPALS, WINDOWS):
            principals = values if isinstance(values, PrincipalSet) else PrincipalSet.from_values(values)
            window = TimeWindow.parse(since, until)
            rounds = hunt_rounds(principals, window, TABLE, executor(con))
            local = _local_ids(org.root, principals, window, regions)
            assert set(rounds.chainer.records) == local, (principals.values(), since, until, regions)
            assert rounds.closed
            nonempty += bool(local)
            query = queries.athena_query(TABLE, principals, window)
            needed = athena_sql.needed_partitions(con, ddl, query)
            selected = cost.partitions(list(orgtrail.ACCOUNTS), list(regions), window)
            assert [(p.account, p.region, p.timestamp) for p in selected] == needed
    assert nonempty >= 25


def test_the_node_session_is_hunted_only_off_the_node(
    con: duckdb.DuckDBPyConnection, org: orgtrail.OrgTrail
) -> None:
    ddl = queries.athena_ddl(
        TABLE, "s3://org-trail", list(orgtrail.ACCOUNTS), list(orgtrail.REGIONS), orgtrail.ORG
    )
    window = TimeWindow.parse(*WINDOWS[0])
    node = PrincipalSet.for_instance(orgtrail.NODE, orgtrail.NODE_IPS)
    rounds = duckdb_hunt(con, ddl, org.root, node, window)
    assert set(rounds.chainer.records) == org.stolen_node_ids
    assert len(org.stolen_node_ids) == 2


def test_the_whole_org_trail_hunt_crosses_all_three_accounts(
    con: duckdb.DuckDBPyConnection, org: orgtrail.OrgTrail
) -> None:
    ddl = queries.athena_ddl(
        TABLE, "s3://org-trail", list(orgtrail.ACCOUNTS), list(orgtrail.REGIONS), orgtrail.ORG
    )
    window = TimeWindow.parse(*WINDOWS[0])
    rounds = duckdb_hunt(con, ddl, org.root, PrincipalSet.from_values([orgtrail.STOLEN_KEY]), window)
    assert set(rounds.chainer.records) == org.attacker_ids
    assert {r["recipientAccountId"] for r in rounds.chainer.records.values()} == set(orgtrail.ACCOUNTS)
    assert [q.round for q in rounds.queries] == [1, 2, 3]
    only_named = queries.athena_ddl(
        TABLE, "s3://org-trail", [orgtrail.ACCOUNTS[0]], list(orgtrail.REGIONS), orgtrail.ORG
    )
    partial = duckdb_hunt(con, only_named, org.root, PrincipalSet.from_values([orgtrail.STOLEN_KEY]), window)
    assert set(partial.chainer.records) < org.attacker_ids  # why the projection lists the trail's accounts


def test_a_chain_still_open_after_the_last_round_names_what_was_not_searched(
    con: duckdb.DuckDBPyConnection, tree: Path, truth: dict[str, Any]
) -> None:
    ddl = queries.athena_ddl(TABLE, "s3://trail", ["111122223333"], ["us-east-1"])
    athena_sql.load_table(con, ddl, tree, TABLE)
    window = TimeWindow.parse(truth["since"], truth["until"])
    rounds = hunt_rounds(
        PrincipalSet.from_values([truth["principal"]]), window, TABLE, executor(con), max_rounds=1
    )
    assert not rounds.closed
    assert truth["chained"][0] in rounds.unsearched
    assert set(rounds.chainer.records) < set(truth["event_ids"])

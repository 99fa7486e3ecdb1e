"""The Security Lake (OCSF) variant of the hunt, executed by DuckDB over OCSF Parquet built from the same
CloudTrail records the local scan reads: the same event ids, for every principal and window swept.

The Parquet follows Security Lake's layout and the OCSF 1.1 CloudTrail mapping (see `ocsf`); the query is
transpiled from Trino to DuckDB by sqlglot. Role chaining is taken from the local scan (the chained sessions
it found are hunted in the lake too): the lake query is one pass; `hunt.athena.hunt_rounds` runs the
CloudTrail table's rounds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from eksir.hunt import queries
from eksir.hunt.athena import HuntTable, Rounds, hunt_rounds, lake_rows_to_records
from eksir.hunt.classify import load_rules
from eksir.hunt.events import cloudtrail_event
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.result import HuntEvent
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.window import TimeWindow
from tests.hunt import athena_sql, ocsf, orgtrail
from tests.hunt.test_athena_sql import executor

TABLE = "amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0"


@pytest.fixture(scope="module")
def lake(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[orgtrail.OrgTrail, duckdb.DuckDBPyConnection]]:
    trail = orgtrail.build(tmp_path_factory.mktemp("org-lake"))
    root = tmp_path_factory.mktemp("lake")
    assert ocsf.write_lake(trail.records, root)
    con = duckdb.connect()
    types = {"region": "VARCHAR", "accountId": "VARCHAR", "eventDay": "VARCHAR"}
    files = str(root / "**" / "*.parquet").replace("'", "''")
    con.execute(
        f"CREATE VIEW {TABLE} AS SELECT * FROM "
        f"read_parquet('{files}', hive_partitioning = true, hive_types = {types!r})"
    )
    yield trail, con
    con.close()


WINDOWS = [
    ("2023-12-05T00:00:00Z", "2024-01-13T23:59:59Z"),
    ("2023-12-25T23:00:00Z", "2023-12-26T00:30:00Z"),
    ("2023-12-31T12:00:00Z", "2024-01-02T00:00:00Z"),
    ("2024-01-01T23:59:00Z", "2024-01-02T23:59:59Z"),
    ("2023-12-26T00:00:00Z", "2024-01-10T23:59:59Z"),
]
PRINCIPALS: list[list[str] | PrincipalSet] = [
    PrincipalSet.for_instance(orgtrail.NODE, orgtrail.NODE_IPS),
    [orgtrail.STOLEN_KEY],
    [f"arn:aws:sts::{orgtrail.ACCOUNTS[1]}:assumed-role/org-admin/x1"],
    [f"arn:aws:iam::{orgtrail.ACCOUNTS[2]}:role/data-reader"],
    ["arn:aws:iam::111111111111:user/build-bot"],
]


def test_the_lake_query_and_the_local_scan_name_the_same_events(
    lake: tuple[orgtrail.OrgTrail, duckdb.DuckDBPyConnection],
) -> None:
    trail, con = lake
    nonempty = 0
    for values, (since, until) in itertools.product(PRINCIPALS, WINDOWS):
        window = TimeWindow.parse(since, until)
        given = values if isinstance(values, PrincipalSet) else PrincipalSet.from_values(values)
        local = run_hunt(given, [str(trail.root)], window, options=HuntOptions(workers=1))
        hunted = (
            given.union(PrincipalSet.from_values(local.chained_principals))
            if local.chained_principals
            else given
        )
        columns, rows = athena_sql.run(con, queries.security_lake_query(TABLE, hunted, window))
        assert athena_sql.event_ids(columns, rows) == {str(e.event_id) for e in local.events}, (
            given.values(),
            since,
        )
        nonempty += bool(rows)
    assert nonempty >= 10


def test_the_whole_lake_hunt_is_the_attackers_calls_and_nothing_else(
    lake: tuple[orgtrail.OrgTrail, duckdb.DuckDBPyConnection],
) -> None:
    trail, con = lake
    chain = [orgtrail.STOLEN_KEY, orgtrail.CROSS_KEY, orgtrail.THIRD_KEY]
    window = TimeWindow.parse(*WINDOWS[0])
    columns, rows = athena_sql.run(
        con, queries.security_lake_query(TABLE, PrincipalSet.from_values(chain), window)
    )
    assert athena_sql.event_ids(columns, rows) == trail.attacker_ids
    one_day_short = queries.security_lake_query(TABLE, PrincipalSet.from_values(chain), window).replace(
        "eventday BETWEEN '20231205'", "eventday BETWEEN '20231206'"
    )
    assert athena_sql.event_ids(*athena_sql.run(con, one_day_short)) < trail.attacker_ids


def test_the_lake_parquet_has_the_security_lake_partitions(tmp_path: Path) -> None:
    record = {
        "eventTime": "2024-01-01T23:58:00Z",
        "eventID": "e-1",
        "awsRegion": "eu-west-1",
        "recipientAccountId": "333333333333",
        "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAX"},
    }
    (path,) = ocsf.write_lake([record], tmp_path)
    assert path.relative_to(tmp_path).parts[:3] == (
        "region=eu-west-1",
        "accountId=333333333333",
        "eventDay=20240101",
    )


def _lake_rounds(
    con: duckdb.DuckDBPyConnection, given: PrincipalSet, window: TimeWindow
) -> tuple[list[HuntEvent], Rounds]:
    """The lake hunt as eksir runs it in Athena (`HuntTable` "security-lake"), with DuckDB as the engine."""
    rounds = hunt_rounds(given, window, HuntTable(TABLE, "security-lake"), executor(con))
    book = load_rules("cloudtrail", ())
    principals = rounds.chainer.principals
    events = [cloudtrail_event(r, book, principals.match(r), "lake") for r in rounds.chainer.records.values()]
    return sorted(events, key=lambda e: (str(e.event_time), str(e.event_id))), rounds


def test_the_lake_rounds_find_the_chain_and_the_events_of_the_local_scan_on_their_own(
    lake: tuple[orgtrail.OrgTrail, duckdb.DuckDBPyConnection],
) -> None:
    """Unlike the one-pass test above, the chain is not borrowed from the local scan: the lake's rounds must
    follow the sessions (AssumeRole in the OCSF `api.response.data`) to the same fixed point, and the rows
    rebuilt from OCSF must classify as the CloudTrail records do."""
    trail, con = lake
    for values in PRINCIPALS:
        given = values if isinstance(values, PrincipalSet) else PrincipalSet.from_values(values)
        window = TimeWindow.parse(*WINDOWS[0])
        local = run_hunt(given, [str(trail.root)], window, options=HuntOptions(workers=1))
        events, rounds = _lake_rounds(con, given, window)
        assert rounds.closed
        assert [e.event_id for e in events if e.matched_on] == [e.event_id for e in local.events]
        assert [(e.action, e.principal, e.category, e.access_key_id, e.account_id) for e in events] == [
            (e.action, e.principal, e.category, e.access_key_id, e.account_id) for e in local.events
        ]
        chained = set(rounds.chainer.principals.values()) - set(given.values())
        assert chained == set(local.chained_principals)


def test_the_stolen_keys_chain_across_accounts_is_found_in_the_lake_alone(
    lake: tuple[orgtrail.OrgTrail, duckdb.DuckDBPyConnection],
) -> None:
    trail, con = lake
    window = TimeWindow.parse(*WINDOWS[0])
    events, rounds = _lake_rounds(con, PrincipalSet.from_values([orgtrail.STOLEN_KEY]), window)
    assert {str(e.event_id) for e in events} == trail.attacker_ids
    assert len(rounds.queries) >= 3  # the key, then the sessions it chained into, then nothing new
    assert {orgtrail.CROSS_KEY, orgtrail.THIRD_KEY} <= set(rounds.chainer.principals.values())


def test_ocsf_rows_rebuild_the_cloudtrail_members_the_hunt_reads() -> None:
    header = ["eventid", "time_ms", "eventname", "usertype", "arn", "issuer_arn", "responseelements"]
    row: list[str | None] = [
        "e-1",
        "1704153480000",
        "AssumeRole",
        "AssumedRole",
        "arn:aws:sts::111111111111:assumed-role/org-admin/x1",
        "arn:aws:iam::111111111111:role/org-admin",
        '{"credentials": {"accessKeyId": "ASIAX"}}',
    ]
    (record,) = lake_rows_to_records([header, row])
    assert record["eventTime"] == "2024-01-01T23:58:00Z"
    assert record["userIdentity"]["sessionContext"]["sessionIssuer"] == {
        "arn": "arn:aws:iam::111111111111:role/org-admin",
        "type": "Role",
        "accountId": "111111111111",
        "userName": "org-admin",
    }
    assert record["responseElements"] == {"credentials": {"accessKeyId": "ASIAX"}}
    assert "errorCode" not in record  # a NULL cell is an absent member, as in CloudTrail
    (garbled,) = lake_rows_to_records([header, ["e-2", "not-a-time", None, None, None, None, "{"]])
    assert "eventTime" not in garbled
    assert garbled["responseElements"] == "{"  # malformed JSON stays text, never raises

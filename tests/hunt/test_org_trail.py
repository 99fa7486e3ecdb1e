"""One command over a whole organisation trail: every account and region, results grouped by account.

`--org-trail s3://bucket/AWSLogs/o-xxxx/` is scanned where it lies (moto's S3 here) or, with a workgroup,
queried in Athena over a table whose projection lists the trail's own accounts and regions. moto does not
run the SQL: the Athena answer is the rows DuckDB computed for each round (as in test_athena_moto).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3
import duckdb
import orjson
import pytest

from eksir.errors import ExitCode
from eksir.hunt.athena import hunt_rounds
from eksir.hunt.case import record_hunt
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, athena_plan, run_hunt
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.cloud import AthenaTarget
from eksir.hunt.window import TimeWindow
from eksir.report import generate_report
from tests.hunt import athena_sql, orgtrail
from tests.hunt.conftest import SOURCE
from tests.hunt.test_athena_moto import _seed
from tests.hunt.test_athena_sql import TABLE, executor
from tests.report.case_builder import build_case

pytestmark = pytest.mark.usefixtures("aws_env")
KEYS = [orgtrail.STOLEN_KEY, orgtrail.CROSS_KEY, orgtrail.THIRD_KEY]
SINCE, UNTIL = "2023-12-30T00:00:00Z", "2024-01-03T12:00:00Z"


def _eksir(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", "from eksir.cli.app import main; main()", *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)


def _expected(trail: orgtrail.OrgTrail) -> dict[str, str]:
    """Event id -> account of the keys' calls in the window, from the generated records themselves."""
    window = TimeWindow.parse(SINCE, UNTIL)
    return {
        r["eventID"]: r["recipientAccountId"]
        for r in trail.records
        if r["userIdentity"].get("accessKeyId") in KEYS
        and window.contains(TimeWindow.parse(r["eventTime"]).since)
    }


def test_cli_org_trail_scans_every_account_and_region_and_groups_by_account(
    moto_url: str, org_bucket: orgtrail.OrgTrail
) -> None:
    keys = [arg for key in KEYS for arg in ("-p", key)]
    done = _eksir(
        "hunt", *keys, "--since", SINCE, "--until", UNTIL, "--org-trail", SOURCE, "-o", "json",
        "--region", "us-east-1", "--endpoint-url", moto_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    expected = _expected(org_bucket)
    assert {e["event_id"] for e in result["events"]} == set(expected)
    by_account = Counter(expected.values())
    assert [(g["account_id"], g["events"]) for g in result["accounts"]] == sorted(
        by_account.items(), key=lambda item: (-item[1], item[0])
    )
    assert len(result["accounts"]) == 3


def test_an_org_trail_without_its_organisation_id_is_bad_input() -> None:
    done = _eksir(
        "hunt", "-p", orgtrail.STOLEN_KEY, "--since", "1d", "--org-trail", "s3://b/AWSLogs/111111111111/"
    )
    assert done.returncode == ExitCode.BAD_INPUT
    assert "is not s3://bucket/[prefix/]AWSLogs/o-xxxx/" in done.stderr


def test_athena_over_the_org_trail_projects_its_accounts_and_regions_and_groups_by_account(
    moto_url: str, org_bucket: orgtrail.OrgTrail
) -> None:
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    options = HuntOptions(athena=AthenaTarget("primary", "s3://athena-results/org/"), athena_table=TABLE)
    principals, window = PrincipalSet.from_values(KEYS[:1]), TimeWindow.parse(SINCE, UNTIL)
    plan = athena_plan(principals, [SOURCE], access, options)
    assert (plan.accounts, plan.regions) == (list(orgtrail.ACCOUNTS), sorted(orgtrail.REGIONS))
    assert f"AWSLogs/{orgtrail.ORG}/${{account}}/CloudTrail/${{region}}/${{timestamp}}" in plan.ddl
    con = duckdb.connect()
    athena_sql.load_table(con, plan.ddl, org_bucket.root, TABLE)
    expected = hunt_rounds(principals, window, TABLE, executor(con))
    _seed(moto_url, [[], *(executor(con)(q.text).rows for q in expected.queries)])
    result = run_hunt(principals, [SOURCE], window, access=access, options=options)
    assert {e.event_id for e in result.events} == set(expected.chainer.records)
    assert {g.account_id for g in result.accounts} == {e.account_id for e in result.events}
    assert sum(g.events for g in result.accounts) == len(result.events)
    athena = boto3.client("athena", endpoint_url=moto_url, region_name="us-east-1")
    ddl = next(q for q in result.queries if q.kind == "athena-ddl")
    assert (
        athena.get_query_execution(QueryExecutionId=str(ddl.execution_id))["QueryExecution"]["Query"]
        == plan.ddl
    )


def test_the_report_groups_an_org_hunt_by_account(tmp_path: Path) -> None:
    """An org hunt stored in a case: the report (Markdown and HTML) has the calls per account."""
    trail = orgtrail.build(tmp_path / "org")
    result = run_hunt(
        PrincipalSet.from_values(KEYS[:1]),
        [str(trail.root / "AWSLogs" / orgtrail.ORG)],
        TimeWindow.parse(*orgtrail_window()),
        options=HuntOptions(workers=1),
    )
    handle = build_case(tmp_path / "cases", hunt=False)
    record_hunt(handle, result)
    report, written = generate_report(handle, ["md", "html"], now=datetime(2026, 11, 21, tzinfo=UTC))
    by_account = Counter(str(e.account_id) for e in result.events)
    assert [(a.account, a.count) for a in report.hunt_accounts] == by_account.most_common()
    assert len(report.hunt_accounts) == 3
    markdown = (handle.path / "report.md").read_text()
    assert "By account:" in markdown
    assert all(account in markdown for account in orgtrail.ACCOUNTS)
    assert "<h3>By account</h3>" in (handle.path / "report.html").read_text()
    assert written


def orgtrail_window() -> tuple[str, str]:
    return "2023-12-05T00:00:00Z", "2024-01-13T23:59:59Z"


def test_the_default_table_is_named_after_its_projection(
    moto_url: str, org_bucket: orgtrail.OrgTrail
) -> None:
    """`CREATE ... IF NOT EXISTS` keeps an older table of one name: a changed projection gets a new name."""
    access = AwsAccess(region="us-east-1", endpoint_url=moto_url)
    principals = PrincipalSet.from_values(KEYS[:1])
    whole = athena_plan(principals, [SOURCE], access, HuntOptions())
    fewer = athena_plan(principals, [SOURCE], access, HuntOptions(accounts=orgtrail.ACCOUNTS[:1]))
    again = athena_plan(principals, [SOURCE], access, HuntOptions())
    assert whole.table.startswith("cloudtrail_logs_eksir_")
    assert whole.table == again.table != fewer.table
    assert f"IF NOT EXISTS {whole.table} (" in whole.ddl
    named = athena_plan(principals, [SOURCE], access, HuntOptions(athena_table="mine"))
    assert named.table == "mine"

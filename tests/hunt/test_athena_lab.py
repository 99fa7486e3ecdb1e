"""The Athena hunt's SQL over each lab scenario's CloudTrail, executed in DuckDB: the scenario's ground truth.

The lab's trail is written by real calls against moto mixed with other principals' routine traffic
(tests/lab/test_hunt_lab.py scores the local scan on it). Here the generated DDL and hunt rounds run in DuckDB
over the same folder and must return exactly the scenario's attacker calls, chained sessions and the node's
instance-role session used off the node included.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from eksir.findings import read_findings_from_path
from eksir.hunt import queries
from eksir.hunt.athena import hunt_rounds
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.window import TimeWindow
from eksir.lab.lab import LabState
from tests.hunt import athena_sql
from tests.hunt.test_athena_sql import TABLE, executor
from tests.lab.test_hunt_lab import _node_session

pytestmark = pytest.mark.lab


def test_duckdb_runs_the_athena_hunt_to_each_scenarios_ground_truth(lab: LabState) -> None:
    truth = json.loads(Path(lab.ground_truth).read_text(encoding="utf-8"))
    (finding,) = read_findings_from_path(lab.finding)
    principals = PrincipalSet.from_finding(finding).union(_node_session(lab, truth["pod"]["instance_id"]))
    root = Path(lab.cloudtrail_dir)
    accounts = sorted(p.name for p in (root / "AWSLogs").iterdir())
    regions = sorted({p.name for p in (root / "AWSLogs").glob("*/CloudTrail/*")})
    ddl = queries.athena_ddl(TABLE, "s3://lab-trail", accounts, regions)
    con = duckdb.connect()
    assert athena_sql.load_table(con, ddl, root, TABLE) > len(truth["cloudtrail_event_ids"])
    now = datetime.now(UTC)
    window = TimeWindow(now - timedelta(days=2), now + timedelta(hours=1))
    rounds = hunt_rounds(principals, window, TABLE, executor(con))
    assert set(rounds.chainer.records) == set(truth["cloudtrail_event_ids"])
    assert rounds.closed

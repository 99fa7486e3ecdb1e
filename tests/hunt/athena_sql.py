"""Run eksir's Athena SQL in a real engine: sqlglot transpiles it (Trino -> DuckDB), DuckDB executes it.

Athena itself is not available here and moto does not evaluate SQL (docs/moto-notes.md), so the generated
DDL and query are executed by DuckDB over the very files the local scanner reads. What Athena would do with
the table definition is taken from the DDL text, not restated here:

- the columns and their types are the DDL's, transpiled (Hive/Athena -> DuckDB); JSON keys are matched to
  them without regard to case, as Athena's JsonSerDe does (`eventTime` fills `eventtime`), and a nested
  object in a STRING column (`requestparameters`) arrives as its JSON text;
- `storage.location.template` and the projection's enum values decide which files belong to which
  (account, region, timestamp) partition, and files outside the template or the enums are not in the table;
- the partitions a query needs are found by evaluating the query's own predicates on partition columns
  (the conjuncts of its WHERE that name only partition keys, which is what Athena prunes with) over every
  projected partition.

Only the `{"Records": [...]}` framing (CloudTrailInputFormat) is restated: DuckDB unnests the array.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

PARTITION_KEYS = ("account", "region", "timestamp")


def transpile(sql: str) -> str:
    """Trino (Athena engine v3) SQL as DuckDB SQL; fails loudly on anything sqlglot cannot carry over."""
    (out,) = sqlglot.transpile(sql, read="trino", write="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE)
    return out


def _properties(ddl: str) -> dict[str, str]:
    return dict(re.findall(r"'([^']+)'\s*=\s*'([^']*)'", ddl.split("TBLPROPERTIES", 1)[1]))


def _columns(ddl: str) -> str:
    """The DDL's column list (not the partition keys) as a DuckDB STRUCT type."""
    body = ddl.split("(", 1)[1].split("\n)\nPARTITIONED BY", 1)[0]
    create = sqlglot.parse_one(f"CREATE TABLE t ({body})", read="hive")
    fields = [f"{col.name} {col.args['kind'].sql(dialect='duckdb')}" for col in create.this.expressions]
    return "STRUCT(" + ", ".join(fields) + ")"


def _template_regex(template: str, root: Path) -> str:
    """`s3://b/p/AWSLogs/${account}/CloudTrail/${region}/${timestamp}` as a regex over local paths."""
    tail = template.split("/AWSLogs/", 1)[1]
    pattern = re.escape(str(root).rstrip("/") + "/AWSLogs/" + tail)
    pattern = pattern.replace(re.escape("${account}"), "([^/]+)").replace(re.escape("${region}"), "([^/]+)")
    return "^" + pattern.replace(re.escape("${timestamp}"), r"(\d{4}/\d{2}/\d{2})") + "/[^/]+$"


def _shape(struct: str) -> dict[str, Any]:
    """The struct type as nested dicts ({} for a scalar): which keys JsonSerDe folds into which fields."""
    parsed = sqlglot.parse_one(f"CAST(x AS {struct})", read="duckdb").to.expressions

    def walk(fields: list[exp.Expression]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in fields:
            kind = field.args["kind"]
            if kind.this == exp.DataType.Type.ARRAY:
                kind = kind.expressions[0]
            out[field.name] = walk(kind.expressions) if kind.this == exp.DataType.Type.STRUCT else None
        return out

    return walk(parsed)


def _fold(value: Any, shape: dict[str, Any] | None) -> Any:
    """JsonSerDe's reading of a value: keys matched without case into a struct, objects in STRING as text."""
    if shape is None:
        return json.dumps(value) if isinstance(value, dict | list) else value
    if isinstance(value, list):
        return [_fold(item, shape) for item in value]
    if not isinstance(value, dict):
        return None
    folded = {key.lower(): item for key, item in value.items()}
    return {name: _fold(folded.get(name), sub) for name, sub in shape.items()}


def _serde(struct: str) -> Any:
    shape = _shape(struct)

    def fold_all(texts: pa.Array) -> pa.Array:
        return pa.array([json.dumps(_fold(json.loads(t), shape)) for t in texts.to_pylist()], pa.string())

    return fold_all


def _read_files(con: duckdb.DuckDBPyConnection, files: list[str], struct: str) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_records (filename VARCHAR, r {struct})")
    if "serde" not in {f[0] for f in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()}:
        con.create_function("serde", _serde(struct), ["VARCHAR"], "VARCHAR", type="arrow")
    if files:
        con.execute(
            f"INSERT INTO raw_records SELECT filename, CAST(serde(CAST(rec AS VARCHAR)) AS JSON)::{struct} "
            "FROM (SELECT filename, unnest(Records) AS rec "
            "FROM read_json(?, columns={'Records': 'JSON[]'}, filename=true, format='auto'))",
            [files],
        )


def load_table(con: duckdb.DuckDBPyConnection, ddl: str, root: Path, table: str) -> int:
    """Create `table` in DuckDB as the DDL defines it, over the CloudTrail files under `root`; row count."""
    props = _properties(ddl)
    regex = _template_regex(props["storage.location.template"], root)
    accounts = [a for a in props["projection.account.values"].split(",") if a]
    regions = [r for r in props["projection.region.values"].split(",") if r]
    files = sorted(str(p) for p in root.rglob("*.json.gz") if re.match(regex, str(p)))
    struct = _columns(ddl)
    key = hashlib.sha256(repr((files, struct)).encode()).hexdigest()
    loaded = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'raw_records'").fetchall()
    if loaded != [(key,)]:  # reading the files is the slow part: once per tree and schema on a connection
        _read_files(con, files, struct)
        con.execute(f"COMMENT ON TABLE raw_records IS '{key}'")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT r.*, regexp_extract(filename, ?, 1) AS account, regexp_extract(filename, ?, 2) AS region,
               regexp_extract(filename, ?, 3) AS "timestamp"
        FROM raw_records""",
        [regex, regex, regex],
    )
    con.execute(
        f"DELETE FROM {table} WHERE account NOT IN (SELECT unnest(?)) OR region NOT IN (SELECT unnest(?))",
        [accounts, regions],
    )
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def run(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Execute an Athena query (transpiled); (column names, rows)."""
    cursor = con.execute(transpile(query))
    return [d[0] for d in cursor.description or []], cursor.fetchall()


def _partition_conjuncts(query: str) -> list[exp.Expression]:
    where = sqlglot.parse_one(query, read="trino").find(exp.Where)
    assert where is not None
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    return [c for c in conjuncts if {col.name for col in c.find_all(exp.Column)} <= set(PARTITION_KEYS)]


def needed_partitions(
    con: duckdb.DuckDBPyConnection, ddl: str, query: str, today: date | None = None
) -> list[tuple[str, str, str]]:
    """The (account, region, timestamp) partitions the query's partition predicates admit, per projection."""
    props = _properties(ddl)
    start = datetime.strptime(props["projection.timestamp.range"].split(",")[0], "%Y/%m/%d").date()
    end = today or datetime.now(UTC).date()
    days = [f"{start + timedelta(days=n):%Y/%m/%d}" for n in range((end - start).days + 1)]
    con.execute(
        """CREATE OR REPLACE TEMP TABLE projected AS
        SELECT a AS account, r AS region, d AS "timestamp"
        FROM (SELECT unnest(?) AS a) CROSS JOIN (SELECT unnest(?) AS r) CROSS JOIN (SELECT unnest(?) AS d)""",
        [
            props["projection.account.values"].split(","),
            props["projection.region.values"].split(","),
            days,
        ],
    )
    predicate = " AND ".join(c.sql(dialect="trino") for c in _partition_conjuncts(query)) or "TRUE"
    rows = con.execute(
        transpile(f'SELECT account, region, "timestamp" FROM projected WHERE {predicate}')
        + " ORDER BY 1, 2, 3"
    ).fetchall()
    return [(str(a), str(r), str(t)) for a, r, t in rows]


def event_ids(columns: list[str], rows: Iterable[tuple[Any, ...]]) -> set[str]:
    """The eventid column of a result."""
    index = columns.index("eventid")
    return {str(row[index]) for row in rows}

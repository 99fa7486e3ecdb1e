"""DuckDB's side of `bench_hunt.py` as a whole process: the attacker's events over the tree, 2 threads.

    .venv/bin/python bench/duckdb_query.py TREE KEY [KEY...]

Needs the optional `bench` extra (`pip install -e '.[bench]'`). Prints the number of matching events.
"""

from __future__ import annotations

import sys

import duckdb


def main() -> None:
    tree, keys = sys.argv[1], sys.argv[2:]
    wanted = ", ".join(f"'{key}'" for key in keys)
    glob = f"{tree}/AWSLogs/**/*.json.gz"
    sql = f"""SELECT count(*) FROM (SELECT unnest(Records) AS r FROM read_json('{glob}',
      columns={{'Records': 'JSON[]'}}, maximum_object_size=268435456, compression='gzip'))
      WHERE json_extract_string(r, '$.userIdentity.accessKeyId') IN ({wanted})"""
    con = duckdb.connect()
    con.execute("SET threads=2")
    row = con.execute(sql).fetchone()
    print(row[0] if row else 0)


if __name__ == "__main__":
    main()

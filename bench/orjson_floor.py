"""The floor of bulk triage as a whole process: read a JSON Lines file and `orjson.loads` every line.

    .venv/bin/python bench/orjson_floor.py EXPORT.jsonl

Run by `bench_triage_parse.py` beside the `eksir triage` process. It imports only orjson, keeps nothing
but a count, and prints the number of values parsed.
"""

from __future__ import annotations

import sys

import orjson


def main() -> None:
    with open(sys.argv[1], "rb") as export:
        count = sum(1 for line in export if line.strip() and orjson.loads(line) is not None)
    print(count)


if __name__ == "__main__":
    main()

"""Game-day wall time per phase (goal: under 2 minutes from lab up to report with cached binaries).

Run: .venv/bin/python bench/bench_gameday.py [--scenario iam-user]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from eksir.gameday import run_gameday


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="iam-user")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eksir-gameday-bench-") as tmp:
        start = time.monotonic()
        result = run_gameday(args.scenario, Path(tmp) / "lab", Path(tmp) / "cases")
        total = time.monotonic() - start
    for phase in result.phases:
        print(f"{phase.name:18} {phase.status:7} {phase.seconds:6.2f}s")
    print(f"{'total':18} {'':7} {total:6.2f}s  (goal < 120s)")
    print(
        json.dumps(
            {
                "scenario": args.scenario,
                "total_s": round(total, 2),
                "phases": {p.name: p.seconds for p in result.phases},
            }
        )
    )


if __name__ == "__main__":
    main()

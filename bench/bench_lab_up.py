"""Wall time of `eksir lab up` with cached binaries, broken into phases (goal: <= 20 s).

Runs the real CLI in a subprocess on a temporary lab folder, reads the phase timings it reports with
`--output json`, then `eksir lab down`. Run on demand:

    .venv/bin/python bench/bench_lab_up.py [--runs 3] [--scenario iam-user]

The binaries must be built first (`eksir lab build`), or the first run measures the Go build.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EKSIR = str(Path(sys.executable).parent / "eksir")


def one_run(scenario: str) -> dict[str, float]:
    """One `lab up` + `lab down`; returns wall time of up (including interpreter start) and its phases."""
    with tempfile.TemporaryDirectory(prefix="eksir-bench-") as tmp:
        lab_dir = Path(tmp) / "lab"
        start = time.monotonic()
        up = subprocess.run(
            [EKSIR, "lab", "up", "--lab-dir", str(lab_dir), "--scenario", scenario, "--output", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - start
        subprocess.run([EKSIR, "lab", "down", "--lab-dir", str(lab_dir)], capture_output=True, check=False)
        if up.returncode != 0:
            sys.exit(f"eksir lab up failed ({up.returncode}): {up.stderr.strip()}")
        phases: dict[str, float] = json.loads(up.stdout)["timings"]
        return {"wall (cli)": round(wall, 2), **phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="iam-user")
    args = parser.parse_args()
    runs = [one_run(args.scenario) for _ in range(args.runs)]
    print(f"eksir lab up --scenario {args.scenario}: {args.runs} runs, median seconds (min-max)")
    for phase in runs[0]:
        values = [r.get(phase, 0.0) for r in runs]
        print(f"  {phase:22} {statistics.median(values):6.2f}  ({min(values):.2f}-{max(values):.2f})")
    print("  note: 'control plane start' is the wait after moto start + AWS seeding, which run in parallel")


if __name__ == "__main__":
    main()

"""Game-day wall time as a whole `eksir gameday` process, beside its floor (goal: under 2 minutes).

Run: .venv/bin/python bench/bench_gameday.py [--scenario iam-user] [--runs 1]

What a user runs is `eksir gameday --output json` from start to exit (interpreter start, lab up, every
phase, report, lab down); that is the figure. Its floor, timed in the same run right after it: the
`eksir lab up` and `eksir lab down` processes for the same scenario (no day can take less than bringing the
lab up and down). The day's own per-phase timings, from its JSON, are shown in addition. Needs the lab's
binaries built (`eksir lab build`), or the first run measures the Go build.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EKSIR = str(Path(sys.executable).with_name("eksir"))


def _timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def one_day(scenario: str) -> tuple[float, dict[str, object], int]:
    """One whole `eksir gameday` process: wall seconds, its JSON summary, its exit code."""
    with tempfile.TemporaryDirectory(prefix="eksir-gameday-bench-") as tmp:
        lab, cases = str(Path(tmp) / "lab"), str(Path(tmp) / "cases")
        argv = [
            EKSIR,
            "gameday",
            "--scenario",
            scenario,
            "--lab-dir",
            lab,
            "--cases-dir",
            cases,
            "-o",
            "json",
        ]
        seconds, done = _timed(argv)
    summary: dict[str, object] = json.loads(done.stdout) if done.stdout.strip() else {}
    return seconds, summary, done.returncode


def floor(scenario: str) -> float:
    """`eksir lab up` then `eksir lab down` for the scenario, as whole processes."""
    with tempfile.TemporaryDirectory(prefix="eksir-gameday-floor-") as tmp:
        lab = str(Path(tmp) / "lab")
        up_s, up = _timed([EKSIR, "lab", "up", "--scenario", scenario, "--lab-dir", lab])
        down_s, _down = _timed([EKSIR, "lab", "down", "--lab-dir", lab])
    if up.returncode:
        raise SystemExit(f"eksir lab up failed: {up.stderr.strip().splitlines()[-1:]}")
    return up_s + down_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="iam-user")
    parser.add_argument("--runs", type=int, default=1, help="days (and floors), alternating")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    days, floors = [], []
    for _ in range(args.runs):
        days.append(one_day(args.scenario))
        floors.append(floor(args.scenario))
    seconds, summary, code = sorted(days, key=lambda day: day[0])[len(days) // 2]
    phases = summary.get("phases", [])
    for phase in phases if isinstance(phases, list) else []:
        print(f"  {phase['name']:18} {phase['status']:7} {phase['seconds']:6.2f}s  (the day's own timing)")
    lab_floor = statistics.median(floors)
    print(
        f"eksir gameday process {seconds:6.2f}s (exit {code}; goal < 120 s), floor lab up + down "
        f"{lab_floor:6.2f}s; median of {args.runs}; load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(
        json.dumps(
            {"scenario": args.scenario, "process_s": round(seconds, 2), "floor_s": round(lab_floor, 2)}
        )
    )


if __name__ == "__main__":
    main()

"""How fast `eksir triage` judges a large S3 export as a whole process, against the bare orjson parse floor.

Run on demand: `.venv/bin/python bench/bench_triage_parse.py [--count 100000] [--runs 3]`. Writes a JSON
Lines S3 export of COUNT findings (the shipped fixture with varied ids) into a temporary directory, then
times, alternating RUNS times, medians reported (this VM's speed drifts by a third between minutes):

- what a user runs: the `eksir triage EXPORT --no-case --output json` process from start to exit, its
  JSON Lines written to a file (checked: one line per finding), with its peak RSS (largest process);
- its floor, as a whole process: `orjson_floor.py`, which reads the file and `orjson.loads` every line;
- in addition (not what a user runs; `--skip-in-process` leaves it out): `read_findings` alone and the
  same orjson loop, each timed inside its own fresh interpreter, cold then warm, wall and CPU.

Goal: >= 10,000 findings/s for the `eksir triage` process, with memory that does not grow with the input.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from eksir.findings import read_findings
from eksir.findings.shapes import finding_plan

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "findings" / "iam-user.wire.json"


def write_export(path: Path, count: int) -> None:
    finding = orjson.loads(FIXTURE.read_bytes())
    with path.open("wb") as out:
        for number in range(count):
            fid = f"{number:032x}"
            finding["id"] = fid
            finding["arn"] = finding["arn"].rsplit("/", 1)[0] + "/" + fid
            out.write(orjson.dumps(finding) + b"\n")


def _read_floor(path: Path) -> list[object]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _read_ours(path: Path) -> list[object]:
    return list(read_findings(path))


def measure(kind: str, path: Path, count: int) -> dict[str, float]:
    """Time `kind` twice in this (fresh) process: a cold run, then a warm one after freeing the first result.

    The cyclic GC is off, as `read_findings` itself runs, so the floor is a true floor. Cold is what one
    `eksir triage` run costs (every page of the heap is touched for the first time); warm is a process that
    has read a large export before. CPU (user + system) is reported beside wall time: the machine's two
    cores are shared, and under load the wall rate falls while the CPU rate shows what the code costs.
    """
    run = _read_floor if kind == "floor" else _read_ours
    if kind != "floor":
        finding_plan()  # the one-off botocore model load is not per-finding work
    result: dict[str, float] = {}
    for phase in ("cold", "warm"):
        gc.collect()
        gc.disable()
        before, start = os.times(), time.perf_counter()
        values = run(path)
        elapsed, after = time.perf_counter() - start, os.times()
        gc.enable()
        assert len(values) == count, (kind, len(values))
        del values
        result[f"{phase}_wall"] = elapsed
        result[f"{phase}_user"] = after.user - before.user
        result[f"{phase}_sys"] = after.system - before.system
    return result


def _in_fresh_process(kind: str, path: Path, count: int) -> dict[str, float]:
    """Each side runs in its own new interpreter, so neither inherits a heap the other already faulted in."""
    argv = [sys.executable, __file__, "--measure", kind, "--path", str(path), "--count", str(count)]
    output = subprocess.run(argv, check=True, capture_output=True).stdout
    measured: dict[str, float] = orjson.loads(output.splitlines()[-1])
    return measured


def _row(label: str, count: int, measured: dict[str, float], phase: str) -> tuple[float, float]:
    wall = measured[f"{phase}_wall"]
    user, system = measured[f"{phase}_user"], measured[f"{phase}_sys"]
    print(
        f"{label:<22} {phase:<4} {wall:6.2f} s wall {count / wall:8,.0f}/s | "
        f"CPU {user:5.2f} s user + {system:4.2f} s sys {count / (user + system):8,.0f}/CPU-s"
    )
    return count / wall, count / (user + system)


def _median_run(runs: list[dict[str, float]], phase: str) -> dict[str, float]:
    """The run whose `phase` wall time is the median (its CPU figures are printed with it)."""
    return sorted(runs, key=lambda run: run[f"{phase}_wall"])[len(runs) // 2]


@dataclass(frozen=True)
class Process:
    """One whole process: wall seconds, CPU seconds (user + sys, with its workers), peak RSS in bytes."""

    seconds: float
    cpu: float
    peak_rss: int


def run_process(argv: list[str], stdout: Path | None = None) -> Process:
    """Run `argv` to completion; rusage from wait4 covers the process and the workers it reaped."""
    with open(stdout or os.devnull, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out)
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return Process(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)


def whole_processes(path: Path, count: int, runs: int) -> tuple[list[Process], list[Process]]:
    """The `eksir triage` process and the orjson floor process, alternating; eksir's output is checked."""
    eksir = [
        str(Path(sys.executable).with_name("eksir")),
        "triage",
        str(path),
        "--no-case",
        "--output",
        "json",
    ]
    floor = [sys.executable, str(Path(__file__).with_name("orjson_floor.py")), str(path)]
    output = path.with_suffix(".out")
    ours, floors = [], []
    for _ in range(runs):
        ours.append(run_process(eksir, output))
        with output.open("rb") as lines:
            assert sum(1 for _ in lines) == count, "eksir did not print one JSON line per finding"
        floors.append(run_process(floor))
    return ours, floors


def _process_row(label: str, count: int, runs: list[Process]) -> float:
    median = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    walls = ", ".join(f"{count / run.seconds:,.0f}" for run in runs)
    print(
        f"{label:<30} {median.seconds:6.2f} s wall {count / median.seconds:8,.0f}/s | "
        f"CPU {median.cpu:5.2f} s | peak RSS {median.peak_rss / 1e6:5.0f} MB (largest process)  "
        f"[runs: {walls}/s]"
    )
    return count / median.seconds


def in_process(path: Path, count: int, runs: int) -> None:
    """In addition: `read_findings` and the orjson loop inside fresh interpreters (not what a user runs)."""
    floors, ours = [], []
    for _ in range(runs):  # alternate, so both sides see the same machine
        floors.append(_in_fresh_process("floor", path, count))
        ours.append(_in_fresh_process("read_findings", path, count))
    print("in a fresh interpreter, timed inside it (shown in addition; not what a user runs):")
    for phase in ("cold", "warm"):
        floor_rate = _row("  orjson.loads per line", count, _median_run(floors, phase), phase)
        ours_rate = _row("  read_findings", count, _median_run(ours, phase), phase)
        print(
            f"    {phase}: read_findings / floor = {ours_rate[0] / floor_rate[0]:.3f} wall, "
            f"{ours_rate[1] / floor_rate[1]:.3f} CPU"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per side, alternating (medians reported)")
    parser.add_argument("--skip-in-process", action="store_true", help="leave out the in-process figures")
    parser.add_argument("--measure", choices=("floor", "read_findings"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.count
    if args.measure:
        print(orjson.dumps(measure(args.measure, args.path, count)).decode())
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        write_export(path, count)
        load = os.getloadavg()[0]
        print(
            f"{count:,} findings, {path.stat().st_size / 1e6:.1f} MB; load average {load:.1f} on "
            f"{os.cpu_count()} CPUs; whole processes, {args.runs} runs per side, alternating"
        )
        ours, floors = whole_processes(path, count, args.runs)
        rate = _process_row("eksir triage process", count, ours)
        floor_rate = _process_row("orjson floor process", count, floors)
        print(f"  eksir triage / floor = {rate / floor_rate:.3f} (wall, whole processes)")
        if not args.skip_in_process:
            in_process(path, count, args.runs)
        print(f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    verdict = "met" if rate >= 10_000 else "NOT met"
    print(f"goal >= 10,000 findings/s (eksir triage process, wall, median): {verdict} ({rate:,.0f}/s)")


if __name__ == "__main__":
    main()

"""How fast `read_findings` reads a large S3 export, against the bare orjson parse floor.

Run on demand: `.venv/bin/python bench/bench_triage_parse.py [--count 100000] [--runs 3]`. Writes a JSON
Lines S3 export of COUNT findings (the shipped fixture with varied ids) into a temporary directory, then
reports findings/s (wall and per CPU second) for `read_findings` and for `orjson.loads` per line over the
same file, and their ratios. Each side runs in its own fresh interpreter, first cold, then warm; the sides
alternate RUNS times and the median run is reported (this VM's speed drifts by a third between minutes).
Goal: >= 10,000 findings/s for `read_findings` (cold, wall).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per side (medians reported)")
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
            f"{count:,} findings, {path.stat().st_size / 1e6:.1f} MB; "
            f"load average {load:.1f} on {os.cpu_count()} CPUs; "
            f"{args.runs} fresh processes per side, alternating"
        )
        floors, ours = [], []
        for _ in range(args.runs):  # alternate, so both sides see the same machine
            floors.append(_in_fresh_process("floor", path, count))
            ours.append(_in_fresh_process("read_findings", path, count))
        load_after = os.getloadavg()[0]
    rates = {}
    for phase in ("cold", "warm"):
        walls = ", ".join(f"{count / run[f'{phase}_wall']:,.0f}" for run in ours)
        floor_rate = _row("orjson.loads per line", count, _median_run(floors, phase), phase)
        ours_rate = _row("read_findings", count, _median_run(ours, phase), phase)
        rates[phase] = ours_rate[0]
        print(
            f"  {phase} (median of {args.runs}; read_findings runs: {walls}/s): read_findings / floor = "
            f"{ours_rate[0] / floor_rate[0]:.3f} wall, {ours_rate[1] / floor_rate[1]:.3f} CPU"
        )
    print(f"load average {load:.1f} before, {load_after:.1f} after")
    verdict = "met" if rates["cold"] >= 10_000 else "NOT met"
    print(f"goal >= 10,000 findings/s (cold, wall, median): {verdict} ({rates['cold']:,.0f}/s)")


if __name__ == "__main__":
    main()

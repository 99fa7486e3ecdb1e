"""How fast `read_findings` reads a large S3 export, against the bare orjson parse floor.

Run on demand: `.venv/bin/python bench/bench_triage_parse.py [--count 100000]`. Writes a JSON Lines S3
export of COUNT findings (the shipped fixture with varied ids) into a temporary directory, then reports
findings/s (wall and per CPU second) for `read_findings` and for `orjson.loads` per line over the same
file, and their ratios.
Goal: >= 10,000 findings/s for `read_findings`.
"""

from __future__ import annotations

import argparse
import gc
import os
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


def timed(label: str, count: int, run: object) -> tuple[float, float]:
    """Time one run with the cyclic GC off, as `read_findings` itself runs, so the floor is a true floor.

    Returns (findings per wall second, findings per CPU second). Both are printed: the machine's two cores
    are shared, and under load the wall rate falls while the CPU rate shows what the code itself costs.
    """
    gc.collect()
    gc.disable()
    before = os.times()
    start = time.perf_counter()
    result = run()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    after = os.times()
    gc.enable()
    assert len(result) == count, (label, len(result))
    cpu = (after.user - before.user) + (after.system - before.system)
    rate, cpu_rate = count / elapsed, count / cpu
    print(f"{label:<24} {elapsed:6.2f} s wall {rate:8,.0f}/s | {cpu:6.2f} s CPU {cpu_rate:8,.0f}/CPU-s")
    return rate, cpu_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    count = parser.parse_args().count
    finding_plan()  # the one-off botocore model load is not per-finding work
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        write_export(path, count)
        load = os.getloadavg()[0]
        print(
            f"{count:,} findings, {path.stat().st_size / 1e6:.1f} MB; "
            f"load average {load:.1f} on {os.cpu_count()} CPUs"
        )
        floor, floor_cpu = timed(
            "orjson.loads per line", count, lambda: [orjson.loads(x) for x in path.read_bytes().splitlines()]
        )
        ours, ours_cpu = timed("read_findings", count, lambda: read_findings(path))
        load_after = os.getloadavg()[0]
    print(f"ratio read_findings / floor: {ours / floor:.3f} wall, {ours_cpu / floor_cpu:.3f} CPU")
    print(f"load average {load:.1f} before, {load_after:.1f} after")
    print(f"goal >= 10,000 findings/s (wall): {'met' if ours >= 10_000 else 'NOT met'} ({ours:,.0f}/s)")


if __name__ == "__main__":
    main()

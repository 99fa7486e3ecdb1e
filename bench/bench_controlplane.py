"""Time the lab control plane: start (cached binaries) until /readyz answers, first API call, and stop.

Run on demand, not in the test suite:  .venv/bin/python bench/bench_controlplane.py [--runs 3]
The goal for the whole lab (control plane + moto) is <= 20 s from start to usable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client

from eksir.errors import LabError
from eksir.lab.build import ensure_binaries
from eksir.lab.controlplane import start_control_plane


def _one_run(binaries_dir: Path, index: int) -> tuple[float, float, float]:
    """Seconds to /readyz (incl. PKI and bootstrap), to the first admin API answer, and to a verified stop."""
    binaries = ensure_binaries()
    with tempfile.TemporaryDirectory(prefix=f"eksir-bench-{index}-", dir=binaries_dir) as tmp:
        started = time.monotonic()
        plane = start_control_plane(Path(tmp), binaries)
        ready = time.monotonic() - started
        try:
            with plane.api_client() as api:
                client.CoreV1Api(api).list_namespace()
            first_call = time.monotonic() - started
        finally:
            stop_started = time.monotonic()
            plane.stop()
            stopped = time.monotonic() - stop_started
    return ready, first_call, stopped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        ensure_binaries(progress=lambda msg: print(f"build: {msg}", file=sys.stderr))
        rows = [_one_run(Path(tempfile.gettempdir()), i) for i in range(args.runs)]
    except LabError as exc:
        print(f"bench: error: {exc.message}", file=sys.stderr)
        return 1
    print(f"{'run':>4} {'ready (s)':>10} {'1st call (s)':>13} {'stop (s)':>9}")
    for i, (ready, first, stop) in enumerate(rows, 1):
        print(f"{i:>4} {ready:>10.2f} {first:>13.2f} {stop:>9.2f}")
    medians = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(f"{'med':>4} {medians[0]:>10.2f} {medians[1]:>13.2f} {medians[2]:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

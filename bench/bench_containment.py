"""Lab time from approval to all containment verified: parallel (`--max-workers` default) vs sequential (1).

Brings up one lab (real kube-apiserver + etcd + moto, seeded with the scenario), then alternates runs of the
real `eksir respond FINDING --approve all --yes` in a subprocess, parallel and sequential, each in a fresh
cases folder, followed by `eksir rollback --yes` so every run starts from the same state. The measure comes
from the case's own hash-chained event log: from the first approval (`step.approved`) to the last
containment step verified (`step.verified`); the CLI wall time (interpreter start, online resolution, plan,
run) is shown beside it. Goal (issue 4): <= 10 s. Run on demand:

    .venv/bin/python bench/bench_containment.py [--runs 3] [--scenario iam-user]
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
from datetime import datetime
from pathlib import Path
from typing import Any

from eksir.lab import lab as lab_module

DEFAULT_WORKERS = 4  # respond's --max-workers default
PARALLEL, SEQUENTIAL = "parallel", "sequential"


def eksir(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eksir", *args], capture_output=True, text=True, env=env, check=False
    )


def _events(case_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (case_dir / "events.jsonl").read_text().splitlines() if line]


def approval_to_verified(case_dir: Path) -> tuple[float, int]:
    """Seconds from the first approval to the last containment step verified, and how many were verified."""
    state = json.loads((case_dir / "plan-state.json").read_text())
    containment = {s["id"] for s in state["plan"]["steps"] if s["phase"] == "containment"}
    events = _events(case_dir)
    approved = [datetime.fromisoformat(e["at"]) for e in events if e["type"] == "step.approved"]
    verified = [
        datetime.fromisoformat(e["at"])
        for e in events
        if e["type"] == "step.verified" and e["data"]["step_id"] in containment
    ]
    if not approved or not verified:
        sys.exit(f"no approved/verified steps in {case_dir}")
    return (max(verified) - min(approved)).total_seconds(), len(verified)


def one_run(state: lab_module.LabState, env: dict[str, str], workers: int, work: Path) -> dict[str, float]:
    cases = work / f"cases-{time.monotonic_ns()}"
    access = ["--endpoint-url", state.aws_endpoint, "--region", state.region]
    access += ["--kubeconfig", state.admin_kubeconfig, "--cases-dir", str(cases)]
    start = time.monotonic()
    result = eksir(env, "respond", state.finding, "--trust-finding-file", "--approve", "all", "--yes",
                   "--max-workers", str(workers), *access, "--output", "json")  # fmt: skip
    wall = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"respond failed ({result.returncode}): {result.stderr.strip()}")
    case_id = json.loads(result.stdout)["case_id"]
    seconds, count = approval_to_verified(cases / case_id)
    undo = eksir(env, "rollback", case_id, "--yes", *access)
    if undo.returncode != 0:
        sys.exit(f"rollback failed ({undo.returncode}): {undo.stderr.strip()}")
    return {"approval->verified": seconds, "cli wall": wall, "steps": float(count)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (alternating)")
    parser.add_argument("--scenario", default="iam-user")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eksir-bench-containment-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        state = lab_module.up(work / "lab", args.scenario, seed=20240611)
        print(f"lab up ({args.scenario}) in {time.monotonic() - started:.1f}s", file=sys.stderr)
        env = {**os.environ, **state.endpoint.env()}
        env.pop("KUBECONFIG", None)
        results: dict[str, list[dict[str, float]]] = {PARALLEL: [], SEQUENTIAL: []}
        try:
            for _ in range(args.runs):
                results[PARALLEL].append(one_run(state, env, DEFAULT_WORKERS, work))
                results[SEQUENTIAL].append(one_run(state, env, 1, work))
        finally:
            lab_module.down(work / "lab")
    print(f"eksir respond --approve all, scenario {args.scenario}: {args.runs} runs/mode, median (min-max) s")
    print(f"  {'mode':28} {'approval->verified':>22} {'cli wall':>20} {'steps':>6}")
    medians: dict[str, float] = {}
    for mode, label in ((PARALLEL, f"parallel (--max-workers {DEFAULT_WORKERS})"),
                        (SEQUENTIAL, "sequential (--max-workers 1)")):  # fmt: skip
        runs = results[mode]
        cells = []
        for key in ("approval->verified", "cli wall"):
            values = [r[key] for r in runs]
            cells.append(f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")
        medians[mode] = statistics.median(r["approval->verified"] for r in runs)
        print(f"  {label:28} {cells[0]:>22} {cells[1]:>20} {int(runs[0]['steps']):>6}")
    ratio = medians[SEQUENTIAL] / medians[PARALLEL] if medians[PARALLEL] else float("nan")
    print(f"  speed-up sequential/parallel: {ratio:.2f}x; goal approval->verified <= 10 s: "
          f"{'met' if medians[PARALLEL] <= 10 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()

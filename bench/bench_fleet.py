"""Fleet mode under a burst: PutEvents -> EventBridge rule -> SQS -> 2 `eksir serve` processes, one killed.

Brings up the fleet lab (`eksir lab up --scenario fleet --incidents N`: the cross-account lab plus N attacked
pods and the EventBridge -> SQS + DLQ pipeline), starts two workers on one cases dir, sends every event of
fleet.json through PutEvents (each incident's finding, GuardDuty repeats with higher counts, joins about the
same pod, non-findings) plus garbage straight into the queue, SIGKILLs one worker mid-burst and starts it
again, waits until every incident's case records its outcome and the queue is empty, stops both with
SIGTERM, and scores the records (lab/fleet_run.py): one case per incident, 0 steps applied twice, auto steps
done, every non-finding in the DLQ, intake rate, p50/p95 PutEvents -> case opened and -> last automatic step
done. Then the floor: the same number of events through the same rule and queue to a bare receive/delete loop.

    .venv/bin/python bench/bench_fleet.py [--incidents 50] [--concurrency 2] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from eksir.lab import fleet_run, lab, node_runtime


def _responded(cases: Path) -> int:
    if not cases.is_dir():
        return 0
    return sum(
        1
        for case in cases.iterdir()
        if case.name.startswith("eksir-")
        and (case / "events.jsonl").exists()
        and b'"serve.responded"' in (case / "events.jsonl").read_bytes()
    )


def run(incidents: int, concurrency: int, work: Path) -> dict[str, Any]:
    lab_dir = work / "lab"
    os.environ.setdefault(node_runtime.FORCE_SIMULATED_ENV, "simulated")
    t0 = time.monotonic()
    state = lab.up(lab_dir, "fleet", seed=20240611, fleet_incidents=incidents)
    lab_up_s = time.monotonic() - t0
    try:
        return _burst(state, lab_dir, work, concurrency) | {"lab_up_s": round(lab_up_s, 1)}
    finally:
        lab.down(lab_dir)


def _burst(state: lab.LabState, lab_dir: Path, work: Path, concurrency: int) -> dict[str, Any]:
    fleet = json.loads((lab_dir / "fleet.json").read_text())
    events, security = fleet["events"], fleet_run.security(state)
    cases = work / "cases"
    workers = fleet_run.Workers(
        fleet_run.worker_env(state),
        fleet,
        cases,
        lab_dir,
        work / "logs",
        state.responder_kubeconfig,
        concurrency=concurrency,
        visibility=20,
    )
    with workers:
        workers.start(0)
        workers.start(1)
        start = time.time()
        third = len(events) // 3
        sent = fleet_run.put_events(security, events[:third])
        workers.kill(1)
        workers.start(1)
        sent += fleet_run.put_events(security, events[third:])
        fleet_run.send_garbage(security, fleet["queue_url"], fleet["garbage"])
        sent_s = time.time() - start
        expected = len(fleet["expected_incidents"])
        deadline = time.time() + 900
        while time.time() < deadline and not (
            _responded(cases) >= expected and fleet_run.queue_empty(security, fleet["queue_url"])
        ):
            time.sleep(0.5)
        drained_s = time.time() - start
        codes = workers.stop_all()
    dlq = fleet_run.drain(security, fleet["dlq_url"])
    scored = fleet_run.report(fleet, sent, fleet_run.cases_of(cases), dlq, len(fleet["garbage"]))
    total = len(events) + len(fleet["garbage"])
    floor = fleet_run.bare_loop(security, fleet["queue_url"], events)
    return {
        "events": total,
        "incidents": expected,
        "putevents_s": round(sent_s, 1),
        "all_done_s": round(drained_s, 1),
        "intake_rate_per_s": round(total / drained_s, 1),
        "worker_exit_codes": codes,
        **scored,
        "bare_sqs_loop": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (cases, worker logs)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    result = run(args.incidents, args.concurrency, work)
    print(json.dumps(result, indent=1, default=str))
    print(f"load average after: {os.getloadavg()}; work folder {work}{'' if args.keep else ' (remove it)'}")


if __name__ == "__main__":
    main()

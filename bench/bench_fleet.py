"""Fleet mode under a burst, on the path the deployed service takes: PutEvents -> EventBridge rule -> SQS ->
2 `eksir serve` processes with cases in S3 and one DynamoDB lease per case, each reaching the clusters of two
member accounts through that account's `eksir-responder` and an EKS token (no kubeconfig); one worker killed.

Brings up the fleet lab (`eksir lab up --scenario fleet --incidents N`: the cross-account lab plus a second
member account, N attacked pods over both accounts' clusters and the EventBridge -> SQS + DLQ pipeline),
creates the case bucket and the lease table in the security account, starts two workers, sends every event of
fleet.json through PutEvents (each incident's finding, GuardDuty repeats with higher counts, joins about the
same pod, non-findings) plus garbage straight into the queue, SIGKILLs one worker mid-burst and starts it
again, waits until the queue is empty and every incident's case records its outcome, and scores the records
read back from S3 (lab/fleet_run.py): one case per incident, each in its own account (case header and the EKS
token sessions the lab authenticator saw), 0 steps applied twice, auto steps done, every non-finding in the
DLQ, intake rate, p50/p95 PutEvents -> case opened and -> last automatic step done, and the CPU seconds each
process spent over the burst (both workers, the killed one up to its kill; moto, kube-apiserver, etcd, the
EKS authenticator; this bench process), whose sum per incident is what a burst costs this machine.

Then the repeats phase, with both workers still running: a burst of repeats of every open case (same finding
ids, higher counts, newer updatedAt) through PutEvents; per worker, how many it recorded as repeats and how
fast. Then the backlog phase: both workers paused (SIGSTOP) while as many more repeats are sent and
delivered to the queue, then resumed: their own rate, not PutEvents' (fleet_run.measure_backlog). Then
`eksir case verify s3://...` on every case. Then the floors: the same events (burst, repeats)
through the same rule and queue to a bare receive/delete loop (receive 10, DeleteMessageBatch: the worker's
calls), and the backlog drained by that loop. `--profile`: afterwards one worker alone,
under cProfile (bench/profiled_serve.py), takes another repeat burst; its top costs are printed.

    .venv/bin/python bench/bench_fleet.py [--incidents 50] [--concurrency 2] [--repeats 10] [--local]
        [--profile] [--pace SECONDS] [--keep]

`--local`: the old setup instead (a local cases dir and the responder's client-certificate kubeconfig).
`--pace S`: the same events arriving steadily (one incident every S seconds with its share of the rest), not
at once: in a burst each incident's latency is mostly its wait behind the others (the lab's throughput on
this machine); paced, it is how long one finding takes.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eksir.lab import fleet_run, lab, node_runtime

HERE = Path(__file__).resolve().parent


def run(incidents: int, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    lab_dir = work / "lab"
    os.environ.setdefault(node_runtime.FORCE_SIMULATED_ENV, "simulated")
    t0 = time.monotonic()
    state = lab.up(lab_dir, "fleet", seed=20240611, fleet_incidents=incidents)
    lab_up_s = time.monotonic() - t0
    try:
        return {"lab_up_s": round(lab_up_s, 1)} | _bench(state, lab_dir, work, args)
    finally:
        lab.down(lab_dir)


class Setup:
    """Where the cases go and how workers reach the clusters: S3 + DynamoDB + EKS tokens, or --local."""

    def __init__(self, state: lab.LabState, lab_dir: Path, work: Path, local: bool) -> None:
        self.fleet = json.loads((lab_dir / "fleet.json").read_text())
        self.security = fleet_run.security(state)
        self.local = local
        self.s3: fleet_run.S3Store | None = None
        self.cases_arg: Path | str = work / "cases"
        if local:
            self.env, self.kubeconfig = fleet_run.worker_env(state), state.responder_kubeconfig
        else:
            self.s3 = fleet_run.create_s3_store(self.security)
            self.env = fleet_run.s3_worker_env(state, work / "worker-cache", lease_seconds=15)
            self.cases_arg, self.kubeconfig = self.s3.url, ""
            os.environ.update(fleet_run.reader_env(self.env, work / "reader-cache"))
        self.auth_log = lab_dir / "k8s" / "eks-authenticator.log"
        self.work, self.lab_dir = work, lab_dir

    def workers(self, concurrency: int, logs: str = "logs") -> fleet_run.Workers:
        return fleet_run.Workers(
            self.env,
            self.fleet,
            self.cases_arg,
            self.lab_dir,
            self.work / logs,
            self.kubeconfig,
            concurrency=concurrency,
            visibility=20,
            lock_table=self.s3.table if self.s3 else None,
            health_interval=0.5,
        )

    def cases(self) -> Path:
        """The case folders to score: the local dir, or every case read back from S3."""
        if self.s3 is None:
            assert isinstance(self.cases_arg, Path)
            return self.cases_arg
        return fleet_run.s3_case_copies(self.s3)


def _bench(state: lab.LabState, lab_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    setup = Setup(state, lab_dir, work, args.local)
    fleet, security = setup.fleet, setup.security
    with setup.workers(args.concurrency) as workers:
        burst = _burst(setup, workers, args.pace)
        repeats = fleet_run.repeat_burst(fleet, args.repeats)
        measured = fleet_run.measure_repeats(security, fleet["queue_url"], workers.logs, repeats, timeout=900)
        backlog = fleet_run.repeat_burst(fleet, args.repeats, first_count=5000)
        measured["backlog"] = fleet_run.measure_backlog(security, fleet["queue_url"], workers, backlog)
        measured["backlog"].pop("started_at")
        codes = workers.stop_all()
    dlq = fleet_run.drain(security, fleet["dlq_url"])
    copies = setup.cases()
    sessions = None if setup.local else fleet_run.token_sessions(setup.auth_log)
    scored = fleet_run.report(
        fleet, burst.pop("sent"), fleet_run.cases_of(copies), dlq, len(fleet["garbage"]), sessions=sessions
    )
    case_dirs = [p for p in sorted(copies.iterdir()) if p.name.startswith("eksir-")]
    measured["recorded_in_cases"] = fleet_run.repeats_recorded(case_dirs, measured.pop("started_at"))
    measured["sent_with_backlog"] = measured["sent"] + measured["backlog"]["sent"]
    result = burst | {"worker_exit_codes": codes} | scored | {"repeats": measured}
    if setup.s3 is not None:
        failed = fleet_run.verify_cases(setup.s3, [p.name for p in case_dirs], setup.env)
        result["case_verify_s3"] = {
            "cases": len(case_dirs),
            "passed": len(case_dirs) - len(failed),
            "failed": failed,
        }
    if args.profile:
        result["profiled_repeats"] = _profile(setup, fleet_run.repeat_burst(fleet, 2, first_count=2000))
    result["bare_sqs_loop"] = fleet_run.bare_loop(security, fleet["queue_url"], fleet["events"])
    result["bare_sqs_loop_repeats"] = fleet_run.bare_loop(security, fleet["queue_url"], repeats)
    result["bare_sqs_loop_backlog"] = fleet_run.bare_backlog(security, fleet["queue_url"], backlog)
    return result


class BurstCpu:
    """CPU seconds each process spent from the burst's start to its end: both workers (the killed one's up to
    its kill), every lab server and this bench process (PutEvents, polling), and their sum per incident."""

    def __init__(self, lab_dir: Path, workers: fleet_run.Workers) -> None:
        self.lab_dir, self.workers = lab_dir, workers
        self.lab_before = fleet_run.lab_cpu_seconds(lab_dir)
        self.bench_before = _own_cpu_seconds()
        self.killed = 0.0

    def restart(self) -> None:
        """SIGKILL worker 1 and start it again, its CPU so far counted."""
        self.killed += self.workers.cpu_seconds().get(1, 0.0)
        self.workers.kill(1)
        self.workers.start(1)

    def result(self, incidents: int) -> dict[str, Any]:
        lab_now = fleet_run.lab_cpu_seconds(self.lab_dir)
        used = {name: seconds - self.lab_before.get(name, 0.0) for name, seconds in lab_now.items()}
        used["workers"] = sum(self.workers.cpu_seconds().values()) + self.killed
        used["bench (PutEvents, polling)"] = _own_cpu_seconds() - self.bench_before
        total = sum(used.values())
        return {name: round(seconds, 1) for name, seconds in used.items()} | {
            "total": round(total, 1),
            "per_incident": round(total / max(1, incidents), 2),
        }


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _paced(
    security: Any, events: list[dict[str, Any]], pace: float, at_a_third: Callable[[], None]
) -> list[float]:
    """`--pace`: one incident's first finding every `pace` seconds, each followed at once by its share of the
    repeats, joins and non-findings (so the queue carries the same mix, arriving steadily instead of at once);
    `at_a_third` runs after a third of the incidents. Returns the send time of each event, in fleet.json's
    order (what the scorer expects)."""
    firsts = [i for i, e in enumerate(events) if e["kind"] == "finding"]
    later = [i for i, e in enumerate(events) if e["kind"] != "finding"]
    share = -(-len(later) // max(1, len(firsts)))
    sent = [0.0] * len(events)

    def send(chunk: list[int]) -> None:
        for index, at in zip(chunk, fleet_run.put_events(security, [events[i] for i in chunk]), strict=True):
            sent[index] = at

    start = time.monotonic()
    for n, first in enumerate(firsts):
        time.sleep(max(0.0, start + n * pace - time.monotonic()))
        due = [i for i in later if events[i]["incident"] is None or events[i]["incident"] <= n][:share]
        later = [i for i in later if i not in due]
        send([first, *due])  # a repeat or join never before its incident's first finding, as GuardDuty
        if n == len(firsts) // 3:
            at_a_third()
    if later:
        send(later)
    return sent


def _burst(setup: Setup, workers: fleet_run.Workers, pace: float = 0.0) -> dict[str, Any]:
    """The burst (or with `pace`, a steady arrival) with a worker SIGKILLed a third of the way and started
    again; until all is done."""
    fleet, security = setup.fleet, setup.security
    events = fleet["events"]
    workers.start(0)
    workers.start(1)
    cpu = BurstCpu(setup.lab_dir, workers)
    start = time.time()
    if pace:
        sent = _paced(security, events, pace, cpu.restart)
    else:
        third = len(events) // 3
        sent = fleet_run.put_events(security, events[:third])
        cpu.restart()
        sent += fleet_run.put_events(security, events[third:])
    fleet_run.send_garbage(security, fleet["queue_url"], fleet["garbage"])
    sent_s = time.time() - start
    expected = len(fleet["expected_incidents"])
    deadline = time.time() + 900
    while time.time() < deadline:
        if (
            fleet_run.queue_empty(security, fleet["queue_url"])
            and fleet_run.responded(setup.cases()) >= expected
        ):
            break
        time.sleep(1.0)
    drained_s = time.time() - start
    total = len(events) + len(fleet["garbage"])
    return {
        "events": total,
        "incidents": expected,
        "putevents_s": round(sent_s, 1),
        "all_done_s": round(drained_s, 1),
        "intake_rate_per_s": round(total / drained_s, 1),
        "cpu_s": cpu.result(expected),
        "sent": sent,
    }


def _profile(setup: Setup, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One worker alone under cProfile takes `items` (repeats); its rate and its top costs."""
    out = setup.work / "worker-profile.prof"
    workers = setup.workers(1, logs="profile-logs")
    workers.launcher[0] = [str(HERE / "profiled_serve.py"), str(out)]
    with workers:
        workers.start(0)
        time.sleep(8)  # started and polling before the burst (imports take seconds under the profiler)
        measured = fleet_run.measure_repeats(
            setup.security, setup.fleet["queue_url"], workers.logs, items, timeout=600
        )
        workers.stop_all()
    measured.pop("started_at")
    if out.exists():
        stats = pstats.Stats(str(out))
        stats.sort_stats("cumulative").print_stats(r"eksir|boto|urllib3|ssl|socket", 40)
        stats.sort_stats("tottime").print_stats(25)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10, help="repeats per incident in the repeats phase")
    parser.add_argument(
        "--local", action="store_true", help="local cases dir + kubeconfig instead of S3 + tokens"
    )
    parser.add_argument("--profile", action="store_true", help="profile one worker on a repeat burst")
    parser.add_argument(
        "--pace",
        type=float,
        default=0.0,
        help="seconds between incidents (each with its share of repeats) instead of one burst",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (cases, worker logs)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    result = run(args.incidents, work, args)
    print(json.dumps(result, indent=1, default=str))
    print(f"load average after: {os.getloadavg()}; work folder {work}{'' if args.keep else ' (remove it)'}")


if __name__ == "__main__":
    main()

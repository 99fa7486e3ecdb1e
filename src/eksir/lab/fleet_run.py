"""Drive and score the fleet lab: start `eksir serve` workers, send fleet.json's events, read the cases.

Used by `bench/bench_fleet.py` and the fleet test alike, so both measure and assert the same things from the
same records: every incident has exactly one case, no step applied twice (the case logs), every auto-run
step verified (or not-effective / unavailable-in-lab, as the lab reports them), every non-finding in the
dead-letter queue, and latencies from PutEvents to the case opening and to its last automatic step.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eksir.lab.lab import LabState, env_exports
from eksir.lab.moto_server import AwsEndpoint

DONE_STATUSES = {"verified", "not-effective", "unavailable-in-lab"}


def worker_env(state: LabState) -> dict[str, str]:
    """The environment after `eval "$(eksir lab env)"` (security account's operator, the role template)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EKSIR_", "KUBECONFIG"))}
    for line in env_exports(state).splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def security(state: LabState) -> AwsEndpoint:
    org = state.organisation
    return AwsEndpoint(
        state.aws_endpoint, state.region, org["operator_access_key_id"], org["operator_secret_access_key"]
    )


@dataclass
class Workers:
    """`eksir serve` processes on one case store (a directory, or s3:// with `lock_table`); logs in logs/."""

    env: dict[str, str]
    fleet: dict[str, Any]
    cases: Path | str
    lab_dir: Path
    logs: Path
    kubeconfig: str = ""
    """Empty: no kubeconfig, as on EKS: the member account's role (EKSIR_ASSUME_ROLE) and an EKS token."""
    concurrency: int = 2
    visibility: int = 15
    lock_table: str | None = None
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, index: int) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "eksir",
            "serve",
            "--queue-url",
            self.fleet["queue_url"],
            "--cases-dir",
            str(self.cases),
            "--trust-finding-file",
            *(["--kubeconfig", self.kubeconfig] if self.kubeconfig else []),
            "--lab-dir",
            str(self.lab_dir),
            "--concurrency",
            str(self.concurrency),
            "--wait-seconds",
            "1",
            "--visibility-timeout",
            str(self.visibility),
            "--health-interval",
            "2",
            "--max-receives",
            str(self.fleet["max_receives"]),
            *(["--lock-table", self.lock_table] if self.lock_table else []),
        ]
        out = (self.logs / f"worker-{index}.{time.monotonic_ns()}.log").open("wb")
        proc = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[index] = proc
        return proc

    def kill(self, index: int) -> None:
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Never leave a worker behind, whatever failed (a no-op for workers already stopped)."""
        self.stop_all(timeout=20)

    def terminate(self, index: int, timeout: float = 60) -> int | None:
        """SIGTERM one worker and wait: its exit code (None if it had to be killed)."""
        proc = self.procs[index]
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return None

    def stop_all(self, timeout: float = 60) -> dict[int, int | None]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[int, int | None] = {}
        for index, proc in self.procs.items():
            try:
                codes[index] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[index] = None
        return codes


def put_events(endpoint: AwsEndpoint, items: list[dict[str, Any]]) -> list[float]:
    """PutEvents in batches of 10 (the API's limit); returns the wall time each item was sent."""
    events = endpoint.client("events")
    sent: list[float] = []
    for start in range(0, len(items), 10):
        batch = items[start : start + 10]
        entries = [
            {
                "Source": "aws.guardduty",
                "DetailType": i["event"]["detail-type"],
                "Detail": json.dumps(i["event"]["detail"]),
                "EventBusName": "default",
            }
            for i in batch
        ]
        now = time.time()
        reply = events.put_events(Entries=entries)
        if reply.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {reply}")
        sent += [now] * len(batch)
    return sent


def send_garbage(endpoint: AwsEndpoint, queue_url: str, bodies: list[str]) -> None:
    sqs = endpoint.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)


def queue_empty(endpoint: AwsEndpoint, queue_url: str) -> bool:
    attrs = endpoint.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0
    )


def drain(endpoint: AwsEndpoint, queue_url: str) -> list[dict[str, Any]]:
    """Every message of a queue (the DLQ), with its attributes; deletes them."""
    sqs = endpoint.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        reply = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        messages = reply.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(m)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def _events(case_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (case_dir / "events.jsonl").read_text().splitlines() if line]


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["at"]).astimezone(UTC).timestamp()


@dataclass
class CaseScore:
    case_id: str
    pods: set[str]
    opened_at: float
    auto_done_at: float | None
    responded: bool
    auto_steps: dict[str, str]
    applied_twice: list[str]


def score_case(case_dir: Path) -> CaseScore:
    events = _events(case_dir)
    pods: set[str] = set()
    applied: dict[tuple[str, str], int] = {}
    for e in events:
        if e["type"] in ("case.opened", "case.joined"):
            pods |= {"/".join(w.split("/")[-2:]) for w in e["data"].get("workloads", [])}
        if e["type"] == "step.applied" and "re-verify" not in str(e["data"]["record"].get("detail")):
            key = (str(e["data"].get("plan_digest")), str(e["data"]["record"]["step_id"]))
            applied[key] = applied.get(key, 0) + 1
    state = (
        json.loads((case_dir / "plan-state.json").read_text())
        if (case_dir / "plan-state.json").exists()
        else {"steps": {}}
    )
    auto = {
        sid: r["status"]
        for sid, r in state["steps"].items()
        if (r.get("approval") or {}).get("how", "").startswith("policy:")
    }
    done = [
        _at(e)
        for e in events
        if e["type"].startswith("step.")
        and e["type"][5:] in DONE_STATUSES
        and e["data"].get("record", {}).get("step_id") in auto
    ]
    return CaseScore(
        case_id=case_dir.name,
        pods=pods,
        opened_at=_at(next(e for e in events if e["type"] == "case.opened")),
        auto_done_at=max(done) if done else None,
        responded=any(e["type"] == "serve.responded" for e in events),
        auto_steps=auto,
        applied_twice=[f"{sid}" for (_d, sid), n in applied.items() if n > 1],
    )


def cases_of(cases_dir: Path) -> list[CaseScore]:
    return [
        score_case(p)
        for p in sorted(cases_dir.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / "case.json").exists()
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(
    fleet: dict[str, Any], sent: list[float], cases: list[CaseScore], dlq: list[dict[str, Any]], garbage: int
) -> dict[str, Any]:
    """The run's figures and its pass/fail facts."""
    first_sent: dict[int, float] = {}
    for item, at in zip(fleet["events"], sent, strict=False):
        if item["incident"] is not None:
            first_sent.setdefault(item["incident"], at)
    per_incident: dict[int, list[CaseScore]] = {}
    for inc in fleet["expected_incidents"]:
        key = f"{inc['namespace']}/{inc['pod']}"
        per_incident[inc["incident"]] = [c for c in cases if key in c.pods]
    opened = [
        per_incident[i][0].opened_at - first_sent[i]
        for i in per_incident
        if per_incident[i] and i in first_sent
    ]
    contained = [
        done - first_sent[i]
        for i in per_incident
        if per_incident[i] and i in first_sent and (done := per_incident[i][0].auto_done_at) is not None
    ]
    non_findings = sum(1 for e in fleet["events"] if e["kind"] == "non-finding") + garbage
    return {
        "incidents": len(per_incident),
        "incidents_with_exactly_one_case": sum(1 for v in per_incident.values() if len(v) == 1),
        "cases": len(cases),
        "responded": sum(1 for c in cases if c.responded),
        "auto_steps_not_done": {
            c.case_id: s
            for c in cases
            for s in [{k: v for k, v in c.auto_steps.items() if v not in DONE_STATUSES}]
            if s
        },
        "cases_without_auto_steps": [c.case_id for c in cases if not c.auto_steps],
        "applied_twice": {c.case_id: c.applied_twice for c in cases if c.applied_twice},
        "non_findings_sent": non_findings,
        "dead_lettered": len(dlq),
        "dead_lettered_distinct": len(
            {
                m.get("MessageAttributes", {}).get("eksir-source-message-id", {}).get("StringValue")
                or m["MessageId"]
                for m in dlq
            }
        ),
        "dlq_reasons": sorted(
            {m.get("MessageAttributes", {}).get("eksir-reason", {}).get("StringValue", "")[:40] for m in dlq}
        ),
        "latency_opened_s": {"p50": percentile(opened, 0.5), "p95": percentile(opened, 0.95)},
        "latency_contained_s": {"p50": percentile(contained, 0.5), "p95": percentile(contained, 0.95)},
        "mean_contained_s": statistics.fmean(contained) if contained else float("nan"),
    }


def bare_loop(endpoint: AwsEndpoint, queue_url: str, items: list[dict[str, Any]]) -> dict[str, float]:
    """The floor: the same events through PutEvents -> rule -> queue, a bare receive/delete loop."""
    sqs = endpoint.client("sqs")
    sent_at = put_events(endpoint, items)
    start, latencies = sent_at[0], []
    received = 0
    deadline = time.time() + 120
    while received < len(items) and time.time() < deadline:
        reply = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["SentTimestamp"]
        )
        now = time.time()
        for m in reply.get("Messages", []):
            latencies.append(now - int(m["Attributes"]["SentTimestamp"]) / 1000)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            received += 1
    elapsed = time.time() - start
    return {
        "events": received,
        "rate_per_s": received / elapsed if elapsed else 0.0,
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
    }


def put_events_paced(endpoint: AwsEndpoint, items: list[dict[str, Any]], every_s: float) -> list[float]:
    """PutEvents one item every `every_s` seconds (a steady arrival rate instead of a burst); returns the
    wall time each item was sent. Why: in a burst every incident but the first waits in the queue for the
    ones before it, so its latency measures the lab's throughput on this machine, not how fast one finding
    is handled; a paced run at a rate the workers sustain measures the latter."""
    sent: list[float] = []
    start = time.monotonic()
    for index, item in enumerate(items):
        time.sleep(max(0.0, start + index * every_s - time.monotonic()))
        sent += put_events(endpoint, [item])
    return sent

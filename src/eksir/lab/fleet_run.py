"""Drive and score the fleet lab: start `eksir serve` workers, send fleet.json's events, read the cases.

Used by `bench/bench_fleet.py` and the fleet test alike, so both measure and assert the same things from the
same records: every incident has exactly one case, no step applied twice (the case logs), every auto-run
step verified (or not-effective / unavailable-in-lab, as the lab reports them), every non-finding in the
dead-letter queue, and latencies from PutEvents to the case opening and to its last automatic step.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eksir.lab.lab import LabState, env_exports
from eksir.lab.moto_server import AwsEndpoint
from eksir.lab.processes import read_records

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
    health_interval: float = 2
    launcher: dict[int, list[str]] = field(default_factory=dict)
    """Per worker index, what runs instead of `-m eksir` (e.g. the bench's profiling wrapper)."""
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, index: int) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            *self.launcher.get(index, ["-m", "eksir"]),
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
            str(self.health_interval),
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

    def pause(self) -> None:
        """SIGSTOP every running worker (a backlog builds up in the queue meanwhile)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGSTOP)

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user + system) each running worker has used so far, from /proc (Linux)."""
        used = {index: cpu_seconds_of(proc.pid) for index, proc in self.procs.items()}
        return {index: seconds for index, seconds in used.items() if seconds is not None}

    def resume(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)

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


def cpu_seconds_of(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used so far, from /proc (Linux); None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lab_cpu_seconds(lab_dir: Path) -> dict[str, float]:
    """CPU seconds each server of the lab (moto, kube-apiserver, etcd, the EKS authenticator) has used so
    far: where a burst's machine time goes besides the workers."""
    used: dict[str, float] = {}
    for part in ("aws", "k8s"):
        for record in read_records(lab_dir / part):
            seconds = cpu_seconds_of(record.pid)
            if seconds is not None:
                used[record.name] = used.get(record.name, 0.0) + seconds
    return used


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
    return _queued(endpoint, queue_url) == 0


def _queued(endpoint: AwsEndpoint, queue_url: str) -> int:
    """Messages in the queue, waiting or in flight."""
    attrs = endpoint.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


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
    account_id: str | None
    cluster_name: str | None
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
    header = json.loads((case_dir / "case.json").read_text())
    return CaseScore(
        case_id=case_dir.name,
        account_id=header.get("account_id"),
        cluster_name=header.get("cluster_name"),
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


def token_sessions(auth_log: Path) -> dict[str, set[str]]:
    """Case id -> the accounts whose `eksir-responder` sessions for that case reached the cluster with an
    EKS token (the lab authenticator's log: `authenticated arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`;
    a worker's session name is `eksir-<case id>`, cli/accounts.py)."""
    found: dict[str, set[str]] = {}
    text = auth_log.read_text(errors="replace") if auth_log.exists() else ""
    for arn in re.findall(r"authenticated (arn:aws:sts::\d{12}:assumed-role/\S+)", text):
        account, session = arn.split(":")[4], arn.rsplit("/", 1)[-1]
        if session.startswith("eksir-"):
            found.setdefault(session.removeprefix("eksir-"), set()).add(account)
    return found


def account_facts(
    fleet: dict[str, Any], per_incident: dict[int, list[CaseScore]], sessions: dict[str, set[str]] | None
) -> dict[str, Any]:
    """Did each case act in its own account: the case's account and cluster are the incident's, and (with
    `sessions`, EKS-token runs) every token session of the case was the responder role of that account."""
    expected = {inc["incident"]: inc for inc in fleet["expected_incidents"]}
    wrong = [
        f"{c.case_id}: {c.account_id}/{c.cluster_name}, expected {inc['account']}/{inc['cluster']}"
        for i, found in per_incident.items()
        for c in found
        if "account" in (inc := expected[i])
        and (c.account_id, c.cluster_name) != (inc["account"], inc["cluster"])
    ]
    facts: dict[str, Any] = {
        "incidents_per_account": {
            a: sum(1 for inc in expected.values() if inc.get("account") == a)
            for a in fleet.get("accounts", {})
        },
        "cases_in_wrong_account": wrong,
    }
    if sessions is not None:
        cases = [c for found in per_incident.values() for c in found]
        facts["cases_with_token_session"] = sum(1 for c in cases if c.case_id in sessions)
        facts["token_sessions_in_another_account"] = {
            c.case_id: sorted(sessions[c.case_id] - {c.account_id or ""})
            for c in cases
            if sessions.get(c.case_id, set()) - {c.account_id or ""}
        }
        facts["token_accounts"] = sorted({a for c in cases for a in sessions.get(c.case_id, set())})
    return facts


def dlq_facts(dlq: list[dict[str, Any]]) -> dict[str, Any]:
    """What the dead-letter queue holds: messages, distinct source messages, reasons."""
    return {
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
    }


def report(
    fleet: dict[str, Any],
    sent: list[float],
    cases: list[CaseScore],
    dlq: list[dict[str, Any]],
    garbage: int,
    *,
    sessions: dict[str, set[str]] | None = None,
) -> dict[str, Any]:
    """The run's figures and its pass/fail facts (`sessions`: token_sessions, for an EKS-token run)."""
    first_sent: dict[int, float] = {}
    for item, at in zip(fleet["events"], sent, strict=False):
        if item["incident"] is not None:  # the earliest event about the incident, whatever the send order
            first_sent[item["incident"]] = min(at, first_sent.get(item["incident"], at))
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
        **dlq_facts(dlq),
        "latency_opened_s": {"p50": percentile(opened, 0.5), "p95": percentile(opened, 0.95)},
        "latency_contained_s": {"p50": percentile(contained, 0.5), "p95": percentile(contained, 0.95)},
        "mean_contained_s": statistics.fmean(contained) if contained else float("nan"),
        **account_facts(fleet, per_incident, sessions),
    }


def bare_loop(endpoint: AwsEndpoint, queue_url: str, items: list[dict[str, Any]]) -> dict[str, float]:
    """The floor: the same events through PutEvents -> rule -> queue, a bare receive/delete loop with the
    worker's own calls (receive 10, one DeleteMessageBatch for them), so the ratio compares like with like."""
    sent_at = put_events(endpoint, items)
    start, latencies, received = sent_at[0], [], 0
    for now, messages in _bare_batches(endpoint, queue_url, len(items)):
        latencies += [now - int(m["Attributes"]["SentTimestamp"]) / 1000 for m in messages]
        received += len(messages)
    elapsed = time.time() - start
    return {
        "events": received,
        "rate_per_s": received / elapsed if elapsed else 0.0,
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
    }


def _bare_batches(
    endpoint: AwsEndpoint, queue_url: str, count: int, seconds: float = 120
) -> Iterator[tuple[float, list[dict[str, Any]]]]:
    """The worker's queue calls without the worker: receive 10, one DeleteMessageBatch for them; yields
    (when received, the messages) until `count` messages came or `seconds` passed."""
    sqs = endpoint.client("sqs")
    received, deadline = 0, time.time() + seconds
    while received < count and time.time() < deadline:
        reply = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["SentTimestamp"]
        )
        now, messages = time.time(), reply.get("Messages", [])
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        received += len(messages)
        yield now, messages


@dataclass(frozen=True)
class S3Store:
    """A shared case store as the deployed service has it: cases under s3://bucket/prefix, one DynamoDB
    lease item per case (`--cases-dir s3://... --lock-table`)."""

    bucket: str
    table: str
    prefix: str = "cases"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def create_s3_store(endpoint: AwsEndpoint, bucket: str = "eksir-fleet-cases") -> S3Store:
    """The bucket and the lease table (key `case_key`, as `eksir deploy template` declares it) in the
    security account, created directly (the lab does not deploy the service's stack here)."""
    store = S3Store(bucket, "eksir-case-leases")
    endpoint.client("s3").create_bucket(Bucket=store.bucket)
    endpoint.client("dynamodb").create_table(
        TableName=store.table,
        KeySchema=[{"AttributeName": "case_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "case_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return store


def s3_worker_env(state: LabState, cache: Path, lease_seconds: int = 10) -> dict[str, str]:
    """worker_env plus each worker's local cache of S3 cases and a lease short enough that a killed
    worker's cases are resumed within a test's patience."""
    return worker_env(state) | {"EKSIR_S3_CACHE": str(cache), "EKSIR_LEASE_SECONDS": str(lease_seconds)}


def reader_env(env: dict[str, str], cache: Path) -> dict[str, str]:
    """What this process needs in os.environ to read the S3 store itself (the security account's operator,
    moto's endpoint, its own cache)."""
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    return {n: env[n] for n in names} | {
        "AWS_REGION": env["AWS_DEFAULT_REGION"],
        "EKSIR_S3_CACHE": str(cache),
    }


def s3_case_copies(store: S3Store) -> Path:
    """Every case of the S3 store read back into this process's cache (S3 is the record; the copies are
    the reader's own), for scoring with `cases_of`. Needs reader_env in os.environ."""
    from eksir.store import CaseStore  # noqa: PLC0415

    cases = CaseStore(store.url, lock_table=store.table)
    if cases.backend is not None:
        for case_id in cases.backend.case_ids():
            cases.get(case_id)
    return cases.root


def responded(cases: Path) -> int:
    """How many cases record their outcome (`serve.responded`)."""
    if not cases.is_dir():
        return 0
    return sum(
        1
        for case in cases.iterdir()
        if case.name.startswith("eksir-")
        and (case / "events.jsonl").exists()
        and b'"serve.responded"' in (case / "events.jsonl").read_bytes()
    )


def verify_cases(store: S3Store, case_ids: list[str], env: dict[str, str]) -> dict[str, str]:
    """`eksir case verify s3://.../CASE` for each case, two at a time: case id -> the failure's output
    (empty when all pass)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    def one(case_id: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        argv = [sys.executable, "-m", "eksir", "case", "verify", f"{store.url}/{case_id}"]
        return case_id, subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=180, check=False
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, case_ids))
    return {c: (p.stdout + p.stderr)[-500:] for c, p in done if p.returncode != 0}


def repeat_burst(fleet: dict[str, Any], per_incident: int, first_count: int = 1000) -> list[dict[str, Any]]:
    """GuardDuty's repeats of every incident's first finding, `per_incident` each: the same finding id with
    counts from `first_count` (above any fleet.json sends) and a newer updatedAt, interleaved across
    incidents."""
    from eksir.lab.fleet import repeat_of  # noqa: PLC0415

    firsts = [e for e in fleet["events"] if e["kind"] == "finding"]
    return [
        {
            "kind": "repeat",
            "incident": f["incident"],
            "event": repeat_of(f["event"], first_count + r, first_count + r),
        }
        for r in range(per_incident)
        for f in firsts
    ]


def health(logs: Path) -> dict[int, dict[str, Any]]:
    """Each worker index's latest health line (`{"eksir-serve": {...}}`) from its newest process's log
    (`worker-<index>.<start ns>.log`)."""
    newest: dict[int, tuple[int, Path]] = {}
    for path in logs.glob("worker-*.log"):
        name, started = path.name.split(".")[0:2]
        index = int(name.removeprefix("worker-"))
        if index not in newest or int(started) > newest[index][0]:
            newest[index] = (int(started), path)
    out: dict[int, dict[str, Any]] = {}
    for index, (_started, path) in newest.items():
        lines = [line for line in path.read_bytes().splitlines() if line.startswith(b'{"eksir-serve"')]
        out[index] = json.loads(lines[-1])["eksir-serve"] if lines else {}
    return out


def measure_repeats(
    endpoint: AwsEndpoint, queue_url: str, logs: Path, items: list[dict[str, Any]], timeout: float = 300
) -> dict[str, Any]:
    """Send `items` (repeats of open cases) with PutEvents while the workers run; per worker, how many it
    recorded as repeats (its health line's `repeats` counter) and at what rate, from the first PutEvents
    until its counter stopped at its share (health lines every --health-interval: that is the resolution)."""
    before = _repeat_counters(logs)
    start = time.time()
    put_events(endpoint, items)
    sent_s = time.time() - start
    counted = _count_repeats(
        endpoint, queue_url, logs, _Counted(before, start), expected=len(items), timeout=timeout, poll=0.25
    )
    return {"sent": len(items), "putevents_s": round(sent_s, 2)} | counted.summary()


@dataclass
class _Counted:
    """Each worker's health-line `repeats` counter: at the start, last seen, and when it last moved."""

    before: dict[int, int]
    start: float
    last: dict[int, int] = field(init=False)
    done_at: dict[int, float] = field(init=False)

    def __post_init__(self) -> None:
        self.last, self.done_at = dict(self.before), {i: self.start for i in self.before}

    def handled(self, index: int | None = None) -> int:
        indexes = self.last if index is None else [index]
        return sum(self.last[i] - self.before.get(i, 0) for i in indexes)

    def per_worker(self) -> dict[int, dict[str, Any]]:
        return {
            i: {
                "repeats": self.handled(i),
                "busy_s": round(self.done_at[i] - self.start, 2),
                "rate_per_s": round(self.handled(i) / max(self.done_at[i] - self.start, 1e-3), 1),
            }
            for i in sorted(self.last)
        }

    def summary(self) -> dict[str, Any]:
        span = max(self.done_at.values(), default=self.start) - self.start
        return {
            "handled": self.handled(),
            "all_handled_s": round(span, 2),
            "rate_per_s_all_workers": round(self.handled() / max(span, 1e-3), 1),
            "per_worker": self.per_worker(),
            "started_at": self.start,
        }


def _repeat_counters(logs: Path) -> dict[int, int]:
    return {i: int(h.get("repeats", 0)) for i, h in health(logs).items()}


def _count_repeats(
    endpoint: AwsEndpoint,
    queue_url: str,
    logs: Path,
    counted: _Counted,
    *,
    expected: int,
    timeout: float,
    poll: float,
) -> _Counted:
    """Follow the counters until they moved by `expected` and the queue is empty (or `timeout`)."""
    while time.time() < counted.start + timeout:
        for i, count in _repeat_counters(logs).items():
            if count != counted.last.get(i):
                counted.last[i], counted.done_at[i] = count, time.time()
        if counted.handled() >= expected and queue_empty(endpoint, queue_url):
            break
        time.sleep(poll)
    return counted


def fill(endpoint: AwsEndpoint, queue_url: str, items: list[dict[str, Any]], timeout: float = 300) -> float:
    """PutEvents `items` and wait until the queue holds them all (the rule delivered them); returns the
    seconds that took. Why: a rate measured while PutEvents is still sending is the sender's rate (this
    emulator's EventBridge delivers some tens of events per second), not the consumer's."""
    before, start = _queued(endpoint, queue_url), time.time()
    put_events(endpoint, items)
    while _queued(endpoint, queue_url) < before + len(items) and time.time() < start + timeout:
        time.sleep(0.2)
    return time.time() - start


def measure_backlog(
    endpoint: AwsEndpoint, queue_url: str, workers: Workers, items: list[dict[str, Any]], timeout: float = 300
) -> dict[str, Any]:
    """The workers' own rate on a backlog: paused (SIGSTOP) while `items` (repeats) are sent and delivered
    to the queue, then resumed; per worker, its health line's `repeats` counter from the resume until the
    counter stopped (health lines every --health-interval: the busy time is overstated by up to one
    interval, so the rate is a lower bound), and the CPU it spent."""
    workers.pause()
    try:
        filled_s = fill(endpoint, queue_url, items)
        before = _repeat_counters(workers.logs)
        cpu_before = workers.cpu_seconds()
    finally:
        workers.resume()
    counted = _Counted(before, time.time())
    _count_repeats(endpoint, queue_url, workers.logs, counted, expected=len(items), timeout=timeout, poll=0.1)
    result = {"sent": len(items), "queue_filled_s": round(filled_s, 1)} | counted.summary()
    for i, seconds in workers.cpu_seconds().items():
        if i in result["per_worker"]:
            cpu = round(seconds - cpu_before.get(i, 0.0), 2)
            repeats = max(1, counted.handled(i))
            result["per_worker"][i] |= {"cpu_s": cpu, "cpu_ms_per_repeat": round(1000 * cpu / repeats, 1)}
    return result


def bare_backlog(endpoint: AwsEndpoint, queue_url: str, items: list[dict[str, Any]]) -> dict[str, float]:
    """The floor for `measure_backlog`: the same items delivered to the queue first, then drained by one
    bare loop with the worker's calls (receive 10, one DeleteMessageBatch)."""
    fill(endpoint, queue_url, items)
    start = time.time()
    received = sum(len(messages) for _, messages in _bare_batches(endpoint, queue_url, len(items)))
    elapsed = time.time() - start
    return {"events": received, "rate_per_s": round(received / elapsed, 1) if elapsed else 0.0}


def repeats_recorded(cases: list[Path], since: float) -> int:
    """`finding.received-again` events recorded at or after `since` (the repeat burst's start), from the
    case logs: each repeat is an update of its case, never a second run."""
    return sum(
        1
        for case in cases
        for e in _events(case)
        if e["type"] == "finding.received-again" and _at(e) >= since
    )


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

"""Assemble and run the worker for `eksir serve`: policy, store and lease factories, queue, signals.

Why apart from the command: the command module stays light (its options only) so `eksir --help` and option
errors never import the engine; everything here is imported when serving starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from eksir.cli.respond_cmd import Access
from eksir.cli.serve_case import CaseHandler, FleetSetup, case_lease, case_store
from eksir.clients.assume import RoleMap
from eksir.clients.sqs import Queue
from eksir.engine import LabMode
from eksir.playbooks import PlaybookOptions
from eksir.policy import load_policy
from eksir.policy.model import DEFAULT_POLICY
from eksir.serve.metrics import HealthLine, Metrics, serve_prometheus
from eksir.serve.records import FleetLog
from eksir.serve.worker import Settings, Worker
from eksir.store.case_store import CaseStore, current_actor
from eksir.triage import load_triage_config


@dataclass(frozen=True)
class ServeOptions:
    queue_url: str
    cases_dir: Path | str
    """A directory, or `s3://bucket/prefix` (with `lock_table`)."""
    lock_table: str | None
    policy: Path | None
    concurrency: int
    metrics_port: int | None
    max_receives: int
    visibility: int
    wait_seconds: int
    batch: int
    health_interval: float
    evidence_bucket: str | None
    trust: bool
    triage_config: Path | None
    lab_dir: Path | None


def _lab_mode(lab_dir: Path | None) -> LabMode | None:
    if lab_dir is None:
        return None
    from eksir.lab.lab import load_state  # noqa: PLC0415 - lab mode only
    from eksir.lab.limits import unavailable_in_lab  # noqa: PLC0415

    return LabMode(unavailable_in_lab(load_state(lab_dir).node_runtime_reason))


def _local_root(options: ServeOptions) -> Path:
    """Where this worker keeps its fleet log (rejects, closed-case repeats): the cases directory, or for an
    S3 store its local copy (each worker's own; the DLQ, with the reasons, is the shared record)."""
    if isinstance(options.cases_dir, Path):
        return options.cases_dir
    return CaseStore(options.cases_dir, lock_table=options.lock_table).root


def build_setup(access: Access, roles: RoleMap, options: ServeOptions) -> FleetSetup:
    actor = f"eksir-serve:{current_actor()}"
    hint = f"--cases-dir {options.cases_dir} --queue-url {options.queue_url}"
    return FleetSetup(
        access=access.with_roles(roles, actor, keep_home_clients=True),
        policy=load_policy(options.policy) if options.policy else DEFAULT_POLICY,
        options=PlaybookOptions(evidence_bucket=options.evidence_bucket),
        triage_config=load_triage_config(options.triage_config),
        store_factory=case_store(options.cases_dir, actor, options.lock_table),
        lock_factory=case_lease,
        fleet_log=FleetLog(_local_root(options)),
        actor=actor,
        trust_findings=options.trust,
        lab_mode=_lab_mode(options.lab_dir),
        approve_hint=hint,
    )


def run_serve(access: Access, roles: RoleMap, options: ServeOptions, *, stopping: threading.Event) -> None:
    """Serve until SIGTERM/SIGINT; the work in hand finishes, leases are released, exit 0."""
    setup = build_setup(access, roles, options)
    queue = Queue(access.aws(), options.queue_url)
    metrics = Metrics()
    settings = Settings(
        wait_seconds=options.wait_seconds,
        visibility=options.visibility,
        max_receives=options.max_receives,
        batch=options.batch,
    )
    worker = Worker(
        queue,
        CaseHandler(setup),
        fleet_log=setup.fleet_log,
        metrics=metrics,
        settings=settings,
        dead_letter=queue.dead_letter_queue(),
        stopping=stopping,
    )
    setup.stopping = worker.stopping
    if options.metrics_port:
        serve_prometheus(metrics, options.metrics_port)
    health = HealthLine(metrics, options.health_interval)
    health.start()
    try:
        worker.run(options.concurrency)
    finally:
        health.stop()

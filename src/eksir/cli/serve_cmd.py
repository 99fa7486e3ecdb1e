"""`eksir serve`: the fleet worker. SQS in (EventBridge rule -> queue + DLQ), cases out, policy decides.

Run as many as you like, on any number of machines: each message is worked by one worker at a time (SQS
visibility, extended by a heartbeat), each case by one writer (the case lease), and a message is deleted only
after its case records the outcome. See cli/serve_case.py for what a message does to a case and
serve/worker.py for the loop.

The case store is a local directory shared by the worker processes of one machine (flock leases), or
`--cases-dir s3://bucket/prefix` with `--lock-table` (a DynamoDB lease per case, with a fencing token) for
workers on any number of machines (store/s3_store.py).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from eksir.cli.options import (
    AssumeRoleOpt,
    ContextOpt,
    EndpointOpt,
    EvidenceBucketOpt,
    ExternalIdOpt,
    KubeconfigOpt,
    ProfileOpt,
    RegionOpt,
    RoleMapOpt,
    SnsOpt,
    WebhookOpt,
)
from eksir.errors import UsageError

CasesDirText = Annotated[
    str,
    typer.Option(
        "--cases-dir",
        envvar="EKSIR_CASES_DIR",
        help="where cases live: a directory (one machine) or s3://bucket/prefix (any number)",
    ),
]
QueueUrlOpt = Annotated[str, typer.Option("--queue-url", help="the SQS queue the EventBridge rule feeds")]
LockTableOpt = Annotated[
    str | None, typer.Option("--lock-table", help="DynamoDB table of case leases (with an s3:// case store)")
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", envvar="EKSIR_POLICY", help="response policy YAML (eksir policy check)"),
]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, max=32, help="messages worked at once")]
MetricsPortOpt = Annotated[
    int | None, typer.Option("--metrics-port", min=1, max=65535, help="serve Prometheus metrics on this port")
]
MaxReceivesOpt = Annotated[
    int, typer.Option("--max-receives", min=1, max=1000, help="dead-letter a message failing this many times")
]
VisibilityOpt = Annotated[int, typer.Option("--visibility-timeout", min=10, max=43200, help="seconds")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, max=10, help="messages per receive (1-10)")]
WaitSecondsOpt = Annotated[int, typer.Option("--wait-seconds", min=0, max=20, help="SQS long poll")]
IntervalOpt = Annotated[
    float, typer.Option("--health-interval", min=0.5, help="seconds between health lines")
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-finding-file",
        help="act on findings as received without GuardDuty GetFindings (recorded in every case)",
    ),
]
TriageConfigOpt = Annotated[Path | None, typer.Option("--triage-config", help="triage config YAML")]
LabDirOpt = Annotated[
    Path | None,
    typer.Option("--lab-dir", help="lab mode: steps the local lab cannot perform are unavailable-in-lab"),
]


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT set the returned event: the worker stops receiving, finishes what it holds, exits 0."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    return stopping


def _cases_dir(text: str, lock_table: str | None) -> Path | str:
    """A directory, or `s3://bucket/prefix` kept as text (a Path would fold its `//`)."""
    if text.startswith("s3://"):
        return text
    if lock_table:
        raise UsageError("--lock-table goes with an s3:// --cases-dir (a directory store leases with flock)")
    return Path(text)


def serve_cmd(
    *,
    queue_url: QueueUrlOpt,
    cases_dir: CasesDirText = "cases",
    lock_table: LockTableOpt = None,
    policy: PolicyOpt = None,
    concurrency: ConcurrencyOpt = 2,
    metrics_port: MetricsPortOpt = None,
    max_receives: MaxReceivesOpt = 5,
    visibility_timeout: VisibilityOpt = 60,
    wait_seconds: WaitSecondsOpt = 20,
    batch: BatchOpt = 10,
    health_interval: IntervalOpt = 10.0,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    webhook_url: WebhookOpt = None,
    sns_topic_arn: SnsOpt = None,
    evidence_bucket: EvidenceBucketOpt = None,
    trust_finding_file: TrustOpt = False,
    triage_config: TriageConfigOpt = None,
    lab_dir: LabDirOpt = None,
) -> None:
    """Work findings from SQS: one case per incident, policy's steps run, the rest wait for approval.

    SIGTERM finishes the work in hand, releases the case leases and exits 0."""
    stopping = _stop_on_signals()  # first: a SIGTERM during the (seconds long) imports still ends with exit 0
    from eksir.cli.accounts import load_role_map  # noqa: PLC0415 - heavy imports only when serving
    from eksir.cli.respond_cmd import Access  # noqa: PLC0415
    from eksir.cli.serve_run import ServeOptions, run_serve  # noqa: PLC0415

    root = _cases_dir(cases_dir, lock_table)
    access = Access(region, profile, endpoint_url, kubeconfig, context, webhook_url, sns_topic_arn)
    roles = load_role_map(assume_role, external_id, role_map)
    options = ServeOptions(
        queue_url=queue_url,
        cases_dir=root,
        lock_table=lock_table,
        policy=policy,
        concurrency=concurrency,
        metrics_port=metrics_port,
        max_receives=max_receives,
        visibility=visibility_timeout,
        wait_seconds=wait_seconds,
        batch=batch,
        health_interval=health_interval,
        evidence_bucket=evidence_bucket,
        trust=trust_finding_file,
        triage_config=triage_config,
        lab_dir=lab_dir,
    )
    run_serve(access, roles, options, stopping=stopping)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)

"""`eksir serve` as a process against moto SQS: non-findings go to the DLQ with their reason, the health line
is JSON on stdout, the Prometheus endpoint answers, and SIGTERM ends it with exit 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from eksir.lab.moto_server import AwsEndpoint


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_dead_letters_non_findings_reports_health_and_exits_0_on_sigterm(
    moto_server: AwsEndpoint, tmp_path: Path
) -> None:
    sqs = moto_server.client("sqs")
    dlq = sqs.create_queue(QueueName="proc-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    url = sqs.create_queue(QueueName="proc", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    health = json.dumps({"detail-type": "GuardDuty Runtime Protection Unhealthy", "source": "aws.guardduty"})
    for body in ("{garbage", health):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    port = _free_port()
    env = {**os.environ, **moto_server.env()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eksir",
            "serve",
            "--queue-url",
            url,
            "--cases-dir",
            str(tmp_path / "cases"),
            "--wait-seconds",
            "1",
            "--health-interval",
            "0.5",
            "--metrics-port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        dead: list[dict[str, object]] = []
        while len(dead) < 2 and time.time() < deadline:
            dead += sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
            ).get("Messages", [])
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reasons = sorted(m["MessageAttributes"]["eksir-reason"]["StringValue"].split(":")[0] for m in dead)  # type: ignore[index]
    assert reasons == ["not-a-finding", "unreadable"]
    lines = [json.loads(line)["eksir-serve"] for line in out.splitlines() if line.startswith("{")]
    assert lines
    assert lines[-1]["rejected"] == 2
    assert "eksir_serve_rejected_total 2.0" in metrics
    rejects = (tmp_path / "cases" / ".fleet" / "rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 2

"""The worker loop against a real SQS (moto server): delete only after the handler recorded the outcome,
leave a failing message for another try and dead-letter it after N receives, send rejects to the DLQ with
the reason as a message attribute and in the rejects log, extend visibility while working.

The handler here records what it was given (the loop's contract is about the queue); what a finding does to
a case is tested with the fleet lab (tests/serve/test_fleet_lab.py).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from eksir.clients.aws import AwsClients
from eksir.clients.sqs import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, Queue
from eksir.errors import TemporaryError
from eksir.lab.moto_server import AwsEndpoint
from eksir.serve.intake import ContinueIntake, FindingIntake
from eksir.serve.metrics import HealthLine, Metrics
from eksir.serve.records import REJECTS, FleetLog
from eksir.serve.worker import Settings, Worker
from tests.cli.helpers import FIXTURES


class Recording:
    def __init__(self, fail: bool = False, slow: float = 0.0) -> None:
        self.seen: list[str] = []
        self.fail = fail
        self.slow = slow

    def finding(self, intake: FindingIntake, message_id: str) -> str:
        time.sleep(self.slow)
        if self.fail:
            raise TemporaryError("cluster unreachable")
        self.seen.append(intake.findings[0].id)
        return "processed"

    def quick(self, intake: FindingIntake, message_id: str) -> str | None:
        return None

    def resume(self, intake: ContinueIntake, message_id: str) -> str:
        self.seen.append(intake.case_id)
        return "continued"


def _queues(endpoint: AwsEndpoint, name: str, max_receives: int = 2) -> tuple[str, str]:
    sqs = endpoint.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    return url, dlq


def _worker(
    endpoint: AwsEndpoint, url: str, handler: Any, tmp: Path, **settings: Any
) -> tuple[Worker, Queue, Metrics]:
    aws = AwsClients(endpoint.region, endpoint_url=endpoint.url)
    queue = Queue(aws, url)
    metrics = Metrics()
    worker = Worker(
        queue,
        handler,
        fleet_log=FleetLog(tmp),
        metrics=metrics,
        settings=Settings(wait_seconds=0, **settings),
        dead_letter=queue.dead_letter_queue(),
    )
    return worker, queue, metrics


def _count(endpoint: AwsEndpoint, url: str) -> int:
    attrs = endpoint.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def aws_env(moto_server: AwsEndpoint, monkeypatch: pytest.MonkeyPatch) -> AwsEndpoint:
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    return moto_server


def test_a_handled_finding_is_deleted_after_the_handler_and_garbage_goes_to_the_dlq_with_its_reason(
    aws_env: AwsEndpoint, tmp_path: Path
) -> None:
    url, dlq = _queues(aws_env, "w-basic")
    sqs = aws_env.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=(FIXTURES / "iam-user.eventbridge.json").read_text())
    sqs.send_message(QueueUrl=url, MessageBody="{not json")
    handler = Recording()
    worker, _queue, metrics = _worker(aws_env, url, handler, tmp_path)
    while worker.poll_once():
        pass
    assert len(handler.seen) == 1
    assert _count(aws_env, url) == 0
    dead = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    assert [m["Body"] for m in dead] == ["{not json"]
    assert dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"].startswith("unreadable:")
    assert dead[0]["MessageAttributes"][SOURCE_ATTRIBUTE]["StringValue"]
    rejects = FleetLog(tmp_path).read(REJECTS)
    assert [r["excerpt"] for r in rejects] == ["{not json"]
    snap = metrics.snapshot()
    assert (snap["processed"], snap["rejected"], snap["in_flight"]) == (1, 1, 0)


def test_a_failing_message_stays_for_another_try_then_goes_to_the_dlq_with_its_last_error(
    aws_env: AwsEndpoint, tmp_path: Path
) -> None:
    url, dlq = _queues(aws_env, "w-fail", max_receives=5)
    sqs = aws_env.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=(FIXTURES / "iam-user.eventbridge.json").read_text())
    worker, _queue, metrics = _worker(
        aws_env, url, Recording(fail=True), tmp_path, visibility=10, max_receives=2
    )
    worker.settings = Settings(wait_seconds=0, visibility=0, max_receives=2)  # come back at once
    assert worker.poll_once() == 1
    assert _count(aws_env, url) == 1  # not deleted: it failed
    deadline = time.time() + 10
    while _count(aws_env, dlq) == 0 and time.time() < deadline:
        worker.poll_once()
    dead = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert "cluster unreachable" in dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert _count(aws_env, url) == 0
    assert metrics.snapshot()["failed"] >= 2


def test_the_heartbeat_keeps_a_slow_message_invisible_and_stop_lets_the_loop_finish(
    aws_env: AwsEndpoint, tmp_path: Path
) -> None:
    url, _dlq = _queues(aws_env, "w-slow")
    sqs = aws_env.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=(FIXTURES / "iam-user.eventbridge.json").read_text())
    handler = Recording(slow=4.5)
    worker, _queue, _metrics = _worker(aws_env, url, handler, tmp_path, visibility=3)
    runner = threading.Thread(target=worker.run, args=(1,))
    runner.start()
    time.sleep(3.8)  # past the first visibility timeout: still invisible because the heartbeat extended it
    visible = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    worker.stop()
    runner.join(timeout=20)
    assert not visible
    assert not runner.is_alive()
    assert len(handler.seen) == 1
    assert _count(aws_env, url) == 0


def test_the_health_line_is_one_json_object_with_the_counters(tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.add("processed", 3)
    out = (tmp_path / "out").open("w+")
    line = HealthLine(metrics, 60, out)
    line.emit()
    out.seek(0)
    doc = json.loads(out.readline())["eksir-serve"]
    assert doc["processed"] == 3
    assert {"failed", "in_flight", "lag_s", "rejected"} <= set(doc)

"""What the lab's moto process changes about moto's cost (eksir.lab.moto_eks), never about its answers.

Why it matters: the fleet bench measures how fast workers drain a queue and contain a burst; moto, one
GIL-bound process, was most of the lab's CPU there. With moto's own retention check every receive walked the
whole queue once per message handed out, so the emulator, not the consumer, set the rate; its router listed
moto's package folder on every request; and it wrote a log line per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

moto = pytest.importorskip("moto")

import moto.sqs.models as sqs_models  # noqa: E402
from moto.sqs.models import Queue, SQSBackend, sqs_backends  # noqa: E402

from eksir.lab import processes  # noqa: E402
from eksir.lab.moto_eks import (  # noqa: E402
    REQUEST_LOG_ENV,
    check_sqs_retention_directly,
    count_sqs_messages_cheaply,
    list_moto_services_once,
    memoise_response_methods,
)
from eksir.lab.moto_server import spawn_detached  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(params=["moto's own check", "the lab's check"])
def sqs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process SQS, with moto's retention check or the lab's (restored afterwards either way)."""
    original = SQSBackend.is_message_valid_based_on_retention_period
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period", original)
    if request.param == "the lab's check":
        check_sqs_retention_directly()
    with moto.mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def _queue(sqs: Any, retention_s: int) -> str:
    url: str = sqs.create_queue(
        QueueName="findings", Attributes={"MessageRetentionPeriod": str(retention_s)}
    )["QueueUrl"]
    return url


def _queue_of(sqs: Any, messages: int) -> str:
    """A queue holding `messages` messages (bodies "0", "1", ...), sent ten at a time."""
    url = _queue(sqs, 3600)
    for start in range(0, messages, 10):
        entries = [{"Id": str(i), "MessageBody": str(start + i)} for i in range(min(10, messages - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return url


def _age_every_message(seconds: float) -> None:
    """Move every queued message's send time back, as if it had waited that long."""
    for message in sqs_backends[ACCOUNT][REGION].get_queue("findings")._messages:
        message.sent_timestamp -= int(seconds * 1000)


def test_a_message_within_retention_is_received(sqs: Any) -> None:
    url = _queue(sqs, 60)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "f-1"}))
    _age_every_message(50)

    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])

    assert [json.loads(m["Body"]) for m in received] == [{"id": "f-1"}]


def test_a_message_past_retention_is_not_received(sqs: Any) -> None:
    url = _queue(sqs, 60)
    sqs.send_message(QueueUrl=url, MessageBody="late")
    _age_every_message(61)

    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def test_the_retention_period_set_later_is_the_one_checked(sqs: Any) -> None:
    url = _queue(sqs, 3600)
    sqs.send_message(QueueUrl=url, MessageBody="kept an hour, then a minute")
    _age_every_message(120)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})

    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def _count_attribute_computations(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count every computation of a queue's attributes (each walks the whole queue three times)."""
    computed = {"n": 0}
    moto_attributes = Queue.attributes.fget
    assert moto_attributes is not None

    def attributes(queue: Queue) -> Any:
        computed["n"] += 1
        return moto_attributes(queue)

    monkeypatch.setattr(Queue, "attributes", property(attributes))
    return computed


def test_the_lab_check_reads_no_queue_wide_attribute_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's check computes every attribute (three walks of the queue) for each message it hands out."""
    monkeypatch.setattr(
        SQSBackend,
        "is_message_valid_based_on_retention_period",
        SQSBackend.is_message_valid_based_on_retention_period,
    )
    check_sqs_retention_directly()
    walks = _count_attribute_computations(monkeypatch)
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = _queue_of(sqs, 300)
        walks["n"] = 0

        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert len(received) == 10
    assert walks["n"] == 0


def test_the_router_knows_the_same_services_without_listing_moto_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import backends

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    listed = set(backends.list_of_moto_modules())
    list_moto_services_once()

    def no_listing(path: str) -> list[str]:
        raise AssertionError(f"listed {path} again")

    monkeypatch.setattr("os.listdir", no_listing)
    assert set(backends.list_of_moto_modules()) == listed
    assert {"s3", "sqs", "eks", "events"} <= listed


@pytest.mark.parametrize("asked", [False, True], ids=["quiet", "asked-for"])
def test_the_lab_moto_logs_a_line_per_request_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asked: bool
) -> None:
    if asked:
        monkeypatch.setenv(REQUEST_LOG_ENV, "1")
    else:
        monkeypatch.delenv(REQUEST_LOG_ENV, raising=False)
    server = spawn_detached(tmp_path)
    try:
        server.endpoint.client("s3").list_buckets()
        server.endpoint.client("sqs").list_queues()
    finally:
        processes.stop_all(tmp_path)

    request_lines = [
        line
        for line in server.log_path.read_text().splitlines()
        if '"POST / HTTP' in line or '"GET / HTTP' in line
    ]
    assert bool(request_lines) == asked, server.log_path.read_text()[-2000:]


def _keep_moto_sqs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restore moto's own SQS functions after the test, whatever it patches."""
    monkeypatch.setattr(sqs_models, "unix_time_millis", sqs_models.unix_time_millis)
    monkeypatch.setattr(SQSBackend, "get_queue_attributes", SQSBackend.get_queue_attributes)


def _attributes_and_visibility(asked: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """A queue of 30 messages, 10 received: its attributes before and after, and the bodies received."""
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = _queue_of(sqs, 30)
        before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=asked)["Attributes"]
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
        after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=asked)["Attributes"]
    for volatile in ("CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"):
        before.pop(volatile, None)
        after.pop(volatile, None)
    return before, after, sorted(m["Body"] for m in received)


@pytest.mark.parametrize(
    "asked",
    [
        ["All"],
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ["VisibilityTimeout"],
    ],
    ids=["all", "two-counts", "one-setting"],
)
def test_cheap_counting_answers_as_moto_does(monkeypatch: pytest.MonkeyPatch, asked: list[str]) -> None:
    _keep_moto_sqs(monkeypatch)
    mine = _attributes_and_visibility(asked)
    count_sqs_messages_cheaply()
    cheap = _attributes_and_visibility(asked)

    assert cheap == mine
    if "ApproximateNumberOfMessages" in asked:
        assert (
            cheap[1]["ApproximateNumberOfMessages"],
            cheap[1]["ApproximateNumberOfMessagesNotVisible"],
        ) == ("20", "10")


def test_cheap_counting_still_refuses_an_unknown_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    _keep_moto_sqs(monkeypatch)
    count_sqs_messages_cheaply()
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = _queue(sqs, 3600)
        with pytest.raises(sqs.exceptions.ClientError, match="InvalidAttributeName"):
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NotAnAttribute"])


def test_cheap_counting_computes_the_attributes_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    _keep_moto_sqs(monkeypatch)
    count_sqs_messages_cheaply()
    computed = _count_attribute_computations(monkeypatch)
    with moto.mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = _queue(sqs, 3600)
        computed["n"] = 0
        sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )

    assert computed["n"] == 1


def test_a_response_class_s_methods_are_listed_once_and_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core import responses
    from moto.sqs.responses import SQSResponse

    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)
    listed = responses.method_names_from_class(SQSResponse)
    memoise_response_methods()
    assert responses.method_names_from_class(SQSResponse) == listed
    assert "receive_message" in listed

    def no_listing(*_args: object, **_kwargs: object) -> list[Any]:
        raise AssertionError("listed the class's members again")

    monkeypatch.setattr("inspect.getmembers", no_listing)
    assert responses.method_names_from_class(SQSResponse) == listed
    with moto.mock_aws():
        boto3.client("sqs", region_name=REGION).list_queues()  # dispatched through the cached list

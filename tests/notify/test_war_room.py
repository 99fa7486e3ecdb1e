"""The war room against a real local HTTP receiver and moto SNS (read back through a subscribed SQS queue)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from eksir.engine.state import StepStatus, fresh_state
from eksir.lab.moto_server import AwsEndpoint, InProcessMoto
from eksir.notify import SnsChannel, WarRoom, WebhookChannel
from eksir.notify import message as msg
from eksir.store import CaseHandle, CaseStore, verify_case
from tests.engine.conftest import make_plan, mark_step
from tests.factories import make_finding


class _Receiver(BaseHTTPRequestHandler):
    status = 200
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsEndpoint]:
    with InProcessMoto(tmp_path_factory.mktemp("moto")) as server:
        yield server.endpoint


@pytest.fixture
def case(tmp_path: Path) -> CaseHandle:
    handle, _ = CaseStore(tmp_path, actor="t@lab").open_for_finding(make_finding(), b"{}", "f.json")
    return handle


def _state():  # type: ignore[no-untyped-def]
    plan = make_plan(mark_step("s1", ("ns", "cm"), "a"), mark_step("s2", ("ns", "cm"), "b", destructive=True))
    state = fresh_state("eksir-case-1", plan)
    state.steps["s2"] = state.steps["s2"].model_copy(
        update={"status": StepStatus.FAILED, "error": "isolate: permission denied"}
    )
    return state


def test_the_webhook_receives_slack_compatible_text_and_blocks(
    case: CaseHandle, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    state = _state()
    WarRoom(case, [WebhookChannel(url)]).step_failed(state.plan.step("s2"), state.steps["s2"], state)
    (body,) = handler.received
    assert "step s2 FAILED" in body["text"]
    assert "permission denied" in body["text"]
    assert body["blocks"][0]["type"] == "header"
    assert [e.data for e in case.log.events() if e.type == "notify.sent"] == [
        {"channel": "webhook", "kind": "step-failed"}
    ]


def test_a_failing_webhook_is_recorded_in_the_case_and_does_not_raise(
    case: CaseHandle, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    handler.status = 500
    room = WarRoom(case, [WebhookChannel(url), WebhookChannel("http://127.0.0.1:9/unreachable", timeout=1)])
    room.run_finished(_state())
    failures = [e.data for e in case.log.events() if e.type == "notify.failed"]
    assert next(f["error"] for f in failures) == "webhook answered HTTP 500"
    assert "unreachable" in failures[1]["error"]
    assert verify_case(case).ok


def test_sns_delivers_the_summary_to_a_subscribed_queue(case: CaseHandle, moto: AwsEndpoint) -> None:
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name="eksir-war-room")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="war-room-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    WarRoom(case, [SnsChannel(sns, topic)]).phase_finished("containment", _state())
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"]
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == "eksir case eksir-case-1: containment phase finished"
    assert "s2: failed" in envelope["Message"]


def test_an_sns_topic_that_does_not_exist_is_a_recorded_failure(case: CaseHandle, moto: AwsEndpoint) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    WarRoom(case, [SnsChannel(moto.client("sns"), missing)]).case_opened("c1", "title", "prod", True)
    (failure,) = [e.data for e in case.log.events() if e.type == "notify.failed"]
    assert failure["channel"] == "sns"
    assert "no-such-topic" in failure["error"]


def test_the_case_opened_message_names_the_case_and_cluster() -> None:
    message = msg.case_opened("eksir-1", "PrivilegedContainer", "prod-eks", created=True)
    assert message.title == "eksir case eksir-1 opened"
    assert "cluster: prod-eks" in message.text


def test_finding_text_cannot_mention_the_channel_or_hide_a_link_in_the_slack_message() -> None:
    hostile = "<!channel> <https://evil.example|approve the rollback here> & more"
    body = msg.case_opened("eksir-1", hostile, "prod-eks", created=True).slack()
    section = body["blocks"][1]["text"]["text"]
    for text in (body["text"], section):
        assert "<!channel>" not in text
        assert "<https://" not in text
        assert "&lt;!channel&gt; &lt;https://evil.example|approve the rollback here&gt; &amp; more" in text

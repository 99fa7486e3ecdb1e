"""GuardDuty's repeats through the worker: received 10 at a time, each recorded once in its own case (a
redelivered one is recognised), the handled messages deleted together (a failed delete only brings the
message back), and on an S3 store a repeat recorded with one append that never forks the chain when
another writer appended first.

Real SQS and S3 (moto server), a real case store; the cases' responses are stood for by their recorded
`serve.responded` (what a worker reads to know the response is over), so no cluster is needed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from eksir.cli.serve_case import CaseHandler, case_lease
from eksir.clients.aws import AwsClients
from eksir.clients.sqs import Queue, Received
from eksir.lab.fleet import repeat_of
from eksir.lab.moto_server import AwsEndpoint
from eksir.models.case import CaseStatus
from eksir.serve.intake import FindingIntake, classify
from eksir.serve.metrics import Metrics
from eksir.serve.records import FleetLog
from eksir.serve.worker import Settings, Worker
from eksir.store import CaseHandle, CaseStore, verify_case
from tests.cli.helpers import FIXTURES
from tests.cli.test_serve_closed_repeat import _setup
from tests.store.s3_fixtures import SharedStore, shared_store

__all__ = ["shared_store"]  # the S3 store fixture (tests/store/conftest.py does the same)

REPEAT = "finding.received-again"


def _event(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.eventbridge.json").read_text())


def _intake(event: dict[str, Any]) -> FindingIntake:
    intake = classify(json.dumps(event))
    assert isinstance(intake, FindingIntake)
    return intake


def _responded_case(store: CaseStore, event: dict[str, Any]) -> CaseHandle:
    intake = _intake(event)
    case, created = store.open_for_finding(intake.findings[0], intake.raw, "first")
    assert created
    case.append("serve.responded", {"rule": "default"})
    return case


def _repeats(case: CaseHandle) -> list[dict[str, Any]]:
    return [e.data for e in case.log.events() if e.type == REPEAT]


def test_a_redelivered_repeat_is_recorded_once_by_this_worker_and_by_another(tmp_path: Path) -> None:
    case = _responded_case(CaseStore(tmp_path), _event("iam-user"))
    again = _intake(repeat_of(_event("iam-user"), 2, 60))
    handler = CaseHandler(_setup(tmp_path, case_lease))
    assert handler.finding(again, "m-1") == "repeats"  # full path: the case is now held by this worker
    assert handler.quick(again, "m-1") == "repeats"  # the same message redelivered (its delete failed)
    assert handler.quick(again, "m-2") == "repeats"  # EventBridge delivering it twice
    assert CaseHandler(_setup(tmp_path, case_lease)).finding(again, "m-1") == "repeats"  # another worker
    [recorded] = _repeats(case)
    assert (recorded["count"], recorded["input"]) == (2, "sqs:m-1")
    assert recorded["updated_at"].startswith("2025-11-20T03:15:07")
    assert (case.path / recorded["path"]).read_bytes() == again.raw
    assert verify_case(case).ok


def test_a_repeat_of_a_held_case_keeps_its_body_only_when_it_says_something_new(tmp_path: Path) -> None:
    case = _responded_case(CaseStore(tmp_path), _event("iam-user"))
    handler = CaseHandler(_setup(tmp_path, case_lease))
    assert handler.quick(_intake(repeat_of(_event("iam-user"), 2, 60)), "m-0") is None  # not held yet
    assert handler.finding(_intake(repeat_of(_event("iam-user"), 2, 60)), "m-0") == "repeats"
    for count in (3, 4):  # only count and updatedAt differ (and the envelope's id and time)
        again = repeat_of(_event("iam-user"), count, 60 * count)
        again |= {"id": f"envelope-{count}", "time": f"2025-11-20T04:0{count}:00Z"}
        assert handler.quick(_intake(again), f"m-{count}") == "repeats"
    news = repeat_of(_event("iam-user"), 5, 300)
    news["detail"]["severity"] = 8.9  # GuardDuty raised it: something new
    assert handler.quick(_intake(news), "m-5") == "repeats"
    recorded = _repeats(case)
    assert [r["count"] for r in recorded] == [2, 3, 4, 5]
    assert [("path" in r) for r in recorded] == [True, False, False, True]
    essences = [r["essence"] for r in recorded]
    assert essences[0] == essences[1] == essences[2] != essences[3]
    assert (case.path / recorded[3]["path"]).read_bytes() == _intake(news).raw
    assert len(list((case.path / "repeats").iterdir())) == 2
    assert verify_case(case).ok


def test_a_repeat_of_a_case_closed_meanwhile_is_left_to_the_full_path(tmp_path: Path) -> None:
    case = _responded_case(CaseStore(tmp_path), _event("iam-user"))
    handler = CaseHandler(_setup(tmp_path, case_lease))
    assert handler.finding(_intake(repeat_of(_event("iam-user"), 2, 60)), "m-1") == "repeats"
    case.save(case.load().model_copy(update={"status": CaseStatus.CLOSED}), "closed for the test")
    assert handler.quick(_intake(repeat_of(_event("iam-user"), 3, 120)), "m-2") is None
    assert [r["count"] for r in _repeats(case)] == [2]


@pytest.fixture
def sqs_env(moto_server: AwsEndpoint, monkeypatch: pytest.MonkeyPatch) -> AwsEndpoint:
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    return moto_server


class LosingDeletes(Queue):
    """Fault injection on the real queue: in the first DeleteMessageBatch, the first message's entry goes
    with a receipt handle SQS does not know (as a lost or expired one would); SQS answers it as Failed."""

    batches = 0

    def delete_batch(self, messages: list[Received]) -> list[str]:
        self.batches += 1
        if self.batches == 1:
            first = messages[0]
            lost = Received(first.message_id, "not-a-receipt", first.body, 1, first.sent_at_ms)
            messages = [lost, *messages[1:]]
        return super().delete_batch(messages)


def _in_queue(endpoint: AwsEndpoint, url: str) -> int:
    attrs = endpoint.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_repeats_of_two_cases_in_one_batch_land_each_in_its_case_and_a_failed_delete_is_recorded_once(
    sqs_env: AwsEndpoint, tmp_path: Path
) -> None:
    store = CaseStore(tmp_path)
    user, role = _responded_case(store, _event("iam-user")), _responded_case(store, _event("iam-role"))
    sqs = sqs_env.client("sqs")
    url = sqs.create_queue(QueueName="repeats-batch")["QueueUrl"]
    handler = CaseHandler(_setup(tmp_path, case_lease))
    for name in ("iam-user", "iam-role"):  # the worker holds both cases (as after their responses)
        handler.finding(_intake(repeat_of(_event(name), 2, 60)), f"{name}-2")
    for count in range(3, 7):
        for name in ("iam-user", "iam-role"):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(repeat_of(_event(name), count, 60 * count)))
    queue = LosingDeletes(AwsClients(sqs_env.region, endpoint_url=sqs_env.url), url)
    metrics = Metrics()
    worker = Worker(
        queue,
        handler,
        fleet_log=FleetLog(tmp_path),
        metrics=metrics,
        settings=Settings(wait_seconds=0, visibility=1, batch=10),
    )

    assert worker.poll_once() == 8  # one receive, one batch
    assert _in_queue(sqs_env, url) == 1  # the delete that failed: that message comes back
    deadline = time.monotonic() + 20
    while _in_queue(sqs_env, url) and time.monotonic() < deadline:
        if not worker.poll_once():
            time.sleep(0.2)  # back after its visibility timeout (1 s)
    assert _in_queue(sqs_env, url) == 0
    for case in (user, role):
        assert [r["count"] for r in _repeats(case)] == [2, 3, 4, 5, 6]
        assert verify_case(case).ok
    assert metrics.snapshot()["repeats"] == 9  # 8 recorded, and the redelivered one recognised


def test_an_s3_repeat_after_another_writer_appended_lands_after_its_event_on_one_chain(
    shared_store: SharedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _responded_case(CaseStore(shared_store.url, actor="worker"), _event("iam-user"))
    handler = CaseHandler(_setup(tmp_path, case_lease))
    handler.setup.store_factory = lambda: CaseStore(shared_store.url, actor="worker")
    assert handler.finding(_intake(repeat_of(_event("iam-user"), 2, 60)), "m-2") == "repeats"
    monkeypatch.setenv("EKSIR_S3_CACHE", str(tmp_path / "other-machine"))
    other = CaseStore(shared_store.url, actor="other").get(case.case_id)
    theirs = other.append("note", {"by": "another worker"})
    assert case.log.append_at_head("probe", "worker", {}) is None  # this copy is one event behind

    assert handler.quick(_intake(repeat_of(_event("iam-user"), 3, 120)), "m-3") == "repeats"

    fresh = CaseStore(shared_store.url, actor="reader").get(case.case_id)
    events = list(fresh.log.events())
    assert [e.type for e in events[theirs.seq - 1 :]] == ["note", REPEAT]
    assert events[theirs.seq].prev_hash == theirs.hash
    assert [e.data["count"] for e in events if e.type == REPEAT] == [2, 3]
    assert verify_case(fresh).ok

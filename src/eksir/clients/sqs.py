"""SQS for the fleet worker (`eksir serve`): receive, heartbeat, delete, dead-letter, continue a case.

Why a thin wrapper of its own and not the typed factory: the worker needs a few calls and their error
translation (clients/aws.py's `aws_call`), nothing else; keeping them here keeps the SDK in `clients/`.
Every call raises the eksir error its failure means (throttled/unreachable -> TemporaryError, denied ->
PermissionDeniedError, missing queue -> NotFoundError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from eksir.clients.aws import AwsClients, aws_call, new_client

REASON_ATTRIBUTE = "eksir-reason"
SOURCE_ATTRIBUTE = "eksir-source-message-id"
"""The dead-lettered message's id in the source queue: sending to the DLQ and deleting from the source are two
calls, so a worker killed between them dead-letters the message again on redelivery (SQS is at-least-once);
this attribute lets a DLQ consumer count each source message once."""
CONTINUE_KIND = "eksir.continue-case"


@dataclass(frozen=True)
class Received:
    """One received message: its body, receipt handle, receive count and when it was first sent."""

    message_id: str
    receipt: str
    body: str
    receive_count: int
    sent_at_ms: int
    attributes: dict[str, str] = field(default_factory=dict)


def _received(raw: dict[str, Any]) -> Received:
    attrs = raw.get("Attributes", {})
    user = {k: str(v.get("StringValue", "")) for k, v in (raw.get("MessageAttributes") or {}).items()}
    return Received(
        message_id=str(raw.get("MessageId", "")),
        receipt=str(raw["ReceiptHandle"]),
        body=str(raw.get("Body", "")),
        receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
        sent_at_ms=int(attrs.get("SentTimestamp", 0)),
        attributes=user,
    )


class Queue:
    """One SQS queue by URL, reached with the caller's (home) account clients."""

    def __init__(self, aws: AwsClients, url: str) -> None:
        self.url = url
        self._aws = aws
        self._client: Any = None

    @property
    def sqs(self) -> Any:
        if self._client is None:
            self._client = new_client("sqs", session=self._aws.session(), endpoint_url=self._aws.endpoint_url)
        return self._client

    def receive(self, max_messages: int, wait_seconds: int, visibility: int) -> list[Received]:
        """Long-poll for up to `max_messages` (1-10)."""
        with aws_call(f"receive from {self.url}"):
            reply = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(10, max_messages)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility,
                AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
        return [_received(m) for m in reply.get("Messages", [])]

    def extend(self, message: Received, seconds: int) -> None:
        """Keep the message invisible `seconds` more while it is worked on (the heartbeat)."""
        with aws_call(f"extend the visibility of message {message.message_id}"):
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message.receipt, VisibilityTimeout=seconds
            )

    def delete_batch(self, messages: list[Received]) -> list[str]:
        """Delete up to 10 per DeleteMessageBatch call; returns the ids of the messages SQS failed to delete.

        Why a partial failure is only reported: a message not deleted comes back after its visibility
        timeout and is then recognised as already recorded (cli/serve_case.py records each repeat once), so
        nothing is lost and nothing is done twice; retrying the delete here would only delay the loop."""
        return self._in_tens(messages, "delete", self.sqs.delete_message_batch, {})

    def extend_batch(self, messages: list[Received], seconds: int) -> list[str]:
        """The heartbeat for every message in hand, 10 per ChangeMessageVisibilityBatch call; returns the
        ids SQS refused (e.g. a receipt handle that expired: that message may be redelivered)."""
        call = self.sqs.change_message_visibility_batch
        return self._in_tens(messages, "extend the visibility of", call, {"VisibilityTimeout": seconds})

    def _in_tens(
        self, messages: list[Received], doing: str, call: Callable[..., Any], extra: dict[str, Any]
    ) -> list[str]:
        """One batch call per 10 messages (SQS's limit), each entry its receipt plus `extra`; returns the ids
        of the messages the batch calls report failed."""
        failed: list[str] = []
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt, **extra} for i, m in enumerate(chunk)]
            with aws_call(f"{doing} {len(chunk)} messages of {self.url}"):
                reply = call(QueueUrl=self.url, Entries=entries)
            failed += [chunk[int(f["Id"])].message_id for f in reply.get("Failed", [])]
        return failed

    def send(self, body: str, attributes: dict[str, str] | None = None) -> str:
        """Send `body` with string message attributes; returns the message id."""
        attrs = {k: {"DataType": "String", "StringValue": v[:1000]} for k, v in (attributes or {}).items()}
        with aws_call(f"send a message to {self.url}"):
            reply = self.sqs.send_message(QueueUrl=self.url, MessageBody=body, MessageAttributes=attrs)
        return str(reply.get("MessageId", ""))

    def dead_letter_queue(self) -> Queue | None:
        """The queue's dead-letter queue from its RedrivePolicy, or None when it has none."""
        with aws_call(f"read the attributes of {self.url}"):
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])
        policy = attrs.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            return None
        arn = str(orjson.loads(policy)["deadLetterTargetArn"])
        account, name = arn.split(":")[4], arn.split(":")[5]
        with aws_call(f"find the dead-letter queue {name}"):
            url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return Queue(self._aws, str(url))

    def backlog(self) -> int:
        """Messages waiting (visible), for the lag figure."""
        with aws_call(f"read the depth of {self.url}"):
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        return int(attrs.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


def continuation(case_id: str, approver: str) -> str:
    """The body of a continuation message: `eksir approve` asks a worker to continue a case."""
    return orjson.dumps({"kind": CONTINUE_KIND, "case_id": case_id, "approver": approver}).decode()

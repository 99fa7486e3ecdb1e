"""Delivery channels: a Slack-compatible incoming webhook (HTTP POST of JSON) and an SNS topic.

Both raise eksir errors on failure; the war room records the failure and carries on, because a chat outage
must never stop a containment.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, Protocol

import orjson

from eksir.clients.aws import aws_call
from eksir.errors import UnreachableError
from eksir.notify.message import Message

_TIMEOUT_S = 5.0


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None: ...


class WebhookChannel:
    """POST `{"text", "blocks"}` to a webhook URL; any non-2xx answer is a failure."""

    def __init__(self, url: str, timeout: float = _TIMEOUT_S) -> None:
        self.url = url
        self.timeout = timeout
        self.name = "webhook"

    def send(self, message: Message) -> None:
        """Raises UnreachableError when the receiver cannot be reached or does not accept the message."""
        body = orjson.dumps(message.slack())
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            raise UnreachableError(f"webhook answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UnreachableError(f"webhook unreachable: {getattr(exc, 'reason', exc)}") from exc
        if not 200 <= status < 300:
            raise UnreachableError(f"webhook answered HTTP {status}")


class SnsChannel:
    """Publish the text summary to an SNS topic (subject: the message title, at most 100 characters)."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self.client = sns_client
        self.topic_arn = topic_arn
        self.name = "sns"

    def send(self, message: Message) -> None:
        """Raises the eksir error translated from the SNS failure (denied, not found, throttled)."""
        with aws_call(f"publish to SNS topic {self.topic_arn}"):
            self.client.publish(TopicArn=self.topic_arn, Subject=message.title[:100], Message=message.text)

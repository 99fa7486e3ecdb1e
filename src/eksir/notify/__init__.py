"""The war room: case summaries to a Slack-compatible webhook and/or SNS at milestones of a response."""

from eksir.notify.channels import Channel, SnsChannel, WebhookChannel
from eksir.notify.message import Message
from eksir.notify.war_room import WarRoom

__all__ = ["Channel", "Message", "SnsChannel", "WarRoom", "WebhookChannel"]

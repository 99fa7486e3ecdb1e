"""Anchor the case's chain head at the end of each phase: sign it, publish it outside the case, say so.

Where it goes: the war room (the notify/ observer's channels) when one is configured, an object in the
Object-Lock evidence bucket when one is given, and always a line on stderr, which is all there is when nothing
is configured: then the line says the case is not anchored anywhere else, so a person keeps it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from eksir.clients.aws import aws_call
from eksir.clients.aws_types import ClientFactory
from eksir.notify.channels import Channel
from eksir.notify.message import Message
from eksir.notify.war_room import WarRoom
from eksir.safetext import plain_console
from eksir.store.anchor import Anchor, AnchorResult, Publisher, anchor_case
from eksir.store.case_store import CaseHandle
from eksir.store.keys import load_or_create_key

SIGNING_KEY_ENV = "EKSIR_SIGNING_KEY"


def war_room_publishers(war_room: WarRoom) -> list[tuple[str, Publisher]]:
    """One publisher per war-room channel (webhook, SNS), so each delivery is recorded as it went: a channel
    that fails is named in the anchoring event instead of being counted as published."""

    def for_channel(channel: Channel) -> Publisher:
        def publish(anchor: Anchor) -> str:
            lines = (f"chain head: {anchor.line()}", f"signed by {anchor.key_fingerprint}")
            channel.send(Message("chain.anchored", f"eksir {anchor.case_id}: {anchor.phase} anchored", lines))
            war_room.case.append("notify.sent", {"channel": channel.name, "kind": "chain.anchored"})
            return f"war room: {channel.name}"

        return publish

    return [(f"war room {channel.name}", for_channel(channel)) for channel in war_room.channels]


def bucket_publisher(s3: Any, bucket: str) -> tuple[str, Publisher]:
    """An object per anchor under `eksir-anchors/<case>/`; the bucket's Object Lock retention keeps it."""

    def publish(anchor: Anchor) -> str:
        key = f"eksir-anchors/{anchor.case_id}/{anchor.seq:08d}.json"
        body = orjson.dumps(anchor.document(), option=orjson.OPT_INDENT_2)
        with aws_call(f"put the chain anchor into s3://{bucket}"):
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        return f"s3://{bucket}/{key}"

    return "evidence bucket", publish


def publishers(
    war_room: WarRoom | None, aws: ClientFactory, bucket: str | None
) -> list[tuple[str, Publisher]]:
    """Where a phase's chain head goes besides stderr: the war room, the (Object-Lock) evidence bucket."""
    found = war_room_publishers(war_room) if war_room else []
    if bucket:
        found.append(bucket_publisher(aws("s3"), bucket))
    return found


def anchor_phase(
    handle: CaseHandle, phase: str, publishers: list[tuple[str, Publisher]], console: Console | None = None
) -> AnchorResult:
    """Sign and publish the head with the responder's key (`EKSIR_SIGNING_KEY` or the default, created on
    first use), record it, and print it on stderr."""
    explicit = os.environ.get(SIGNING_KEY_ENV)
    key, key_path, created = load_or_create_key(Path(explicit) if explicit else None)
    result = anchor_case(handle, phase, key, publishers)
    err = console or plain_console(stderr=True, soft_wrap=True)
    if created:
        err.print(f"eksir: created signing key {key_path} (keep it private)", markup=False)
    where = ", ".join(result.published_to) or "nowhere else: the case is not anchored; keep this line"
    err.print(
        f"eksir: {phase}: chain head {result.anchor.line()} signed by {result.anchor.key_fingerprint}; "
        f"published to {where}",
        markup=False,
    )
    for failure in result.failed:
        err.print(f"eksir: warning: the anchor was not published to {failure}", markup=False)
    return result

"""From raw log records to classified `HuntEvent`s, for CloudTrail and Kubernetes audit logs alike.

Kubernetes audit events come in several generations (audit.k8s.io/v1, v1beta1 with `timestamp`, Falco
webhook captures without apiVersion, Panther-style `p_event_time`), and one request is logged once per
stage; `audit_time` and `dedupe_audit` absorb that so each API request is one event in the hunt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from eksir.hunt.classify import RuleBook
from eksir.hunt.impact import extract_resources
from eksir.hunt.result import HuntEvent, Origin, ResourceRef
from eksir.hunt.window import parse_event_time


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


_STAGE_RANK = {"ResponseComplete": 0, "ResponseStarted": 1, "Panic": 2, "RequestReceived": 3}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def cloudtrail_event(
    record: dict[str, Any], book: RuleBook, matched_on: str | None, found_in: str | None
) -> HuntEvent:
    """Classify one CloudTrail record and name the resources it touched."""
    verdict = book.classify(record)
    ident = _map(record.get("userIdentity"))
    return HuntEvent(
        origin=Origin.CLOUDTRAIL,
        event_time=parse_event_time(record.get("eventTime")),
        event_id=_text(record.get("eventID")),
        service=_text(record.get("eventSource")),
        action=_text(record.get("eventName")),
        principal=_text(ident.get("arn")) or _text(ident.get("userName")) or _text(ident.get("principalId")),
        access_key_id=_text(ident.get("accessKeyId")),
        matched_on=matched_on,
        source_ip=_text(record.get("sourceIPAddress")),
        user_agent=_text(record.get("userAgent")),
        region=_text(record.get("awsRegion")),
        account_id=_text(record.get("recipientAccountId")) or _text(ident.get("accountId")),
        category=str(verdict.category),
        rule_id=verdict.rule_id,
        tags=list(verdict.tags),
        failed=bool(record.get("errorCode")),
        error_code=_text(record.get("errorCode")),
        resources=[ResourceRef(arn=arn) for arn in extract_resources(record, book.resource_fields)],
        found_in=found_in,
        raw=record,
    )


def audit_time(event: Mapping[str, Any]) -> datetime | None:
    """When the API server received the request, across audit schema generations."""
    for key in ("requestReceivedTimestamp", "stageTimestamp", "timestamp", "p_event_time"):
        moment = parse_event_time(event.get(key))
        if moment is not None:
            return moment
    metadata = event.get("metadata")
    if isinstance(metadata, Mapping):
        return parse_event_time(metadata.get("creationTimestamp"))
    return None


def is_audit_event(event: Mapping[str, Any]) -> bool:
    """An audit event has a verb and a user; `kind`/`apiVersion` are optional in webhook captures."""
    return isinstance(event.get("verb"), str) and isinstance(event.get("user"), Mapping)


def dedupe_audit(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep one event per auditID, the most complete stage (ResponseComplete over RequestReceived)."""
    best: dict[str, dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    for event in events:
        audit_id = event.get("auditID")
        if not isinstance(audit_id, str) or not audit_id:
            anonymous.append(event)
            continue
        kept = best.get(audit_id)
        rank = _STAGE_RANK.get(str(event.get("stage")), 9)
        if kept is None or rank < _STAGE_RANK.get(str(kept.get("stage")), 9):
            best[audit_id] = event
    return [*best.values(), *anonymous]


def kubernetes_event(
    event: dict[str, Any], book: RuleBook, matched_on: str | None, found_in: str | None
) -> HuntEvent:
    """Classify one audit event; the touched resource is the object reference."""
    verdict = book.classify(event)
    user, ref = _map(event.get("user")), _map(event.get("objectRef"))
    code = _map(event.get("responseStatus")).get("code")
    ips = event.get("sourceIPs")
    resource = "/".join(
        str(part)
        for part in (ref.get("namespace"), ref.get("resource"), ref.get("name"), ref.get("subresource"))
        if part
    )
    keys = _map(user.get("extra")).get("accessKeyId")
    return HuntEvent(
        origin=Origin.KUBERNETES,
        event_time=audit_time(event),
        event_id=_text(event.get("auditID")),
        service="kubernetes",
        action=f"{event.get('verb')} {resource}".strip(),
        principal=_text(user.get("username")),
        access_key_id=keys[0] if isinstance(keys, list) and keys and isinstance(keys[0], str) else None,
        matched_on=matched_on,
        source_ip=ips[0] if isinstance(ips, list) and ips and isinstance(ips[0], str) else None,
        user_agent=_text(event.get("userAgent")),
        category=str(verdict.category),
        rule_id=verdict.rule_id,
        tags=list(verdict.tags),
        failed=isinstance(code, int) and code >= 400,
        error_code=str(code) if isinstance(code, int) and code >= 400 else None,
        found_in=found_in,
        raw=event,
    )

"""Find the GuardDuty findings inside whatever envelope they arrived in.

A finding reaches a responder wrapped in different ways: `{"Findings": [...]}` from boto3 / the CLI, a bare
object from the console, an array, S3-export JSON Lines, an EventBridge event (`detail`), an SNS
notification whose `Message` is the EventBridge event as a JSON string, a Security Hub ASFF finding (alone,
in `{"Findings": [...]}`, or in a "Security Hub Findings - Imported" event). This module only unwraps; it
does not interpret fields. Anything that is JSON but no finding is refused with a message naming what it
looks like, so a responder who pasted a CloudTrail log or a health event learns that immediately.

Other GuardDuty events on the same bus ("GuardDuty Runtime Protection Unhealthy", ...) are skipped when
findings come with them, as AWS advises consumers to filter on `detail-type`; input holding only such events
is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from eksir.errors import BadInputError, NotAFindingError
from eksir.findings.decode import Document, one_line
from eksir.models.finding import SourceFormat

_MAX_DEPTH = 8
_GUARDDUTY_DETAIL_TYPE = "GuardDuty Finding"
_FINDING_MARKERS = frozenset(
    {"id", "Id", "arn", "Arn", "resource", "Resource", "service", "Service", "schemaVersion", "SchemaVersion"}
)


@dataclass(frozen=True, slots=True)
class Record:
    """One finding as found: its dict (any casing, or ASFF), how it was wrapped, and where it was.

    `text` is the finding's own JSON text when it was a whole line of JSON Lines (an S3 export line), so
    the reader can keep that instead of the decoded dict.
    """

    finding: dict[str, Any]
    source: SourceFormat
    where: str
    text: bytes | None = None


class NoFindingError(NotAFindingError):
    """Every value of the input was read and none is a finding (only other events or empty lists).

    Its own class so a reader of part of an input (bulk triage reads an export in blocks) can tell "this
    part holds no finding" from a value that is not one.
    """


class _OtherEvent(NotAFindingError):
    """An EventBridge event that is not a finding: skipped when real findings come with it."""


def unwrap(document: Document) -> Iterator[Record]:
    """Every finding in `document`, in input order, as each value is read; `NotAFindingError` if none."""
    collector = _Collector(document.lines)
    skipped: list[_OtherEvent] = []
    found = False
    for line, value, text in document.values:
        where = f"{document.name} line {line}" if document.lines else document.name
        collector.text = text
        try:
            collector.collect(value, None, where, 0)
        except _OtherEvent as event:
            skipped.append(event)
        if collector.out:
            found = True
            yield from collector.out
            collector.out.clear()
    if found:
        return
    if skipped:
        count = f"{len(skipped)} events, none a finding; first: " if len(skipped) > 1 else ""
        raise NoFindingError(f"{count}{skipped[0].message}")
    raise NoFindingError(f"{document.name}: contains no GuardDuty finding (an empty findings list)")


@dataclass(slots=True)
class _Collector:
    """Walks one input's JSON values, appending each finding found to `out`."""

    lines: bool
    out: list[Record] = field(default_factory=list)
    text: bytes | None = None
    """The JSON text of the value being walked, when it is a whole line."""

    def collect(self, value: Any, context: SourceFormat | None, where: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise NotAFindingError(f"{where}: JSON nested too deeply to be a GuardDuty finding")
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.collect(item, context, f"{where}[{index}]", depth + 1)
            return
        if not isinstance(value, dict):
            raise NotAFindingError(f"{where}: {_describe(value)} is not a GuardDuty finding")
        if "detail-type" in value:
            self.collect_event(value, context, where, depth)
        elif isinstance(value.get("Records"), list) and _is_sns(value["Records"]):
            for index, record in enumerate(value["Records"]):
                sns = record.get("Sns") or record.get("sns") if isinstance(record, dict) else None
                message = sns.get("Message") if isinstance(sns, dict) else None
                self.collect_message(message, f"{where} Records[{index}]", depth)
        elif value.get("Type") == "Notification" and "Message" in value and "TopicArn" in value:
            self.collect_message(value["Message"], f"{where} (SNS)", depth)
        elif isinstance(value.get("Findings", value.get("findings")), list):
            key = "Findings" if "Findings" in value else "findings"
            for index, item in enumerate(value[key]):
                self.collect(item, context, f"{where} {key}[{index}]", depth + 1)
        elif "ProductArn" in value or value.get("SchemaVersion") == "2018-10-08":
            product = value.get("ProductArn")
            if not (isinstance(product, str) and product.endswith("product/aws/guardduty")):
                raise NotAFindingError(
                    f"{where}: Security Hub finding from {product!r} is not from GuardDuty"
                )
            self.out.append(Record(value, SourceFormat.ASFF, where, self.text if depth == 0 else None))
        elif ("type" in value or "Type" in value) and not _FINDING_MARKERS.isdisjoint(value):
            text = self.text if depth == 0 else None
            self.out.append(Record(value, context or _plain_format(value, self.lines), where, text))
        else:
            raise NotAFindingError(f"{where}: {_describe(value)} is not a GuardDuty finding")

    def collect_event(
        self, event: dict[str, Any], context: SourceFormat | None, where: str, depth: int
    ) -> None:
        detail_type = event.get("detail-type")
        detail = event.get("detail")
        if isinstance(detail_type, str) and detail_type.startswith("Security Hub Findings"):
            self.collect(detail, context, f"{where} detail", depth + 1)
            return
        if detail_type != _GUARDDUTY_DETAIL_TYPE:
            source = event.get("source")
            raise _OtherEvent(
                f"{where}: EventBridge event {detail_type!r} from {source!r} is not a GuardDuty finding "
                f'(expected detail-type "{_GUARDDUTY_DETAIL_TYPE}")'
            )
        if not isinstance(detail, dict):
            raise NotAFindingError(f"{where}: GuardDuty Finding event has no finding in its 'detail'")
        self.collect(detail, context or SourceFormat.EVENTBRIDGE, f"{where} detail", depth + 1)

    def collect_message(self, message: Any, where: str, depth: int) -> None:
        """An SNS `Message` is the EventBridge event (or finding) serialised as a JSON string."""
        if isinstance(message, str):
            try:
                message = orjson.loads(message)
            except orjson.JSONDecodeError as exc:
                raise BadInputError(f"{where}: SNS Message is not valid JSON ({exc.msg})") from None
        if message is None:
            raise NotAFindingError(f"{where}: SNS notification without a Message")
        self.collect(message, SourceFormat.SNS, where, depth + 1)


def _is_sns(records: list[Any]) -> bool:
    return any(isinstance(item, dict) and ("Sns" in item or "sns" in item) for item in records)


def _plain_format(finding: dict[str, Any], lines: bool) -> SourceFormat:
    """PascalCase keys come from boto3/the CLI/the console; camelCase is wire JSON or an S3 export."""
    if "Type" in finding or "Id" in finding:
        return SourceFormat.BOTO3
    return SourceFormat.S3_EXPORT if lines else SourceFormat.WIRE


def _describe(value: Any) -> str:
    """Name what a non-finding JSON value looks like, for the error message."""
    if not isinstance(value, dict):
        kind = {str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null"}.get(type(value))
        return kind or ("a JSON number" if isinstance(value, int | float) else "this JSON value")
    records = value.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        if "eventSource" in records[0] or "eventName" in records[0]:
            return "a CloudTrail log (Records of API events)"
        return "a batch of Records that are not SNS notifications"
    if value.get("kind") == "Event" and str(value.get("apiVersion", "")).startswith("audit.k8s.io"):
        return "a Kubernetes audit event"
    if "eventSource" in value and "eventName" in value:
        return "a CloudTrail event"
    if not value:
        return "an empty JSON object"
    keys = ", ".join(one_line(str(key)) for key in sorted(value)[:6])
    return f"a JSON object with keys [{keys}{', ...' if len(value) > 6 else ''}]"

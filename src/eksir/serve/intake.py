"""What a queue message is: a handled finding, a request to continue a case, or a reject with its reason.

Why the reject keeps a reason: a message that is not a handled finding (another finding type, GuardDuty's
runtime coverage or health events, garbage) must not be retried forever nor silently dropped; the worker
records the reason and hands the message to the dead-letter queue with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from eksir.errors import EksirError
from eksir.findings import read_findings
from eksir.findings.family import require_handled
from eksir.models.finding import Finding

CONTINUE_KIND = "eksir.continue-case"
MAX_MESSAGE_BYTES = 256 * 1024  # SQS's own limit


@dataclass(frozen=True)
class FindingIntake:
    """Handled findings of one message, and the message bytes (the case keeps them as evidence)."""

    findings: tuple[Finding, ...]
    raw: bytes


@dataclass(frozen=True)
class ContinueIntake:
    """`eksir approve --queue-url`: continue this case with the approvals it now records."""

    case_id: str
    approver: str


@dataclass(frozen=True)
class Reject:
    """Not for eksir: why, in one line."""

    reason: str

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


Intake = FindingIntake | ContinueIntake | Reject


def _continuation(raw: bytes) -> ContinueIntake | None:
    if b'"kind"' not in raw[:200]:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("kind") != CONTINUE_KIND:
        return None
    case_id = str(doc.get("case_id", ""))
    if not case_id.startswith("eksir-") or "/" in case_id or ".." in case_id:
        return None
    return ContinueIntake(case_id[:80], str(doc.get("approver", ""))[:200])


def classify(body: str) -> Intake:
    """Sort one message body; never raises (every failure is a Reject)."""
    raw = body.encode("utf-8", errors="replace")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Reject(f"too-large: {len(raw)} bytes")
    continued = _continuation(raw)
    if continued is not None:
        return continued
    detail_type = _detail_type(raw)
    if detail_type is not None and detail_type != "GuardDuty Finding":
        return Reject(f"not-a-finding: EventBridge {detail_type!r} event")
    try:
        findings = read_findings(raw, name="sqs message")
    except EksirError as exc:
        return Reject(f"unreadable: {exc.message[:300]}")
    handled: list[Finding] = []
    reasons: list[str] = []
    for finding in findings:
        try:
            handled.extend(require_handled([finding]))
        except EksirError as exc:
            reasons.append(exc.message[:300])
    if not handled:
        return Reject(f"not-handled: {reasons[0] if reasons else 'no finding'}")
    return FindingIntake(tuple(handled), raw)


def _detail_type(raw: bytes) -> str | None:
    """An EventBridge envelope's detail-type (GuardDuty also sends runtime coverage/health events)."""
    if b"detail-type" not in raw:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = doc.get("detail-type") if isinstance(doc, dict) else None
    return str(value)[:200] if value is not None else None


def digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", errors="replace")).hexdigest()

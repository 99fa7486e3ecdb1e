"""Feed the case to AWS Security Incident Response, where many organisations keep their incident cases.

Why feed and not compete: Security Incident Response (the `security-ir` API) holds the organisation's case,
its watchers and AWS's responders, and contains EC2 and IAM with its own runbooks, but has no Kubernetes
containment. eksir keeps its own custody record and mirrors it there: the case (created once: the client token
is eksir's case id, so a retry or a second responder never opens a second one), a comment per finished phase
with its steps and approvers, the report and the evidence manifest as attachments, the status as the playbook
moves on, and the close. Every sync is idempotent: what was sent is recorded in the case (`sir.*` events) and
not sent again.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson

from eksir.clients.aws import aws_call
from eksir.errors import BadInputError
from eksir.models.case import CaseStatus
from eksir.report.build import load_finding
from eksir.report.steps import step_rows
from eksir.store.atomic import sha256_bytes
from eksir.store.case_store import CaseHandle
from eksir.store.record import REPORT_FILES, CaseRecord, load_record, report_written_after

if TYPE_CHECKING:
    from types_boto3_security_ir.client import SecurityIncidentResponseClient
    from types_boto3_security_ir.literals import AwsRegionType, SelfManagedCaseStatusType

Upload = Callable[[str, bytes], None]
"""PUT these bytes to this presigned URL (raises an eksir error on failure)."""
ResolverType = Literal["Self", "AWS"]
_COMMENT_MAX, _TITLE_MAX, _DESCRIPTION_MAX, _AGENT_MAX = 12000, 300, 8000, 500
_STATUS_AFTER: tuple[tuple[str, str], ...] = (
    ("report", "Post-incident Activities"),
    ("phase.finished", "Containment, Eradication and Recovery"),
    ("triage.completed", "Detection and Analysis"),
)
"""The Security Incident Response status a case has reached, by the furthest milestone in its record (first
match): a report written, a response phase finished, triage done."""
_SAFE_FILE = re.compile(r"[^a-zA-Z0-9._-]")


@dataclass(frozen=True)
class Watcher:
    email: str
    name: str = ""


@dataclass(frozen=True)
class SirOptions:
    link_case: str | None = None
    """An existing Security Incident Response case to feed instead of creating one."""
    watchers: tuple[Watcher, ...] = ()
    resolver: ResolverType = "Self"


@dataclass
class SyncResult:
    sir_case_id: str
    created: bool = False
    comments: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    status: str | None = None
    closed: bool = False


@dataclass
class _Ledger:
    """What earlier syncs sent, read back from the case's `sir.*` events."""

    case_id: str | None = None
    commented: set[str] = field(default_factory=set)
    attached: set[str] = field(default_factory=set)
    status: str | None = None
    closed: bool = False


def sync_case(
    handle: CaseHandle, client: SecurityIncidentResponseClient, options: SirOptions, upload: Upload
) -> SyncResult:
    """Create or link the Security Incident Response case, then send what it does not have yet."""
    record = load_record(handle)
    ledger = _ledger(record)
    result = SyncResult(ledger.case_id) if ledger.case_id else _open(handle, record, client, options)
    for key, body in _phase_comments(record):
        if key not in ledger.commented:
            _comment(handle, client, result, key, body)
    for name, data in _attachments(handle, record):
        if sha256_bytes(data) not in ledger.attached:
            _attach(handle, client, result, name, data, upload)
    _advance(handle, client, record, ledger, result)
    return result


def _ledger(record: CaseRecord) -> _Ledger:
    ledger = _Ledger()
    for event in record.events:
        data = event.data
        if event.type == "sir.linked":
            ledger.case_id = str(data["sir_case_id"])
        elif event.type == "sir.commented":
            ledger.commented.add(str(data["key"]))
        elif event.type == "sir.attached":
            ledger.attached.add(str(data["sha256"]))
        elif event.type == "sir.status":
            ledger.status = str(data["status"])
        elif event.type == "sir.closed":
            ledger.closed = True
    return ledger


def _open(
    handle: CaseHandle, record: CaseRecord, client: SecurityIncidentResponseClient, options: SirOptions
) -> SyncResult:
    case = record.case
    if options.link_case:
        with aws_call(f"read Security Incident Response case {options.link_case}"):
            client.get_case(caseId=options.link_case)
        handle.append("sir.linked", {"sir_case_id": options.link_case, "created": False})
        return SyncResult(options.link_case)
    with aws_call("create the Security Incident Response case"):
        created = client.create_case(**_case_request(record, options))
    sir_case_id = created["caseId"]
    handle.append("sir.linked", {"sir_case_id": sir_case_id, "created": True, "client_token": case.id})
    return SyncResult(sir_case_id, created=True)


def _case_request(record: CaseRecord, options: SirOptions) -> dict[str, Any]:
    """CreateCase's parameters: idempotent by eksir's case id; finding-derived text bounded."""
    case = record.case
    title = f"EKS: {case.title or case.finding_type}"[:_TITLE_MAX]
    description = (
        f"eksir case {case.id}\nfinding {case.finding_id} ({case.finding_type})\n"
        f"cluster {case.cluster_name or 'unknown'}, account {case.account_id or 'unknown'}, "
        f"region {case.region or 'unknown'}\nverdict: {case.verdict or 'not triaged'}"
    )[:_DESCRIPTION_MAX]
    request: dict[str, Any] = {
        "clientToken": case.id,
        "resolverType": options.resolver,
        "title": title,
        "description": description,
        "engagementType": "Security Incident",
        "reportedIncidentStartDate": _started(record),
        "impactedAccounts": [case.account_id] if case.account_id else [],
        "watchers": [_watcher(w) for w in options.watchers],
        "impactedServices": ["Amazon Elastic Kubernetes Service"],
        "threatActorIpAddresses": _actor_addresses(record),
    }
    if case.region:
        request["impactedAwsRegions"] = [{"region": cast("AwsRegionType", case.region)}]
    return request


def _started(record: CaseRecord) -> datetime:
    finding = load_finding(record)
    return finding.event_first_seen if finding and finding.event_first_seen else record.case.opened_at


def _watcher(watcher: Watcher) -> dict[str, str]:
    entry = {"email": watcher.email}
    if watcher.name:
        entry["name"] = watcher.name[:50]
    return entry


def _actor_addresses(record: CaseRecord) -> list[dict[str, str]]:
    """The caller's IPs from the finding, only what parses as an IP (attacker-controlled text otherwise)."""
    finding = load_finding(record)
    call = finding.api_call if finding else None
    if call is None:
        return []
    entries = []
    addresses = dict.fromkeys([*call.source_ips, *([call.remote_ip] if call.remote_ip else [])])
    for address in list(addresses)[:20]:
        try:
            entry = {"ipAddress": str(ipaddress.ip_address(address))}
        except ValueError:
            continue
        if call.user_agent:
            entry["userAgent"] = call.user_agent[:_AGENT_MAX]
        entries.append(entry)
    return entries


def _phase_comments(record: CaseRecord) -> Iterable[tuple[str, str]]:
    """One comment per finished phase: its steps with their state and approver (plain text)."""
    rows = step_rows(record.events, {})
    for event in record.events:
        if event.type != "phase.finished":
            continue
        phase = str(event.data.get("phase"))
        lines = [f"eksir case {record.case.id}: phase {phase} finished (event {event.seq})"]
        for row in rows:
            if row.phase == phase:
                approver = f", approved by {row.approver}" if row.approver else ""
                lines.append(f"- {row.step_id} ({row.action_id}): {row.status}{approver}")
        yield f"phase:{phase}:{event.seq}", "\n".join(lines)[:_COMMENT_MAX]


def _comment(
    handle: CaseHandle, client: SecurityIncidentResponseClient, result: SyncResult, key: str, body: str
) -> None:
    token = f"{handle.load().id}:{key}"[:255]
    with aws_call(f"comment on Security Incident Response case {result.sir_case_id}"):
        answer = client.create_case_comment(caseId=result.sir_case_id, clientToken=token, body=body)
    handle.append("sir.commented", {"key": key, "comment_id": answer["commentId"]})
    result.comments.append(key)


def _attachments(handle: CaseHandle, record: CaseRecord) -> Iterable[tuple[str, bytes]]:
    """The newest report (HTML, else Markdown) and the evidence manifest (every item's name and hash)."""
    for fmt in ("html", "md"):
        data = record.read_bytes(REPORT_FILES[fmt])
        if data is not None:
            yield _SAFE_FILE.sub("_", f"{record.case.id}-{REPORT_FILES[fmt]}"), data
            break
    manifest = [
        {"name": e.name, "path": e.path, "sha256": e.sha256, "collected_at": e.collected_at.isoformat()}
        for e in record.case.evidence
    ]
    body = orjson.dumps({"case": record.case.id, "evidence": manifest}, option=orjson.OPT_INDENT_2)
    yield _SAFE_FILE.sub("_", f"{record.case.id}-evidence-manifest.json"), body


def _attach(  # noqa: PLR0917 - one call site, each argument distinct
    handle: CaseHandle,
    client: SecurityIncidentResponseClient,
    result: SyncResult,
    name: str,
    data: bytes,
    upload: Upload,
) -> None:
    digest = sha256_bytes(data)
    with aws_call(f"get an upload URL for {name}"):
        url = client.get_case_attachment_upload_url(
            caseId=result.sir_case_id, fileName=name, contentLength=len(data), clientToken=digest[:64]
        )["attachmentPresignedUrl"]
    upload(url, data)
    handle.append("sir.attached", {"file": name, "sha256": digest, "size": len(data)})
    result.attachments.append(name)


def _advance(
    handle: CaseHandle,
    client: SecurityIncidentResponseClient,
    record: CaseRecord,
    ledger: _Ledger,
    result: SyncResult,
) -> None:
    """Move the status forward to where the eksir case is; close it when the eksir case is closed."""
    seen = {event.type for event in record.events}
    if report_written_after(record) is not None:
        seen.add("report")
    wanted = next((status for kind, status in _STATUS_AFTER if kind in seen), None)
    if wanted and wanted != ledger.status and not ledger.closed:
        with aws_call(f"set the Security Incident Response case status to {wanted}"):
            client.update_case_status(
                caseId=result.sir_case_id, caseStatus=cast("SelfManagedCaseStatusType", wanted)
            )
        handle.append("sir.status", {"status": wanted})
        result.status = wanted
    if record.case.status is CaseStatus.CLOSED and not ledger.closed:
        with aws_call(f"close Security Incident Response case {result.sir_case_id}"):
            client.close_case(caseId=result.sir_case_id)
        handle.append("sir.closed", {"sir_case_id": result.sir_case_id})
        result.closed = True


def parse_watcher(text: str) -> Watcher:
    """`Name <email>` or `email` (from --watcher)."""
    found = re.fullmatch(r"\s*(?:(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>|(?P<bare>[^<>\s]+))\s*", text)
    if not found:
        raise BadInputError(f"--watcher {text!r}: give an email address or 'Name <email>'")
    email = found["email"] or found["bare"]
    if "@" not in email:
        raise BadInputError(f"--watcher {text!r}: {email!r} is not an email address")
    return Watcher(email=email, name=(found["name"] or "").strip())


_ATTACHMENT_MAX = 104_857_600
"""Security Incident Response accepts attachments up to 100 MiB (GetCaseAttachmentUploadUrl)."""


def attach_file(
    handle: CaseHandle, client: SecurityIncidentResponseClient, name: str, data: bytes, upload: Upload
) -> str:
    """Attach one file (an exported archive) to the case's linked Security Incident Response case."""
    sir_case_id = _ledger(load_record(handle)).case_id
    if sir_case_id is None:
        raise BadInputError(
            "the case is not linked to Security Incident Response: run `eksir case sir-sync` first"
        )
    if len(data) > _ATTACHMENT_MAX:
        raise BadInputError(f"{name} is {len(data)} bytes: Security Incident Response takes at most 100 MiB")
    result = SyncResult(sir_case_id)
    _attach(handle, client, result, _SAFE_FILE.sub("_", name), data, upload)
    return sir_case_id

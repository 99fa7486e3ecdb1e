"""Security Incident Response sync, against the `security-ir` service model with botocore's Stubber (moto
has no security-ir); attachments are PUT to a real HTTP server on loopback, as to a presigned URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.stub import ANY, Stubber

from eksir.clients.presigned import put_presigned
from eksir.errors import BadInputError
from eksir.models.case import CaseStatus
from eksir.notify.sir import SirOptions, Watcher, attach_file, parse_watcher, sync_case
from eksir.phases.case_close import close_case
from eksir.report import generate_report
from eksir.store.case_store import CaseHandle
from tests.report.case_builder import build_case

SIR_CASE = "1234567890"


class _Uploads(BaseHTTPRequestHandler):
    received: dict[str, bytes] = {}

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received[self.path] = self.rfile.read(length)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        """Quiet."""


@pytest.fixture
def uploads() -> Iterator[tuple[str, dict[str, bytes]]]:
    _Uploads.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Uploads)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Uploads.received
    finally:
        server.shutdown()


def _client() -> Any:
    return boto3.client(
        "security-ir", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _case(tmp_path: Path) -> CaseHandle:
    handle = build_case(tmp_path)
    handle.append("phase.finished", {"plan_digest": "d", "phase": "containment", "counts": {"verified": 1}})
    generate_report(handle, ["html", "md"])
    return handle


def _sir_events(handle: CaseHandle) -> list[str]:
    return [e.type for e in handle.log.events() if e.type.startswith("sir.")]


def test_the_first_sync_creates_comments_attaches_and_sets_the_status_and_a_second_sends_nothing(
    tmp_path: Path, uploads: tuple[str, dict[str, bytes]]
) -> None:
    base, received = uploads
    handle = _case(tmp_path)
    case = handle.load()
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "create_case",
            {"caseId": SIR_CASE},
            {
                "clientToken": case.id,
                "resolverType": "Self",
                "title": ANY,
                "description": ANY,
                "engagementType": "Security Incident",
                "reportedIncidentStartDate": ANY,
                "impactedAccounts": [case.account_id],
                "watchers": [{"email": "lead@example.com", "name": "Lead"}],
                "impactedServices": ["Amazon Elastic Kubernetes Service"],
                "threatActorIpAddresses": ANY,
                "impactedAwsRegions": [{"region": case.region}],
            },
        )
        containment = next(e for e in handle.log.events() if e.type == "phase.finished")
        stub.add_response(
            "create_case_comment",
            {"commentId": "000001"},
            {
                "caseId": SIR_CASE,
                "clientToken": f"{case.id}:phase:containment:{containment.seq}",
                "body": ANY,
            },
        )
        for name in ("report", "manifest"):
            stub.add_response(
                "get_case_attachment_upload_url",
                {"attachmentPresignedUrl": f"{base}/{name}?X-Amz-Signature=abc"},
                {"caseId": SIR_CASE, "fileName": ANY, "contentLength": ANY, "clientToken": ANY},
            )
        stub.add_response(
            "update_case_status",
            {"caseStatus": "Post-incident Activities"},
            {"caseId": SIR_CASE, "caseStatus": "Post-incident Activities"},
        )
        options = SirOptions(watchers=(Watcher("lead@example.com", "Lead"),))
        result = sync_case(handle, client, options, put_presigned)
        stub.assert_no_pending_responses()
    assert (result.sir_case_id, result.created, result.status) == (SIR_CASE, True, "Post-incident Activities")
    assert received["/report?X-Amz-Signature=abc"] == (handle.path / "report.html").read_bytes()
    manifest = orjson.loads(received["/manifest?X-Amz-Signature=abc"])
    assert [e["sha256"] for e in manifest["evidence"]] == [e.sha256 for e in handle.load().evidence]
    assert _sir_events(handle) == [
        "sir.linked",
        "sir.commented",
        "sir.attached",
        "sir.attached",
        "sir.status",
    ]

    with Stubber(client) as stub:  # nothing new: no call at all (the Stubber fails on any)
        again = sync_case(handle, client, options, put_presigned)
    assert (again.comments, again.attachments, again.status, again.closed) == ([], [], None, False)


def test_closing_the_eksir_case_closes_the_linked_case(
    tmp_path: Path, uploads: tuple[str, dict[str, bytes]]
) -> None:
    base, _ = uploads
    handle = _case(tmp_path)
    handle.append("sir.linked", {"sir_case_id": SIR_CASE, "created": False})
    for key in ("report", "manifest"):
        handle.append("sir.attached", {"file": key, "sha256": "0" * 64})
    close_case(handle)
    assert handle.load().status is CaseStatus.CLOSED
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "create_case_comment",
            {"commentId": "000002"},
            {"caseId": SIR_CASE, "clientToken": ANY, "body": ANY},
        )
        for _ in range(2):  # the report and manifest hashes differ from the recorded ones: sent once more
            stub.add_response(
                "get_case_attachment_upload_url",
                {"attachmentPresignedUrl": f"{base}/x"},
                {"caseId": SIR_CASE, "fileName": ANY, "contentLength": ANY, "clientToken": ANY},
            )
        stub.add_response(
            "update_case_status",
            {"caseStatus": "Post-incident Activities"},
            {"caseId": SIR_CASE, "caseStatus": "Post-incident Activities"},
        )
        stub.add_response("close_case", {"caseStatus": "Closed"}, {"caseId": SIR_CASE})
        result = sync_case(handle, client, SirOptions(), put_presigned)
        stub.assert_no_pending_responses()
    assert result.closed
    assert _sir_events(handle)[-1] == "sir.closed"


def test_an_existing_sir_case_is_linked_not_created(tmp_path: Path) -> None:
    handle = build_case(tmp_path)
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("get_case", {"title": "opened by the SOC"}, {"caseId": "9876543210"})
        stub.add_response(
            "get_case_attachment_upload_url",
            {"attachmentPresignedUrl": "http://127.0.0.1:9/never"},
            {"caseId": "9876543210", "fileName": ANY, "contentLength": ANY, "clientToken": ANY},
        )
        stub.add_response(
            "update_case_status",
            {"caseStatus": "Detection and Analysis"},
            {"caseId": "9876543210", "caseStatus": "Detection and Analysis"},
        )
        uploaded: list[int] = []
        result = sync_case(
            handle, client, SirOptions(link_case="9876543210"), lambda _url, data: uploaded.append(len(data))
        )
    assert (result.sir_case_id, result.created) == ("9876543210", False)
    assert len(uploaded) == 1  # the evidence manifest (no report yet)


def test_watchers_parse_and_an_unlinked_case_cannot_take_an_attachment(tmp_path: Path) -> None:
    assert parse_watcher("Ada Lovelace <ada@example.com>") == Watcher("ada@example.com", "Ada Lovelace")
    assert parse_watcher("ops@example.com") == Watcher("ops@example.com")
    with pytest.raises(BadInputError, match="not an email"):
        parse_watcher("nobody")
    handle = build_case(tmp_path)
    with pytest.raises(BadInputError, match="sir-sync"):
        attach_file(handle, _client(), "case.tar.gz", b"x", lambda _u, _d: None)

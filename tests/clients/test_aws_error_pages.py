"""Issue #18 ("Conventions"): the plan printed moto's raw 404 HTML page. An endpoint that answers with a web
page instead of an AWS response (moto on a wrong path, a proxy, a captive portal) is named in one line; the
page itself never reaches the terminal. Real botocore parses a real HTTP answer from a local server here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from eksir.clients.aws import aws_call, new_client, readable
from eksir.errors import EksirError

PAGE = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"


class _Pages(BaseHTTPRequestHandler):
    def _page(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    do_GET = do_POST = _page

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def page_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("service", "call"), [("eks", "list_clusters"), ("ec2", "describe_instances")])
def test_a_web_page_instead_of_an_aws_answer_is_named_in_one_line_never_printed(
    page_server: str, service: str, call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = new_client(service, region="us-east-1", endpoint_url=page_server)
    with pytest.raises(EksirError) as raised, aws_call(f"{service} {call}"):
        getattr(client, call)()
    message = raised.value.message
    assert "<" not in message
    assert "\n" not in message
    assert message.startswith(f"{service} {call}: ")


def test_a_message_keeps_its_first_line_and_a_page_in_it_is_named() -> None:
    assert readable("Unable to parse response, invalid XML received:\nb'<!DOCTYPE html><p>x'") == (
        "Unable to parse response, invalid XML received: the endpoint answered with a web page, not an AWS "
        "response"
    )
    assert readable("User is not authorized to perform: eks:DescribeCluster") == (
        "User is not authorized to perform: eks:DescribeCluster"
    )
    assert readable("x" * 400).endswith("...")

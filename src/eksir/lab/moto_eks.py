"""moto's EKS cluster record pointed at the lab's real kube-apiserver: DescribeCluster's endpoint and CA.

Why: without a kubeconfig, eksir reaches a cluster the way every EKS tool does, from DescribeCluster's
`endpoint` and `certificateAuthority.data` plus a token. moto makes up both (an `*.eks.amazonaws.com` name and
random CA text) and has no API to change them, so the lab writes the lab API server's address and CA into
moto's cluster object. In-process (tests) that is a direct write into moto's backend. The detached moto of
`eksir lab up` runs as `python -m eksir.lab.moto_eks`: moto's own server application, unchanged, behind one
extra lab-only route, `POST /eksir-lab/eks-cluster-endpoint`, that does the same write in that process, and
`GET /eksir-lab/access-key?id=KEY`, what data.json says about one access key (for the lab's EKS
authenticator, see `access_key_data`). Besides, in that process only: a cache of moto's JSONPath parsing
(`memoise_jsonpath_parsing`), SQS's retention check read from the queue (`check_sqs_retention_directly`)
and its queue attributes computed once (`count_sqs_messages_cheaply`), the list of moto's services and of
each response class's methods read once (`list_moto_services_once`, `memoise_response_methods`), no line
per request in moto.log unless `EKSIR_LAB_MOTO_REQUEST_LOG=1` (`quiet_request_log`), and one fix to moto's
IAM enforcement (`sign_bodyless_requests_as_sent`, for the cross-account lab's enforced mode). Each is about
the emulator's cost, measured under the fleet bench where moto, one GIL-bound process, was 57% of the lab's
CPU; none changes an answer. Nothing else about moto changes; the product never imports this.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from eksir.errors import LabError

ROUTE = "/eksir-lab/eks-cluster-endpoint"
KEY_ROUTE = "/eksir-lab/access-key"
_MAX_BODY = 64 * 1024
#: The members of moto's models the lab's EKS authenticator reads (`eks_authenticator._caller_from_moto`).
_KEY_MEMBERS = {
    ("sts", "AssumedRole"): (
        *("access_key_id", "secret_access_key", "session_token", "arn", "role_arn"),
        *("session_name", "account_id"),
    ),
    ("iam", "AccessKey"): ("access_key_id", "secret_access_key", "user_name", "status"),
    ("iam", "User"): ("name", "arn", "id", "account_id"),
    ("iam", "Role"): ("arn", "id"),
}


def ca_data(ca_file: Path) -> str:
    """certificateAuthority.data as EKS returns it: the base64 of the CA's PEM."""
    return base64.b64encode(ca_file.read_bytes()).decode()


@dataclass(frozen=True)
class ClusterEndpoint:
    """Which moto cluster gets which endpoint and CA (base64 PEM)."""

    account_id: str
    region: str
    name: str
    endpoint: str
    ca: str


def set_cluster_endpoint(target: ClusterEndpoint) -> None:
    """Write the endpoint and CA into moto's in-memory cluster (this process's moto). Raises LabError."""
    from moto.backends import get_backend  # noqa: PLC0415 - moto is the optional `lab` extra

    try:
        cluster = get_backend("eks")[target.account_id][target.region].clusters[target.name]
    except KeyError as exc:
        where = f"{target.account_id}/{target.region}"
        raise LabError(f"moto has no EKS cluster {target.name} in {where}") from exc
    cluster.endpoint = target.endpoint
    cluster.certificate_authority = {"data": target.ca}


def publish_cluster_endpoint(moto_url: str, target: ClusterEndpoint) -> None:
    """Ask a detached `python -m eksir.lab.moto_eks` server to do `set_cluster_endpoint`. Raises LabError."""
    request = urllib.request.Request(
        moto_url + ROUTE,
        data=json.dumps(asdict(target)).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"moto at {moto_url} did not take the cluster endpoint: {exc}") from exc


def access_key_data(key_id: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """What `/moto-api/data.json` says about one access key, read from this process's moto in milliseconds.

    Why: data.json serialises every attribute of every model instance (AWS managed policies in three
    accounts in the cross-account lab): ~10 s idle and over the API server's 30 s webhook timeout on a busy
    machine, so a responder's token was refused (401) for no reason of its own. Same shape, same
    instances (moto's `instances_tracked`), only the key's session or key record and the users and roles.
    """
    from moto.core.model_instances import model_data  # noqa: PLC0415 - moto is the optional `lab` extra

    answer: dict[str, dict[str, list[dict[str, Any]]]] = {"sts": {}, "iam": {}}
    for (service, model), members in _KEY_MEMBERS.items():
        tracked = getattr(model_data.get(service, {}).get(model), "instances_tracked", [])
        rows = [{m: getattr(obj, m, None) for m in members} for obj in tracked]
        if "access_key_id" in members:
            rows = [row for row in rows if row["access_key_id"] == key_id]
        answer[service][model] = [{k: v for k, v in row.items() if isinstance(v, str | None)} for row in rows]
    return answer


def _key_lookup(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    key_id = parse_qs(environ.get("QUERY_STRING") or "").get("id", [""])[0]
    if not key_id.isalnum() or len(key_id) > 128:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"id: an access key id"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(access_key_data(key_id)).encode()]


def with_lab_route(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """moto's WSGI application plus the lab's two routes; every other request goes to moto untouched."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == KEY_ROUTE and environ.get("REQUEST_METHOD") == "GET":
            return _key_lookup(environ, start_response)
        if environ.get("PATH_INFO") != ROUTE or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if not 0 < length <= _MAX_BODY:
                raise ValueError("no or oversized body")
            body = json.loads(environ["wsgi.input"].read(length))
            set_cluster_endpoint(ClusterEndpoint(**body))
        except (ValueError, KeyError, TypeError, LabError) as exc:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [str(exc).encode()]
        start_response("204 No Content", [])
        return [b""]

    return wrapped


def memoise_jsonpath_parsing() -> None:
    """Make `jsonpath_ng.ext.parse` remember what it parsed, in this (the lab's moto) process only.

    Why: moto's EventBridge renders every event it delivers through eight constant JSONPath expressions and
    builds a new parser (yacc tables) for each, each time: under a fleet burst that was about a quarter of the
    lab moto's CPU, a cost of the emulator that AWS does not have. The parsed expressions are read-only
    (`find` keeps no state), so reusing them changes what moto answers in nothing but its cost.
    """
    import functools  # noqa: PLC0415

    import jsonpath_ng.ext  # noqa: PLC0415 - moto's own dependency, imported at call time by moto too

    parse = getattr(jsonpath_ng.ext, "parse")  # noqa: B009 - re-exported untyped: mypy sees no attribute
    if not hasattr(parse, "cache_info"):
        setattr(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=256)(parse))  # noqa: B010


def check_sqs_retention_directly() -> None:
    """Make moto's SQS read a queue's retention period from the queue, not from all its attributes.

    Why: moto 5.2's ReceiveMessage checks each message it hands out against the queue's retention period
    by calling `get_queue_attributes`, which computes every attribute, among them three counts that walk
    every message in the queue, reading the clock for each. On a 500-deep queue one receive of 10 took
    ~0.34 s, 96% of it in that check (cProfile), so the lab's queue, not eksir or a bare loop, bounded how
    fast any consumer drained a backlog (~30 messages/s). The answer is the same (the message is valid while
    `sent + retention > now`); only its cost changes, from O(queue) per message to O(1).
    """
    from moto.core.utils import unix_time  # noqa: PLC0415 - moto is the optional `lab` extra
    from moto.sqs.models import Message, SQSBackend  # noqa: PLC0415

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return bool(retention_s + message.sent_timestamp / 1000 > unix_time())  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def count_sqs_messages_cheaply() -> None:
    """Make moto's SQS compute a queue's attributes once per GetQueueAttributes and read the clock directly.

    Why: GetQueueAttributes for two names computed every attribute six times over (each computation walks
    the queue three times, reading the clock for each message through datetime arithmetic): ~130 ms per call
    on a 500-deep queue, 14% of the lab moto's CPU in a fleet burst from the bench's once-a-second "is the
    queue empty" alone. The attributes returned are the same dict moto built; the clock is the same epoch
    milliseconds (moto's own `unix_time_millis` with no argument is `time.time()` in milliseconds, by way of
    `utcnow()`), so only the cost changes.
    """
    import time  # noqa: PLC0415

    import moto.sqs.models as sqs_models  # noqa: PLC0415 - moto is the optional `lab` extra
    from moto.sqs.exceptions import InvalidAttributeName  # noqa: PLC0415

    moto_clock = getattr(sqs_models, "unix_time_millis")  # noqa: B009 - imported there, not exported

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(moto_clock(dt))

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid = {"All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES}
        invalid = next((name for name in attribute_names if name not in valid), None)
        if invalid is not None:
            raise InvalidAttributeName(invalid)
        attributes: dict[str, Any] = queue.attributes
        if "All" in attribute_names:
            return attributes
        return {n: attributes[n] for n in attribute_names if attributes.get(n) is not None}

    setattr(sqs_models, "unix_time_millis", unix_time_millis)  # noqa: B010 - what the queue's messages call
    sqs_models.SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]


def list_moto_services_once() -> None:
    """Make moto's router list its installed service packages once, not on every request.

    Why: moto's server picks the backend for each request's Host by testing whether the host names one of
    moto's service packages, and lists and stats moto's package folder (some 150 `isdir` calls) to know
    them, every time: 16% of the lab moto's CPU in a fleet burst (py-spy). The packages do not change while
    the process runs.
    """
    from moto import backends  # noqa: PLC0415 - moto is the optional `lab` extra

    services = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: services


def memoise_response_methods() -> None:
    """Make moto list a response class's methods once, not on every request.

    Why: before dispatching each request, moto lists the methods of the service's response class with
    `inspect.getmembers` to check the action is one of them (6% of the lab moto's CPU in a fleet burst,
    py-spy). A class's methods do not change while the process runs; the list is only read.
    """
    import functools  # noqa: PLC0415

    from moto.core import responses  # noqa: PLC0415 - moto is the optional `lab` extra

    listed = getattr(responses, "method_names_from_class")  # noqa: B009 - imported there, not exported
    if not hasattr(listed, "cache_info"):
        setattr(responses, "method_names_from_class", functools.cache(listed))  # noqa: B010


REQUEST_LOG_ENV = "EKSIR_LAB_MOTO_REQUEST_LOG"


def quiet_request_log() -> None:
    """No access-log line per request in moto.log (werkzeug's `INFO` lines), unless
    `EKSIR_LAB_MOTO_REQUEST_LOG=1`; warnings and errors are still written.

    Why: formatting and writing one line per request was 9% of the lab moto's CPU in a fleet burst.
    """
    import logging  # noqa: PLC0415

    if os.environ.get(REQUEST_LOG_ENV) != "1":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)


_BODYLESS = frozenset({"GET", "HEAD", "DELETE"})


def sign_bodyless_requests_as_sent() -> None:
    """Make moto's signature check hash an empty body as empty, as AWS and botocore do.

    Why: with IAM enforcement on, moto 5.2 recomputes each request's SigV4 signature from `body or data`,
    and for a request without a body its `data` is the parsed query string or, failing that, the request
    headers. Every GET or DELETE of a REST service (EKS DescribeCluster, GuardDuty ListDetectors, ...) is
    then refused as SignatureDoesNotMatch whatever its keys. This hashes the body that was sent (none) for
    those requests; every other request is checked exactly as moto checks it.
    """
    from moto.iam.access_control import IAMRequestBase  # noqa: PLC0415 - moto is the optional `lab` extra

    original = IAMRequestBase._create_aws_request

    def create_aws_request(self: Any) -> Any:
        if self._body or self._method not in _BODYLESS:
            return original(self)
        data, self._data = self._data, {}
        try:
            return original(self)
        finally:
            self._data = data

    IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    """`python -m moto.server -H HOST -p PORT`, with the lab route (same server class and options)."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - moto is the optional `lab` extra
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="moto server with the eksir lab's EKS endpoint route")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto.server does: moto builds some URLs from it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    memoise_jsonpath_parsing()
    check_sqs_retention_directly()
    count_sqs_messages_cheaply()
    list_moto_services_once()
    memoise_response_methods()
    quiet_request_log()
    sign_bodyless_requests_as_sent()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, with_lab_route(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

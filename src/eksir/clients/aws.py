"""The one AWS session and client factory, and the one table that turns SDK errors into eksir errors.

Every AWS client eksir makes comes from `new_client`: the product's (`AwsClients`), the hunt's worker
processes (`hunt.sources.aws.AwsAccess`) and the lab's (`lab.moto_server.AwsEndpoint`, whose clients the lab's
attacker uses). So they share one botocore `Config` (standard retries, connect and read timeouts) and one
endpoint rule: an explicit `endpoint_url` (the lab's moto, a VPC endpoint) wins, otherwise botocore reads
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` itself. And every SDK error meets one table
(`translate_client_error`), so the same AWS answer gives the same exit code whichever part of eksir asked.

boto3 and botocore are imported only when a session or client is made, never at module import: `eksir --help`
and a hunt over local files make no AWS call, and importing boto3 costs a third of a second. Errors are
recognised by their botocore class names, so translating needs no import either.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eksir.clients.assume import AssumedRole, assumed_session
from eksir.clients.call_log import record_calls
from eksir.clients.sdk_session import core_session
from eksir.errors import (
    BadInputError,
    EksirError,
    NotFoundError,
    PermissionDeniedError,
    TemporaryError,
    UnreachableError,
)

if TYPE_CHECKING:
    from boto3.session import Session
    from botocore.config import Config

    from eksir.clients.aws_types import ClientFactory

MAX_ATTEMPTS = 6
"""botocore's standard retry mode: throttling, 5xx and connection errors, with jittered backoff."""
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
"""Error codes that mean "AWS is throttling or failing": retry later (TemporaryError, exit 7), as any 5xx."""
DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "Client.UnauthorizedOperation",
        "AuthorizationError",
        "AuthFailure",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClient",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "InvalidToken",
    }
)
"""Error codes that mean "these credentials may not do this" (PermissionDeniedError, exit 8), as any 403."""
NOT_FOUND = frozenset({"NoSuchBucket", "NoSuchKey", "NoSuchEntity", "ResourceNotFoundException", "404"})
NOT_FOUND_SUFFIXES = ("NotFound", "NotFoundException", "NoSuchEntity")
"""`InvalidInstanceID.NotFound`, `TrailNotFoundException`, ...: NotFoundError (exit 10), as any 404."""
INVALID = frozenset(
    {
        "ValidationError",
        "ValidationException",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterException",
        "InvalidParameterCombination",
        "MissingParameter",
        "InvalidInput",
        "InvalidInputException",
        "InvalidRequest",
        "InvalidRequestException",
        "InvalidArgument",
        "MalformedPolicyDocument",
    }
)
INVALID_SUFFIXES = (".Malformed",)
"""The request itself is wrong (`InvalidInstanceID.Malformed`): BadInputError (exit 3)."""

SDK_DENIED = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "TokenRetrievalError",
        "SSOError",
        "NoAuthTokenError",
    }
)
"""botocore raised before sending: no usable credentials (log in again): PermissionDeniedError (exit 8)."""
SDK_INVALID = frozenset(
    {"ParamValidationError", "NoRegionError", "ProfileNotFound", "ValidationError", "UnknownServiceError"}
)
"""botocore refused the call as asked (bad parameter, no region, unknown profile): BadInputError (exit 3).
Every other botocore error (connection refused, timeouts, closed connections) is UnreachableError (exit 7)."""


def client_config(max_attempts: int = MAX_ATTEMPTS) -> Config:
    """The one botocore Config: standard retries and bounded connect/read timeouts."""
    from botocore.config import Config  # noqa: PLC0415 - see module docstring

    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )


def new_session(profile: str | None = None, region: str | None = None) -> Session:
    """A boto3 session (AWS CLI conventions: `AWS_PROFILE`, `AWS_REGION`); BadInputError: unknown profile.

    Its models come from the process's shared loader (clients/sdk_session.py): a worker makes sessions per
    case, and parsing the models again for each was most of a case's CPU."""
    import boto3.session  # noqa: PLC0415 - see module docstring

    with aws_call(f"AWS profile {profile!r}"):
        core = core_session()
        session = boto3.session.Session(botocore_session=core, profile_name=profile, region_name=region)
        core.get_scoped_config()  # an unknown profile fails here, as a session with its own loader did
        return session


def new_client(
    service: str,
    *,
    session: Session | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> Any:
    """A boto3 client with the one Config; explicit keys (the lab's attacker) override the session's.

    Raises BadInputError when no region is known (`--region` or `AWS_REGION`) or the service is unknown.
    """
    kwargs: dict[str, Any] = {"config": client_config(max_attempts)}
    for name, value in (
        ("region_name", region),
        ("endpoint_url", endpoint_url),
        ("aws_access_key_id", access_key_id),
        ("aws_secret_access_key", secret_access_key),
        ("aws_session_token", session_token),
    ):
        if value:
            kwargs[name] = value
    # `service` is any name here; the typed view per service is clients/aws_types.py's ClientFactory.
    make: Callable[..., Any] = (session or new_session()).client
    with aws_call(f"create an AWS {service} client"):
        return make(service, **kwargs)


@dataclass
class AwsClients:
    """Creates and caches boto3 clients for one account/region (thread-safe after creation).

    With `role`, the clients act in that role's account through an assumed session whose credentials
    botocore refreshes (clients/assume.py); `account_id` is the account they act in, when known.
    """

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    role: AssumedRole | None = None
    account_id: str | None = None
    caller_account: str | None = None
    """The account GetCallerIdentity named for these credentials, once asked (cli/accounts.py)."""
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _making: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """A boto3 session is not thread-safe while it makes clients: steps running in parallel threads (and a
    worker's cases sharing the home clients) ask for their first client at the same moment."""

    def session(self) -> Any:
        with self._making:
            return self._new_session_once()

    def _new_session_once(self) -> Any:
        if self._session is None:
            base = new_session(self.profile, self.region)
            if self.role is not None:
                base = assumed_session(base, self.role, self.region, self.endpoint_url)
            self._session = base
        return self._session

    @property
    def client(self) -> ClientFactory:
        """`aws.client("ec2")`: the typed client of a service (clients/aws_types.py), made once."""
        return self._client

    @property
    def __call__(self) -> ClientFactory:
        """`aws("ec2")`, the same as `aws.client("ec2")` (a property, so that mypy sees the typed factory)."""
        return self._client

    def _client(self, service: str) -> Any:
        made = self._clients.get(service)
        if made is not None:
            return made
        with self._making:
            if service not in self._clients:
                self._clients[service] = record_calls(
                    new_client(service, session=self._new_session_once(), endpoint_url=self.endpoint_url)
                )
            return self._clients[service]


def _sdk_names(exc: BaseException) -> set[str]:
    """The botocore exception classes `exc` is an instance of, by name (empty for anything else).

    Any botocore module counts: a response botocore cannot parse (an HTML error page from a proxy or a
    failing endpoint) raises `botocore.parsers.ResponseParserError`, which is not in botocore.exceptions.
    """
    return {k.__name__ for k in type(exc).__mro__ if k.__module__.startswith("botocore.")}


def error_class(code: str, status: int) -> tuple[type[EksirError], str]:
    """Which eksir error an AWS error code and HTTP status mean, and how to say it; first match wins."""
    if code in THROTTLED or status >= 500:
        return TemporaryError, "AWS is throttling or failing, retry later"
    if code in DENIED or status == 403:
        return PermissionDeniedError, "access denied"
    if code in NOT_FOUND or code.endswith(NOT_FOUND_SUFFIXES) or status == 404:
        return NotFoundError, "not found"
    if code in INVALID or code.endswith(INVALID_SUFFIXES):
        return BadInputError, "rejected as invalid"
    return EksirError, "failed"


_PAGE = re.compile(r"<\s*(!doctype|html|head|body|title)\b", re.IGNORECASE)
_MESSAGE_LIMIT = 300


def readable(text: str) -> str:
    """An SDK or service message fit for a one-line error: a web page an endpoint sent instead of an AWS
    answer (a proxy's, or moto's 404 page) is named, never printed; anything else is its first line, cut."""
    found = _PAGE.search(text)
    if found:
        before = text[: found.start()].strip().splitlines()
        lead = before[0].rstrip(" :b'\"") if before else ""
        return f"{lead}: " * bool(lead) + "the endpoint answered with a web page, not an AWS response"
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= _MESSAGE_LIMIT else first[:_MESSAGE_LIMIT] + "..."


def translate_client_error(exc: BaseException, doing: str) -> EksirError:
    """Map an SDK exception to the eksir error a responder can act on; `doing` names the call."""
    names = _sdk_names(exc)
    if "ClientError" in names:
        response: dict[str, Any] = getattr(exc, "response", {}) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        message = readable(str(response.get("Error", {}).get("Message", ""))) or code
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        kind, what = error_class(code, status)
        said = f"{code or status}: {message}" if message else f"{code or status}"
        return kind(f"{doing}: {what} ({said})", code=code)
    if "NoRegionError" in names:
        return BadInputError(f"{doing}: no AWS region: pass --region or set AWS_REGION")
    if names & SDK_DENIED:
        return PermissionDeniedError(f"{doing}: no usable AWS credentials ({readable(str(exc))})")
    if names & SDK_INVALID:
        return BadInputError(f"{doing}: {readable(str(exc))}")
    if names:
        return UnreachableError(f"{doing}: cannot reach AWS ({readable(str(exc))})")
    return EksirError(f"{doing}: {exc}")


@contextmanager
def aws_call(doing: str) -> Iterator[None]:
    """`with aws_call("deactivate access key AKIA..."):` turns SDK errors into eksir errors."""
    try:
        yield
    except Exception as exc:
        if not _sdk_names(exc):
            raise
        raise translate_client_error(exc, doing) from exc

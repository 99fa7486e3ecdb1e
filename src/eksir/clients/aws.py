"""boto3 session and client factory with standard retries, plus ClientError -> eksir error translation.

Endpoint configuration (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, or an explicit `endpoint_url`) is
honoured so the same code runs against the lab's moto server and against AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from eksir.errors import (
    BadInputError,
    EksirError,
    NotFoundError,
    PermissionDeniedError,
    TemporaryError,
    UnreachableError,
)

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5, read_timeout=30)

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "Client.UnauthorizedOperation",
    "AuthorizationError",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}


@dataclass
class AwsClients:
    """Creates and caches boto3 clients for one account/region (thread-safe after creation)."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def session(self) -> Any:
        if self._session is None:
            try:
                self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            except BotoCoreError as exc:
                raise BadInputError(f"AWS profile {self.profile!r}: {exc}") from exc
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            kwargs: dict[str, Any] = {"config": RETRY_CONFIG}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            try:
                self._clients[service] = self.session().client(service, **kwargs)
            except NoRegionError as exc:
                raise BadInputError("no AWS region: pass --region or set AWS_REGION") from exc
        return self._clients[service]

    __call__ = client


def translate_client_error(exc: Exception, doing: str) -> EksirError:
    """Map an SDK exception to the eksir error a responder can act on; `doing` names the call."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLING or status >= 500:
            return TemporaryError(f"{doing}: AWS is throttling or failing ({code or status}); retry later")
        if code in _DENIED or status == 403:
            return PermissionDeniedError(f"{doing}: permission denied ({code}: {message})")
        if code.endswith(("NotFound", "NoSuchEntity", ".NotFound", "NotFoundException")) or code in {
            "NoSuchBucket",
            "NoSuchKey",
            "ResourceNotFoundException",
        }:
            return NotFoundError(f"{doing}: not found ({code}: {message})")
        return EksirError(f"{doing}: {code}: {message}")
    if isinstance(exc, EndpointConnectionError):
        return UnreachableError(f"{doing}: cannot reach the AWS endpoint ({exc})")
    if isinstance(exc, NoCredentialsError):
        return PermissionDeniedError(
            f"{doing}: no AWS credentials found (set a profile or environment credentials)"
        )
    if isinstance(exc, BotoCoreError):
        return UnreachableError(f"{doing}: {exc}")
    return EksirError(f"{doing}: {exc}")


@contextmanager
def aws_call(doing: str) -> Iterator[None]:
    """`with aws_call("deactivate access key AKIA..."):` turns SDK errors into eksir errors."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate_client_error(exc, doing) from exc

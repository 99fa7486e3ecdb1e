"""How the hunt talks to AWS: one session factory with the AWS CLI conventions and throttling-aware retries.

Every AWS call of the hunt goes through a client made here, so `--profile`, `--region` and `--endpoint-url`
(moto in tests, VPC endpoints in production) apply everywhere, and throttling is retried by botocore's
adaptive mode instead of failing a 3 a.m. hunt. ClientError is translated into eksir's error types here.

boto3 and botocore are imported where a client is made or an error translated, never at module import: a
hunt over local files makes no AWS call, and importing boto3 alone cost a third of a second of every
`eksir hunt` process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eksir.errors import EksirError, NotFoundError, PermissionDeniedError, TemporaryError, UnreachableError

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_MISSING = {
    "NoSuchBucket",
    "NoSuchKey",
    "ResourceNotFoundException",
    "NotFound",
    "404",
    "TrailNotFoundException",
}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "SlowDown",
    "RequestLimitExceeded",
}


@dataclass(frozen=True)
class AwsAccess:
    """Picklable connection settings: worker processes build their own clients from it."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 8

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client with adaptive retries; raises UnreachableError when the profile is unusable."""
        import boto3  # noqa: PLC0415 - only a hunt that reaches AWS pays for boto3 (see module docstring)
        from botocore.config import Config  # noqa: PLC0415
        from botocore.exceptions import BotoCoreError  # noqa: PLC0415

        config = Config(
            retries={"mode": "adaptive", "max_attempts": self.max_attempts},
            connect_timeout=10,
            read_timeout=60,
        )
        try:
            session = boto3.session.Session(profile_name=self.profile)
            return session.client(
                service, region_name=region or self.region, endpoint_url=self.endpoint_url, config=config
            )
        except BotoCoreError as exc:
            raise UnreachableError(f"cannot create an AWS {service} client: {exc}") from exc


def translate(exc: Exception, doing: str) -> EksirError:
    """Map a botocore error to the eksir error a responder can act on (one line, no traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - see module docstring

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in _DENIED:
            return PermissionDeniedError(f"{doing}: access denied ({message})")
        if code in _MISSING:
            return NotFoundError(f"{doing}: not found ({message})")
        if code in _THROTTLED or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            return TemporaryError(f"{doing}: AWS is throttling or failing, retry later ({code})")
        return EksirError(f"{doing}: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return UnreachableError(f"{doing}: {exc}")
    return EksirError(f"{doing}: {exc}")

"""How the hunt reaches AWS: picklable connection settings, turned into clients by the one factory.

Every AWS call of the hunt goes through a client made here, so `--profile`, `--region` and `--endpoint-url`
(moto in tests, VPC endpoints in production) apply everywhere. The clients, their retries and the translation
of SDK errors are `eksir.clients.aws`'s, the same as every other part of eksir: the same AWS answer gives the
same exit code in a hunt as in a containment step.

Nothing here imports boto3: a hunt over local files makes no AWS call, and importing boto3 alone cost a third
of a second of every `eksir hunt` process. The factory imports it when the first client is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eksir.clients.assume import AssumedRole, assumed_session
from eksir.clients.aws import MAX_ATTEMPTS, new_client, new_session
from eksir.clients.call_log import record_calls

if TYPE_CHECKING:
    from eksir.clients.aws_types import RegionalClientFactory


@dataclass(frozen=True)
class AwsAccess:
    """Picklable connection settings: worker processes build their own clients from it.

    With `role`, every client acts in that role's account (the incident's member account: LookupEvents,
    its trail bucket, its log groups), assumed from the profile's credentials.
    """

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = MAX_ATTEMPTS
    role: AssumedRole | None = None

    @property
    def client(self) -> RegionalClientFactory:
        """`access.client("s3", region=None)`: a typed boto3 client (clients/aws_types.py), made anew."""
        return self._client

    def _client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client (standard retries); BadInputError for an unknown profile or no region."""
        session = new_session(self.profile)
        if self.role is not None:
            session = assumed_session(session, self.role, region or self.region, self.endpoint_url)
        return record_calls(
            new_client(
                service,
                session=session,
                region=region or self.region,
                endpoint_url=self.endpoint_url,
                max_attempts=self.max_attempts,
            )
        )

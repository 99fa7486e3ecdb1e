"""Acting in another account: which role to assume there, and a boto3 session whose credentials stay fresh.

Why a role template (`arn:aws:iam::{account}:role/eksir-responder`) and not one role ARN: a security team
responds for every member account of an organisation from the security account, and the account comes from
the finding. Accounts (or a whole organisational unit's accounts, listed by the operator) that use another
role are mapped explicitly (`RoleMap.accounts`).

Why botocore's `AssumeRoleCredentialFetcher` behind `DeferredRefreshableCredentials`, not one AssumeRole
call: a response, a hunt or a recovery can outlive the session's hour (snapshots, a responder thinking at a
prompt), and botocore then assumes the role again before the credentials expire, on any thread, exactly as
the AWS CLI does for a profile with `role_arn`. Every client made from the session (and the EKS token minted
from its STS client) signs with the current credentials.

The session name carries the case id, and SourceIdentity the operator, so the member account's CloudTrail
says which case and which person each call belongs to (SourceIdentity survives role chaining; the session
name alone does not). Both are reduced to the characters STS accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from eksir.errors import BadInputError

if TYPE_CHECKING:
    from boto3.session import Session

ACCOUNT_PLACEHOLDER = "{account}"
ASSUME_ROLE_ENV = "EKSIR_ASSUME_ROLE"
EXTERNAL_ID_ENV = "EKSIR_EXTERNAL_ID"
_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|\{account\}):role/[\w+=,.@/-]{1,512}$")
_STS_NAME = re.compile(r"[^\w+=,.@-]")
_SESSION_NAME_MAX = 64
_SOURCE_IDENTITY_MAX = 64


def sts_name(text: str, limit: int = _SESSION_NAME_MAX) -> str:
    """`text` reduced to what STS accepts in RoleSessionName/SourceIdentity (`[\\w+=,.@-]`, 2..64)."""
    cleaned = _STS_NAME.sub("-", text)[:limit]
    return cleaned if len(cleaned) >= 2 else (cleaned + "--")[:2]  # STS's minimum is 2


def check_role_arn(arn: str, what: str) -> str:
    """`arn` when it is an IAM role ARN (or a template with `{account}`); BadInputError otherwise."""
    if not _ROLE_ARN.match(arn):
        raise BadInputError(
            f"{what} {arn!r} is not an IAM role ARN: expected arn:aws:iam::{{account}}:role/NAME "
            "(or a 12-digit account in place of {account})"
        )
    return arn


@dataclass(frozen=True)
class RoleMap:
    """Which role eksir assumes in an account: its explicit entry, else the template with `{account}`."""

    template: str | None = None
    accounts: Mapping[str, str] = field(default_factory=dict)
    external_id: str | None = None

    def __post_init__(self) -> None:
        if self.template is not None:
            check_role_arn(self.template, "--assume-role")
        for account, arn in self.accounts.items():
            if not _ACCOUNT.match(account):
                raise BadInputError(f"role map: {account!r} is not a 12-digit AWS account id")
            check_role_arn(arn, f"role map entry for {account}:")

    def role_for(self, account: str) -> str | None:
        """The role ARN to assume in `account`, or None when nothing is configured for it."""
        if account in self.accounts:
            return self.accounts[account]
        if self.template is None:
            return None
        return self.template.replace(ACCOUNT_PLACEHOLDER, account)

    @property
    def configured(self) -> bool:
        return bool(self.template or self.accounts)


@dataclass(frozen=True)
class AssumedRole:
    """One role to assume: picklable (the hunt's worker processes rebuild the session from it)."""

    role_arn: str
    session_name: str
    external_id: str | None = None
    source_identity: str | None = None

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    def extra_args(self) -> dict[str, str]:
        """AssumeRole's parameters besides RoleArn (botocore's fetcher adds that one)."""
        args = {"RoleSessionName": sts_name(self.session_name)}
        if self.external_id:
            args["ExternalId"] = self.external_id
        if self.source_identity:
            args["SourceIdentity"] = sts_name(self.source_identity, _SOURCE_IDENTITY_MAX)
        return args


def _sts_client(
    base: Session, endpoint_url: str | None, region: str | None, service: str, **keys: Any
) -> Any:
    """The STS client AssumeRole is called with: the base credentials, the one Config, the same endpoint."""
    from eksir.clients.aws import new_client  # noqa: PLC0415 - aws.py imports this module

    return new_client(
        service,
        session=base,
        region=region,
        endpoint_url=endpoint_url,
        access_key_id=keys.get("aws_access_key_id"),
        secret_access_key=keys.get("aws_secret_access_key"),
        session_token=keys.get("aws_session_token"),
    )


def assumed_session(
    base: Session, role: AssumedRole, region: str | None, endpoint_url: str | None = None
) -> Session:
    """A boto3 session acting as `role`, assumed with `base`'s credentials and refreshed before expiry.

    Nothing is called until the first client signs a request; then AssumeRole's errors surface as that
    call's botocore errors (AccessDenied: the role does not trust the caller or the external id differs),
    which `aws_call` translates. Raises PermissionDeniedError at once when `base` has no credentials.
    """
    import boto3.session  # noqa: PLC0415 - see clients/aws.py's docstring
    from botocore.credentials import (  # noqa: PLC0415
        AssumeRoleCredentialFetcher,
        DeferredRefreshableCredentials,
    )

    from eksir.clients.sdk_session import core_session  # noqa: PLC0415
    from eksir.errors import PermissionDeniedError  # noqa: PLC0415

    source = base.get_credentials()
    if source is None:
        raise PermissionDeniedError(f"no AWS credentials to assume {role.role_arn} with")
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=partial(_sts_client, base, endpoint_url, region),
        source_credentials=source,
        role_arn=role.role_arn,
        extra_args=role.extra_args(),
    )
    core = core_session()
    # botocore's own pattern for refreshable credentials on a session (no public setter takes them):
    core._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    return boto3.session.Session(botocore_session=core, region_name=region or base.region_name)

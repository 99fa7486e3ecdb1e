"""Which account each AWS call goes to: the incident's (the finding's account) or home (the caller's).

A security team runs eksir in its security account, where GuardDuty's delegated administrator, Security Hub,
the war-room topic, the evidence bucket and the case store live; the incident (cluster, pod, node, the
attacker's principal, the trail) is in a member account. Every call about the incident's resources, and the
EKS token, goes to the finding's account and region through an assumed role (`--assume-role`, a template
with `{account}`; `--role-map` for accounts that use another role); everything that belongs to the security
account stays home, with the caller's own credentials.

Why refuse (exit 12) when the finding's account differs from the caller's and no role is configured: the
caller's credentials would look for the pod's node and principal in the wrong account, find nothing (or,
worse, a same-named resource) and act on it. The refusal comes before the case is opened or anything is
called besides GetCallerIdentity, and says which account and what to configure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eksir.clients.assume import (
    ASSUME_ROLE_ENV,
    AssumedRole,
    RoleMap,
)
from eksir.clients.aws import AwsClients, aws_call
from eksir.errors import BadInputError, PermissionDeniedError, RefusedError

if TYPE_CHECKING:
    from eksir.clients.aws_types import ClientFactory


def load_role_map(template: str | None, external_id: str | None, path: Path | None) -> RoleMap:
    """The options merged over the file (options win). BadInputError: unreadable or malformed file."""
    if path is None:
        return RoleMap(template, {}, external_id)
    import yaml  # noqa: PLC0415 - only with a file: `eksir hunt` over local files stays light

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"--role-map {path}: cannot read it ({exc})") from exc
    if not isinstance(doc, dict):
        raise BadInputError(f"--role-map {path}: expected a mapping at the top")
    return RoleMap(
        template or _text(doc, "assume_role", path),
        _accounts(doc, path),
        external_id or _text(doc, "external_id", path),
    )


def _text(doc: dict[str, Any], key: str, path: Path) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInputError(f"--role-map {path}: {key} must be a string")
    return value


def _accounts(doc: dict[str, Any], path: Path) -> dict[str, str]:
    """Explicit accounts first-class; an OU entry names its role and lists its accounts (no Organizations
    call: the operator lists them, so eksir never needs organizations:* in the security account)."""
    accounts: dict[str, str] = {}
    for ou, entry in (doc.get("organizational_units") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("role"), str):
            raise BadInputError(f"--role-map {path}: organizational unit {ou} needs role and accounts")
        for account in entry.get("accounts") or []:
            accounts[str(account)] = str(entry["role"]).replace("{account}", str(account))
    for account, arn in (doc.get("accounts") or {}).items():
        accounts[str(account)] = str(arn)
    return accounts


class HomeClients:
    """The caller's own clients per region, made once and kept for a long-running process (`eksir serve`).

    Why: a worker handles many cases with the same credentials; making the home session, its clients and its
    GetCallerIdentity again for each case was a measurable part of a case's CPU. A one-shot command has no
    such cache (None): it makes them once anyway. The caller's credentials do not change under a running
    worker; the member account's assumed sessions are per case (their session name is the case id).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str | None, str | None, str | None], AwsClients] = {}

    def get(self, region: str | None, profile: str | None, endpoint_url: str | None) -> AwsClients:
        key = (region, profile, endpoint_url)
        with self._lock:
            if key not in self._by_key:
                self._by_key[key] = AwsClients(region=region, profile=profile, endpoint_url=endpoint_url)
            return self._by_key[key]


@dataclass(frozen=True)
class AccountAccess:
    """The caller's connection settings and the roles to reach other accounts with."""

    region: str | None
    profile: str | None
    endpoint_url: str | None
    roles: RoleMap = field(default_factory=RoleMap)
    operator: str | None = None
    homes: HomeClients | None = None
    """A long-running process's cache of home clients (see HomeClients); None: made per call."""

    def with_operator(self, operator: str) -> AccountAccess:
        from dataclasses import replace  # noqa: PLC0415

        return replace(self, operator=operator)

    def home(self, region: str | None = None) -> AwsClients:
        """Clients with the caller's own credentials (the security account)."""
        if self.homes is not None:
            return self.homes.get(self.region or region, self.profile, self.endpoint_url)
        return AwsClients(region=self.region or region, profile=self.profile, endpoint_url=self.endpoint_url)

    def route(self, account: str | None, region: str | None) -> Route:
        """Where the incident's calls go, decided before anything else is done for it.

        Raises RefusedError (another account and no role for it) or the eksir error of GetCallerIdentity.
        """
        home = self.home(region)
        if account is None:
            return Route(self, home.region, None, None)
        if not (len(account) == ACCOUNT_DIGITS and account.isdigit()):
            raise BadInputError(f"{account!r} is not a 12-digit AWS account id")
        try:
            caller = caller_account(home)
        except PermissionDeniedError as exc:
            if exc.code:  # AWS answered: these credentials are refused
                raise
            # No credentials at all: no call can land in any account, so there is nothing to refuse; a
            # command that needs AWS fails on its first call, one with only a kubeconfig works.
            return Route(self, home.region, account, self.roles.role_for(account))
        if caller == account:
            return Route(self, home.region, account, None)
        arn = self.roles.role_for(account)
        if arn is None:
            raise RefusedError(refusal(account, caller))
        return Route(self, home.region, account, arn)


@dataclass(frozen=True)
class Route:
    """The incident's account and the role that reaches it (None: the caller's own credentials do)."""

    access: AccountAccess
    region: str | None
    account: str | None
    role_arn: str | None

    def role(self, case_id: str) -> AssumedRole | None:
        """The role to assume (session name: the case id; SourceIdentity: the operator), if any."""
        if self.role_arn is None:
            return None
        access = self.access
        return AssumedRole(self.role_arn, f"eksir-{case_id}", access.roles.external_id, access.operator)

    def clients(self, case_id: str) -> AwsClients:
        """Clients acting in the incident's account, checked to land there (session name: the case id).

        Raises PermissionDeniedError (the role cannot be assumed: trust, external id, or it lands elsewhere).
        """
        access, role = self.access, self.role(case_id)
        if role is None:
            aws = access.home(self.region)
            aws.account_id = self.account  # the caller's own account (route checked it)
            return aws
        aws = AwsClients(self.region, access.profile, access.endpoint_url, role=role, account_id=self.account)
        doing = f"assume {self.role_arn} (external id {'given' if role.external_id else 'not given'})"
        landed = caller_account(aws, doing)
        if landed != self.account:
            raise PermissionDeniedError(f"{self.role_arn} acts in account {landed}, not {self.account}")
        return aws


def caller_account(aws: AwsClients, doing: str = "identify the caller (sts:GetCallerIdentity)") -> str:
    """The account `aws`'s credentials act in, asked once per clients object (their credentials are fixed).
    Raises the eksir error of GetCallerIdentity."""
    if aws.caller_account is None:
        with aws_call(doing):
            aws.caller_account = str(aws("sts").get_caller_identity()["Account"])
    return aws.caller_account


def refusal(account: str, caller: str) -> str:
    """The exit-12 message: which account, and the three ways to say which role to use there."""
    return (
        f"the finding is in account {account}, but these credentials act in account {caller} and no role is "
        f"configured for {account}: nothing was changed. Pass --assume-role "
        "arn:aws:iam::{account}:role/eksir-responder (or set "
        f"{ASSUME_ROLE_ENV}, or map {account} in --role-map), with --external-id if the role's trust needs "
        f"one; or run with credentials of account {account}"
    )


ACCOUNT_DIGITS = 12
HOME_SERVICES = frozenset({"guardduty", "securityhub", "sns"})
"""What belongs to the security account: GuardDuty's administrator, Security Hub, the war room."""


@dataclass(frozen=True)
class SplitClients:
    """One client factory for a run that acts in both accounts (close-out: GuardDuty and Security Hub at
    home, the member's snapshots shared from the member): each service's client from the account it
    belongs to."""

    incident: AwsClients
    home: AwsClients

    @property
    def client(self) -> ClientFactory:
        return self._client

    def _client(self, service: str) -> Any:
        return (self.home if service in HOME_SERVICES else self.incident).client(service)  # type: ignore[call-overload]

"""From what GuardDuty saw (username, access key, principal id) to the IAM user or role ARN to contain.

Why several routes: the finding never states the IAM ARN. Access-entry usernames are ARNs; aws-auth
usernames are whatever the mapping says (`kubernetes-admin`, `ops-{{SessionName}}`); AccessKeyDetails has a
key id (AKIA: long-term key of a user, which IAM resolves; ASIA: a session, which it does not), a principal id
(AIDA user / AROA role unique id, which survives renames and distinguishes a re-created principal) and a
user name. The routes are tried from the most to the least authoritative, and the one that answered is kept
as `how`, so the report can say why eksir believes this principal is the actor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eksir.clients.aws import aws_call
from eksir.models.finding import Actor, ActorKind
from eksir.resolve.notes import optional

_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):(?P<service>iam|sts)::(?P<account>\d{12}):"
    r"(?P<type>user|role|assumed-role)/(?P<rest>.+)$"
)
_ACCOUNT_IN_UID = re.compile(r"^(?:aws-iam-authenticator|heptio-authenticator-aws):(?P<account>\d{12}):")
_ROLE_KINDS = {ActorKind.IAM_ROLE, ActorKind.EC2_INSTANCE_ROLE, ActorKind.NODE}


@dataclass(frozen=True)
class Principal:
    """The IAM principal behind the actor (not the session)."""

    arn: str | None
    type: str  # user | role | none
    name: str | None = None
    session_name: str | None = None
    how: str = ""


@dataclass(frozen=True)
class ArnParts:
    partition: str
    account: str
    type: str  # user | role (an assumed-role ARN is reported as its role)
    name: str
    session: str | None = None

    @property
    def canonical(self) -> str:
        """The ARN without path: what aws-auth and the IAM authenticator compare."""
        return f"arn:{self.partition}:iam::{self.account}:{self.type}/{self.name}"


def parse_arn(text: str | None) -> ArnParts | None:
    """User, role or assumed-role ARN -> parts (role/user path dropped); None for anything else."""
    match = _ARN.match((text or "").strip())
    if match is None:
        return None
    rest = match["rest"]
    if match["type"] == "assumed-role":
        role, _, session = rest.partition("/")
        return ArnParts(match["partition"], match["account"], "role", role, session or None)
    return ArnParts(match["partition"], match["account"], match["type"], rest.rsplit("/", 1)[-1])


def same_principal(left: str | None, right: str | None) -> bool:
    """Two ARNs name the same user/role, ignoring paths (aws-auth ARNs carry none)."""
    a, b = parse_arn(left), parse_arn(right)
    return a is not None and b is not None and a.canonical == b.canonical


def account_of(actor: Actor, fallback: str | None) -> str | None:
    """Account id from the authenticator uid (`aws-iam-authenticator:<acct>:<id>`), else the finding's."""
    match = _ACCOUNT_IN_UID.match(actor.uid or "")
    return match["account"] if match else fallback


def resolve_principal(iam: Any, actor: Actor, notes: list[str]) -> Principal:
    """The IAM user or role behind an IAM-authenticated actor; `Principal(None, "none")` if none is found.

    IAM lookups that fail (denied, throttled) are noted and the next route is tried.
    """
    from_username = parse_arn(actor.username)
    routes: list[Callable[[], Principal | None]] = []
    if from_username is not None:
        routes.append(lambda: _from_arn(iam, from_username, actor, notes))
    if actor.kind in _ROLE_KINDS:
        routes += [lambda: _role_by_id(iam, actor), lambda: _role_by_name(iam, actor)]
    else:
        routes += [lambda: _user_by_key(iam, actor), lambda: _user_by_id(iam, actor)]
        routes.append(lambda: _user_by_name(iam, actor))
    for route in routes:
        found = optional(notes, route)
        if found is not None:
            return found
    return Principal(None, "none", session_name=actor.session_name, how="no route identified the principal")


def _from_arn(iam: Any, parts: ArnParts, actor: Actor, notes: list[str]) -> Principal:
    """Trust the username's ARN; ask IAM for the real one (with path), keep the canonical if denied."""
    getter = _get_role if parts.type == "role" else _get_user
    arn = optional(notes, lambda: getter(iam, parts.name)) or parts.canonical
    session = parts.session or actor.session_name
    return Principal(arn, parts.type, parts.name, session, "the Kubernetes username is the principal's ARN")


def _unique_id(actor: Actor) -> str:
    """AIDA/AROA id from AccessKeyDetails.principalId (`AROA...:session`) or the authenticator uid."""
    return (actor.principal_id or (actor.uid or "").rpartition(":")[2]).split(":", 1)[0]


def _role_by_id(iam: Any, actor: Actor) -> Principal | None:
    role_id = _unique_id(actor)
    if not role_id.startswith("AROA"):
        return None
    with aws_call(f"find the IAM role with unique id {role_id}"):
        for page in iam.get_paginator("list_roles").paginate():
            for role in page.get("Roles") or []:
                if role.get("RoleId") == role_id:
                    how = f"IAM role unique id {role_id} (AccessKeyDetails.principalId)"
                    return Principal(str(role["Arn"]), "role", str(role["RoleName"]), actor.session_name, how)
    return None


def _role_by_name(iam: Any, actor: Actor) -> Principal | None:
    name = actor.user_name
    if not name or name == actor.session_name:
        return None  # GuardDuty may put the session name there; that is no role name
    arn = _get_role(iam, name)
    return Principal(arn, "role", name, actor.session_name, "role name from AccessKeyDetails.userName")


def _user_by_key(iam: Any, actor: Actor) -> Principal | None:
    key = actor.access_key_id or ""
    if not key.startswith("AKIA"):
        return None  # ASIA keys are sessions: IAM has no owner record for them
    with aws_call(f"find the IAM user owning access key {key}"):
        name = iam.get_access_key_last_used(AccessKeyId=key).get("UserName")
    if not name:
        return None
    arn = _get_user(iam, str(name))
    return Principal(arn, "user", str(name), None, f"owner of access key {key} (GetAccessKeyLastUsed)")


def _user_by_id(iam: Any, actor: Actor) -> Principal | None:
    user_id = _unique_id(actor)
    if not user_id.startswith("AIDA"):
        return None
    with aws_call(f"find the IAM user with unique id {user_id}"):
        for page in iam.get_paginator("list_users").paginate():
            for user in page.get("Users") or []:
                if user.get("UserId") == user_id:
                    how = f"IAM user unique id {user_id} (AccessKeyDetails.principalId)"
                    return Principal(str(user["Arn"]), "user", str(user["UserName"]), None, how)
    return None


def _user_by_name(iam: Any, actor: Actor) -> Principal | None:
    if not actor.user_name:
        return None
    arn = _get_user(iam, actor.user_name)
    return Principal(arn, "user", actor.user_name, None, "user name from AccessKeyDetails.userName")


def _get_role(iam: Any, name: str) -> str:
    with aws_call(f"read IAM role {name}"):
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])


def _get_user(iam: Any, name: str) -> str:
    with aws_call(f"read IAM user {name}"):
        return str(iam.get_user(UserName=name)["User"]["Arn"])

"""Who the hunt is looking for: the compromised AWS and Kubernetes principals, and what they chained into.

A compromised credential shows up in CloudTrail under several names (access key id, user or session ARN,
the `AROA…:session` principal id, the role that issued the session), so one flag value is classified
into the right slot and a record matches on any of them. Credentials the set's members mint (AssumeRole,
GetSessionToken, GetFederationToken, and AssumeRoleWithWebIdentity for a compromised service account via
IRSA) belong to the attacker too: `issued_by` returns them so the scan can widen the set while it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict

from eksir.errors import BadInputError

if TYPE_CHECKING:
    from eksir.models.finding import Finding

CHAIN_EVENTS: frozenset[str] = frozenset(
    {"AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "GetSessionToken", "GetFederationToken"}
)
_KEY = re.compile(r"^(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{12,124}$")
_PRINCIPAL_ID = re.compile(r"^(AIDA|AROA|AGPA|ANPA|AIPA)[A-Z0-9]{12,124}(:.+)?$")
_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::(\d{12}|aws):(.+)$")
_PREFIXES = ("key:", "user:", "role:", "session:", "k8s:", "pid:")


def _dig(record: Mapping[str, Any], *path: str) -> Any:
    node: Any = record
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


class PrincipalSet(BaseModel):
    """Every identifier of the compromised principals, in the slot CloudTrail uses for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_key_ids: frozenset[str] = frozenset()
    user_arns: frozenset[str] = frozenset()
    user_names: frozenset[str] = frozenset()
    role_arns: frozenset[str] = frozenset()
    role_names: frozenset[str] = frozenset()
    session_arns: frozenset[str] = frozenset()
    session_names: frozenset[str] = frozenset()
    principal_ids: frozenset[str] = frozenset()
    k8s_usernames: frozenset[str] = frozenset()
    # Instance-role sessions (named after the instance) of a node the attacker controlled: the node itself
    # uses them all day, so only calls from anywhere but the node's own addresses are the attacker's.
    instance_sessions: frozenset[str] = frozenset()
    instance_ips: frozenset[str] = frozenset()

    @classmethod
    def from_values(cls, values: Iterable[str]) -> PrincipalSet:
        """Classify `--principal` values; raises BadInputError for an empty or unrecognised one."""
        slots: dict[str, set[str]] = {name: set() for name in cls.model_fields}
        for raw in values:
            slot, value = _classify(raw.strip())
            slots[slot].add(value)
        return cls(**{name: frozenset(items) for name, items in slots.items()})

    @classmethod
    def from_finding(cls, finding: Finding) -> PrincipalSet:
        """The principals a GuardDuty Kubernetes finding names (access key, principal id, user, k8s user);
        for an attack sequence, those of every actor of its `Sequence`."""
        if finding.actor is None and finding.sequence is not None:
            from eksir.findings.scope import sequence_actors  # noqa: PLC0415 - kept off the hunt's start path

            found = cls()
            for each in sequence_actors(finding.sequence):
                found = found.union(
                    cls.from_finding(finding.model_copy(update={"actor": each, "sequence": None}))
                )
            return found
        actor = finding.actor
        if actor is None:
            return cls()
        values: list[str] = []
        if actor.access_key_id:
            values.append(f"key:{actor.access_key_id}")
        if actor.principal_id:
            values.append(f"pid:{actor.principal_id}")
        if actor.user_name:
            kind = (actor.user_type or "").lower()
            values.append(f"role:{actor.user_name}" if "role" in kind else f"user:{actor.user_name}")
        if actor.session_name:
            values.append(f"session:{actor.session_name}")
        if actor.username:
            values.append(f"k8s:{actor.username}")
            if actor.username.startswith("arn:"):
                values.append(actor.username)
        return cls.from_values(values)

    @cached_property
    def _arn_pool(self) -> frozenset[str]:
        return self.user_arns | self.session_arns

    def union(self, other: PrincipalSet) -> PrincipalSet:
        """A new set holding both."""
        merged = {name: getattr(self, name) | getattr(other, name) for name in type(self).model_fields}
        return PrincipalSet(**merged)

    def is_empty(self) -> bool:
        """True when nothing would match."""
        return not self.values()

    def values(self) -> list[str]:
        """Every identifier, for display (and the pre-filter); the node's addresses are not identifiers."""
        names = (name for name in type(self).model_fields if name != "instance_ips")
        return sorted({v for name in names for v in getattr(self, name)})

    @classmethod
    def for_instance(cls, instance_id: str, own_ips: Iterable[str]) -> PrincipalSet:
        """The instance-role session of a node, matched only when used off the node (IMDS theft)."""
        return cls(instance_sessions=frozenset({instance_id}), instance_ips=frozenset(own_ips))

    def tokens(self) -> tuple[bytes, ...]:
        """Byte strings at least one of which is in every matching record (see `tokens_for`)."""
        return tokens_for(self.values())

    def match(self, record: Mapping[str, Any]) -> str | None:
        """Name the userIdentity attribute of a CloudTrail record that is in the set, or None.

        Called for every record of every candidate file, so it tests only the non-empty slots.
        """
        ident = record.get("userIdentity")
        if not isinstance(ident, Mapping):
            return None
        try:
            if self.access_key_ids and ident.get("accessKeyId") in self.access_key_ids:
                return "accessKeyId"
            arn = ident.get("arn")
            if self._arn_pool and arn in self._arn_pool:
                return "arn"
            if self.principal_ids and ident.get("principalId") in self.principal_ids:
                return "principalId"
            if self.role_arns or self.role_names:
                issuer = _dig(ident, "sessionContext", "sessionIssuer") or {}
                if issuer.get("arn") in self.role_arns:
                    return "sessionIssuer.arn"
                if issuer.get("userName") in self.role_names:
                    return "sessionIssuer.userName"
        except TypeError:  # an unhashable value where CloudTrail puts a string
            return None
        if self.user_names or self.k8s_usernames or self.principal_ids or self.session_names:
            found = self._match_names(ident, arn)
            if found:
                return found
        if self.instance_sessions:
            return self._match_off_host(record, ident, arn)
        return None

    def _match_off_host(self, record: Mapping[str, Any], ident: Mapping[str, Any], arn: object) -> str | None:
        """An instance-role session of the hunted node, used from somewhere other than the node."""
        if ident.get("type") != "AssumedRole" or not isinstance(arn, str):
            return None
        if arn.rsplit("/", 1)[-1] not in self.instance_sessions:
            return None
        if record.get("sourceIPAddress") in self.instance_ips:
            return None
        return "sessionName(off the node)"

    def _match_names(self, ident: Mapping[str, Any], arn: object) -> str | None:
        kind = ident.get("type")
        user_name = ident.get("userName")
        if kind == "IAMUser" and user_name in self.user_names:
            return "userName"
        if kind == "WebIdentityUser" and user_name in self.k8s_usernames:
            return "userName(web identity)"
        principal_id = ident.get("principalId")
        if isinstance(principal_id, str) and principal_id.split(":", 1)[0] in self.principal_ids:
            return "principalId"
        if kind == "AssumedRole" and isinstance(arn, str) and arn.rsplit("/", 1)[-1] in self.session_names:
            return "sessionName"
        return None

    def issued_by(self, record: Mapping[str, Any]) -> PrincipalSet | None:
        """The credentials a matching, successful STS call handed out (role chaining), else None."""
        if record.get("eventName") not in CHAIN_EVENTS or record.get("errorCode"):
            return None
        if self.match(record) is None:
            return None
        response = record.get("responseElements")
        if not isinstance(response, Mapping):
            return None
        found: dict[str, frozenset[str]] = {}
        key = _dig(response, "credentials", "accessKeyId")
        if isinstance(key, str) and key not in self.access_key_ids:
            found["access_key_ids"] = frozenset({key})
        arns = {_dig(response, "assumedRoleUser", "arn"), _dig(response, "federatedUser", "arn")}
        new_arns = frozenset(a for a in arns if isinstance(a, str) and a not in self.session_arns)
        if new_arns:
            found["session_arns"] = new_arns
        return PrincipalSet(**found) if found else None

    def match_kubernetes(self, event: Mapping[str, Any]) -> str | None:
        """Name the audit-event `user` attribute in the set (username, or EKS `user.extra` IAM fields)."""
        user = event.get("user")
        if not isinstance(user, Mapping):
            return None
        if user.get("username") in self.k8s_usernames | self.user_arns | self.session_arns:
            return "user.username"
        extra = user.get("extra") if isinstance(user.get("extra"), Mapping) else {}
        pools = {
            "accessKeyId": self.access_key_ids,
            "arn": self.session_arns | self.user_arns,
            "canonicalArn": self.role_arns | self.user_arns,
            "principalId": self.principal_ids,
            "sessionName": self.session_names,
        }
        for field, pool in pools.items():
            values = extra.get(field) if isinstance(extra, Mapping) else None
            if isinstance(values, list) and any(isinstance(v, str) and v in pool for v in values):
                return f"user.extra.{field}"
        return None


def tokens_for(values: Iterable[str]) -> tuple[bytes, ...]:
    """JSON-escaped byte tokens for the pre-filter, reduced.

    A token that contains another is dropped (any file holding the longer one holds the shorter), so the
    pre-filter does as few passes as possible.
    """
    raw = {orjson.dumps(v)[1:-1] for v in values if v}
    kept: list[bytes] = []
    for token in sorted(raw, key=len):
        if not any(shorter in token for shorter in kept):
            kept.append(token)
    return tuple(sorted(kept))


def _classify(value: str) -> tuple[str, str]:
    """Decide which slot a principal value belongs to; explicit `kind:` prefixes win over guessing."""
    if not value:
        raise BadInputError("an empty --principal was given")
    for prefix in _PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix):
            rest = value[len(prefix) :]
            if prefix == "role:" and rest.startswith("arn:"):
                return "role_arns", rest
            return {
                "key:": "access_key_ids",
                "user:": "user_names",
                "role:": "role_names",
                "session:": "session_names",
                "k8s:": "k8s_usernames",
                "pid:": "principal_ids",
            }[prefix], rest
    if _KEY.match(value):
        return "access_key_ids", value
    if _PRINCIPAL_ID.match(value):
        return "principal_ids", value
    arn = _ARN.match(value)
    if arn:
        return _classify_arn(value, arn.group(1), arn.group(3))
    if value.startswith("arn:"):
        raise BadInputError(f"--principal {value!r} is an ARN but not an IAM user, role or STS session ARN")
    if value.startswith(("system:", "eks:")) or "@" in value:
        return "k8s_usernames", value
    return "user_names", value


def _classify_arn(value: str, service: str, resource: str) -> tuple[str, str]:
    if service == "iam" and resource.startswith("user/"):
        return "user_arns", value
    if service == "iam" and resource.startswith("role/"):
        return "role_arns", value
    if service == "sts" and resource.startswith(("assumed-role/", "federated-user/")):
        return "session_arns", value
    raise BadInputError(f"--principal {value!r} is not an IAM user, role or STS session ARN")

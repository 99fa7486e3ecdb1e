"""Who made the Kubernetes API call: the branch point of the playbook's containment part.

Containment differs completely by caller: a service account's token is revoked in Kubernetes, an IAM
user's access key is deactivated, a role's sessions are revoked, an EC2 instance role sends the responder
to the EC2-compromise runbook, an OIDC user is removed at the identity provider. GuardDuty does not say
which it is; it copies the audit event's user block into `kubernetesUserDetails` and, when the caller
authenticated with AWS credentials, adds `accessKeyDetails`. The rules below decide, first match wins:

| #  | rule (first match wins)                          | field(s) relied on         | kind              |
|----|--------------------------------------------------|----------------------------|-------------------|
| 1  | username `system:anonymous` or group             | user `username`, `groups`  | anonymous         |
|    | `system:unauthenticated`                         |                            |                   |
| 2  | username `system:serviceaccount:<ns>:<name>`     | user `username`            | service-account   |
| 3  | username `system:node:<name>` or group           | user `username`, `groups`  | node              |
|    | `system:nodes`                                   |                            |                   |
| 4  | AWS credentials: accessKeyDetails present or uid | `accessKeyDetails`,        | 4a-4e below       |
|    | starts `aws-iam-authenticator:` or               | user `uid`                 |                   |
|    | `heptio-authenticator-aws:`                      |                            |                   |
| 4a | userType `IAMUser`, `User` or `Root`             | key `userType`             | iam-user          |
| 4b | userType `Role`/`AssumedRole`/`FederatedUser`,   | user `sessionName[0]`,     | ec2-instance-role |
|    | and the session is an EC2 instance id            | else key `userName`        |                   |
|    | (`^i-[0-9a-f]{8,17}$`)                           |                            |                   |
| 4c | userType `Role`/`AssumedRole`/`FederatedUser`    | key `userType`             | iam-role          |
| 4d | no/unknown userType; principal id starts `AIDA`  | key `principalId` (else    | iam-user          |
|    | or the username is an IAM user ARN (`:user/`)    | the uid's last `:` part),  |                   |
|    |                                                  | user `username`            |                   |
| 4e | no/unknown userType, otherwise: an instance-id   | as 4b and 4d               | ec2-instance-role |
|    | session -> ec2-instance-role; else (`AROA`, an   |                            | or iam-role       |
|    | assumed-role ARN, or nothing known) iam-role,    |                            |                   |
|    | since revoking sessions is the safe default      |                            |                   |
| 5  | none of the above: no AWS credentials involved,  | no accessKeyDetails and    | oidc-user         |
|    | so an EKS OIDC identity-provider user            | no authenticator uid       |                   |

"user" is `resource.kubernetesDetails.kubernetesUserDetails`, "key" is `resource.accessKeyDetails`.
Service accounts and anonymous callers never carry accessKeyDetails (AWS docs), which is why rules 1-3
come before rule 4: they are decided by the Kubernetes identity alone.

The session name reported is the first non-empty `sessionName` entry. Inputs are the finding's wire
(camelCase) dicts; PascalCase keys are accepted too, so the function can be called on boto3 output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eksir.findings.trusted import trusted
from eksir.models.finding import Actor, ActorKind

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_AUTHENTICATOR_UIDS = ("aws-iam-authenticator:", "heptio-authenticator-aws:")
_USER_TYPES = frozenset({"iamuser", "user", "root"})
_ROLE_TYPES = frozenset({"role", "assumedrole", "federateduser"})
_WIRE_KEYS = "username uid groups sessionName impersonatedUser userName accessKeyId principalId userType"
_PASCAL = {key: key[0].upper() + key[1:] for key in _WIRE_KEYS.split()}


def _get(details: Mapping[str, Any] | None, wire: str) -> Any:
    # `type() is dict` first: an ABC isinstance check per field was a tenth of reading a large export.
    if type(details) is not dict and not isinstance(details, Mapping):
        return None
    value = details.get(wire)
    if value is None:
        value = details.get(_PASCAL.get(wire) or wire[0].upper() + wire[1:])
    return value


def _text(details: Mapping[str, Any] | None, wire: str) -> str | None:
    value = _get(details, wire)
    if type(value) is str:
        return value or None
    # A str subclass from a non-JSON caller becomes a plain str, as model validation would make it.
    return str.__str__(value) or None if isinstance(value, str) else None


def _texts(details: Mapping[str, Any] | None, wire: str) -> tuple[str, ...]:
    value = _get(details, wire)
    if isinstance(value, str):
        return (str.__str__(value),) if value else ()
    if not isinstance(value, list):
        return ()
    return tuple(
        [item if type(item) is str else str.__str__(item) for item in value if isinstance(item, str)]
    )


def _has_credentials(access_key_details: Mapping[str, Any] | None) -> bool:
    if type(access_key_details) is not dict and not isinstance(access_key_details, Mapping):
        return False
    return any(isinstance(value, str) and value for value in access_key_details.values())


def classify_actor(
    user_details: Mapping[str, Any] | None, access_key_details: Mapping[str, Any] | None
) -> Actor:
    """Classify the caller by the rules in this module's docstring and fill every identity field."""
    username = _text(user_details, "username")
    uid = _text(user_details, "uid")
    groups = _texts(user_details, "groups")
    session_name = None
    for name in _texts(user_details, "sessionName"):
        if name.strip():
            session_name = name
            break
    user_name = _text(access_key_details, "userName")
    principal_id = _text(access_key_details, "principalId")
    user_type = _text(access_key_details, "userType")
    kind, reason = _decide(
        username,
        uid,
        groups,
        session_name or user_name,
        access_key_details,
        principal_id=principal_id,
        declared=user_type,
    )
    return trusted(
        Actor,
        {
            "kind": kind,
            "username": username,
            "uid": uid,
            "groups": groups,
            "session_name": session_name,
            "impersonated_username": _text(_get(user_details, "impersonatedUser"), "username"),
            "access_key_id": _text(access_key_details, "accessKeyId"),
            "principal_id": principal_id,
            "user_name": user_name,
            "user_type": user_type,
            "reason": reason,
        },
    )


def _decide(
    username: str | None,
    uid: str | None,
    groups: tuple[str, ...],
    session: str | None,
    access_key_details: Mapping[str, Any] | None,
    *,
    principal_id: str | None,
    declared: str | None,
) -> tuple[ActorKind, str]:
    name = username or ""
    if name == "system:anonymous" or "system:unauthenticated" in groups:
        return ActorKind.ANONYMOUS, "rule 1: the caller is system:anonymous / system:unauthenticated"
    if name.startswith("system:serviceaccount:"):
        return ActorKind.SERVICE_ACCOUNT, "rule 2: the username is a Kubernetes service account"
    if name.startswith("system:node:") or "system:nodes" in groups:
        return ActorKind.NODE, "rule 3: the caller is a node (system:node:* / group system:nodes)"
    has_keys = _has_credentials(access_key_details)
    if not has_keys and not (uid or "").startswith(_AUTHENTICATOR_UIDS):
        return ActorKind.OIDC_USER, "rule 5: no AWS credentials involved, so an OIDC identity-provider user"
    return _decide_iam(name, uid, session, principal_id, declared)


def _decide_iam(
    username: str, uid: str | None, session: str | None, principal_id: str | None, declared: str | None
) -> tuple[ActorKind, str]:
    user_type = (declared or "").lower()
    ec2_session = session is not None and _INSTANCE_ID.match(session) is not None
    if user_type in _USER_TYPES:
        return ActorKind.IAM_USER, f"rule 4a: AWS credentials of userType {declared!r} (an IAM user)"
    if user_type in _ROLE_TYPES:
        if ec2_session:
            return ActorKind.EC2_INSTANCE_ROLE, f"rule 4b: role session {session!r} is an EC2 instance id"
        return ActorKind.IAM_ROLE, f"rule 4c: AWS credentials of userType {declared!r} (an IAM role)"
    principal = principal_id or (uid or "").rpartition(":")[2]
    if principal.startswith("AIDA") or ":user/" in username:
        return ActorKind.IAM_USER, "rule 4d: no userType; the principal is an IAM user (AIDA id / user ARN)"
    if ec2_session:
        return ActorKind.EC2_INSTANCE_ROLE, (
            f"rule 4e: no userType; role session {session!r} is an EC2 instance id"
        )
    if principal.startswith("AROA") or ":assumed-role/" in username:
        return ActorKind.IAM_ROLE, "rule 4e: no userType; the principal is an IAM role (AROA id / role ARN)"
    return ActorKind.IAM_ROLE, "rule 4e: AWS credentials of unknown type; treated as a role (revoke sessions)"

"""Everything hanging off an IAM user that DeleteUser refuses to delete past, in the order it must go.

Why a module of its own: IAM answers DeleteConflict while the user still has a login profile, access keys,
signing certificates, SSH public keys, service-specific credentials (CodeCommit, Keyspaces), MFA devices,
attached or inline policies, or group memberships; an action that skipped some of them failed after it had
already deleted the keys, with nothing recorded. Here each removal is one sub-step: the item is entered into
the case's evidence (its description, hashed) before it is removed, and the list of sub-steps done goes into
the applied record, so a run that fails halfway resumes by describing what is left and removing only that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eksir.actions.base import ActionContext
from eksir.actions.evidence.case_evidence import record_evidence
from eksir.actions.recovery.base import paged
from eksir.clients.aws import aws_call
from eksir.errors import EksirError, NotFoundError, PermissionDeniedError


@dataclass(frozen=True)
class Part:
    """One kind of attachment: where it is listed, what identifies one, how it is removed."""

    kind: str
    list_op: str
    list_key: str
    id_field: str
    remove: Callable[[Any, str, dict[str, Any]], None]


def _delete_mfa(iam: Any, user: str, device: dict[str, Any]) -> None:
    serial = str(device["SerialNumber"])
    iam.deactivate_mfa_device(UserName=user, SerialNumber=serial)
    if ":mfa/" in serial:  # a virtual device (an ARN): delete it too, or it lingers unassigned
        iam.delete_virtual_mfa_device(SerialNumber=serial)


CREDENTIAL_PARTS: tuple[Part, ...] = (
    Part("access key", "list_access_keys", "AccessKeyMetadata", "AccessKeyId",
         lambda iam, u, i: iam.delete_access_key(UserName=u, AccessKeyId=i["AccessKeyId"])),
    Part("signing certificate", "list_signing_certificates", "Certificates", "CertificateId",
         lambda iam, u, i: iam.delete_signing_certificate(UserName=u, CertificateId=i["CertificateId"])),
    Part("SSH public key", "list_ssh_public_keys", "SSHPublicKeys", "SSHPublicKeyId",
         lambda iam, u, i: iam.delete_ssh_public_key(UserName=u, SSHPublicKeyId=i["SSHPublicKeyId"])),
    Part("service-specific credential", "list_service_specific_credentials", "ServiceSpecificCredentials",
         "ServiceSpecificCredentialId",
         lambda iam, u, i: iam.delete_service_specific_credential(
             UserName=u, ServiceSpecificCredentialId=i["ServiceSpecificCredentialId"])),
    Part("MFA device", "list_mfa_devices", "MFADevices", "SerialNumber", _delete_mfa),
)  # fmt: skip
"""Credentials, removed before the policies and groups (a half-deleted user must hold no usable secret)."""

_UNLISTED = "(no id)"
_OPTIONAL_LIST = "list_service_specific_credentials"
"""The one listing an endpoint may not implement (moto does not): DeleteUser is then the backstop (it
answers DeleteConflict while any such credential is left), so the deletion never goes ahead blind."""


def list_part(iam: Any, part: Part, user: str) -> list[dict[str, Any]] | None:
    """The items of one part as plain JSON; None when the endpoint cannot list service-specific credentials.

    Raises eksir errors from IAM (denied, throttled, unreachable) for every other listing.
    """
    if part.list_op != _OPTIONAL_LIST:
        found = paged(iam, part.list_op, part.list_key, UserName=user)
    else:
        try:
            with aws_call(f"list {part.kind}s of {user}"):
                found = list(iam.list_service_specific_credentials(UserName=user)[part.list_key])
        except (PermissionDeniedError, NotFoundError):
            raise
        except EksirError:
            return None
    loaded: list[dict[str, Any]] = json.loads(json.dumps(found, default=str))
    return loaded


def describe_parts(iam: Any, user: str) -> dict[str, Any]:
    """Every credential part of the user, by kind; kinds the endpoint cannot list under `unlisted`."""
    found: dict[str, Any] = {}
    unlisted: list[str] = []
    for part in CREDENTIAL_PARTS:
        items = list_part(iam, part, user)
        if items is None:
            unlisted.append(part.kind)
        found[part.kind] = items or []
    found["unlisted"] = unlisted
    return found


def remove_parts(ctx: ActionContext, user: str, done: list[str]) -> None:
    """Remove every credential part still present, each preserved as evidence first; `done` grows per item.

    Raises the eksir error of the failing call; the items removed before it are in `done` and in the case.
    """
    iam = ctx.aws("iam")
    for part in CREDENTIAL_PARTS:
        for item in list_part(iam, part, user) or []:
            ident = str(item.get(part.id_field) or _UNLISTED)
            preserve(ctx, user, part.kind, ident, item)
            with aws_call(f"remove {part.kind} {ident} of IAM user {user}"):
                part.remove(iam, user, item)
            done.append(f"{part.kind} {ident}")


def preserve(ctx: ActionContext, user: str, kind: str, ident: str, item: Any) -> dict[str, Any]:
    """Enter one item's description into the case's evidence before it is removed."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{kind}-{ident}")[:120]
    return record_evidence(
        ctx,
        f"iam-user-{user}-{safe}.json",
        json.dumps(item, sort_keys=True, default=str).encode(),
        source=f"iam:user/{user} {kind} {ident}",
        description=f"{kind} {ident} of IAM user {user}, preserved before recovery removed it",
    )

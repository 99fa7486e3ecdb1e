"""Identity containment by actor kind: cut the attacker's AWS credentials AND their Kubernetes access.

Why both halves: an IAM Deny does not stop EKS authentication (a presigned GetCallerIdentity works under an
explicit Deny), so revoked sessions can still mint Kubernetes tokens until the access entry / aws-auth
mapping is gone; and IRSA / Pod Identity can mint fresh sessions after a cutoff, so their roles are revoked
too. Node identities are the exception: their mappings are EKS-managed and shared by the node group, and
removing them would take every node down, so they are left alone with a note (see privileged_container.py).
"""

from __future__ import annotations

from typing import Any

from eksir.models.finding import ActorKind, Finding
from eksir.models.resolution import IdentityMapping, MappingSource, Resolution
from eksir.playbooks.steps import StepDraft

_ROLE_KINDS = (ActorKind.IAM_ROLE, ActorKind.EC2_INSTANCE_ROLE)
_NODE_KINDS = (ActorKind.NODE, ActorKind.EC2_INSTANCE_ROLE)
_ROLE_SOURCES = (MappingSource.IRSA, MappingSource.POD_IDENTITY)


def role_name_from_arn(arn: str | None) -> str | None:
    """`arn:aws:iam::1:role/path/name` -> `name`; None for anything that is not a role ARN."""
    if not arn or ":role/" not in arn:
        return None
    return arn.rsplit("/", 1)[-1] or None


def identity_steps(
    finding: Finding, resolution: Resolution, node_after: tuple[str, ...] = ()
) -> list[StepDraft]:
    """Drafts for every identity step the actor kind calls for (independent: they run in parallel), except
    a node role's revocation, which waits for `node_after` (the capture: the SSM agent uses that role)."""
    actor = finding.actor
    if actor is None:
        return []
    drafts: list[StepDraft] = []
    drafts.extend(_aws_credential_steps(finding, resolution, node_after))
    if actor.kind not in _NODE_KINDS:
        for mapping in resolution.actor.mappings:
            draft = _mapping_step(mapping, resolution, actor.username)
            if draft is not None:
                drafts.append(draft)
    drafts.extend(_kubernetes_identity_steps(finding, resolution))
    return dedupe(drafts)


def is_root(finding: Finding, resolution: Resolution) -> bool:
    """The actor is the account's root user (its keys cannot be contained by a responder)."""
    actor = finding.actor
    if actor is None:
        return False
    arn = resolution.actor.principal_arn or ""
    return (actor.user_type or "").lower() == "root" or actor.user_name == "root" or arn.endswith(":root")


def _aws_credential_steps(
    finding: Finding, resolution: Resolution, node_after: tuple[str, ...]
) -> list[StepDraft]:
    actor = finding.actor
    assert actor is not None  # checked by identity_steps
    resolved = resolution.actor
    if actor.kind is ActorKind.IAM_USER:
        if is_root(finding, resolution):
            return []  # refused with a runbook pointer: a blocking note (privileged_container.py)
        user = resolved.user_name or actor.user_name
        key = resolved.access_key_id or actor.access_key_id
        return _user_steps(user, key) if user else []
    if actor.kind in _ROLE_KINDS:
        role = resolved.role_name or role_name_from_arn(resolved.principal_arn)
        if role:
            why = "Deny every session of the role issued before the step is applied (aws:TokenIssueTime)."
            after: tuple[str, ...] = ()
            if actor.kind is ActorKind.EC2_INSTANCE_ROLE:
                why += (
                    " This is a node role: every node using it loses AWS access until IMDS rotates; it "
                    "waits for the capture, which runs on the node's credentials."
                )
                after = node_after
            return [_draft("iam.revoke_role_sessions", {"role_name": role}, why, after)]
    return []


def _user_steps(user: str, key: str | None) -> list[StepDraft]:
    """Every key of the user, its GetSessionToken sessions, its console password (approved, irreversible).

    An `ASIA` key is a session, not a key: UpdateAccessKey cannot find it, so only sessions are revoked.
    """
    sessions = _draft(
        "iam.revoke_user_sessions",
        {"user_name": user, **({"access_key_id": key} if key else {})},
        "Deny the user's temporary sessions (GetSessionToken) issued before the step is applied: they "
        "outlive the key's deactivation.",
    )
    if key and key.startswith("ASIA"):
        return [sessions]
    drafts = []
    if key:
        drafts.append(
            _draft(
                "iam.deactivate_access_key",
                {"user_name": user, "access_key_id": key, "every_key": True},
                "Deactivate (not delete: reversible) every access key of the IAM user, not only the one "
                "the attacker used: whoever held one could create or read the others.",
            )
        )
    login = _draft(
        "iam.delete_login_profile",
        {"user_name": user},
        "Delete the user's console password (irreversible: approval; the worklist says how to restore it).",
    )
    return [*drafts, sessions, login]


def _mapping_step(mapping: IdentityMapping, resolution: Resolution, username: str | None) -> StepDraft | None:
    arn = mapping.principal_arn
    if mapping.source is MappingSource.ACCESS_ENTRY and arn:
        return _draft(
            "eks.delete_access_entry",
            {"cluster_name": resolution.cluster.name, "principal_arn": arn},
            "Remove the access entry: it overrides aws-auth, and an IAM Deny does not stop EKS tokens.",
        )
    if mapping.source in (MappingSource.AWS_AUTH_MAP_ROLES, MappingSource.AWS_AUTH_MAP_USERS) and arn:
        kind = "mapRoles" if mapping.source is MappingSource.AWS_AUTH_MAP_ROLES else "mapUsers"
        return _draft(
            "k8s.remove_aws_auth_entry",
            {"map": kind, "arn": arn, "username": mapping.username or username},
            f"Remove the aws-auth {kind} entry so the principal can no longer authenticate to the cluster.",
        )
    if mapping.source in _ROLE_SOURCES:
        role = role_name_from_arn(arn)
        if role:
            return _draft(
                "iam.revoke_role_sessions",
                {"role_name": role},
                f"{mapping.source.value} role: revoke its sessions; the pod could mint new ones, which "
                "is why the pod is isolated as well.",
            )
    return None


def _kubernetes_identity_steps(finding: Finding, resolution: Resolution) -> list[StepDraft]:
    actor = finding.actor
    assert actor is not None  # checked by identity_steps
    if actor.kind is ActorKind.SERVICE_ACCOUNT:
        namespace, name = _service_account(actor.username, resolution.actor.service_account)
        if namespace and name:
            return [
                _draft(
                    "k8s.revoke_service_account_grants",
                    {"namespace": namespace, "service_account": name},
                    "Remove the stolen service account's RBAC grants (its token stays valid until rotated).",
                )
            ]
    if actor.kind is ActorKind.OIDC_USER and actor.username:
        return [
            _draft(
                "k8s.remove_user_bindings",
                {"username": actor.username, "groups": list(actor.groups)},
                "Remove the OIDC user's RBAC bindings; disable the user at the identity provider as well.",
            )
        ]
    if actor.kind is ActorKind.ANONYMOUS:
        return [
            _draft(
                "k8s.remove_user_bindings",
                {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
                "Anonymous requests succeeded: remove every binding granting "
                "system:anonymous/system:unauthenticated.",
            )
        ]
    return []


def _service_account(username: str | None, resolved: str | None) -> tuple[str | None, str | None]:
    if resolved and "/" in resolved:
        namespace, name = resolved.split("/", 1)
        return namespace, name
    prefix = "system:serviceaccount:"
    if username and username.startswith(prefix) and username.count(":") == 3:
        namespace, name = username[len(prefix) :].split(":", 1)
        return namespace, name
    return None, None


def _draft(action_id: str, params: dict[str, Any], rationale: str, after: tuple[str, ...] = ()) -> StepDraft:
    return StepDraft(f"{action_id}:{sorted(params.items())}", action_id, params, after, rationale)


def dedupe(drafts: list[StepDraft]) -> list[StepDraft]:
    """The same role can arrive twice (actor role, IRSA mapping, a workload on the node): one revocation
    is enough, the first (which carries the most context) is kept."""
    seen: set[tuple[str, str]] = set()
    kept: list[StepDraft] = []
    for draft in drafts:
        if draft.action_id == "iam.revoke_role_sessions":
            identity = (draft.action_id, str(draft.params.get("role_name")))
        else:
            identity = (draft.action_id, repr(sorted((k, str(v)) for k, v in draft.params.items())))
        if identity not in seen:
            seen.add(identity)
            kept.append(draft)
    return kept

"""The actor of the finding as something containment can act on: principal, mappings, service account.

Why by actor kind: each kind is contained somewhere else (DESIGN, field guide §2-4). An IAM principal is
contained in IAM *and* in every cluster mapping that admits it, since IAM denies do not stop EKS tokens; a
service account through its token and the AWS roles it can assume (IRSA, Pod Identity); an OIDC user at its
identity provider. Every mapping is listed because they coexist; where EKS access entries and aws-auth map
the same principal, the access entry wins, which the plan must know before it edits aws-auth.
"""

from __future__ import annotations

from eksir.models.finding import Actor, ActorKind, Finding
from eksir.models.resolution import ActorResolution, IdentityMapping, MappingSource
from eksir.resolve.cluster import uses_access_entries, uses_aws_auth
from eksir.resolve.context import Ctx
from eksir.resolve.mappings import (
    access_entry_mappings,
    aws_auth_mappings,
    creator_mapping,
    is_creator_admin,
)
from eksir.resolve.notes import optional
from eksir.resolve.oidc import oidc_mappings
from eksir.resolve.principal import Principal, resolve_principal, same_principal
from eksir.resolve.workload_identity import (
    irsa_mappings,
    pod_identity_mappings,
    split_service_account_username,
)

_AWS_AUTH_SOURCES = {MappingSource.AWS_AUTH_MAP_ROLES, MappingSource.AWS_AUTH_MAP_USERS}


def service_account_roles(ctx: Ctx, namespace: str, name: str) -> tuple[IdentityMapping, ...]:
    """IRSA and Pod Identity roles of one service account (looked up once); failed lookups become notes."""
    key = (namespace, name)
    if key not in ctx.sa_roles:
        irsa = irsa_mappings(ctx.kube, namespace, name, ctx.notes)
        cluster = ctx.cluster.name
        found = None
        if not ctx.pod_identity_failed:
            found = optional(
                ctx.notes, lambda: pod_identity_mappings(ctx.aws("eks"), cluster, namespace, name)
            )
            ctx.pod_identity_failed = found is None
        ctx.sa_roles[key] = (*irsa, *(found or []))
    return ctx.sa_roles[key]


def resolve_actor(ctx: Ctx, finding: Finding) -> ActorResolution:
    """ActorResolution for the finding's actor; lookups that fail become notes, never a missing result.

    Raises UnreachableError when the API server cannot be reached.
    """
    actor, notes = finding.actor, ctx.notes
    if actor is None:
        notes.append("the finding names no Kubernetes user: the actor is not resolved")
        return ActorResolution(principal_type="none")
    if actor.kind is ActorKind.SERVICE_ACCOUNT:
        return _service_account_actor(ctx, actor)
    if actor.kind is ActorKind.ANONYMOUS:
        notes.append(
            "the caller is system:anonymous: there is no identity to contain; remove the RBAC bindings that "
            "grant system:anonymous or system:unauthenticated anything, and check the endpoint's exposure"
        )
        return ActorResolution(principal_type="none")
    if actor.kind is ActorKind.OIDC_USER:
        found = optional(notes, lambda: oidc_mappings(ctx.aws("eks"), ctx.cluster.name, actor))
        if not found:
            notes.append(f"no EKS OIDC identity provider config matches user {actor.username!r}")
        return ActorResolution(principal_type="none", mappings=tuple(found or ()))
    return _iam_actor(ctx, actor)


def _service_account_actor(ctx: Ctx, actor: Actor) -> ActorResolution:
    parsed = split_service_account_username(actor.username)
    if parsed is None:
        ctx.notes.append(
            f"service-account username {actor.username!r} is not system:serviceaccount:<ns>:<name>"
        )
        return ActorResolution(principal_type="none")
    namespace, name = parsed
    roles = service_account_roles(ctx, namespace, name)
    return ActorResolution(principal_type="none", service_account=f"{namespace}/{name}", mappings=roles)


def _iam_actor(ctx: Ctx, actor: Actor) -> ActorResolution:
    notes, cluster = ctx.notes, ctx.cluster
    principal = optional(notes, lambda: resolve_principal(ctx.aws("iam"), actor, notes))
    if principal is None or principal.arn is None:
        notes.append(
            f"the IAM principal behind {actor.username!r} could not be identified (key "
            f"{actor.access_key_id}, principal id {actor.principal_id}): find it in CloudTrail by the key id"
        )
    principal = principal or Principal(None, "none", session_name=actor.session_name)
    mappings: list[IdentityMapping] = []
    if uses_access_entries(cluster):
        found = optional(notes, lambda: access_entry_mappings(ctx.aws("eks"), cluster.name, principal))
        mappings += found or []
    if uses_aws_auth(cluster):
        mappings += aws_auth_mappings(ctx.kube, principal, actor, notes)
    if is_creator_admin(actor) and not any(m.source in _AWS_AUTH_SOURCES for m in mappings):
        mappings.append(creator_mapping(principal, actor, cluster.authentication_mode))
    _note_precedence(mappings, notes)
    return ActorResolution(
        principal_arn=principal.arn,
        principal_type=principal.type,
        role_name=principal.name if principal.type == "role" else None,
        user_name=principal.name if principal.type == "user" else None,
        access_key_id=actor.access_key_id,
        session_name=principal.session_name or actor.session_name,
        mappings=tuple(mappings),
    )


def _note_precedence(mappings: list[IdentityMapping], notes: list[str]) -> None:
    entries = [m for m in mappings if m.source is MappingSource.ACCESS_ENTRY]
    for auth in (m for m in mappings if m.source in _AWS_AUTH_SOURCES):
        for entry in entries:
            if same_principal(auth.principal_arn, entry.principal_arn):
                notes.append(
                    f"{entry.principal_arn} has both an EKS access entry and an aws-auth {auth.source.value} "
                    "entry: the access entry takes precedence, so removing the aws-auth entry alone revokes "
                    "nothing; remove the access entry (and the aws-auth entry)"
                )

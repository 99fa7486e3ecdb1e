"""Every workload identity reachable from the attacked node: its pods' service accounts, their AWS roles,
and the tokens and Secrets mounted there.

Why: root in a privileged container owns the node, so it can read every projected service-account token
(IRSA and Pod Identity exchange them for role sessions; EKS accepts such tokens up to 90 days old) and every
Secret volume of every pod on it, not only what the attacker's own identity could read. The playbook turns
each role into a revocation step and every mounted Secret into the rotation worklist. Read-only; a
service account or listing that cannot be read becomes a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eksir.models.resolution import MappingSource, NodeServiceAccount
from eksir.resolve.context import Ctx
from eksir.resolve.identity import service_account_roles
from eksir.resolve.kube import JsonObj, meta, section
from eksir.resolve.notes import optional
from eksir.resolve.workload_identity import IRSA_ANNOTATION

_FINISHED = ("Succeeded", "Failed")


def node_service_accounts(ctx: Ctx, node_name: str) -> tuple[NodeServiceAccount, ...]:
    """The service accounts with running pods on `node_name`, with roles, Secrets and token audiences.

    Raises UnreachableError when the API server cannot be reached; other failures become notes.
    """
    pods = optional(
        ctx.notes,
        lambda: ctx.kube.list(
            "/api/v1/pods", f"list pods on node {node_name}", field_selector=f"spec.nodeName={node_name}"
        ),
    )
    grouped: dict[tuple[str, str], list[JsonObj]] = {}
    for pod in pods or []:
        if section(pod, "status").get("phase") in _FINISHED:
            continue
        key = (
            str(meta(pod).get("namespace")),
            str(section(pod, "spec").get("serviceAccountName") or "default"),
        )
        grouped.setdefault(key, []).append(pod)
    return tuple(
        _one(ctx, namespace, name, grouped[(namespace, name)]) for namespace, name in sorted(grouped)
    )


def _one(ctx: Ctx, namespace: str, name: str, pods: list[JsonObj]) -> NodeServiceAccount:
    roles = optional(ctx.notes, lambda: service_account_roles(ctx, namespace, name)) or ()
    secrets: set[str] = set()
    tokens: list[str] = []
    for pod in pods:
        pod_name = str(meta(pod).get("name"))
        spec = section(pod, "spec")
        secrets.update(f"{namespace}/{s}" for s in _secret_names(spec))
        tokens += [f"{pod_name}: {audience}" for audience in _token_audiences(spec)]
    return NodeServiceAccount(
        namespace=namespace,
        name=name,
        pods=tuple(sorted(str(meta(p).get("name")) for p in pods)),
        roles=tuple(roles),
        mounted_secrets=tuple(sorted(secrets)),
        projected_tokens=tuple(tokens),
    )


def _secret_names(spec: dict[str, Any]) -> Iterable[str]:
    """Secrets a pod mounts (secret volumes, projected sources) or references (env, envFrom, pull secrets)."""
    for volume in spec.get("volumes") or []:
        if (volume.get("secret") or {}).get("secretName"):
            yield str(volume["secret"]["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("secret") or {}).get("name"):
                yield str(source["secret"]["name"])
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                yield str(ref["name"])
        for source in container.get("envFrom") or []:
            if (source.get("secretRef") or {}).get("name"):
                yield str(source["secretRef"]["name"])
    for pull in spec.get("imagePullSecrets") or []:
        if pull.get("name"):
            yield str(pull["name"])


def _token_audiences(spec: dict[str, Any]) -> Iterable[str]:
    """Projected service-account tokens (the API server's own audience when none is named)."""
    for volume in spec.get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token is not None:
                yield str(token.get("audience") or "kubernetes (API server)")
    if spec.get("automountServiceAccountToken") is not False and not any(
        (s.get("serviceAccountToken") is not None)
        for v in spec.get("volumes") or []
        for s in (v.get("projected") or {}).get("sources") or []
    ):
        yield "kubernetes (API server, automounted)"


def role_users(ctx: Ctx, accounts: tuple[NodeServiceAccount, ...]) -> dict[str, tuple[str, ...]]:
    """For each IRSA role of the node's service accounts, every service account in the cluster using it."""
    wanted = {
        m.principal_arn
        for a in accounts
        for m in a.roles
        if m.source is MappingSource.IRSA and m.principal_arn
    }
    if not wanted:
        return {}
    listed = optional(ctx.notes, lambda: ctx.kube.list("/api/v1/serviceaccounts", "list service accounts"))
    users: dict[str, list[str]] = {arn: [] for arn in sorted(wanted)}
    for account in listed or []:
        arn = (meta(account).get("annotations") or {}).get(IRSA_ANNOTATION)
        if arn in users:
            users[arn].append(f"{meta(account).get('namespace')}/{meta(account).get('name')}")
    return {arn: tuple(sorted(found)) for arn, found in users.items()}

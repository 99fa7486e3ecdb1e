"""AWS roles a Kubernetes service account can obtain: IRSA and EKS Pod Identity.

Why both, and why they matter for containment: a pod of the service account gets role credentials either
from a projected token exchanged with STS (IRSA: ServiceAccount annotation `eks.amazonaws.com/role-arn`) or
from the Pod Identity agent (an EKS association for namespace + service account). Both keep minting fresh
sessions after an IAM "revoke older sessions", and sessions already issued outlive the removal of the link;
the plan needs the role ARNs to revoke sessions and to break the trust or stop the pods.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.aws import aws_call
from eksir.models.resolution import IdentityMapping, MappingSource
from eksir.resolve.kube import KubeReader, meta, q, str_map
from eksir.resolve.pages import paged

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
_AUDIENCE = "eks.amazonaws.com/audience"
_EXPIRATION = "eks.amazonaws.com/token-expiration"


def split_service_account_username(username: str | None) -> tuple[str, str] | None:
    """`system:serviceaccount:<ns>:<name>` -> (ns, name); None for any other username."""
    parts = (username or "").split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and parts[2] and parts[3]:
        return parts[2], parts[3]
    return None


def irsa_mappings(kube: KubeReader, namespace: str, name: str, notes: list[str]) -> list[IdentityMapping]:
    """The IRSA role of ServiceAccount namespace/name, from its annotation ([] when none or gone).

    Raises UnreachableError, PermissionDeniedError or TemporaryError from the API server.
    """
    path = f"/api/v1/namespaces/{q(namespace)}/serviceaccounts/{q(name)}"
    account = kube.get(path, f"read ServiceAccount {namespace}/{name}")
    if account is None:
        notes.append(f"ServiceAccount {namespace}/{name} no longer exists: its IRSA role (if any) is unknown")
        return []
    annotations = str_map(meta(account).get("annotations"))
    role = annotations.get(IRSA_ANNOTATION)
    if not role:
        return []
    audience = annotations.get(_AUDIENCE, "sts.amazonaws.com")
    expiry = annotations.get(_EXPIRATION, "86400")
    return [
        IdentityMapping(
            source=MappingSource.IRSA,
            principal_arn=role,
            username=f"system:serviceaccount:{namespace}:{name}",
            detail=(
                f"annotation {IRSA_ANNOTATION} on ServiceAccount {namespace}/{name} (audience {audience}, "
                f"token lifetime {expiry} s); pods keep their token after the annotation is removed and can "
                "assume the role again: revoke older sessions and break the trust policy or stop the pods"
            ),
        )
    ]


def pod_identity_mappings(eks: Any, cluster: str, namespace: str, name: str) -> list[IdentityMapping]:
    """Pod Identity associations of namespace/name (List, then Describe for the role ARN).

    Raises the eksir errors of `aws_call`; the caller decides whether that is fatal.
    """
    doing = f"list Pod Identity associations of {namespace}/{name} in {cluster}"
    with aws_call(doing):
        summaries = list(
            paged(
                eks.list_pod_identity_associations,
                "associations",
                clusterName=cluster,
                namespace=namespace,
                serviceAccount=name,
            )
        )
    result = []
    for summary in summaries:
        association_id = str(summary.get("associationId") or "")
        if not association_id:
            continue
        with aws_call(f"describe Pod Identity association {association_id}"):
            answer = eks.describe_pod_identity_association(clusterName=cluster, associationId=association_id)
        association = answer.get("association") or {}
        target = association.get("targetRoleArn")
        owner = association.get("ownerArn") or summary.get("ownerArn")
        detail = f"Pod Identity association {association_id}"
        if target:
            detail += f"; chains to target role {target}"
        if owner:
            detail += f"; owned by EKS add-on {owner} (change it through the add-on)"
        detail += "; sessions already issued stay valid until they expire: revoke older sessions on the role"
        result.append(
            IdentityMapping(
                source=MappingSource.POD_IDENTITY,
                principal_arn=association.get("roleArn"),
                username=f"system:serviceaccount:{namespace}:{name}",
                detail=detail,
            )
        )
    return result

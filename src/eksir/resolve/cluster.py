"""The EKS cluster behind the finding, from DescribeCluster.

Why these fields: the endpoint and CA build the Kubernetes client; `accessConfig.authenticationMode` decides
where a principal can be mapped (aws-auth, access entries, or both, where access entries win); the OIDC
issuer is what IRSA trust policies name; whether `audit` logging is on decides whether the hunt can use the
audit log at all; `computeConfig.enabled` says whether EKS Auto Mode runs nodes (resolve/node_kind.py). A
cluster from before access entries has no `accessConfig`: it authenticates through
aws-auth only; its mode stays None (as the model documents) and is treated exactly like `CONFIG_MAP`.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.aws import aws_call
from eksir.errors import BadInputError
from eksir.models.finding import Finding
from eksir.models.resolution import ClusterInfo

CONFIG_MAP = "CONFIG_MAP"
API = "API"
API_AND_CONFIG_MAP = "API_AND_CONFIG_MAP"


def cluster_name(finding: Finding) -> str:
    """The cluster name from the finding (its name, else the last part of its ARN).

    Raises BadInputError when the finding names no cluster: nothing can be resolved without one.
    """
    cluster = finding.cluster
    if cluster is not None and cluster.name:
        return cluster.name
    if cluster is not None and cluster.arn and ":cluster/" in cluster.arn:
        return cluster.arn.rsplit(":cluster/", 1)[1]
    raise BadInputError(f"finding {finding.id} names no EKS cluster (resource.eksClusterDetails is empty)")


def describe_cluster(eks: Any, name: str) -> ClusterInfo:
    """DescribeCluster -> ClusterInfo.

    Raises NotFoundError (wrong name, region or account), PermissionDeniedError, UnreachableError or
    TemporaryError through `aws_call`.
    """
    with aws_call(f"describe EKS cluster {name}"):
        raw = eks.describe_cluster(name=name)
    cluster = raw.get("cluster") or {}
    access = cluster.get("accessConfig") or {}
    vpc = cluster.get("resourcesVpcConfig") or {}
    groups = list(vpc.get("securityGroupIds") or [])
    if vpc.get("clusterSecurityGroupId"):
        groups.append(vpc["clusterSecurityGroupId"])
    return ClusterInfo(
        name=str(cluster.get("name") or name),
        arn=cluster.get("arn"),
        endpoint=cluster.get("endpoint"),
        certificate_authority=(cluster.get("certificateAuthority") or {}).get("data"),
        version=cluster.get("version"),
        authentication_mode=access.get("authenticationMode") or None,
        oidc_issuer=((cluster.get("identity") or {}).get("oidc") or {}).get("issuer"),
        audit_logging_enabled=_audit_logging_enabled(cluster.get("logging") or {}),
        vpc_id=vpc.get("vpcId"),
        security_group_ids=tuple(dict.fromkeys(str(group) for group in groups)),
        auto_mode=_auto_mode(cluster),
    )


def _auto_mode(cluster: dict[str, Any]) -> bool | None:
    """`computeConfig.enabled`: whether EKS Auto Mode runs the cluster's compute (None: not reported)."""
    enabled = (cluster.get("computeConfig") or {}).get("enabled")
    return enabled if isinstance(enabled, bool) else None


def _audit_logging_enabled(logging: dict[str, Any]) -> bool:
    """True when an enabled clusterLogging entry lists `audit` (disabled entries list the rest)."""
    return any(
        entry.get("enabled") and "audit" in (entry.get("types") or [])
        for entry in logging.get("clusterLogging") or []
    )


def uses_access_entries(cluster: ClusterInfo) -> bool:
    """Whether EKS consults access entries for this cluster."""
    return cluster.authentication_mode in (API, API_AND_CONFIG_MAP)


def uses_aws_auth(cluster: ClusterInfo) -> bool:
    """Whether EKS consults kube-system/aws-auth for this cluster."""
    return cluster.authentication_mode in (CONFIG_MAP, API_AND_CONFIG_MAP, None)

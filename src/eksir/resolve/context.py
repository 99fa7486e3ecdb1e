"""What every resolution step shares: the AWS client factory, the API server, the cluster, the notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from eksir.clients.aws_types import ClientFactory
from eksir.models.resolution import ClusterInfo, IdentityMapping
from eksir.resolve.kube import KubeReader
from eksir.resolve.owners import OwnerCache

AwsFactory = ClientFactory


@dataclass
class Ctx:
    """One resolution's shared state; `notes` become Resolution.warnings, in the order they were found."""

    aws: AwsFactory
    kube: KubeReader
    cluster: ClusterInfo
    owners: OwnerCache
    notes: list[str] = field(default_factory=list)
    checkpoint: bool = False  # `--checkpoint`: run the kubelet checkpoint preflight on the pod's node
    # roles per (namespace, service account): the pod's and the actor's service account are often the same
    sa_roles: dict[tuple[str, str], tuple[IdentityMapping, ...]] = field(default_factory=dict)
    pod_identity_failed: bool = False
    """Listing Pod Identity associations failed once (denied, unsupported): noted once, not per account."""

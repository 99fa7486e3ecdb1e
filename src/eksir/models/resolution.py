"""What online resolution found: finding -> cluster -> pod -> owners -> node -> instance -> ASG, and
Kubernetes identity -> AWS principal, plus the outage assessment made before any change.

Produced by `eksir.resolve`, stored in the case, consumed by the playbook (which turns it into a plan) and
by the report. Every field is optional where the real world may not have it (Fargate has no node or instance;
an OIDC user has no AWS principal).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClusterInfo(_Frozen):
    name: str
    arn: str | None = None
    endpoint: str | None = None
    certificate_authority: str | None = None
    version: str | None = None
    authentication_mode: str | None = (
        None  # API, API_AND_CONFIG_MAP, CONFIG_MAP (None: pre-access-entry cluster)
    )
    oidc_issuer: str | None = None
    audit_logging_enabled: bool | None = None
    vpc_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    auto_mode: bool | None = None  # DescribeCluster computeConfig.enabled (None: the API did not say)


class OwnerRef(_Frozen):
    kind: str
    name: str
    uid: str | None = None


class ContainerInfo(_Frozen):
    name: str
    image: str | None = None
    container_id: str | None = None  # containerd://<id>
    privileged: bool | None = None


class PodInfo(_Frozen):
    namespace: str
    name: str
    uid: str
    node_name: str | None = None
    service_account: str | None = None
    phase: str | None = None
    pod_ip: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    owner_chain: tuple[OwnerRef, ...] = ()  # nearest first: ReplicaSet, then Deployment
    containers: tuple[ContainerInfo, ...] = ()
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    # IRSA / Pod Identity roles of the pod's own service account: AWS credentials the privileged pod holds.
    aws_roles: tuple[IdentityMapping, ...] = ()


class NodeCompute(StrEnum):
    """Who runs the machine: what eksir may touch follows from it (README, "Node kinds")."""

    EC2 = "ec2"  # managed node group, self-managed or Karpenter: the customer's instance
    AUTO_MODE = "auto-mode"  # an EC2 managed instance owned by EKS: no SSM, no ENI or profile change
    FARGATE = "fargate"  # one pod in a micro-VM: no node or instance a customer can touch
    HYBRID = "hybrid"  # the customer's own machine outside AWS: no EC2 instance


class NodeOs(StrEnum):
    BOTTLEROCKET = "bottlerocket"
    AL2023 = "al2023"
    AL2 = "al2"
    WINDOWS = "windows"
    OTHER = "other"
    UNKNOWN = "unknown"


class NodeKind(_Frozen):
    """What kind of node it is and every signal that said so (shown in the plan and kept in the case)."""

    compute: NodeCompute = NodeCompute.EC2
    os: NodeOs = NodeOs.UNKNOWN
    os_image: str | None = None
    provisioner: str | None = None  # managed-node-group | karpenter | auto-mode | fargate | hybrid | None
    signals: tuple[str, ...] = ()


class CheckpointPreflight(_Frozen):
    """Whether the kubelet checkpoint API may be tried on this node (`--checkpoint`), and why (not)."""

    available: bool
    reasons: tuple[str, ...] = ()


def is_bottlerocket(os_image: str | None) -> bool:
    """True when a node's `status.nodeInfo.osImage` names Bottlerocket (case-insensitive, any version)."""
    return "bottlerocket" in (os_image or "").lower()


class NodeInfo(_Frozen):
    name: str
    provider_id: str | None = None
    instance_id: str | None = None
    availability_zone: str | None = None
    nodegroup: str | None = None
    capacity_type: str | None = None  # ON_DEMAND | SPOT
    fargate: bool = False
    unschedulable: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    kind: NodeKind | None = None  # None: resolved by a version before node kinds
    checkpoint: CheckpointPreflight | None = None  # only with --checkpoint
    os_image: str | None = None  # status.nodeInfo.osImage, e.g. "Bottlerocket OS 1.26.1 (aws-k8s-1.31)"

    @property
    def bottlerocket(self) -> bool:
        """Bottlerocket reports itself in the node's OS image; Run Command there needs the admin container."""
        return is_bottlerocket(self.os_image) or (
            self.kind is not None and self.kind.os is NodeOs.BOTTLEROCKET
        )


class NetworkInterfaceInfo(_Frozen):
    eni_id: str
    security_group_ids: tuple[str, ...] = ()
    private_ips: tuple[str, ...] = ()  # the node's own addresses, where its credentials belong


class InstanceInfo(_Frozen):
    instance_id: str
    state: str | None = None
    spot: bool = False
    autoscaling_group: str | None = None
    vpc_id: str | None = None
    subnet_id: str | None = None
    private_dns_name: str | None = None
    network_interfaces: tuple[NetworkInterfaceInfo, ...] = ()
    volume_ids: tuple[str, ...] = ()
    iam_instance_profile_arn: str | None = None
    termination_protected: bool | None = None
    managed_by: str | None = (
        None  # DescribeInstances Operator: its Principal if managed, "" if not, None unknown
    )
    nodegroup: str | None = None  # the EKS managed node group (instance tag eks:nodegroup-name)


class MappingSource(StrEnum):
    ACCESS_ENTRY = "access-entry"
    AWS_AUTH_MAP_ROLES = "aws-auth-mapRoles"
    AWS_AUTH_MAP_USERS = "aws-auth-mapUsers"
    CLUSTER_CREATOR = "cluster-creator"
    OIDC_PROVIDER = "oidc-identity-provider"
    IRSA = "irsa"
    POD_IDENTITY = "pod-identity"


class IdentityMapping(_Frozen):
    """One way the Kubernetes identity is linked to an AWS principal (several can coexist)."""

    source: MappingSource
    principal_arn: str | None = None
    username: str | None = None
    groups: tuple[str, ...] = ()
    access_policies: tuple[str, ...] = ()
    detail: str = ""


class ActorResolution(_Frozen):
    principal_arn: str | None = None  # IAM user ARN or role ARN (not the session ARN)
    principal_type: str | None = None  # user | role | none
    role_name: str | None = None
    user_name: str | None = None
    access_key_id: str | None = None
    session_name: str | None = None
    service_account: str | None = None  # namespace/name for service-account actors
    mappings: tuple[IdentityMapping, ...] = ()
    readable_secrets: tuple[str, ...] = ()  # namespace/name the identity can read: rotation worklist


class OutageItem(_Frozen):
    """One outage consideration; `blocking` ones make the plan ask before the step they name."""

    subject: str
    message: str
    blocking: bool = False
    steps: tuple[str, ...] = ()  # action ids it concerns


class OutageAssessment(_Frozen):
    owner_replicas: int | None = None
    owner_ready_replicas: int | None = None
    pdb_disruptions_allowed: int | None = None
    pods_on_node: tuple[str, ...] = ()  # namespace/name
    items: tuple[OutageItem, ...] = ()


class NodeServiceAccount(_Frozen):
    """A service account with pods on the attacked node: root there reads their tokens and secrets.

    Why per service account: IRSA and Pod Identity roles hang off the service account, and every pod of it
    on the node exposes the same projected token audience and mounted Secrets.
    """

    namespace: str
    name: str
    pods: tuple[str, ...] = ()  # pod names on the node
    roles: tuple[IdentityMapping, ...] = ()  # IRSA / Pod Identity roles it can obtain
    mounted_secrets: tuple[str, ...] = ()  # namespace/name of Secrets its pods on the node mount or reference
    projected_tokens: tuple[str, ...] = ()  # "pod: audience" of projected service-account tokens


class Resolution(_Frozen):
    resolved_at: datetime
    cluster: ClusterInfo
    pod: PodInfo | None = None
    node: NodeInfo | None = None
    instance: InstanceInfo | None = None
    actor: ActorResolution = Field(default_factory=ActorResolution)
    outage: OutageAssessment = Field(default_factory=OutageAssessment)
    node_service_accounts: tuple[NodeServiceAccount, ...] = ()
    role_users: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """IRSA role ARN -> every namespace/service-account in the cluster annotated with it (blast radius)."""
    warnings: tuple[str, ...] = ()

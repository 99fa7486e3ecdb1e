"""The one normalised GuardDuty finding every later step works from.

AWS emits the same finding in half a dozen shapes (boto3 PascalCase, wire camelCase, EventBridge, SNS, S3
export, Security Hub ASFF). `eksir.findings` turns each into this model, so nothing downstream needs to know
where a finding came from. Models are frozen: a finding is evidence and must not change once read.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from eksir.models.raw import RawFinding

PRIVILEGED_CONTAINER_TYPES: frozenset[str] = frozenset(
    {
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        "Persistence:Kubernetes/ContainerWithSensitiveMount",
        "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",
    }
)
"""Audit-log findings of a workload deployed with host access (the retired types and their successors)."""

RUNTIME_ESCAPE_TYPES: frozenset[str] = frozenset(
    {
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        "PrivilegeEscalation:Runtime/RuncContainerEscape",
        "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        "Execution:Runtime/ReverseShell",
    }
)
"""Runtime Monitoring findings of a container breaking out or calling out: what a privileged one does."""

ATTACK_SEQUENCE_TYPES: frozenset[str] = frozenset(
    {
        "AttackSequence:EKS/CompromisedCluster",
        "AttackSequence:EC2/CompromisedInstanceGroup",
        "AttackSequence:IAM/CompromisedCredentials",
    }
)
"""GuardDuty Extended Threat Detection: one finding correlating many signals over a `Sequence`."""

HANDLED_TYPES: frozenset[str] = PRIVILEGED_CONTAINER_TYPES | RUNTIME_ESCAPE_TYPES | ATTACK_SEQUENCE_TYPES


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceFormat(StrEnum):
    """Which representation the finding was read from (kept for the evidence record)."""

    BOTO3 = "boto3"
    WIRE = "wire"
    EVENTBRIDGE = "eventbridge"
    SNS = "sns"
    S3_EXPORT = "s3-export"
    ASFF = "asff"


class FindingFamily(StrEnum):
    """Which plan a finding type runs (README, "Finding families"); the last two are not handled."""

    PRIVILEGED_CONTAINER = "privileged-container"
    RUNTIME_ESCAPE = "runtime-escape"
    ATTACK_SEQUENCE = "attack-sequence"
    OTHER_KUBERNETES = "other-kubernetes"
    NOT_KUBERNETES = "not-kubernetes"


class ActorKind(StrEnum):
    """Who made the Kubernetes API call: the branch point of the playbook's containment part."""

    IAM_USER = "iam-user"
    IAM_ROLE = "iam-role"
    EC2_INSTANCE_ROLE = "ec2-instance-role"
    OIDC_USER = "oidc-user"
    SERVICE_ACCOUNT = "service-account"
    ANONYMOUS = "anonymous"
    NODE = "node"


class Cluster(_Frozen):
    name: str
    arn: str | None = None
    vpc_id: str | None = None
    status: str | None = None
    created_at: datetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class VolumeMount(_Frozen):
    name: str | None = None
    mount_path: str | None = None


class Volume(_Frozen):
    name: str | None = None
    host_path: str | None = None


class Container(_Frozen):
    name: str | None = None
    image: str | None = None
    image_prefix: str | None = None
    privileged: bool | None = None
    allow_privilege_escalation: bool | None = None
    volume_mounts: tuple[VolumeMount, ...] = ()


class Workload(_Frozen):
    """The pod (or controller) GuardDuty saw being created."""

    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    type: str | None = None
    service_account: str | None = None
    host_network: bool | None = None
    host_pid: bool | None = None
    host_ipc: bool | None = None
    containers: tuple[Container, ...] = ()
    volumes: tuple[Volume, ...] = ()


class Actor(_Frozen):
    """The Kubernetes caller and, where GuardDuty saw one, the AWS principal behind it.

    `kind` is derived by `eksir.findings.actor.classify_actor`; the rules and the fields they rely on are
    documented there and in the README.
    """

    kind: ActorKind
    username: str | None = None
    uid: str | None = None
    groups: tuple[str, ...] = ()
    session_name: str | None = None
    impersonated_username: str | None = None
    access_key_id: str | None = None
    principal_id: str | None = None
    user_name: str | None = None
    user_type: str | None = None
    reason: str = ""


class ApiCall(_Frozen):
    """The Kubernetes API call that triggered the finding, with the caller's network origin."""

    verb: str | None = None
    request_uri: str | None = None
    status_code: int | None = None
    user_agent: str | None = None
    source_ips: tuple[str, ...] = ()
    remote_ip: str | None = None
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    resource_name: str | None = None
    asn: str | None = None
    asn_org: str | None = None
    isp: str | None = None
    org: str | None = None
    country_code: str | None = None
    country_name: str | None = None
    city: str | None = None


class RuntimeProcess(_Frozen):
    """One process as Runtime Monitoring saw it (`ProcessDetails` or a `Lineage` entry): the process tree."""

    name: str | None = None
    executable_path: str | None = None
    executable_sha256: str | None = None
    pid: int | None = None
    namespace_pid: int | None = None
    user: str | None = None
    user_id: int | None = None
    euid: int | None = None
    pwd: str | None = None
    start_time: datetime | None = None
    uuid: str | None = None
    parent_uuid: str | None = None


class Runtime(_Frozen):
    """`service.runtimeDetails`: the process, its ancestors and what it did (file, mount, socket, ...)."""

    process: RuntimeProcess | None = None
    lineage: tuple[RuntimeProcess, ...] = ()
    context: dict[str, str] = Field(default_factory=dict)
    modifying_process: RuntimeProcess | None = None
    target_process: RuntimeProcess | None = None


class RuntimeContainer(_Frozen):
    """`resource.containerDetails`: the container the runtime agent saw (its id finds the pod)."""

    runtime: str | None = None
    id: str | None = None
    name: str | None = None
    image: str | None = None
    privileged: bool | None = None


class SequenceSignal(_Frozen):
    """One signal an attack sequence correlates (a finding, a CloudTrail or audit-log event, ...)."""

    uid: str
    type: str | None = None
    name: str | None = None
    description: str | None = None
    severity: float | None = None
    count: int | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    resource_uids: tuple[str, ...] = ()
    actor_ids: tuple[str, ...] = ()
    endpoint_ids: tuple[str, ...] = ()


class SequenceActor(_Frozen):
    """An actor of the sequence: the principal (user, credential, account) and its session."""

    id: str
    user_name: str | None = None
    user_uid: str | None = None
    user_type: str | None = None
    credential_uid: str | None = None
    account_uid: str | None = None
    session_uid: str | None = None
    session_issuer: str | None = None
    process_name: str | None = None


class SequenceResource(_Frozen):
    """A resource of the sequence (`ResourceV2`): a cluster, workload, container, instance or access key."""

    uid: str
    resource_type: str | None = None
    name: str | None = None
    account_id: str | None = None
    region: str | None = None
    namespace: str | None = None
    workload_type: str | None = None
    container_uids: tuple[str, ...] = ()
    image: str | None = None
    instance_uids: tuple[str, ...] = ()
    principal_id: str | None = None
    user_name: str | None = None
    user_type: str | None = None


class SequenceIndicator(_Frozen):
    key: str
    title: str | None = None
    values: tuple[str, ...] = ()


class SequenceEndpoint(_Frozen):
    id: str
    ip: str | None = None
    domain: str | None = None
    port: int | None = None
    country: str | None = None
    asn: str | None = None


class AttackSequence(_Frozen):
    """`service.detection.sequence` of an `AttackSequence:*` finding: the incident GuardDuty correlated."""

    uid: str
    description: str | None = None
    signals: tuple[SequenceSignal, ...] = ()
    actors: tuple[SequenceActor, ...] = ()
    resources: tuple[SequenceResource, ...] = ()
    endpoints: tuple[SequenceEndpoint, ...] = ()
    indicators: tuple[SequenceIndicator, ...] = ()
    additional_types: tuple[str, ...] = ()


class Finding(_Frozen):
    """One GuardDuty finding, normalised. `raw` keeps the finding exactly as read (wire casing), as a
    read-only mapping decoded on first use (see `eksir.models.raw`)."""

    id: str
    arn: str | None = None
    type: str
    family: FindingFamily
    severity: float | None = None
    title: str | None = None
    description: str | None = None
    account_id: str | None = None
    region: str | None = None
    partition: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    event_first_seen: datetime | None = None
    event_last_seen: datetime | None = None
    count: int | None = None
    archived: bool | None = None
    sample: bool = False
    detector_id: str | None = None
    source_format: SourceFormat
    resource_type: str | None = None
    instance_id: str | None = None
    container: RuntimeContainer | None = None
    runtime: Runtime | None = None
    sequence: AttackSequence | None = None
    cluster: Cluster | None = None
    workload: Workload | None = None
    actor: Actor | None = None
    api_call: ApiCall | None = None
    raw: RawFinding = Field(default_factory=lambda: RawFinding({}), repr=False)

    @property
    def handled(self) -> bool:
        """True for every type that runs this playbook (audit-log, runtime and attack-sequence families)."""
        return self.family in _HANDLED_FAMILIES


_HANDLED_FAMILIES = frozenset(
    {FindingFamily.PRIVILEGED_CONTAINER, FindingFamily.RUNTIME_ESCAPE, FindingFamily.ATTACK_SEQUENCE}
)

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

HANDLED_TYPES: frozenset[str] = frozenset(
    {
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
    }
)


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
    """Whether this playbook handles the finding type."""

    PRIVILEGED_CONTAINER = "privileged-container"
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
    cluster: Cluster | None = None
    workload: Workload | None = None
    actor: Actor | None = None
    api_call: ApiCall | None = None
    raw: RawFinding = Field(default_factory=lambda: RawFinding({}), repr=False)

    @property
    def handled(self) -> bool:
        """True for the two PrivilegedContainer types this playbook is built for."""
        return self.family is FindingFamily.PRIVILEGED_CONTAINER

"""The lab's incident scenarios: who the attacker is on each side (Kubernetes, AWS) and where the pod lands.

Each scenario matches one row of the `KubernetesUserDetails` table in finding-schema-notes.md, because the
playbook's containment steps differ by that row (rotate an IAM user key, revoke a role's sessions, remove an
aws-auth mapping, break an IRSA trust, nothing on AWS for an OIDC user). The declarations here are data; the
seeding modules turn them into real objects in moto and the kube-apiserver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from eksir.errors import BadInputError
from eksir.lab.cloudtrail_gen import Principal

if TYPE_CHECKING:
    from eksir.lab.aws_seed import IamKey, RoleRef

CLUSTER_NAME = "eksir-lab"
ATTACKER_IP = "203.0.113.77"
ATTACKER_KUBECTL_UA = "kubectl/v1.31.2 (linux/amd64) kubernetes/0d7a9e3"
ATTACKER_AWS_UA = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9"
ATTACKER_BOTO_UA = (
    "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#6.1.97 md/arch#x86_64 lang/python#3.12.4"
)
ATTACKER_IMAGE = "docker.io/alpine/socat:1.8.0.0"


class ScenarioName(StrEnum):
    """The closed set of scenarios `eksir lab up --scenario` accepts."""

    IAM_USER = "iam-user"
    AWS_AUTH_ROLE = "aws-auth-role"
    OIDC_USER = "oidc-user"
    SERVICE_ACCOUNT = "service-account"
    ROLE_CHAINING = "role-chaining"
    CROSS_ACCOUNT = "cross-account"
    FLEET = "fleet"


class K8sIdentity(StrEnum):
    """How the attacker authenticates to the Kubernetes API."""

    BUILTIN_ADMIN = "builtin-admin"  # kubernetes-admin / system:masters, backed by an IAM user key
    MAPPED_ROLE = "mapped-role"  # a role session mapped by aws-auth mapRoles
    MAPPED_USER = "mapped-user"  # an IAM user mapped by aws-auth mapUsers
    OIDC = "oidc"  # an OIDC identity provider user; no AWS credentials at all
    SERVICE_ACCOUNT = "service-account"  # a stolen service-account token


class AwsActor(StrEnum):
    """Whose AWS credentials make the attacker's AWS calls after the pod exists."""

    SAME_IAM_USER = "same-iam-user"  # the key that also authenticates to Kubernetes
    SAME_ROLE_SESSION = "same-role-session"  # the role session that also authenticates to Kubernetes
    NODE_ROLE = "node-role"  # instance credentials stolen from IMDS through the privileged pod
    IRSA_ROLE = "irsa-role"  # AssumeRoleWithWebIdentity with the service account's projected token
    CHAINED_ROLE = "chained-role"  # the IAM user key assumes a more privileged role


@dataclass(frozen=True)
class Scenario:
    """One seeded incident: identity on each side, where the privileged pod goes, and what it is called."""

    name: ScenarioName
    summary: str
    k8s_identity: K8sIdentity
    aws_actor: AwsActor
    namespace: str
    pod_name: str
    service_account: str = "default"
    organisation: bool = False
    """An AWS organisation (lab/organisation.py): the incident in a member account, eksir in another."""
    enforce_iam: bool = False
    """moto enforces IAM once seeded (lab/iam_enforcement.py): eksir runs under the generated actions only.
    On for cross-account; off for fleet, whose event pipeline (EventBridge rules, SQS queues, their policies)
    and workers were built and measured without it."""


SCENARIOS: dict[ScenarioName, Scenario] = {
    ScenarioName.IAM_USER: Scenario(
        ScenarioName.IAM_USER,
        "the cluster creator's IAM user key (kubernetes-admin, system:masters) deploys the pod",
        K8sIdentity.BUILTIN_ADMIN,
        AwsActor.SAME_IAM_USER,
        namespace="default",
        pod_name="node-debugger-7f9c",
    ),
    ScenarioName.AWS_AUTH_ROLE: Scenario(
        ScenarioName.AWS_AUTH_ROLE,
        "a stolen session of the ops-admin role (mapped in aws-auth mapRoles) deploys the pod, then persists",
        K8sIdentity.MAPPED_ROLE,
        AwsActor.SAME_ROLE_SESSION,
        namespace="kube-system",
        pod_name="kube-proxy-debug",
    ),
    ScenarioName.OIDC_USER: Scenario(
        ScenarioName.OIDC_USER,
        "an OIDC user deploys the pod, then uses the node's instance credentials from IMDS",
        K8sIdentity.OIDC,
        AwsActor.NODE_ROLE,
        namespace="monitoring",
        pod_name="metrics-agent-x2k8p",
    ),
    ScenarioName.SERVICE_ACCOUNT: Scenario(
        ScenarioName.SERVICE_ACCOUNT,
        "a stolen service-account token deploys the pod; the IRSA role's session then acts in AWS",
        K8sIdentity.SERVICE_ACCOUNT,
        AwsActor.IRSA_ROLE,
        namespace="payments",
        pod_name="payments-api-debug",
        service_account="payments-api",
    ),
    ScenarioName.ROLE_CHAINING: Scenario(
        ScenarioName.ROLE_CHAINING,
        "an IAM user mapped in aws-auth mapUsers deploys the pod, then acts as infra-deployer",
        K8sIdentity.MAPPED_USER,
        AwsActor.CHAINED_ROLE,
        namespace="default",
        pod_name="busybox-shell",
    ),
    ScenarioName.CROSS_ACCOUNT: Scenario(
        ScenarioName.CROSS_ACCOUNT,
        "iam-user's incident in a member account of an organisation; eksir answers from the security account",
        K8sIdentity.BUILTIN_ADMIN,
        AwsActor.SAME_IAM_USER,
        namespace="default",
        pod_name="node-debugger-7f9c",
        organisation=True,
        enforce_iam=True,
    ),
    ScenarioName.FLEET: Scenario(
        ScenarioName.FLEET,
        (
            "cross-account plus a second member account, many attacked pods over both accounts' clusters "
            "and the EventBridge -> SQS pipeline"
        ),
        K8sIdentity.BUILTIN_ADMIN,
        AwsActor.SAME_IAM_USER,
        namespace="default",
        pod_name="node-debugger-7f9c",
        organisation=True,
    ),
}
SINGLE_ACCOUNT = tuple(name for name in ScenarioName if not SCENARIOS[name].organisation)
"""The one-account scenarios (the parametrised lab tests run these; cross-account has its own tests)."""


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`; raises BadInputError listing the valid names otherwise."""
    try:
        return SCENARIOS[ScenarioName(name)]
    except ValueError:
        valid = ", ".join(s.value for s in ScenarioName)
        raise BadInputError(f"unknown lab scenario {name!r}; choose one of: {valid}") from None


@dataclass(frozen=True)
class K8sUser:
    """The identity the API server records for the attacker's requests (what GuardDuty copies)."""

    username: str
    groups: tuple[str, ...]
    uid: str | None = None
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AwsCredentials:
    """Credentials the attacker holds, with the CloudTrail principal they show up as."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    principal: Principal


def iam_user_principal(key: IamKey, account_id: str) -> Principal:
    """The attacker using an IAM user's long-term key from their own machine."""
    return Principal(
        kind="IAMUser",
        account_id=account_id,
        source_ip=ATTACKER_IP,
        user_agent=ATTACKER_AWS_UA,
        arn=key.arn,
        principal_id=key.user_id,
        access_key_id=key.access_key_id,
        user_name=key.user_name,
    )


def session_principal(
    role: RoleRef, session_name: str, access_key_id: str, account_id: str, **extra: Any
) -> Principal:
    """The attacker using a role session (stolen, chained, from IMDS or from IRSA)."""
    return Principal(
        kind="AssumedRole",
        account_id=account_id,
        source_ip=str(extra.pop("source_ip", ATTACKER_IP)),
        user_agent=str(extra.pop("user_agent", ATTACKER_AWS_UA)),
        arn=f"arn:aws:sts::{account_id}:assumed-role/{role.name}/{session_name}",
        principal_id=f"{role.role_id}:{session_name}",
        access_key_id=access_key_id,
        issuer_arn=role.arn,
        issuer_principal_id=role.role_id,
        session_created=datetime.now(UTC),
        **extra,
    )


def eks_authenticator_user(
    username: str, groups: tuple[str, ...], principal: Principal, session_name: str
) -> K8sUser:
    """The user block EKS's IAM authenticator produces for an IAM principal (uid and extra per EKS)."""
    canonical = principal.issuer_arn or principal.arn
    principal_id = principal.issuer_principal_id or principal.principal_id
    return K8sUser(
        username=username,
        groups=(*groups, "system:authenticated"),
        uid=f"aws-iam-authenticator:{principal.account_id}:{principal_id}",
        extra={
            "accessKeyId": (principal.access_key_id,),
            "arn": (principal.arn,),
            "canonicalArn": (canonical,),
            "principalId": (principal_id,),
            "sessionName": (session_name,),
        },
    )

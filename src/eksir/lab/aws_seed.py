"""Seed moto with the AWS side of an EKS cluster: network, cluster, nodes, IAM, buckets, trail, logs, topic.

The responder's tool will look these up by the ids the finding and the Node objects carry (instance id from
`spec.providerID`, cluster name, role ARNs), so every id recorded in `AwsInventory` is the one moto returned,
never an invented one. Raises botocore errors unchanged; the orchestrator turns them into a LabError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eksir.lab.moto_server import EKS_NODE_AMI, AwsEndpoint
from eksir.lab.scenarios import CLUSTER_NAME
from eksir.lab.vpc_endpoints import seed_vpc_endpoints

NODEGROUP = "ng-general"
AMI_ID = EKS_NODE_AMI
NODE_TYPE = "m5.large"
AZ_SUFFIXES = ("a", "b", "c")
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
EKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@dataclass(frozen=True)
class NodeInstance:
    """A worker EC2 instance and the facts its Kubernetes Node object must repeat."""

    instance_id: str
    az: str
    private_dns: str
    private_ip: str
    instance_type: str
    capacity_type: str  # ON_DEMAND | SPOT
    volume_ids: tuple[str, ...]
    eni_ids: tuple[str, ...]

    @property
    def provider_id(self) -> str:
        """`spec.providerID` as the AWS cloud provider writes it."""
        return f"aws:///{self.az}/{self.instance_id}"


@dataclass(frozen=True)
class IamKey:
    """An IAM user with one access key (the secret stays in memory and in lab.json, never in a log)."""

    user_name: str
    arn: str
    user_id: str
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class RoleRef:
    """An IAM role: name, ARN and the AROA id CloudTrail and the EKS authenticator report."""

    name: str
    arn: str
    role_id: str


@dataclass
class AwsInventory:
    """Every AWS id the rest of the seeding (and the tests' ground truth) refers to."""

    account_id: str
    region: str
    cluster_name: str
    cluster_arn: str
    cluster_created_at: datetime
    cluster_endpoint: str
    oidc_issuer: str
    oidc_provider_arn: str
    vpc_id: str
    subnet_ids: list[str]
    security_group_ids: list[str]
    asg_name: str
    nodegroup: str
    nodes: list[NodeInstance]
    node_role: RoleRef
    instance_profile_arn: str
    users: dict[str, IamKey] = field(default_factory=dict)
    roles: dict[str, RoleRef] = field(default_factory=dict)
    evidence_bucket: str = ""
    cloudtrail_bucket: str = ""
    data_bucket: str = ""
    trail_arn: str = ""
    log_group: str = ""
    topic_arn: str = ""


def _role(iam: Any, name: str, trust: dict[str, Any], policy_arns: tuple[str, ...] = ()) -> RoleRef:
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    for arn in policy_arns:
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return RoleRef(name=name, arn=role["Arn"], role_id=role["RoleId"])


def _user(iam: Any, name: str, policy_arns: tuple[str, ...] = ()) -> IamKey:
    user = iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "platform"}])["User"]
    for arn in policy_arns:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return IamKey(name, user["Arn"], user["UserId"], key["AccessKeyId"], key["SecretAccessKey"])


def _network(ec2: Any, region: str) -> tuple[str, list[str], list[str]]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": f"{CLUSTER_NAME}-vpc"}])
    subnets = []
    for index, suffix in enumerate(AZ_SUFFIXES):
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{index * 64}.0/18", AvailabilityZone=f"{region}{suffix}"
        )["Subnet"]["SubnetId"]
        subnets.append(subnet)
    cluster_sg = ec2.create_security_group(
        GroupName=f"eks-cluster-sg-{CLUSTER_NAME}", Description="EKS cluster security group", VpcId=vpc
    )["GroupId"]
    node_sg = ec2.create_security_group(
        GroupName=f"{CLUSTER_NAME}-node", Description="EKS worker nodes", VpcId=vpc
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=node_sg,
        IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": cluster_sg}]}],
    )
    return vpc, subnets, [cluster_sg, node_sg]


def launch_node(
    ec2: Any, subnet: str, sg_ids: list[str], profile_arn: str, spot: bool, *, cluster: str = CLUSTER_NAME
) -> NodeInstance:
    """One worker instance of `cluster`'s node group, tagged as EKS tags its nodes."""
    tags = [
        {"Key": "eks:cluster-name", "Value": cluster},
        {"Key": "eks:nodegroup-name", "Value": NODEGROUP},
        {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"},
    ]
    extra: dict[str, Any] = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
    instance = ec2.run_instances(
        ImageId=AMI_ID,
        MinCount=1,
        MaxCount=1,
        InstanceType=NODE_TYPE,
        SubnetId=subnet,
        SecurityGroupIds=sg_ids,
        IamInstanceProfile={"Arn": profile_arn},
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        **extra,
    )["Instances"][0]
    return NodeInstance(
        instance_id=instance["InstanceId"],
        az=instance["Placement"]["AvailabilityZone"],
        private_dns=instance["PrivateDnsName"],
        private_ip=instance["PrivateIpAddress"],
        instance_type=instance["InstanceType"],
        capacity_type="SPOT" if spot else "ON_DEMAND",
        volume_ids=tuple(m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", [])),
        eni_ids=tuple(n["NetworkInterfaceId"] for n in instance.get("NetworkInterfaces", [])),
    )


def _cluster(endpoint: AwsEndpoint, subnets: list[str], sgs: list[str], role_arn: str) -> dict[str, Any]:
    eks = endpoint.client("eks")
    cluster: dict[str, Any] = eks.create_cluster(
        name=CLUSTER_NAME,
        version="1.31",
        roleArn=role_arn,
        resourcesVpcConfig={"subnetIds": subnets, "securityGroupIds": sgs[:1]},
        logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
        tags={"environment": "production", "owner": "platform"},
    )["cluster"]
    return cluster


def seed_infrastructure(endpoint: AwsEndpoint) -> AwsInventory:
    """Create the cluster's AWS estate in moto and return every id it got. Raises botocore errors."""
    ec2, iam = endpoint.client("ec2"), endpoint.client("iam")
    vpc, subnets, sgs = _network(ec2, endpoint.region)
    seed_vpc_endpoints(ec2, endpoint.region, vpc, subnets, sgs[1])
    cluster_role = _role(iam, f"{CLUSTER_NAME}-cluster-role", EKS_TRUST)
    cluster = _cluster(endpoint, subnets, sgs, cluster_role.arn)
    issuer = cluster["identity"]["oidc"]["issuer"]
    oidc_arn = iam.create_open_id_connect_provider(
        Url=issuer,
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    )["OpenIDConnectProviderArn"]
    node_role = _role(
        iam,
        f"{CLUSTER_NAME}-node-role",
        EC2_TRUST,
        (
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ),
    )
    profile = iam.create_instance_profile(InstanceProfileName=f"{CLUSTER_NAME}-node-profile")
    iam.add_role_to_instance_profile(
        InstanceProfileName=f"{CLUSTER_NAME}-node-profile", RoleName=node_role.name
    )
    profile_arn = profile["InstanceProfile"]["Arn"]
    nodegroup = endpoint.client("eks").create_nodegroup(
        clusterName=CLUSTER_NAME,
        nodegroupName=NODEGROUP,
        subnets=subnets,
        nodeRole=node_role.arn,
        instanceTypes=[NODE_TYPE],
        scalingConfig={"minSize": 2, "maxSize": 6, "desiredSize": 3},
    )["nodegroup"]
    asg_name = nodegroup["resources"]["autoScalingGroups"][0]["name"]
    nodes = [launch_node(ec2, subnets[i], sgs[1:], profile_arn, spot=(i == 2)) for i in range(3)]
    auto_scaling_group(endpoint, asg_name, subnets, nodes)
    return AwsInventory(
        account_id=cluster["arn"].split(":")[4],
        region=endpoint.region,
        cluster_name=CLUSTER_NAME,
        cluster_arn=cluster["arn"],
        cluster_created_at=cluster["createdAt"],
        cluster_endpoint=cluster["endpoint"],
        oidc_issuer=issuer,
        oidc_provider_arn=oidc_arn,
        vpc_id=vpc,
        subnet_ids=subnets,
        security_group_ids=sgs,
        asg_name=asg_name,
        nodegroup=NODEGROUP,
        nodes=nodes,
        node_role=node_role,
        instance_profile_arn=profile_arn,
    )


def auto_scaling_group(
    endpoint: AwsEndpoint,
    name: str,
    subnets: list[str],
    nodes: list[NodeInstance],
    cluster: str = CLUSTER_NAME,
) -> None:
    """An empty group, then the nodes attached, so each node keeps its own AZ and market type."""
    asg = endpoint.client("autoscaling")
    ec2 = endpoint.client("ec2")
    template = ec2.create_launch_template(
        LaunchTemplateName=f"eks-{NODEGROUP}",
        LaunchTemplateData={"ImageId": AMI_ID, "InstanceType": NODE_TYPE},
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=0,
        MaxSize=6,
        DesiredCapacity=0,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[
            {"Key": "eks:cluster-name", "Value": cluster, "PropagateAtLaunch": True},
            {"Key": "eks:nodegroup-name", "Value": NODEGROUP, "PropagateAtLaunch": True},
        ],
    )
    asg.attach_instances(AutoScalingGroupName=name, InstanceIds=[n.instance_id for n in nodes])


def _web_identity_trust(inv: AwsInventory, namespace: str, service_account: str) -> dict[str, Any]:
    issuer_host = inv.oidc_issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": inv.oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:aud": "sts.amazonaws.com",
                        f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    }
                },
            }
        ],
    }


def _account_trust(account_id: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


def seed_identities(endpoint: AwsEndpoint, inv: AwsInventory) -> None:
    """IAM users with keys and the roles every scenario needs, the IRSA role trusting the OIDC provider."""
    iam = endpoint.client("iam")
    inv.users["eks-admin"] = _user(iam, "eks-admin", (ADMIN_POLICY,))
    # A second key the finding does not name (CI's): containment deactivates every key of the user.
    iam.create_access_key(UserName="eks-admin")
    inv.users["alice"] = _user(iam, "alice", ("arn:aws:iam::aws:policy/ReadOnlyAccess",))
    inv.users["bob"] = _user(iam, "bob", ("arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess",))
    account = _account_trust(inv.account_id)
    inv.roles["ops-admin"] = _role(iam, "ops-admin", account, (ADMIN_POLICY,))
    inv.roles["infra-deployer"] = _role(iam, "infra-deployer", account, (ADMIN_POLICY,))
    inv.roles["github-actions-deploy"] = _role(iam, "github-actions-deploy", account)
    inv.roles["payments-api-irsa"] = _role(
        iam,
        "payments-api-irsa",
        _web_identity_trust(inv, "payments", "payments-api"),
        ("arn:aws:iam::aws:policy/AmazonS3FullAccess", "arn:aws:iam::aws:policy/AmazonEC2FullAccess"),
    )
    # A second IRSA role used by pods on the attacked node (issue 16: every workload role reachable from the
    # node is contained, one revocation per role): the storefront reads its catalogue bucket.
    inv.roles["storefront-irsa"] = _role(
        iam,
        "storefront-irsa",
        _web_identity_trust(inv, "shop", "storefront"),
        ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",),
    )
    iam.put_role_policy(
        RoleName="payments-api-irsa",
        PolicyName="payments-api-iam",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["iam:*", "cloudtrail:*"], "Resource": "*"}],
            }
        ),
    )


DATA_OBJECT_KEY = "exports/customers-2024-q3.csv"


def seed_stores(endpoint: AwsEndpoint, inv: AwsInventory) -> None:
    """Buckets (evidence with Object Lock, trail, app data), the trail, the EKS log group, the topic."""
    s3 = endpoint.client("s3")
    prefix = f"{inv.account_id}-{inv.cluster_name}"
    inv.evidence_bucket = f"{prefix}-ir-evidence"
    s3.create_bucket(Bucket=inv.evidence_bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=inv.evidence_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}},
        },
    )
    inv.cloudtrail_bucket = f"{prefix}-cloudtrail"
    s3.create_bucket(Bucket=inv.cloudtrail_bucket)
    inv.data_bucket = f"{prefix}-payments-data"
    s3.create_bucket(Bucket=inv.data_bucket)
    s3.put_object(
        Bucket=inv.data_bucket,
        Key=DATA_OBJECT_KEY,
        Body=b"customer_id,name,card_last4\n1001,Ada Example,4242\n1002,Grace Example,1881\n",
    )
    trail = endpoint.client("cloudtrail").create_trail(
        Name="management-events", S3BucketName=inv.cloudtrail_bucket, IsMultiRegionTrail=True
    )
    inv.trail_arn = trail["TrailARN"]
    _organisation_trail(endpoint, inv)
    inv.log_group = f"/aws/eks/{inv.cluster_name}/cluster"
    endpoint.client("logs").create_log_group(logGroupName=inv.log_group)
    inv.topic_arn = endpoint.client("sns").create_topic(Name="eksir-war-room")["TopicArn"]


ORG_TRAIL = "org-management-events"


def _organisation_trail(endpoint: AwsEndpoint, inv: AwsInventory) -> None:
    """The organisation's trail, logging: a member account cannot delete or stop it, so the attacker's
    DeleteTrail removes only the account's own trail (`management-events`) and the hunt's source stays on.

    Lab imitation: moto has one account here, so the trail is created in it and the attacker simply does not
    touch it, as a member account could not. It delivers to the bucket the lab writes the trail files to."""
    trails = endpoint.client("cloudtrail")
    trails.create_trail(Name=ORG_TRAIL, S3BucketName=inv.cloudtrail_bucket, IsMultiRegionTrail=True)
    trails.start_logging(Name=ORG_TRAIL)


def seed_all(endpoint: AwsEndpoint) -> AwsInventory:
    """The whole AWS estate: infrastructure, identities, stores. Raises botocore errors."""
    inv = seed_infrastructure(endpoint)
    seed_identities(endpoint, inv)
    seed_stores(endpoint, inv)
    return inv


def put_audit_events(
    endpoint: AwsEndpoint, inv: AwsInventory, events: list[dict[str, Any]], stream: str
) -> None:
    """Ship audit events to the cluster's log group the way EKS does: one JSON event per log event."""
    logs = endpoint.client("logs")
    logs.create_log_stream(logGroupName=inv.log_group, logStreamName=stream)
    batch = []
    for event in events:
        stamp = datetime.fromisoformat(str(event["stageTimestamp"]).replace("Z", "+00:00"))
        batch.append({"timestamp": int(stamp.timestamp() * 1000), "message": json.dumps(event)})
    batch.sort(key=lambda e: int(str(e["timestamp"])))
    for start in range(0, len(batch), 1000):
        logs.put_log_events(
            logGroupName=inv.log_group, logStreamName=stream, logEvents=batch[start : start + 1000]
        )

"""The fleet lab's second member account: its own cluster, nodes, node role and `eksir-responder`.

Why: a fleet worker answers findings from every member account, each through that account's own role
(`EKSIR_ASSUME_ROLE` = `arn:aws:iam::{account}:role/eksir-responder`). One member account cannot show that a
finding is routed to *its* account; two can. The second account is made as the first is
(lab/organisation.py): Organizations CreateAccount, entered through its OrganizationAccountAccessRole, eksir's
member template deployed through its CloudFormation with the same security account and external id. Its
estate is the part a response touches: a VPC (10.1.0.0/16, so its nodes' names never equal the first
account's), an EKS cluster of its own name with control-plane logging on (its log group exists, empty: the
lab ships the shared API server's audit events to the first account's group only), a node group's role,
instance profile, instances and ASG.

Lab imitation: one kube-apiserver serves both accounts' clusters (moto's record of this cluster points at
it, and the lab's EKS authenticator accepts tokens naming either cluster); the clusters' pods are kept apart
by namespace (a namespace set per cluster, lab/fleet.py) and their nodes are distinct Node objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eksir.lab import aws_seed
from eksir.lab.aws_seed import EC2_TRUST, EKS_TRUST, NodeInstance, _role
from eksir.lab.moto_server import AwsEndpoint
from eksir.lab.organisation import deploy_responder, enter

ACCOUNT_NAME = "workloads-staging"
CLUSTER = "eksir-lab-staging"
NODES = 2


@dataclass(frozen=True)
class Member:
    """What the fleet's second account holds, by the ids moto returned."""

    account: str
    endpoint: AwsEndpoint
    """The account's seeding identity (AdministratorAccess)."""
    responder_role_arn: str
    cluster: str
    cluster_arn: str
    cluster_created_at: datetime
    vpc_id: str
    region: str
    nodes: list[NodeInstance]


def create_account(management: AwsEndpoint) -> str:
    """A new member account through Organizations (the organisation exists: lab/organisation.py)."""
    org = management.client("organizations")
    status = org.create_account(Email=f"aws+{ACCOUNT_NAME}@example.com", AccountName=ACCOUNT_NAME)
    request = status["CreateAccountStatus"]["Id"]
    return str(
        org.describe_create_account_status(CreateAccountRequestId=request)["CreateAccountStatus"]["AccountId"]
    )


def _network(ec2: Any, region: str) -> tuple[str, list[str], list[str]]:
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i * 64}.0/18", AvailabilityZone=f"{region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate(("a", "b"))
    ]
    groups = [
        ec2.create_security_group(GroupName=f"{CLUSTER}-{kind}", Description=f"EKS {kind}", VpcId=vpc)[
            "GroupId"
        ]
        for kind in ("cluster", "node")
    ]
    return vpc, subnets, groups


def _nodes(endpoint: AwsEndpoint, subnets: list[str], groups: list[str]) -> list[NodeInstance]:
    """The node group: role, instance profile, EKS node group record, instances in an ASG."""
    iam, ec2 = endpoint.client("iam"), endpoint.client("ec2")
    policies = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore")
    node_role = _role(
        iam, f"{CLUSTER}-node-role", EC2_TRUST, tuple(f"arn:aws:iam::aws:policy/{p}" for p in policies)
    )
    profile = f"{CLUSTER}-node-profile"
    profile_arn = iam.create_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=node_role.name)
    group = endpoint.client("eks").create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName=aws_seed.NODEGROUP,
        subnets=subnets,
        nodeRole=node_role.arn,
        instanceTypes=[aws_seed.NODE_TYPE],
        scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": NODES},
    )["nodegroup"]
    nodes = [
        aws_seed.launch_node(ec2, subnets[i % len(subnets)], groups[1:], profile_arn, False, cluster=CLUSTER)
        for i in range(NODES)
    ]
    asg = group["resources"]["autoScalingGroups"][0]["name"]
    aws_seed.auto_scaling_group(endpoint, asg, subnets, nodes, cluster=CLUSTER)
    return nodes


def seed_member(management: AwsEndpoint, security: str, external_id: str) -> Member:
    """Create and seed the second member account. Raises botocore errors."""
    account = create_account(management)
    endpoint = enter(management, account)
    role_arn = deploy_responder(endpoint, security, external_id)
    vpc, subnets, groups = _network(endpoint.client("ec2"), endpoint.region)
    cluster_role = _role(endpoint.client("iam"), f"{CLUSTER}-cluster-role", EKS_TRUST)
    cluster = endpoint.client("eks").create_cluster(
        name=CLUSTER,
        version="1.31",
        roleArn=cluster_role.arn,
        resourcesVpcConfig={"subnetIds": subnets, "securityGroupIds": groups[:1]},
        logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
        tags={"environment": "staging", "owner": "platform"},
    )["cluster"]
    endpoint.client("logs").create_log_group(logGroupName=f"/aws/eks/{CLUSTER}/cluster")
    return Member(
        account=account,
        endpoint=endpoint,
        responder_role_arn=role_arn,
        cluster=CLUSTER,
        cluster_arn=str(cluster["arn"]),
        cluster_created_at=cluster["createdAt"],
        vpc_id=vpc,
        region=endpoint.region,
        nodes=_nodes(endpoint, subnets, groups),
    )


def rehome_finding(event: dict[str, Any], member: Member) -> dict[str, Any]:
    """The lab's finding (a copy, already about the pod) as GuardDuty reports it for this account's cluster:
    its accountId, ARN and cluster. The first account's access key is dropped: the attacker used none here."""
    detail = event["detail"]
    detail["accountId"] = member.account
    arn = detail["arn"].split(":")
    detail["arn"] = ":".join([*arn[:4], member.account, *arn[5:]])
    resource = detail["resource"]
    resource.pop("accessKeyDetails", None)
    first = str(resource["eksClusterDetails"]["name"])
    detail["description"] = str(detail.get("description", "")).replace(first, member.cluster)
    resource["eksClusterDetails"] |= {
        "name": member.cluster,
        "arn": member.cluster_arn,
        "vpcId": member.vpc_id,
        "tags": [{"key": "environment", "value": "staging"}, {"key": "owner", "value": "platform"}],
        "createdAt": round(member.cluster_created_at.timestamp(), 3),
    }
    return event

"""The lab VPC's endpoints: SSM's three interface endpoints (one security group) and the S3 gateway endpoint.

Why the lab has them: a private EKS VPC reaches Systems Manager and S3 through endpoints, and node isolation
keeps egress to exactly those (actions/containment/ec2_network.py) instead of tcp/443 to anywhere. They are
real moto resources, read back by the product through DescribeVpcEndpoints and DescribePrefixLists.
"""

from __future__ import annotations

from typing import Any

SSM_SERVICES = ("ssm", "ssmmessages", "ec2messages")


def seed_vpc_endpoints(ec2: Any, region: str, vpc_id: str, subnets: list[str], node_sg: str) -> str:
    """Create the endpoints; return the endpoints' security group id. Raises botocore errors."""
    sg = ec2.create_security_group(
        GroupName="eks-lab-vpc-endpoints", Description="SSM interface endpoints", VpcId=vpc_id
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": node_sg}]}
        ],
    )
    for service in SSM_SERVICES:
        ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"com.amazonaws.{region}.{service}",
            VpcEndpointType="Interface",
            SubnetIds=subnets,
            SecurityGroupIds=[sg],
            PrivateDnsEnabled=True,
        )
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"com.amazonaws.{region}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[t["RouteTableId"] for t in tables],
    )
    return str(sg)

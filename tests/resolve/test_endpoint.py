"""A private-only cluster endpoint is detected; the note says from where it is reached (moto's EKS)."""

from __future__ import annotations

import pytest

from eksir.cli.reach import explained
from eksir.errors import UnreachableError
from eksir.lab.moto_server import AwsEndpoint
from eksir.resolve.endpoint import endpoint_reach, reach_of


def _cluster(moto_server: AwsEndpoint, name: str, **vpc: object) -> None:
    ec2 = moto_server.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{name}-sg", Description="cp", VpcId=vpc_id)["GroupId"]
    moto_server.client("eks").create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": [subnet], "securityGroupIds": [group], **vpc},
    )


def test_a_private_only_endpoint_is_reported_with_its_vpc_subnets_and_groups(
    moto_server: AwsEndpoint,
) -> None:
    _cluster(moto_server, "private-only", endpointPublicAccess=False, endpointPrivateAccess=True)
    reach = endpoint_reach(moto_server.client("eks"), "private-only")
    assert reach.private_only
    note = reach.note()
    assert note is not None
    assert reach.vpc_id is None  # moto's DescribeCluster omits vpcId (AWS returns it): the note says "?"
    assert "worker inside VPC ?" in note
    assert reach.security_group_ids
    assert all(group in note for group in reach.security_group_ids)
    assert all(subnet in note for subnet in reach.subnet_ids)
    assert "worker inside VPC" in note


def test_a_public_endpoint_needs_no_note_and_a_restricted_one_names_its_cidrs(
    moto_server: AwsEndpoint,
) -> None:
    _cluster(moto_server, "public-open")
    assert endpoint_reach(moto_server.client("eks"), "public-open").note() is None
    restricted = reach_of("c", {"resourcesVpcConfig": {"publicAccessCidrs": ["203.0.113.0/24"]}})
    assert restricted.note() == (
        "cluster c's public endpoint admits only 203.0.113.0/24: run eksir from one of those addresses "
        "(or from inside the VPC if the private endpoint is on)"
    )


def test_an_unreachable_cluster_error_carries_the_route() -> None:
    vpc = {"endpointPublicAccess": False, "endpointPrivateAccess": True}
    note = reach_of("x", {"resourcesVpcConfig": vpc}).note()
    with (
        pytest.raises(UnreachableError, match="timed out; cluster x's API endpoint is private only"),
        explained(note),
    ):
        raise UnreachableError("timed out")
    with pytest.raises(UnreachableError, match=r"^timed out$"), explained(None):
        raise UnreachableError("timed out")

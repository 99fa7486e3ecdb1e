"""EKS managed node groups in resolution: the Auto Scaling group from DescribeNodegroup (moto's EKS) when Auto
Scaling itself does not say, found from the node label or the instance tag `eks:nodegroup-name`."""

from __future__ import annotations

from typing import Any

from eksir.models.resolution import InstanceInfo, NodeInfo
from eksir.resolve.nodegroup import with_nodegroup
from tests.resolve.conftest import AwsClients

CLUSTER, GROUP = "prod", "ng-general"


def _managed_group(aws: AwsClients) -> str:
    ec2, eks, iam = aws("ec2"), aws("eks"), aws("iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    role = iam.create_role(RoleName="eks", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    eks.create_cluster(name=CLUSTER, roleArn=role, resourcesVpcConfig={"subnetIds": [subnet]})
    group = eks.create_nodegroup(clusterName=CLUSTER, nodegroupName=GROUP, nodeRole=role, subnets=[subnet])
    return str(group["nodegroup"]["resources"]["autoScalingGroups"][0]["name"])


def _node(**labels: str) -> NodeInfo:
    return NodeInfo(name="ip-10-0-1-5.ec2.internal", instance_id="i-0123456789abcdef0", labels=labels)


def test_the_node_label_leads_to_the_managed_groups_auto_scaling_group(aws: AwsClients) -> None:
    asg = _managed_group(aws)
    notes: list[str] = []
    node = _node(**{"eks.amazonaws.com/nodegroup": GROUP}).model_copy(update={"nodegroup": GROUP})
    _, instance = with_nodegroup(aws("eks"), CLUSTER, node, InstanceInfo(instance_id=node.instance_id), notes)
    assert instance.autoscaling_group == asg
    assert instance.nodegroup == GROUP
    assert notes == []


def test_the_instance_tag_alone_is_enough_and_names_the_node_group(aws: AwsClients) -> None:
    asg = _managed_group(aws)
    tagged = InstanceInfo(instance_id="i-0123456789abcdef0", nodegroup=GROUP)
    node, instance = with_nodegroup(aws("eks"), CLUSTER, _node(), tagged, [])
    assert (node.nodegroup, instance.autoscaling_group) == (GROUP, asg)


def test_a_group_auto_scaling_named_is_kept_and_no_node_group_means_no_call(aws: AwsClients) -> None:
    known = InstanceInfo(instance_id="i-0123456789abcdef0", autoscaling_group="mine", nodegroup=GROUP)
    assert with_nodegroup(_Refuse(), CLUSTER, _node(), known, [])[1].autoscaling_group == "mine"
    plain = InstanceInfo(instance_id="i-0123456789abcdef0")
    assert with_nodegroup(_Refuse(), CLUSTER, _node(), plain, [])[1].autoscaling_group is None


def test_an_unknown_node_group_becomes_a_note_not_a_failure(aws: AwsClients) -> None:
    _managed_group(aws)
    notes: list[str] = []
    tagged = InstanceInfo(instance_id="i-0123456789abcdef0", nodegroup="gone")
    _, instance = with_nodegroup(aws("eks"), CLUSTER, _node(), tagged, notes)
    assert instance.autoscaling_group is None
    assert len(notes) == 1
    assert "gone" in notes[0]


class _Refuse:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"no EKS call expected ({name})")

"""ec2.enable_termination_protection, asg.protect_instance and ec2.isolate_instance against moto's EC2/ASG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from botocore.stub import Stubber

from eksir.actions.base import ActionContext
from eksir.actions.containment.ec2_isolation import IsolateInstanceParams
from eksir.actions.containment.ec2_node import (
    AsgProtectParams,
    EnableTerminationProtection,
    InstanceParams,
    IsolateInstance,
    ProtectInstanceFromScaleIn,
)
from eksir.errors import PermissionDeniedError, TemporaryError
from tests.actions.conftest import CASE_ID, boto_client, make_ctx, stubbed


@dataclass(frozen=True)
class Node:
    instance_id: str
    vpc_id: str
    subnet_id: str
    app_group: str
    enis: tuple[str, ...]


def _ami(ec2: Any) -> str:
    return "ami-12c6146b"  # one of moto's built-in images; listing them all is slow


def _groups_by_eni(ec2: Any, instance_id: str) -> dict[str, list[str]]:
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis}


@pytest.fixture
def node(moto: Any) -> Node:
    """A worker node with two ENIs, the secondary in two security groups (as VPC CNI nodes often are)."""
    ec2 = boto_client(moto, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    node_sg = ec2.create_security_group(GroupName="node", Description="node", VpcId=vpc)["GroupId"]
    app_sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    # Groups on the network interface, not the instance: moto would otherwise report the instance's launch
    # groups on every ENI forever (real EC2 derives them from the primary ENI).
    instance = ec2.run_instances(
        ImageId=_ami(ec2),
        MinCount=1,
        MaxCount=1,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [node_sg]}],
    )["Instances"][0]["InstanceId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[node_sg, app_sg])["NetworkInterface"]
    ec2.attach_network_interface(
        NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=instance, DeviceIndex=1
    )
    enis = tuple(_groups_by_eni(ec2, instance))
    return Node(instance, vpc, subnet, app_sg, enis)


def test_termination_protection_is_enabled_and_read_back(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    params = InstanceParams(instance_id=node.instance_id)
    applied = EnableTerminationProtection().apply(aws_ctx, params)
    ec2 = boto_client(moto, "ec2")
    attr = ec2.describe_instance_attribute(InstanceId=node.instance_id, Attribute="disableApiTermination")
    assert attr["DisableApiTermination"]["Value"] is True
    assert applied["previous"] is False
    assert EnableTerminationProtection().verify(aws_ctx, params, applied).ok


def test_termination_protection_twice_is_a_no_op_and_rollback_restores_it(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    action, params = EnableTerminationProtection(), InstanceParams(instance_id=node.instance_id)
    applied = action.apply(aws_ctx, params)
    assert action.check(aws_ctx, params).already_applied
    assert action.apply(aws_ctx, params)["previous"] is True
    action.rollback(aws_ctx, params, applied)
    attr = boto_client(moto, "ec2").describe_instance_attribute(
        InstanceId=node.instance_id, Attribute="disableApiTermination"
    )
    assert attr["DisableApiTermination"]["Value"] is False


def test_spot_instances_are_refused_by_check_not_by_an_exception(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    ec2 = boto_client(moto, "ec2")
    spot = ec2.run_instances(
        ImageId=_ami(ec2),
        MinCount=1,
        MaxCount=1,
        SubnetId=node.subnet_id,
        InstanceMarketOptions={"MarketType": "spot"},
    )["Instances"][0]["InstanceId"]
    outcome = EnableTerminationProtection().check(aws_ctx, InstanceParams(instance_id=spot))
    assert not outcome.ok
    assert "Spot" in outcome.detail


def test_check_reports_a_missing_instance(aws_ctx: ActionContext, node: Node) -> None:
    outcome = EnableTerminationProtection().check(aws_ctx, InstanceParams(instance_id="i-0123456789abcdef0"))
    assert not outcome.ok


@pytest.mark.parametrize(
    ("code", "error"),
    [("RequestLimitExceeded", TemporaryError), ("UnauthorizedOperation", PermissionDeniedError)],
)
def test_ec2_faults_become_eksir_errors(code: str, error: type[Exception]) -> None:
    ec2 = stubbed("ec2")
    stub, iid = Stubber(ec2), "i-0123456789abcdef0"
    attr = {"InstanceId": iid, "DisableApiTermination": {"Value": False}}
    stub.add_response("describe_instance_attribute", attr)  # the mark, the tags, the mark, the tags again
    stub.add_response("describe_tags", {"Tags": []})
    stub.add_response("describe_instance_attribute", attr)
    stub.add_response("describe_tags", {"Tags": []})
    stub.add_response("create_tags", {})  # the case's hold and the note, before the change
    stub.add_response("describe_instance_attribute", attr)
    stub.add_client_error("modify_instance_attribute", service_error_code=code, http_status_code=400)
    with stub, pytest.raises(error):
        EnableTerminationProtection().apply(
            make_ctx(aws=lambda _s: ec2), InstanceParams(instance_id="i-0123456789abcdef0")
        )


@pytest.fixture
def asg_instance(moto: Any, node: Node) -> AsgProtectParams:
    asg = boto_client(moto, "autoscaling")
    asg.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId=_ami(boto_client(moto, "ec2")), InstanceType="t3.micro"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="eks-ng",
        LaunchConfigurationName="lc",
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=node.subnet_id,
    )
    instance = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["eks-ng"])["AutoScalingGroups"][0][
        "Instances"
    ][0]["InstanceId"]
    return AsgProtectParams(autoscaling_group="eks-ng", instance_id=instance)


def _scale_in_protected(moto: Any, instance_id: str) -> bool:
    found = boto_client(moto, "autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    return bool(found["AutoScalingInstances"][0]["ProtectedFromScaleIn"])


def test_scale_in_protection_is_set_verified_and_rolled_back(
    aws_ctx: ActionContext, moto: Any, asg_instance: AsgProtectParams
) -> None:
    action = ProtectInstanceFromScaleIn()
    applied = action.apply(aws_ctx, asg_instance)
    assert _scale_in_protected(moto, asg_instance.instance_id)
    assert action.verify(aws_ctx, asg_instance, applied).ok
    assert action.apply(aws_ctx, asg_instance)["previous"] is True
    action.rollback(aws_ctx, asg_instance, applied)
    assert not _scale_in_protected(moto, asg_instance.instance_id)


def test_scale_in_check_refuses_an_instance_of_another_group(
    aws_ctx: ActionContext, asg_instance: AsgProtectParams
) -> None:
    params = AsgProtectParams(autoscaling_group="other", instance_id=asg_instance.instance_id)
    assert not ProtectInstanceFromScaleIn().check(aws_ctx, params).ok


def _isolation_group(moto: Any, vpc_id: str) -> list[dict[str, Any]]:
    return list(
        boto_client(moto, "ec2").describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [f"eksir-isolation-{CASE_ID}"]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )["SecurityGroups"]
    )


def test_isolation_moves_every_eni_to_a_case_group_with_no_egress_when_the_vpc_has_no_endpoints(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    params = IsolateInstanceParams(instance_id=node.instance_id)
    applied = IsolateInstance().apply(aws_ctx, params)
    [group] = _isolation_group(moto, node.vpc_id)
    assert group["IpPermissions"] == []
    assert group["IpPermissionsEgress"] == []  # never tcp/443 to 0.0.0.0/0: a reverse shell would survive
    assert {t["Key"]: t["Value"] for t in group["Tags"]}["eksir.io/case-id"] == CASE_ID
    assert _groups_by_eni(boto_client(moto, "ec2"), node.instance_id) == {
        e: [group["GroupId"]] for e in node.enis
    }
    assert IsolateInstance().verify(aws_ctx, params, applied).ok


def test_isolation_without_ssm_egress_leaves_no_egress_at_all(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    IsolateInstance().apply(
        aws_ctx, IsolateInstanceParams(instance_id=node.instance_id, keep_ssm_egress=False)
    )
    [group] = _isolation_group(moto, node.vpc_id)
    assert group["IpPermissionsEgress"] == []


def test_isolating_twice_records_the_true_original_groups(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    before = _groups_by_eni(boto_client(moto, "ec2"), node.instance_id)
    params = IsolateInstanceParams(instance_id=node.instance_id)
    first = IsolateInstance().apply(aws_ctx, params)
    second = IsolateInstance().apply(aws_ctx, params)
    assert {k: sorted(v) for k, v in second["original_groups"].items()} == before
    assert second == first
    assert len(_isolation_group(moto, node.vpc_id)) == 1


def test_rollback_restores_each_eni_and_deletes_the_isolation_group(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    ec2 = boto_client(moto, "ec2")
    before = _groups_by_eni(ec2, node.instance_id)
    params = IsolateInstanceParams(instance_id=node.instance_id)
    applied = IsolateInstance().apply(aws_ctx, params)
    IsolateInstance().rollback(aws_ctx, params, applied)
    assert _groups_by_eni(ec2, node.instance_id) == before
    assert _isolation_group(moto, node.vpc_id) == []


def test_verify_fails_when_an_eni_is_moved_back_by_someone_else(
    aws_ctx: ActionContext, moto: Any, node: Node
) -> None:
    params = IsolateInstanceParams(instance_id=node.instance_id)
    applied = IsolateInstance().apply(aws_ctx, params)
    boto_client(moto, "ec2").modify_network_interface_attribute(
        NetworkInterfaceId=node.enis[1], Groups=[node.app_group]
    )
    outcome = IsolateInstance().verify(aws_ctx, params, applied)
    assert not outcome.ok
    assert node.enis[1] in outcome.detail


def test_isolation_plan_shows_each_eni_and_warns_about_tracked_connections(
    aws_ctx: ActionContext, node: Node
) -> None:
    planned = IsolateInstance().plan(aws_ctx, IsolateInstanceParams(instance_id=node.instance_id))
    assert all(any(eni in line for line in planned.diff) for eni in node.enis)
    assert any("tracked" in w for w in planned.warnings)
    assert (
        not IsolateInstance()
        .check(aws_ctx, IsolateInstanceParams(instance_id=node.instance_id))
        .already_applied
    )

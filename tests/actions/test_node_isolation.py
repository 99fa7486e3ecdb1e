"""Node isolation without holes, on moto as a server: every rule read back per ENI.

Limits, stated: moto keeps no connection-tracking table, so that tracked flows are cut cannot be shown here;
what is shown is that each ENI is moved through an allow-all group before the isolation group (the sequence
AWSSupport-ContainEC2Instance uses, per the EC2 user guide on connection tracking), read from the calls the
action makes. Whether the metadata service answers cannot be shown either: the options are read back.
"""

from __future__ import annotations

from typing import Any

import pytest

from eksir.actions.base import ActionContext
from eksir.actions.containment.ec2_hardening import DisableMetadata, TightenIsolation
from eksir.actions.containment.ec2_isolation import IsolateInstance, IsolateInstanceParams
from eksir.actions.containment.ec2_nacl import DenySubnetNacl
from eksir.actions.containment.ec2_network import TRUNK_TAG, rule_atoms
from eksir.actions.containment.ec2_node import InstanceParams
from eksir.errors import RefusedError
from tests.actions.conftest import CASE_ID, boto_client, make_ctx
from tests.actions.test_ec2_node import Node, _groups_by_eni, node  # noqa: F401 (the fixture)


@pytest.fixture
def endpoints(moto: Any, node: Node) -> dict[str, str]:  # noqa: F811
    """The VPC's SSM interface endpoints (one group) and S3 gateway endpoint, as a private EKS VPC has."""
    ec2 = boto_client(moto, "ec2")
    sg = ec2.create_security_group(GroupName="vpce", Description="endpoints", VpcId=node.vpc_id)["GroupId"]
    for service in ("ssm", "ssmmessages", "ec2messages"):
        ec2.create_vpc_endpoint(
            VpcId=node.vpc_id,
            ServiceName=f"com.amazonaws.us-east-1.{service}",
            VpcEndpointType="Interface",
            SubnetIds=[node.subnet_id],
            SecurityGroupIds=[sg],
        )
    table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [node.vpc_id]}])["RouteTables"][0]
    ec2.create_vpc_endpoint(
        VpcId=node.vpc_id,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[table["RouteTableId"]],
    )
    [s3] = ec2.describe_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}]
    )["PrefixLists"]
    return {"group": sg, "prefix_list": s3["PrefixListId"]}


@pytest.fixture
def branch(moto: Any, node: Node) -> str:  # noqa: F811
    """A pod's branch ENI (security groups for pods): its own group, tagged with the node's trunk ENI."""
    ec2 = boto_client(moto, "ec2")
    pod_sg = ec2.create_security_group(GroupName="pod", Description="pod", VpcId=node.vpc_id)["GroupId"]
    eni = ec2.create_network_interface(
        SubnetId=node.subnet_id,
        Groups=[pod_sg],
        TagSpecifications=[
            {"ResourceType": "network-interface", "Tags": [{"Key": TRUNK_TAG, "Value": node.enis[0]}]}
        ],
    )["NetworkInterface"]
    return str(eni["NetworkInterfaceId"])


def _rules_of(ec2: Any, group_ids: list[str]) -> list[dict[str, Any]]:
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    return [rule for g in groups for rule in g["IpPermissionsEgress"]]


def _egress_per_eni(ec2: Any, eni_ids: list[str]) -> dict[str, set[tuple[Any, ...]]]:
    """Every egress rule each ENI is subject to, read back from its groups."""
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]
    return {
        e["NetworkInterfaceId"]: rule_atoms(_rules_of(ec2, [g["GroupId"] for g in e["Groups"]])) for e in enis
    }


@pytest.mark.usefixtures("branch")
def test_egress_goes_only_to_the_ssm_endpoints_and_the_s3_prefix_list_on_every_eni(
    aws_ctx: ActionContext,
    moto: Any,
    node: Node,  # noqa: F811
    endpoints: dict[str, str],
    branch: str,
) -> None:
    params = IsolateInstanceParams(instance_id=node.instance_id)
    applied = IsolateInstance().apply(aws_ctx, params)
    ec2 = boto_client(moto, "ec2")
    expected = {
        ("tcp", 443, 443, "group", endpoints["group"]),
        ("tcp", 443, 443, "prefix-list", endpoints["prefix_list"]),
    }
    assert _egress_per_eni(ec2, [*node.enis, branch]) == {eni: expected for eni in [*node.enis, branch]}
    outcome = IsolateInstance().verify(aws_ctx, params, applied)
    assert outcome.ok, outcome.detail
    assert branch in outcome.observed["enis"]


def test_each_eni_passes_through_an_allow_all_group_that_is_gone_afterwards(
    moto: Any,
    node: Node,  # noqa: F811
) -> None:
    ec2 = boto_client(moto, "ec2")
    moves: list[tuple[str, list[str]]] = []

    def record(params: dict[str, Any], **_kw: Any) -> None:
        moves.append((params["NetworkInterfaceId"], list(params["Groups"])))

    ec2.meta.events.register("provide-client-params.ec2.ModifyNetworkInterfaceAttribute", record)
    ctx = make_ctx(aws=lambda _service: ec2)
    IsolateInstance().apply(ctx, IsolateInstanceParams(instance_id=node.instance_id))
    names = {g["GroupId"]: g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    for eni in node.enis:
        path = [groups for moved, groups in moves if moved == eni]
        assert len(path) == 2
        assert path[1] == [next(k for k, v in names.items() if v == f"eksir-isolation-{CASE_ID}")]
        assert path[0] not in (path[1],)
    assert f"eksir-allow-all-{CASE_ID}" not in names.values()


def test_verify_fails_when_someone_opens_the_isolation_group_to_anywhere(
    aws_ctx: ActionContext,
    moto: Any,
    node: Node,  # noqa: F811
    endpoints: dict[str, str],
) -> None:
    params = IsolateInstanceParams(instance_id=node.instance_id)
    applied = IsolateInstance().apply(aws_ctx, params)
    boto_client(moto, "ec2").authorize_security_group_egress(
        GroupId=applied["security_group_id"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    outcome = IsolateInstance().verify(aws_ctx, params, applied)
    assert not outcome.ok
    assert "anywhere" in outcome.detail


def test_rollback_restores_every_eni_including_the_pods_branch_eni(
    aws_ctx: ActionContext,
    moto: Any,
    node: Node,  # noqa: F811
    endpoints: dict[str, str],
    branch: str,
) -> None:
    ec2 = boto_client(moto, "ec2")
    before = {
        e["NetworkInterfaceId"]: e["Groups"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    params = IsolateInstanceParams(instance_id=node.instance_id)
    applied = IsolateInstance().apply(aws_ctx, params)
    IsolateInstance().rollback(aws_ctx, params, applied)
    after = {
        e["NetworkInterfaceId"]: e["Groups"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    assert after == before
    names = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    assert not [n for n in names if n.startswith("eksir-")]


@pytest.fixture
def isolated(aws_ctx: ActionContext, node: Node, endpoints: dict[str, str]) -> dict[str, Any]:  # noqa: F811
    return IsolateInstance().apply(aws_ctx, IsolateInstanceParams(instance_id=node.instance_id))


def test_tightening_leaves_no_egress_and_rollback_gives_the_endpoints_back(
    aws_ctx: ActionContext,
    moto: Any,
    node: Node,  # noqa: F811
    isolated: dict[str, Any],
) -> None:
    ec2, params, action = (
        boto_client(moto, "ec2"),
        InstanceParams(instance_id=node.instance_id),
        TightenIsolation(),
    )
    assert not action.check(aws_ctx, params).already_applied
    applied = action.apply(aws_ctx, params)
    assert _egress_per_eni(ec2, list(node.enis)) == {eni: set() for eni in node.enis}
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    action.rollback(aws_ctx, params, applied)
    assert rule_atoms(_rules_of(ec2, [isolated["security_group_id"]])) == rule_atoms(isolated["egress"])
    assert not action.verify(aws_ctx, params, applied).ok


def test_tightening_before_isolation_is_refused_by_check(
    aws_ctx: ActionContext,
    node: Node,  # noqa: F811
) -> None:
    outcome = TightenIsolation().check(aws_ctx, InstanceParams(instance_id=node.instance_id))
    assert not outcome.ok
    assert "isolate_instance" in outcome.detail


def _metadata(moto: Any, instance_id: str) -> dict[str, Any]:
    found = boto_client(moto, "ec2").describe_instances(InstanceIds=[instance_id])
    return dict(found["Reservations"][0]["Instances"][0]["MetadataOptions"])


def test_the_metadata_endpoint_is_disabled_once_and_rollback_restores_it(
    aws_ctx: ActionContext,
    moto: Any,
    node: Node,  # noqa: F811
) -> None:
    params, action = InstanceParams(instance_id=node.instance_id), DisableMetadata()
    applied = action.apply(aws_ctx, params)
    assert _metadata(moto, node.instance_id)["HttpEndpoint"] == "disabled"
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    assert action.apply(aws_ctx, params) == applied  # the originals were kept on the instance
    action.rollback(aws_ctx, params, applied)
    assert _metadata(moto, node.instance_id)["HttpEndpoint"] == "enabled"
    assert not action.verify(aws_ctx, params, applied).ok


def test_a_dry_run_context_changes_nothing(moto: Any, node: Node) -> None:  # noqa: F811
    ctx = make_ctx(aws=lambda service: boto_client(moto, service), dry_run=True)
    with pytest.raises(RefusedError, match="dry run"):
        DisableMetadata().apply(ctx, InstanceParams(instance_id=node.instance_id))
    assert _metadata(moto, node.instance_id)["HttpEndpoint"] == "enabled"


def _acl_of(ec2: Any, subnet: str) -> str:
    [acl] = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "NetworkAcls"
    ]
    return str(acl["NetworkAclId"])


def test_the_subnet_nacl_shows_its_blast_radius_denies_all_and_rolls_back(
    aws_ctx: ActionContext,
    moto: Any,
    node: Node,  # noqa: F811
) -> None:
    ec2, params, action = (
        boto_client(moto, "ec2"),
        InstanceParams(instance_id=node.instance_id),
        DenySubnetNacl(),
    )
    neighbour = ec2.create_network_interface(SubnetId=node.subnet_id, Description="another pod host")
    before = _acl_of(ec2, node.subnet_id)
    planned = action.plan(aws_ctx, params)
    assert any(neighbour["NetworkInterface"]["NetworkInterfaceId"] in line for line in planned.blast_radius)
    applied = action.apply(aws_ctx, params)
    assert _acl_of(ec2, node.subnet_id) == applied["acl_id"] != before
    assert action.verify(aws_ctx, params, applied).ok
    assert action.check(aws_ctx, params).already_applied
    assert action.apply(aws_ctx, params) == applied
    action.rollback(aws_ctx, params, applied)
    assert _acl_of(ec2, node.subnet_id) == before
    assert not action.verify(aws_ctx, params, applied).ok

"""What node isolation reads from the VPC: the node's ENIs (branch ENIs included), the SSM path, the groups.

Why branch ENIs: a pod with its own security groups (security groups for pods) sends its traffic through a
branch ENI that is checked against *its* groups, not the node's (EKS user guide, security-groups-for-pods).
The VPC resource controller tags each branch ENI with its trunk (`vpcresources.k8s.aws/trunk-eni-id`); the
trunk is one of the node's attached ENIs. Why the SSM path is the VPC's endpoints and not 443 to anywhere:
an isolation group with tcp/443 to 0.0.0.0/0 keeps every reverse shell over 443 alive. SSM Run Command needs
`ssm`, `ssmmessages` and `ec2messages` (Systems Manager user guide, setting-up-messageAPIs), and uploads of
the capture need S3: egress to the interface endpoints' security groups and to the S3 gateway endpoint's
prefix list is enough, and reaches nothing else. DNS to the VPC resolver and the instance metadata service
are not filtered by security groups (EC2 user guide, security-group-rules; instance-metadata-limiting-access):
the metadata endpoint is switched off by its own step (ec2.disable_metadata).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from eksir.actions.base import ActionContext
from eksir.clients.aws import aws_call

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import (
        IpPermissionTypeDef,
        NetworkInterfaceTypeDef,
        PrefixListIdTypeDef,
        UserIdGroupPairTypeDef,
    )

SSM_SERVICES = ("ssm", "ssmmessages", "ec2messages")
TRUNK_TAG = "vpcresources.k8s.aws/trunk-eni-id"
ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class SsmPath:
    """The VPC endpoints an isolated node may still reach: SSM's interface endpoints and S3's gateway."""

    endpoint_groups: tuple[str, ...]
    s3_prefix_lists: tuple[str, ...]
    missing: tuple[str, ...]
    """SSM services with no interface endpoint in the VPC (Run Command cannot work through them)."""

    def describe(self) -> str:
        parts = [f"tcp/443 to endpoint group {g}" for g in self.endpoint_groups]
        parts += [f"tcp/443 to prefix list {p} (S3 gateway endpoint)" for p in self.s3_prefix_lists]
        return ", ".join(parts) or "none (the VPC has no SSM or S3 endpoints)"


def ssm_path(ctx: ActionContext, vpc_id: str) -> SsmPath:
    """The SSM interface endpoints' groups and the S3 gateway endpoint's prefix list in `vpc_id`."""
    ec2 = ctx.aws("ec2")
    with aws_call(f"list the VPC endpoints of {vpc_id}"):
        endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "VpcEndpoints"
        ]
    groups: list[str] = []
    found: set[str] = set()
    s3_services: list[str] = []
    for endpoint in endpoints:
        if endpoint.get("State", "available").lower() in ("deleted", "deleting", "failed", "rejected"):
            continue
        service = endpoint.get("ServiceName", "").rsplit(".", 1)[-1]
        if endpoint.get("VpcEndpointType") == "Interface" and service in SSM_SERVICES:
            found.add(service)
            groups += [g["GroupId"] for g in endpoint.get("Groups", []) if g.get("GroupId")]
        elif endpoint.get("VpcEndpointType") == "Gateway" and service == "s3":
            s3_services.append(endpoint["ServiceName"])
    prefix_lists: list[str] = []
    if s3_services:
        with aws_call("find the S3 prefix list"):
            found_lists = ec2.describe_prefix_lists(
                Filters=[{"Name": "prefix-list-name", "Values": sorted(set(s3_services))}]
            )["PrefixLists"]
        prefix_lists = [p["PrefixListId"] for p in found_lists if p.get("PrefixListId")]
    missing = tuple(s for s in SSM_SERVICES if s not in found)
    return SsmPath(tuple(sorted(set(groups))), tuple(sorted(set(prefix_lists))), missing)


def egress_rules(path: SsmPath) -> list[IpPermissionTypeDef]:
    """tcp/443 to the endpoint groups and the S3 prefix list; nothing else, never 0.0.0.0/0."""
    rules: list[IpPermissionTypeDef] = []
    note = "eksir: SSM Run Command through the VPC endpoints"
    if path.endpoint_groups:
        pairs: list[UserIdGroupPairTypeDef] = [
            {"GroupId": g, "Description": note} for g in path.endpoint_groups
        ]
        rules.append({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": pairs})
    if path.s3_prefix_lists:
        lists: list[PrefixListIdTypeDef] = [
            {"PrefixListId": p, "Description": "eksir: evidence uploads"} for p in path.s3_prefix_lists
        ]
        rules.append({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": lists})
    return rules


def rule_atoms(rules: Iterable[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
    """Rules as (protocol, from, to, kind, target) atoms: comparable however EC2 groups them, descriptions
    ignored (EC2 merges rules with the same protocol and ports into one entry)."""
    atoms: set[tuple[Any, ...]] = set()
    for rule in rules:
        head = (rule["IpProtocol"], rule.get("FromPort"), rule.get("ToPort"))
        atoms |= {(*head, "cidr", r["CidrIp"]) for r in rule.get("IpRanges", [])}
        atoms |= {(*head, "cidr6", r["CidrIpv6"]) for r in rule.get("Ipv6Ranges", [])}
        atoms |= {(*head, "group", p["GroupId"]) for p in rule.get("UserIdGroupPairs", [])}
        atoms |= {(*head, "prefix-list", p["PrefixListId"]) for p in rule.get("PrefixListIds", [])}
    return atoms


def open_to_anywhere(rules: Iterable[Mapping[str, Any]]) -> bool:
    return any(atom[4] in ANYWHERE for atom in rule_atoms(rules))


def strip_rules(rules: Sequence[Mapping[str, Any]]) -> list[IpPermissionTypeDef]:
    """Rules as Revoke*/Authorize* accept them (DescribeSecurityGroups adds fields some stacks reject).

    Each rule keeps only IpPermission's own keys, hence the cast: the filter is by name, not by type.
    """
    keep = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds")
    return [
        cast("IpPermissionTypeDef", {k: v for k, v in rule.items() if k in keep and v != []})
        for rule in rules
    ]


def attached_enis(ctx: ActionContext, instance_id: str) -> list[NetworkInterfaceTypeDef]:
    with aws_call(f"list network interfaces of {instance_id}"):
        pages = (
            ctx.aws("ec2")
            .get_paginator("describe_network_interfaces")
            .paginate(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
        )
        return [eni for page in pages for eni in page["NetworkInterfaces"]]


def branch_enis(ctx: ActionContext, trunk_ids: Sequence[str]) -> list[NetworkInterfaceTypeDef]:
    """Branch ENIs (security groups for pods) whose trunk is one of `trunk_ids`."""
    if not trunk_ids:
        return []
    with aws_call("list the branch network interfaces of the node's pods"):
        pages = (
            ctx.aws("ec2")
            .get_paginator("describe_network_interfaces")
            .paginate(Filters=[{"Name": f"tag:{TRUNK_TAG}", "Values": list(trunk_ids)}])
        )
        return [eni for page in pages for eni in page["NetworkInterfaces"]]


def node_enis(ctx: ActionContext, instance_id: str) -> tuple[list[NetworkInterfaceTypeDef], list[Any]]:
    """(attached ENIs, branch ENIs of pods on the node)."""
    attached = attached_enis(ctx, instance_id)
    ids = [e["NetworkInterfaceId"] for e in attached]
    known = set(ids)
    branches = [b for b in branch_enis(ctx, ids) if b["NetworkInterfaceId"] not in known]
    return attached, branches


def find_group(ctx: ActionContext, name: str, vpc_id: str) -> dict[str, Any] | None:
    with aws_call(f"find security group {name}"):
        groups = ctx.aws("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc_id]}]
        )["SecurityGroups"]
    return dict(groups[0]) if groups else None


def group_rules(ctx: ActionContext, group_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each group's ingress and egress rules, read back (missing groups are left out)."""
    if not group_ids:
        return {}
    with aws_call(f"read security groups {' '.join(group_ids)}"):
        groups = ctx.aws("ec2").describe_security_groups(
            Filters=[{"Name": "group-id", "Values": list(group_ids)}]
        )["SecurityGroups"]
    return {
        g["GroupId"]: {"ingress": g.get("IpPermissions", []), "egress": g.get("IpPermissionsEgress", [])}
        for g in groups
    }

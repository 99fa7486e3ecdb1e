"""`ec2.isolate_instance`: move every ENI of the node to a case-named isolation security group.

Why every ENI: VPC CNI nodes carry several ENIs (pod IPs live on the secondary ones), and changing only the
primary leaves pods reachable. Why per-ENI `ModifyNetworkInterfaceAttribute`:
`ModifyInstanceAttribute(Groups)` fails on multi-ENI instances. Why 443 egress by default: an egress-less
group also stops SSM Run Command, so volatile capture would become impossible; the responder can close it
(`keep_ssm_egress=false`) once capture is verified. The original groups of each ENI are tagged on the
isolation group before the ENI is touched, so a re-run after a crash restores the true originals, not the
isolation group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import Field

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    VerifyOutcome,
)
from eksir.actions.containment.casework import INSTANCE_ID_PATTERN, case_tags, require_live
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import IpPermissionTypeDef, NetworkInterfaceTypeDef

ORIGINAL_GROUPS_TAG = "eksir.io/original-groups:"
HTTPS_EGRESS: IpPermissionTypeDef = {
    "IpProtocol": "tcp",
    "FromPort": 443,
    "ToPort": 443,
    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "eksir: SSM Run Command for volatile capture"}],
}
ISOLATION_WARNINGS = (
    "security-group changes do not cut already tracked connections; add a NACL deny on the subnet to cut "
    "them at once",
    "the kubelet loses the API server: the node goes NotReady and its pods are evicted after about 300 s; "
    "`kubectl exec/logs` to this node stop working",
    "managed node groups with node auto repair replace nodes that stay NotReady: disable auto repair first",
)


def describe_instance(ctx: ActionContext, instance_id: str) -> dict[str, Any]:
    """DescribeInstances for one id; raises NotFoundError when it does not exist."""
    with aws_call(f"describe instance {instance_id}"):
        reservations = ctx.aws("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise NotFoundError(f"EC2 instance {instance_id} does not exist")
    return dict(instances[0])


class IsolateInstanceParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    keep_ssm_egress: bool = True


def group_name(ctx: ActionContext) -> str:
    return f"eksir-isolation-{ctx.case_id}"


def _enis(ctx: ActionContext, instance_id: str) -> list[NetworkInterfaceTypeDef]:
    with aws_call(f"list network interfaces of {instance_id}"):
        pages = (
            ctx.aws("ec2")
            .get_paginator("describe_network_interfaces")
            .paginate(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
        )
        return [eni for page in pages for eni in page["NetworkInterfaces"]]


def _find_group(ctx: ActionContext, vpc_id: str) -> dict[str, Any] | None:
    with aws_call(f"find security group {group_name(ctx)}"):
        groups = ctx.aws("ec2").describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [group_name(ctx)]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )["SecurityGroups"]
    return dict(groups[0]) if groups else None


def _rule_keys(rules: Sequence[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
    """Comparable form of security-group rules (protocol, ports, CIDRs), ignoring descriptions."""
    keys = set()
    for rule in rules:
        cidrs = tuple(sorted(r["CidrIp"] for r in rule.get("IpRanges", [])))
        cidrs6 = tuple(sorted(r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])))
        peers = tuple(sorted(p["GroupId"] for p in rule.get("UserIdGroupPairs", [])))
        keys.add((rule["IpProtocol"], rule.get("FromPort"), rule.get("ToPort"), cidrs, cidrs6, peers))
    return keys


def _strip_rules(rules: Sequence[Mapping[str, Any]]) -> list[IpPermissionTypeDef]:
    """Rules as Revoke* accepts them (DescribeSecurityGroups adds fields Revoke rejects on some stacks).

    Each rule keeps only IpPermission's own keys, hence the cast: the filter is by name, not by type.
    """
    keep = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "UserIdGroupPairs", "PrefixListIds")
    return [
        cast("IpPermissionTypeDef", {k: v for k, v in rule.items() if k in keep and v != []})
        for rule in rules
    ]


def _ensure_group(ctx: ActionContext, vpc_id: str, keep_ssm_egress: bool) -> dict[str, Any]:
    """Create (or reuse) the isolation group and make its rules exactly: no ingress, egress 443 or nothing."""
    ec2 = ctx.aws("ec2")
    group = _find_group(ctx, vpc_id)
    if group is None:
        with aws_call(f"create security group {group_name(ctx)} in {vpc_id}"):
            ec2.create_security_group(
                GroupName=group_name(ctx),
                Description=f"eksir isolation for case {ctx.case_id}: no ingress, egress 443 only or none",
                VpcId=vpc_id,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": case_tags(ctx, Name=group_name(ctx))}
                ],
            )
        group = _find_group(ctx, vpc_id)
        if group is None:
            raise NotFoundError(f"security group {group_name(ctx)} vanished right after creation")
    gid = group["GroupId"]
    desired = [HTTPS_EGRESS] if keep_ssm_egress else []
    with aws_call(f"set the rules of isolation group {gid}"):
        if group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=_strip_rules(group["IpPermissions"]))
        if _rule_keys(group.get("IpPermissionsEgress", [])) != _rule_keys(desired):
            if group.get("IpPermissionsEgress"):
                ec2.revoke_security_group_egress(
                    GroupId=gid, IpPermissions=_strip_rules(group["IpPermissionsEgress"])
                )
            if desired:
                ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=desired)
    return group


def _set_groups(ctx: ActionContext, instance_id: str, eni_id: str, groups: list[str], single: bool) -> None:
    """Replace an ENI's groups. On a single-ENI instance the instance's groups are set too: the same change
    on AWS, and moto otherwise keeps reporting the launch groups on the primary ENI."""
    with aws_call(f"set the groups of {eni_id} to {' '.join(groups)}"):
        ctx.aws("ec2").modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=groups)
        if single:
            ctx.aws("ec2").modify_instance_attribute(InstanceId=instance_id, Groups=groups)


def _group_tags(group: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


@register_action
class IsolateInstance(Action[IsolateInstanceParams]):
    spec = ActionSpec(
        id="ec2.isolate_instance",
        phase=Phase.CONTAINMENT,
        title="Isolate the node with a case security group on every ENI",
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:DeleteSecurityGroup",
        ),
        destructive=True,
        reversible=True,
    )
    params_type = IsolateInstanceParams

    def check(self, ctx: ActionContext, params: IsolateInstanceParams) -> CheckOutcome:
        try:
            instance = describe_instance(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        warnings = list(ISOLATION_WARNINGS)
        if not params.keep_ssm_egress:
            warnings.append("no egress at all also stops SSM Run Command: capture volatile evidence first")
        group = _find_group(ctx, instance["VpcId"])
        enis = _enis(ctx, params.instance_id)
        applied = group is not None and all(
            [g["GroupId"] for g in eni["Groups"]] == [group["GroupId"]] for eni in enis
        )
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} ({instance['State']['Name']}) has {len(enis)} ENI(s) "
            f"in {instance['VpcId']}",
            warnings=tuple(warnings),
            already_applied=applied,
        )

    def plan(self, ctx: ActionContext, params: IsolateInstanceParams) -> PlannedChange:
        instance = describe_instance(ctx, params.instance_id)
        diff = [
            f"+ security group {group_name(ctx)} in {instance['VpcId']}: no ingress, egress "
            + ("tcp/443 to 0.0.0.0/0 (SSM)" if params.keep_ssm_egress else "none")
        ]
        for eni in _enis(ctx, params.instance_id):
            current = " ".join(g["GroupId"] for g in eni["Groups"])
            diff += [
                f"- {eni['NetworkInterfaceId']}: {current}",
                f"+ {eni['NetworkInterfaceId']}: {group_name(ctx)}",
            ]
        return PlannedChange(
            summary=f"Isolate {params.instance_id} ({instance.get('PrivateDnsName', '')}) on every ENI",
            diff=tuple(diff),
            blast_radius=(
                f"every pod on node {instance.get('PrivateDnsName') or params.instance_id} loses "
                "network access, and the node leaves the cluster (NotReady)",
            ),
            warnings=ISOLATION_WARNINGS,
        )

    def apply(self, ctx: ActionContext, params: IsolateInstanceParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        ec2 = ctx.aws("ec2")
        vpc_id = describe_instance(ctx, params.instance_id)["VpcId"]
        group = _ensure_group(ctx, vpc_id, params.keep_ssm_egress)
        gid, recorded = group["GroupId"], _group_tags(group)
        originals: dict[str, list[str]] = {}
        enis = _enis(ctx, params.instance_id)
        for eni in enis:
            eni_id = eni["NetworkInterfaceId"]
            current = [g["GroupId"] for g in eni["Groups"]]
            if current == [gid]:
                originals[eni_id] = recorded.get(ORIGINAL_GROUPS_TAG + eni_id, "").split()
                continue
            originals[eni_id] = current
            with aws_call(f"record the groups of {eni_id} on {gid}"):
                ec2.create_tags(
                    Resources=[gid], Tags=[{"Key": ORIGINAL_GROUPS_TAG + eni_id, "Value": " ".join(current)}]
                )
            _set_groups(ctx, params.instance_id, eni_id, [gid], single=len(enis) == 1)
        return {
            "instance_id": params.instance_id,
            "vpc_id": vpc_id,
            "security_group_id": gid,
            "keep_ssm_egress": params.keep_ssm_egress,
            "original_groups": originals,
        }

    def verify(
        self, ctx: ActionContext, params: IsolateInstanceParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        gid = str(applied["security_group_id"])
        observed = {
            e["NetworkInterfaceId"]: [g["GroupId"] for g in e["Groups"]]
            for e in _enis(ctx, params.instance_id)
        }
        with aws_call(f"read isolation group {gid}"):
            group = ctx.aws("ec2").describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
        desired = [HTTPS_EGRESS] if params.keep_ssm_egress else []
        problems = [f"{eni} has {groups}" for eni, groups in observed.items() if groups != [gid]]
        if group.get("IpPermissions"):
            problems.append(f"{gid} allows ingress")
        if _rule_keys(group.get("IpPermissionsEgress", [])) != _rule_keys(desired):
            problems.append(f"{gid} egress differs from the isolation rules")
        return VerifyOutcome(
            ok=not problems and bool(observed),
            detail="; ".join(problems)
            or f"all {len(observed)} ENI(s) of {params.instance_id} are in {gid} only",
            observed={"enis": observed, "egress": group.get("IpPermissionsEgress", [])},
        )

    def rollback(self, ctx: ActionContext, params: IsolateInstanceParams, applied: dict[str, Any]) -> None:
        """Put each ENI back in its recorded groups, then delete the isolation group; skip ENIs gone."""
        require_live(ctx, self.spec)
        ec2 = ctx.aws("ec2")
        originals = {k: list(v) for k, v in dict(applied.get("original_groups", {})).items() if v}
        with aws_call("find the recorded network interfaces"):
            existing = {
                e["NetworkInterfaceId"]
                for e in ec2.describe_network_interfaces(
                    Filters=[{"Name": "network-interface-id", "Values": sorted(originals) or ["none"]}]
                )["NetworkInterfaces"]
            }
        single = len(_enis(ctx, params.instance_id)) == 1
        for eni_id, groups in originals.items():
            if eni_id in existing:
                _set_groups(ctx, params.instance_id, eni_id, groups, single=single and len(originals) == 1)
        try:
            with aws_call(f"delete isolation group {applied['security_group_id']}"):
                ec2.delete_security_group(GroupId=str(applied["security_group_id"]))
        except NotFoundError:
            pass

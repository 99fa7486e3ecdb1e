"""`ec2.deny_subnet_nacl` (opt-in, `--isolate-subnet`): the node's subnets get a deny-all network ACL.

Why: security groups are stateful; a flow that stays tracked (ICMP, anything through a NAT gateway, a load
balancer or a transit gateway) survives any group change. A network ACL is stateless, so the subnet's
traffic stops at once (EC2 user guide, security-group-connection-tracking). Why opt-in and loudly so: a NACL
applies to the whole subnet, so every other instance and pod in it is cut off as well; the plan lists them.
A new custom network ACL denies everything until rules are added (VPC user guide, custom network ACLs). The
subnet's previous ACL is tagged on ours before the association changes, so a re-run restores the original.
"""

from __future__ import annotations

from typing import Any

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    VerifyOutcome,
)
from eksir.actions.containment.casework import case_tags, require_live
from eksir.actions.containment.ec2_isolation import describe_instance
from eksir.actions.containment.ec2_network import attached_enis
from eksir.actions.containment.ec2_node import InstanceParams
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

ORIGINAL_ACL_TAG = "eksir.io/original-acl:"
DEFAULT_DENY_RULE = 32767
"""The `*` rule every network ACL ends with (deny); any other entry on our ACL would admit something."""


def acl_name(ctx: ActionContext) -> str:
    return f"eksir-deny-{ctx.case_id}"


def _subnets(ctx: ActionContext, instance_id: str) -> list[str]:
    return sorted({e["SubnetId"] for e in attached_enis(ctx, instance_id) if e.get("SubnetId")})


def _acls(ctx: ActionContext, subnets: list[str]) -> dict[str, tuple[str, str]]:
    """subnet -> (association id, network ACL id) for each subnet."""
    with aws_call(f"read the network ACLs of {' '.join(subnets)}"):
        acls = ctx.aws("ec2").describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": subnets or ["none"]}]
        )["NetworkAcls"]
    return {
        a["SubnetId"]: (a["NetworkAclAssociationId"], acl["NetworkAclId"])
        for acl in acls
        for a in acl.get("Associations", [])
        if a.get("SubnetId") in subnets
    }


def _our_acl(ctx: ActionContext, vpc_id: str) -> dict[str, Any] | None:
    with aws_call(f"find network ACL {acl_name(ctx)}"):
        found = ctx.aws("ec2").describe_network_acls(
            Filters=[{"Name": "tag:Name", "Values": [acl_name(ctx)]}, {"Name": "vpc-id", "Values": [vpc_id]}]
        )["NetworkAcls"]
    return dict(found[0]) if found else None


def _neighbours(ctx: ActionContext, subnets: list[str], instance_id: str) -> list[str]:
    """Every other network interface in the subnets: what the NACL cuts off besides the node."""
    with aws_call("list the network interfaces sharing the node's subnets"):
        enis = ctx.aws("ec2").describe_network_interfaces(
            Filters=[{"Name": "subnet-id", "Values": subnets or ["none"]}]
        )["NetworkInterfaces"]
    named = []
    for eni in enis:
        owner = eni.get("Attachment", {}).get("InstanceId")
        if owner != instance_id:
            named.append(f"{eni['NetworkInterfaceId']} ({owner or eni.get('Description') or 'unattached'})")
    return sorted(named)


@register_action
class DenySubnetNacl(Action[InstanceParams]):
    spec = ActionSpec(
        id="ec2.deny_subnet_nacl",
        phase=Phase.CONTAINMENT,
        title="Cut the node's subnets with a deny-all network ACL (stateless: tracked flows stop too)",
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeNetworkAcls",
            "ec2:CreateNetworkAcl",
            "ec2:CreateTags",
            "ec2:ReplaceNetworkAclAssociation",
            "ec2:DeleteNetworkAcl",
        ),
        destructive=True,
        reversible=True,
    )
    params_type = InstanceParams

    def check(self, ctx: ActionContext, params: InstanceParams) -> CheckOutcome:
        try:
            instance = describe_instance(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        subnets = _subnets(ctx, params.instance_id)
        ours = _our_acl(ctx, instance["VpcId"])
        current = _acls(ctx, subnets)
        applied = ours is not None and all(acl == ours["NetworkAclId"] for _a, acl in current.values())
        return CheckOutcome(
            ok=bool(subnets),
            detail=f"{params.instance_id} is in subnet(s) {', '.join(subnets) or 'none'}",
            warnings=("the whole subnet loses its network, not only the node",),
            already_applied=applied,
        )

    def plan(self, ctx: ActionContext, params: InstanceParams) -> PlannedChange:
        subnets = _subnets(ctx, params.instance_id)
        current = _acls(ctx, subnets)
        others = _neighbours(ctx, subnets, params.instance_id)
        diff = [
            f"~ subnet {s}: network ACL {current.get(s, ('', '?'))[1]} -> {acl_name(ctx)}" for s in subnets
        ]
        return PlannedChange(
            summary=f"Deny all traffic in subnet(s) {', '.join(subnets)} of {params.instance_id}",
            diff=(f"+ network ACL {acl_name(ctx)}: deny all in and out", *diff),
            blast_radius=(
                f"EVERY interface in {', '.join(subnets)}: {len(others)} besides the node's",
                *others[:20],
            ),
            warnings=("the whole subnet loses its network, not only the node",),
        )

    def apply(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        ec2 = ctx.aws("ec2")
        vpc_id = describe_instance(ctx, params.instance_id)["VpcId"]
        ours = _our_acl(ctx, vpc_id)
        if ours is None:
            with aws_call(f"create network ACL {acl_name(ctx)}"):
                tags = case_tags(ctx, Name=acl_name(ctx))
                ours = dict(
                    ec2.create_network_acl(
                        VpcId=vpc_id, TagSpecifications=[{"ResourceType": "network-acl", "Tags": tags}]
                    )["NetworkAcl"]
                )
        acl_id = ours["NetworkAclId"]
        recorded = {t["Key"]: t["Value"] for t in ours.get("Tags", [])}
        originals: dict[str, str] = {}
        for subnet, (association, current) in _acls(ctx, _subnets(ctx, params.instance_id)).items():
            if current == acl_id:
                originals[subnet] = recorded.get(ORIGINAL_ACL_TAG + subnet, "")
                continue
            originals[subnet] = current
            with aws_call(f"associate subnet {subnet} with {acl_id}"):
                ec2.create_tags(
                    Resources=[acl_id], Tags=[{"Key": ORIGINAL_ACL_TAG + subnet, "Value": current}]
                )
                ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)
        return {
            "instance_id": params.instance_id,
            "vpc_id": vpc_id,
            "acl_id": acl_id,
            "original_acls": originals,
        }

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        acl_id = str(applied["acl_id"])
        current = _acls(ctx, sorted(applied.get("original_acls", {})))
        problems = [f"subnet {s} uses {acl}" for s, (_a, acl) in current.items() if acl != acl_id]
        ours = _our_acl(ctx, str(applied["vpc_id"]))
        allows = [e for e in (ours or {}).get("Entries", []) if e.get("RuleAction") == "allow"]
        if ours is None:
            problems.append(f"network ACL {acl_id} is missing")
        elif allows:
            problems.append(f"network ACL {acl_id} has {len(allows)} allow entr(ies)")
        return VerifyOutcome(
            ok=not problems and bool(current),
            detail="; ".join(problems) or f"subnet(s) {', '.join(current)} deny all traffic ({acl_id})",
            observed={"associations": {s: acl for s, (_a, acl) in current.items()}},
        )

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        """Give each subnet its recorded ACL back, then delete ours."""
        require_live(ctx, self.spec)
        ec2 = ctx.aws("ec2")
        originals = {s: a for s, a in dict(applied.get("original_acls", {})).items() if a}
        for subnet, (association, _acl) in _acls(ctx, sorted(originals)).items():
            with aws_call(f"give subnet {subnet} its network ACL back"):
                ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=originals[subnet])
        try:
            with aws_call(f"delete network ACL {applied['acl_id']}"):
                ec2.delete_network_acl(NetworkAclId=str(applied["acl_id"]))
        except NotFoundError:
            pass

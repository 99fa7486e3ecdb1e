"""`ec2.deny_subnet_nacl` (opt-in, `--isolate-subnet`): the node's subnets get a deny-all network ACL.

Why: security groups are stateful; a flow that stays tracked (ICMP, anything through a NAT gateway, a load
balancer or a transit gateway) survives any group change. A network ACL is stateless, so the subnet's
traffic stops at once (EC2 user guide, security-group-connection-tracking). Why opt-in and loudly so: a NACL
applies to the whole subnet, so every other instance and pod in it is cut off as well; the plan lists them.
A new custom network ACL denies everything until rules are added (VPC user guide, custom network ACLs).

Several cases may cut one subnet (fleet mode: several incidents on its nodes), so the cut is a shared mark
(aws_holds.py): each case tags the subnet `eksir.io/hold/<case-id>` = `subnet-deny`, and the subnet's ACL
before eksir's first case is noted on the subnet (`eksir.io/network-acl-before`) in the same call, before the
association changes. A subnet already in a holding case's deny ACL stays there (they all deny everything); a
rollback that leaves holders hands the subnet from its ACL to another holder's, and only the last one gives
the subnet its noted ACL back, so one case's rollback never reopens a subnet another case still cuts.
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
from eksir.actions.containment.aws_holds import Ec2Tags, add_hold, drop_hold, holders, target_lock
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


ACL_PREFIX = "eksir-deny-"
NACL_MARK = "subnet-deny"
ACL_BEFORE_TAG = "eksir.io/network-acl-before"


def acl_name(ctx: ActionContext) -> str:
    return f"{ACL_PREFIX}{ctx.case_id}"


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


def _holder_acls(ctx: ActionContext, vpc_id: str, cases: list[str]) -> dict[str, dict[str, Any]]:
    """The deny ACLs of these cases in the VPC, by ACL id."""
    if not cases:
        return {}
    names = [f"{ACL_PREFIX}{c}" for c in cases]
    with aws_call(f"find the deny network ACLs of {len(names)} case(s)"):
        found = ctx.aws("ec2").describe_network_acls(
            Filters=[{"Name": "tag:Name", "Values": names}, {"Name": "vpc-id", "Values": [vpc_id]}]
        )["NetworkAcls"]
    return {a["NetworkAclId"]: dict(a) for a in found}


def _legacy_note(ctx: ActionContext, acl_id: str, subnet: str) -> str | None:
    """The subnet's original ACL as an eksir from before the per-case holds tagged it on its deny ACL."""
    with aws_call(f"read network ACL {acl_id}"):
        found = ctx.aws("ec2").describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"]
    tags = {t["Key"]: t["Value"] for acl in found for t in acl.get("Tags", [])}
    if not str(tags.get("Name", "")).startswith(ACL_PREFIX):
        return None
    return tags.get(ORIGINAL_ACL_TAG + subnet)


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
            "ec2:DescribeTags",
            "ec2:CreateTags",
            "ec2:DeleteTags",
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
        """Make this case's deny ACL, then hold each subnet: a subnet already in another holding case's deny
        ACL stays there (every deny ACL denies the same: all), any other is noted and moved to ours."""
        require_live(ctx, self.spec)
        vpc_id = describe_instance(ctx, params.instance_id)["VpcId"]
        ours = _our_acl(ctx, vpc_id)
        if ours is None:
            with aws_call(f"create network ACL {acl_name(ctx)}"):
                tags = case_tags(ctx, Name=acl_name(ctx))
                ours = dict(
                    ctx.aws("ec2").create_network_acl(
                        VpcId=vpc_id, TagSpecifications=[{"ResourceType": "network-acl", "Tags": tags}]
                    )["NetworkAcl"]
                )
        acl_id = ours["NetworkAclId"]
        originals = {
            subnet: self._hold_subnet(ctx, vpc_id, acl_id, subnet, found)
            for subnet, found in _acls(ctx, _subnets(ctx, params.instance_id)).items()
        }
        return {
            "instance_id": params.instance_id,
            "vpc_id": vpc_id,
            "acl_id": acl_id,
            "original_acls": originals,
        }

    def _hold_subnet(
        self, ctx: ActionContext, vpc_id: str, acl_id: str, subnet: str, found: tuple[str, str]
    ) -> str:
        """Hold one subnet for this case (tag, and the note of its ACL before eksir's first case, in one call)
        and move it to our ACL unless a deny ACL of eksir already cuts it; returns the noted ACL."""
        association, current = found
        target = Ec2Tags(ctx, subnet, "subnet")
        with target_lock(target):
            tags = target.read()
            holding = _holder_acls(ctx, vpc_id, holders(tags, NACL_MARK))
            note = tags.get(ACL_BEFORE_TAG) or _legacy_note(ctx, current, subnet) or current
            add_hold(target, tags, NACL_MARK, ctx.case_id, notes={ACL_BEFORE_TAG: note})
            if current != acl_id and current not in holding:
                with aws_call(f"associate subnet {subnet} with {acl_id}"):
                    ctx.aws("ec2").replace_network_acl_association(
                        AssociationId=association, NetworkAclId=acl_id
                    )
        return note

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        """This case holds every subnet, and each is in a deny ACL of a holding case (ours or another's) with
        no allow entry."""
        acl_id, vpc_id = str(applied["acl_id"]), str(applied["vpc_id"])
        current = _acls(ctx, sorted(applied.get("original_acls", {})))
        problems: list[str] = []
        for subnet, (_a, acl) in current.items():
            cases = holders(Ec2Tags(ctx, subnet, "subnet").read(), NACL_MARK)
            deny = _holder_acls(ctx, vpc_id, cases)
            if ctx.case_id not in cases:
                problems.append(f"case {ctx.case_id} does not hold subnet {subnet}")
            if acl not in deny:
                problems.append(f"subnet {subnet} uses {acl}")
            elif allows := [e for e in deny[acl].get("Entries", []) if e.get("RuleAction") == "allow"]:
                problems.append(f"network ACL {acl} has {len(allows)} allow entr(ies)")
        if _our_acl(ctx, vpc_id) is None:
            problems.append(f"network ACL {acl_id} is missing")
        return VerifyOutcome(
            ok=not problems and bool(current),
            detail="; ".join(problems) or f"subnet(s) {', '.join(current)} deny all traffic",
            observed={"associations": {s: acl for s, (_a, acl) in current.items()}},
        )

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        """Release each subnet (the last case gives it its noted ACL back, another case's deny ACL takes over
        from ours otherwise), then delete ours; it stays when a subnet could not be handed over."""
        require_live(ctx, self.spec)
        acl_id, vpc_id = str(applied["acl_id"]), str(applied.get("vpc_id", ""))
        originals = {s: a for s, a in dict(applied.get("original_acls", {})).items() if a}
        for subnet, found in _acls(ctx, sorted(originals)).items():
            self._release_subnet(ctx, vpc_id, subnet, found=found, recorded=originals[subnet])
        ours = _our_acl(ctx, vpc_id) if vpc_id else {"NetworkAclId": acl_id}
        if ours is None or ours.get("Associations"):
            return  # gone already, or a subnet could not be handed over: it keeps cutting that subnet
        try:
            with aws_call(f"delete network ACL {acl_id}"):
                ctx.aws("ec2").delete_network_acl(NetworkAclId=acl_id)
        except NotFoundError:
            pass

    def _release_subnet(
        self, ctx: ActionContext, vpc_id: str, subnet: str, *, found: tuple[str, str], recorded: str
    ) -> None:
        """Drop this case's hold on the subnet; the last hold gives it its noted ACL back, otherwise (or when
        a case held it in between) a remaining holder's deny ACL takes over where the subnet is not in one."""
        association, current = found
        target = Ec2Tags(ctx, subnet, "subnet")
        with target_lock(target):
            drop_hold(target, NACL_MARK, ctx.case_id)
            tags = target.read()
            others = holders(tags, NACL_MARK)
            if not others:
                note = tags.get(ACL_BEFORE_TAG) or recorded
                association = self._associate(ctx, subnet, association, current, note)
                current, others = note, holders(target.read(), NACL_MARK)
                if not others:
                    if ACL_BEFORE_TAG in tags:
                        target.delete([ACL_BEFORE_TAG])
                    return
            heirs = _holder_acls(ctx, vpc_id, others)
            if heirs and current not in heirs:
                self._associate(ctx, subnet, association, current, sorted(heirs)[0])

    @staticmethod
    def _associate(ctx: ActionContext, subnet: str, association: str, current: str, acl: str) -> str:
        """Give the subnet `acl` (when it has another); returns the association id, which a replace renews."""
        if current == acl:
            return association
        with aws_call(f"give subnet {subnet} the network ACL {acl}"):
            found = ctx.aws("ec2").replace_network_acl_association(
                AssociationId=association, NetworkAclId=acl
            )
        return str(found["NewAssociationId"])

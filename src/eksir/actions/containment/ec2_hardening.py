"""After capture: close what node isolation deliberately left open (`ec2.tighten_isolation`,
`ec2.disable_metadata`), and the opt-in subnet NACL (`ec2.deny_subnet_nacl`).

Why in this order: the isolation group keeps tcp/443 to the VPC's SSM endpoints so volatile capture can still
run; once capture is verified that egress is only a way out, so it goes. The instance metadata service is not
filtered by security groups (EC2 user guide, instance-metadata-limiting-access): a process on the node can
keep taking the node role's credentials from it, so `ModifyInstanceMetadataOptions(HttpEndpoint=disabled)`
switches it off (the SSM agent needs those credentials too: after capture only). Credentials already taken
stay valid until they expire (revoke the node role's sessions for that). A security group change leaves
tracked flows (ICMP, anything through a NAT gateway or load balancer) alive (EC2 user guide,
security-group-connection-tracking); a network ACL is stateless and cuts them, but for the whole subnet:
every other instance in it loses its network too, so it is a separate step the responder asks for.

Several cases may hold one node (fleet mode): the metadata endpoint is a shared mark (aws_holds.py). Each case
tags the instance `eksir.io/hold/<case-id>` (its value names `metadata-disabled`), the options before eksir's
first case (endpoint, token requirement, hop limit) are noted once in `eksir.io/metadata-options-before`, in
the same call and before the change, and only the rollback that removes the last hold restores them.
"""

from __future__ import annotations

import json
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
from eksir.actions.containment.aws_holds import AwsMark, InstanceTags, held, hold, release
from eksir.actions.containment.casework import require_live
from eksir.actions.containment.ec2_isolation import describe_instance, group_name, set_groups
from eksir.actions.containment.ec2_network import find_group, node_enis, rule_atoms, strip_rules
from eksir.actions.containment.ec2_node import InstanceParams
from eksir.actions.containment.isolation_holds import (
    GROUP_PREFIX,
    as_tight,
    holder_groups,
    isolation_holders,
    tightest,
)
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

METADATA_BEFORE_TAG = "eksir.io/metadata-options-before"
METADATA_KEYS = ("HttpEndpoint", "HttpTokens", "HttpPutResponseHopLimit")


def holding_groups(ctx: ActionContext, instance_id: str, vpc_id: str) -> list[dict[str, Any]]:
    """The isolation groups of every case holding the node's isolation."""
    cases = isolation_holders(InstanceTags(ctx, instance_id).read())
    return list(holder_groups(ctx, vpc_id, cases).values())


def gather(ctx: ActionContext, instance_id: str, group: dict[str, Any]) -> None:
    """Move the ENIs sitting in another case's isolation group that is looser than `group` into `group`
    (straight: they are isolated already). Several cases may hold one node (isolation_holds.py): the ENIs sit
    in one holder's group, and a case that tightens must not leave them where egress remains."""
    sealed = {g["GroupId"] for g in holding_groups(ctx, instance_id, group["VpcId"]) if as_tight(g, [])}
    attached, branches = node_enis(ctx, instance_id)
    for eni in [*attached, *branches]:
        current = [g["GroupId"] for g in eni["Groups"]]
        named = [str(g.get("GroupName", "")) for g in eni["Groups"]]
        if (
            len(current) == 1
            and named[0].startswith(GROUP_PREFIX)
            and current[0] not in sealed | {group["GroupId"]}
        ):
            set_groups(ctx, instance_id, eni["NetworkInterfaceId"], [group["GroupId"]],
                       single=len(attached) == 1 and eni in attached)  # fmt: skip


def _isolation_group(ctx: ActionContext, instance_id: str) -> dict[str, Any]:
    """The case's isolation group in the instance's VPC; NotFoundError when isolation has not run."""
    vpc_id = describe_instance(ctx, instance_id)["VpcId"]
    group = find_group(ctx, group_name(ctx), vpc_id)
    if group is None:
        raise NotFoundError(
            f"no isolation group {group_name(ctx)} in {vpc_id}: run ec2.isolate_instance first"
        )
    return group


@register_action
class TightenIsolation(Action[InstanceParams]):
    spec = ActionSpec(
        id="ec2.tighten_isolation",
        phase=Phase.CONTAINMENT,
        title="Remove the isolation group's last egress (the SSM endpoints) once capture is verified",
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeTags",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:ModifyInstanceAttribute",
        ),
        destructive=True,
        reversible=True,
    )
    params_type = InstanceParams

    def check(self, ctx: ActionContext, params: InstanceParams) -> CheckOutcome:
        try:
            group = _isolation_group(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        rules = group.get("IpPermissionsEgress", [])
        return CheckOutcome(
            ok=True,
            detail=f"{group['GroupId']} has {len(rules)} egress rule(s)",
            warnings=("SSM Run Command stops reaching the node: no later collection over SSM",),
            already_applied=not rules,
        )

    def plan(self, ctx: ActionContext, params: InstanceParams) -> PlannedChange:
        group = _isolation_group(ctx, params.instance_id)
        diff = tuple(
            f"- egress {json.dumps(r, sort_keys=True)}" for r in strip_rules(group["IpPermissionsEgress"])
        )
        return PlannedChange(
            summary=f"No egress at all from {params.instance_id} ({group['GroupId']})",
            diff=diff,
            blast_radius=(f"node {params.instance_id} only (already isolated)",),
        )

    def apply(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        group = _isolation_group(ctx, params.instance_id)
        before = strip_rules(group.get("IpPermissionsEgress", []))
        if before:
            with aws_call(f"revoke the egress of {group['GroupId']}"):
                ctx.aws("ec2").revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=before)
        gather(ctx, params.instance_id, group)
        return {"security_group_id": group["GroupId"], "egress_before": [dict(r) for r in before]}

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        """This case's group allows nothing, and every ENI sits alone in a holding case's isolation group
        that allows nothing (this case's own, or another case's when it was already as tight)."""
        gid = str(applied["security_group_id"])
        group = _isolation_group(ctx, params.instance_id)
        sealed = {
            g["GroupId"] for g in holding_groups(ctx, params.instance_id, group["VpcId"]) if as_tight(g, [])
        }
        attached, branches = node_enis(ctx, params.instance_id)
        elsewhere = [
            e["NetworkInterfaceId"]
            for e in [*attached, *branches]
            if len(e["Groups"]) != 1 or e["Groups"][0]["GroupId"] not in sealed | {gid}
        ]
        problems = [f"{gid} still has egress"] if group.get("IpPermissionsEgress") else []
        problems += [f"{gid} allows ingress"] if group.get("IpPermissions") else []
        problems += [f"{eni} is not alone in an isolation group without egress" for eni in elsewhere]
        return VerifyOutcome(
            ok=not problems,
            detail="; ".join(problems)
            or f"{gid} allows no traffic at all; every ENI is alone in such a group",
            observed={"egress": group.get("IpPermissionsEgress", []), "enis_elsewhere": elsewhere},
        )

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        """Give the isolation group back its recorded egress (group gone: nothing to restore)."""
        require_live(ctx, self.spec)
        before = list(applied.get("egress_before") or [])
        if not before:
            return
        try:
            group = _isolation_group(ctx, params.instance_id)
        except NotFoundError:
            return
        if group.get("IpPermissionsEgress"):
            return
        with aws_call(f"restore the egress of {group['GroupId']}"):
            ctx.aws("ec2").authorize_security_group_egress(GroupId=group["GroupId"], IpPermissions=before)
        yield_to_tighter(ctx, params.instance_id, group, before)


def yield_to_tighter(ctx: ActionContext, instance_id: str, group: dict[str, Any], egress: list[Any]) -> None:
    """After this case's group got its egress back: ENIs in it move to another holding case's group that
    allows less (one that was tightened too), so this rollback does not reopen what that case still seals."""
    others = [g for g in holding_groups(ctx, instance_id, group["VpcId"]) if g["GroupId"] != group["GroupId"]]
    heir = tightest(others)
    if (
        heir is None
        or not as_tight(heir, egress)
        or rule_atoms(heir.get("IpPermissionsEgress") or []) == rule_atoms(egress)
    ):
        return
    attached, branches = node_enis(ctx, instance_id)
    for eni in [*attached, *branches]:
        if [g["GroupId"] for g in eni["Groups"]] == [group["GroupId"]]:
            set_groups(ctx, instance_id, eni["NetworkInterfaceId"], [heir["GroupId"]],
                       single=len(attached) == 1 and eni in attached)  # fmt: skip


def _metadata_options(ctx: ActionContext, instance_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    instance = describe_instance(ctx, instance_id)
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    return dict(instance.get("MetadataOptions") or {}), tags


@register_action
class DisableMetadata(Action[InstanceParams]):
    spec = ActionSpec(
        id="ec2.disable_metadata",
        phase=Phase.CONTAINMENT,
        title="Switch off the node's instance metadata endpoint (node-role credentials) after capture",
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:ModifyInstanceMetadataOptions",
            "ec2:DescribeTags",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
        destructive=True,
        reversible=True,
    )
    params_type = InstanceParams

    def check(self, ctx: ActionContext, params: InstanceParams) -> CheckOutcome:
        try:
            options, _tags = _metadata_options(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        return CheckOutcome(
            ok=True,
            detail=f"metadata endpoint of {params.instance_id} is {options.get('HttpEndpoint', 'enabled')}",
            warnings=(
                "the SSM agent, the kubelet and the VPC CNI lose the node role's credentials; credentials "
                "already taken stay valid until they expire (revoke the node role's sessions for those)",
            ),
            already_applied=options.get("HttpEndpoint") == "disabled"
            and held(InstanceTags(ctx, params.instance_id), _Metadata.name, ctx.case_id)[0],
        )

    def plan(self, ctx: ActionContext, params: InstanceParams) -> PlannedChange:
        options, _tags = _metadata_options(ctx, params.instance_id)
        return PlannedChange(
            summary=f"Disable the instance metadata endpoint of {params.instance_id}",
            diff=(f"- HttpEndpoint {options.get('HttpEndpoint', 'enabled')}", "+ HttpEndpoint disabled"),
            blast_radius=(f"node {params.instance_id} only",),
        )

    def apply(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any]:
        """Hold the endpoint off for this case: tag and note (the options before eksir's first case, in the
        same call) before the change, so a re-run or another case keeps the originals."""
        require_live(ctx, self.spec)
        done = hold(InstanceTags(ctx, params.instance_id), _Metadata(ctx, params.instance_id), ctx.case_id)
        return {"instance_id": params.instance_id, "before": dict(json.loads(done.note))}

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        """The endpoint is off and this case still holds it (its tag on the instance)."""
        options, _tags = _metadata_options(ctx, params.instance_id)
        endpoint = options.get("HttpEndpoint", "enabled")
        ours, holding = held(InstanceTags(ctx, params.instance_id), _Metadata.name, ctx.case_id)
        problems = [] if endpoint == "disabled" else [endpoint]
        problems += [] if ours else [f"not held by case {ctx.case_id}"]
        return VerifyOutcome(
            ok=not problems,
            detail=f"metadata endpoint of {params.instance_id}: "
            + ("; ".join(problems) or f"disabled, held by {len(holding)} case(s)"),
            observed={"metadata_options": options, "held_by": holding},
        )

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        """Drop this case's hold; the last case's rollback restores the endpoint state, token requirement and
        hop limit noted before eksir's first case."""
        require_live(ctx, self.spec)
        fallback = json.dumps(dict(applied.get("before") or {}), sort_keys=True)
        release(
            InstanceTags(ctx, params.instance_id), _Metadata(ctx, params.instance_id), ctx.case_id, fallback
        )


class _Metadata(AwsMark):
    """`HttpEndpoint: disabled`, held per case by instance tags; the note is the options as JSON (the tag
    eksir wrote before shared holds existed, so an instance marked by an older eksir keeps its original)."""

    name = "metadata-disabled"
    note = METADATA_BEFORE_TAG

    def unset(self, note: str) -> bool:
        return dict(json.loads(note)).get("HttpEndpoint") != "disabled"

    def __init__(self, ctx: ActionContext, instance_id: str) -> None:
        self.ctx, self.instance_id = ctx, instance_id

    def current(self) -> str:
        options, _tags = _metadata_options(self.ctx, self.instance_id)
        return json.dumps({k: options[k] for k in METADATA_KEYS if k in options}, sort_keys=True)

    def is_set(self) -> bool:
        return _metadata_options(self.ctx, self.instance_id)[0].get("HttpEndpoint") == "disabled"

    def set(self) -> None:
        with aws_call(f"disable the metadata endpoint of {self.instance_id}"):
            self.ctx.aws("ec2").modify_instance_metadata_options(
                InstanceId=self.instance_id, HttpEndpoint="disabled"
            )

    def restore(self, note: str) -> None:
        before = dict(json.loads(note))
        restore: dict[str, Any] = {"HttpEndpoint": before.get("HttpEndpoint", "enabled")}
        if before.get("HttpTokens"):
            restore["HttpTokens"] = before["HttpTokens"]
        if before.get("HttpPutResponseHopLimit"):
            restore["HttpPutResponseHopLimit"] = int(before["HttpPutResponseHopLimit"])
        with aws_call(f"restore the metadata options of {self.instance_id}"):
            self.ctx.aws("ec2").modify_instance_metadata_options(InstanceId=self.instance_id, **restore)

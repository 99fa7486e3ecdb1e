"""Containment of the EC2 node: keep it alive as evidence, then cut its network (ec2_isolation).

Why these steps and in this order: termination protection and Auto Scaling scale-in protection keep the node
(and its memory, disk and running containers) from vanishing while evidence is collected; they guard
different things (API termination vs scale-in), so both exist. Isolation replaces the security groups on
*every* ENI, not only the primary (VPC CNI nodes carry several), and by default keeps egress 443 so SSM Run
Command can still reach the node for volatile capture. The original groups of each ENI are recorded in the
applied record *and* as tags on the isolation group, so a second apply after a crash still knows what to
restore.
"""

from __future__ import annotations

from typing import Any

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
from eksir.actions.containment.casework import INSTANCE_ID_PATTERN, require_live
from eksir.actions.containment.ec2_isolation import IsolateInstance, describe_instance
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

SPOT_MESSAGE = (
    "{instance} is a Spot instance: EC2 cannot enable termination protection on Spot; snapshot its volumes "
    "early and expect a possible interruption"
)
__all__ = ["EnableTerminationProtection", "IsolateInstance", "ProtectInstanceFromScaleIn"]


class InstanceParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)


def _termination_protected(ctx: ActionContext, instance_id: str) -> bool:
    with aws_call(f"read termination protection of {instance_id}"):
        attr = ctx.aws("ec2").describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination"
        )
    return bool(attr["DisableApiTermination"]["Value"])


@register_action
class EnableTerminationProtection(Action[InstanceParams]):
    spec = ActionSpec(
        id="ec2.enable_termination_protection",
        phase=Phase.CONTAINMENT,
        title="Enable EC2 termination protection on the node",
        iam_actions=("ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:ModifyInstanceAttribute"),
        destructive=False,
        reversible=True,
    )
    params_type = InstanceParams

    def check(self, ctx: ActionContext, params: InstanceParams) -> CheckOutcome:
        try:
            instance = describe_instance(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        if instance.get("InstanceLifecycle") == "spot":
            return CheckOutcome(ok=False, detail=SPOT_MESSAGE.format(instance=params.instance_id))
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} is {instance['State']['Name']}",
            warnings=(
                "termination protection does not stop Auto Scaling scale-in or health replacement, an "
                "OS-initiated shutdown with terminate behaviour, or AWS scheduled retirement",
            ),
            already_applied=_termination_protected(ctx, params.instance_id),
        )

    def plan(self, ctx: ActionContext, params: InstanceParams) -> PlannedChange:
        current = _termination_protected(ctx, params.instance_id)
        return PlannedChange(
            summary=f"Enable termination protection on {params.instance_id}",
            diff=(f"- DisableApiTermination: {current}", "+ DisableApiTermination: True"),
            blast_radius=(f"{params.instance_id} cannot be terminated through the API until rollback",),
        )

    def apply(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        previous = _termination_protected(ctx, params.instance_id)
        if not previous:
            with aws_call(f"enable termination protection on {params.instance_id}"):
                ctx.aws("ec2").modify_instance_attribute(
                    InstanceId=params.instance_id, DisableApiTermination={"Value": True}
                )
        return {"instance_id": params.instance_id, "previous": previous}

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        protected = _termination_protected(ctx, params.instance_id)
        return VerifyOutcome(
            ok=protected,
            detail=f"termination protection on {params.instance_id}: {protected}",
            observed={"disable_api_termination": protected},
        )

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        previous = bool(applied.get("previous", False))
        with aws_call(f"restore termination protection on {params.instance_id}"):
            ctx.aws("ec2").modify_instance_attribute(
                InstanceId=params.instance_id, DisableApiTermination={"Value": previous}
            )


class AsgProtectParams(ActionParams):
    autoscaling_group: str = Field(min_length=1, max_length=255)
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)


def _asg_instance(ctx: ActionContext, params: AsgProtectParams) -> dict[str, Any]:
    """The instance's Auto Scaling record; NotFoundError when it is not in the named group."""
    with aws_call(f"describe Auto Scaling instance {params.instance_id}"):
        found = ctx.aws("autoscaling").describe_auto_scaling_instances(InstanceIds=[params.instance_id])
    for item in found["AutoScalingInstances"]:
        if item["AutoScalingGroupName"] == params.autoscaling_group:
            return dict(item)
    raise NotFoundError(f"{params.instance_id} is not in Auto Scaling group {params.autoscaling_group}")


@register_action
class ProtectInstanceFromScaleIn(Action[AsgProtectParams]):
    spec = ActionSpec(
        id="asg.protect_instance",
        phase=Phase.CONTAINMENT,
        title="Protect the node from Auto Scaling scale-in",
        iam_actions=("autoscaling:DescribeAutoScalingInstances", "autoscaling:SetInstanceProtection"),
        destructive=False,
        reversible=True,
    )
    params_type = AsgProtectParams

    def check(self, ctx: ActionContext, params: AsgProtectParams) -> CheckOutcome:
        try:
            item = _asg_instance(ctx, params)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} is {item['LifecycleState']} in {params.autoscaling_group}",
            warnings=(
                "scale-in protection does not stop health-check replacement, manual termination or a "
                "Spot interruption; suspend the group's ReplaceUnhealthy process to stop replacement",
            ),
            already_applied=bool(item["ProtectedFromScaleIn"]),
        )

    def plan(self, ctx: ActionContext, params: AsgProtectParams) -> PlannedChange:
        current = bool(_asg_instance(ctx, params)["ProtectedFromScaleIn"])
        return PlannedChange(
            summary=f"Protect {params.instance_id} from scale-in in {params.autoscaling_group}",
            diff=(f"- ProtectedFromScaleIn: {current}", "+ ProtectedFromScaleIn: True"),
            blast_radius=(f"Auto Scaling group {params.autoscaling_group} will not scale in this instance",),
        )

    def _set(self, ctx: ActionContext, params: AsgProtectParams, value: bool) -> None:
        with aws_call(f"set scale-in protection of {params.instance_id} to {value}"):
            ctx.aws("autoscaling").set_instance_protection(
                InstanceIds=[params.instance_id],
                AutoScalingGroupName=params.autoscaling_group,
                ProtectedFromScaleIn=value,
            )

    def apply(self, ctx: ActionContext, params: AsgProtectParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        previous = bool(_asg_instance(ctx, params)["ProtectedFromScaleIn"])
        if not previous:
            self._set(ctx, params, True)
        return {"instance_id": params.instance_id, "previous": previous}

    def verify(self, ctx: ActionContext, params: AsgProtectParams, applied: dict[str, Any]) -> VerifyOutcome:
        protected = bool(_asg_instance(ctx, params)["ProtectedFromScaleIn"])
        return VerifyOutcome(
            ok=protected,
            detail=f"scale-in protection of {params.instance_id}: {protected}",
            observed={"protected_from_scale_in": protected},
        )

    def rollback(self, ctx: ActionContext, params: AsgProtectParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        self._set(ctx, params, bool(applied.get("previous", False)))

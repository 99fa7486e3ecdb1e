"""Containment of the EC2 node: keep it alive as evidence, then cut its network (ec2_isolation).

Why these steps and in this order: termination protection and Auto Scaling scale-in protection keep the node
(and its memory, disk and running containers) from vanishing while evidence is collected; they guard
different things (API termination vs scale-in), so both exist. Isolation replaces the security groups on
*every* ENI, not only the primary (VPC CNI nodes carry several), and by default keeps egress 443 so SSM Run
Command can still reach the node for volatile capture. The original groups of each ENI are recorded in the
applied record *and* as a tag on the ENI (isolation_holds.py), so a second apply after a crash, or another
case, still knows what to restore.

Several cases may hold one node (fleet mode): both protections are shared marks (aws_holds.py). Each case tags
the instance `eksir.io/hold/<case-id>`, whose value names `termination-protection` and `scale-in-protection`,
the value before eksir's first case is noted in `eksir.io/termination-protection-before`
(`...scale-in-protection-before`) in the same call, and only the rollback that removes the last hold restores
it, so one case's rollback never lets the node be terminated or scaled in under another case.
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
from eksir.actions.containment.aws_holds import (
    BoolMark,
    InstanceTags,
    bool_note,
    held,
    hold,
    note_bool,
    release,
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
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:DescribeTags",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
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
            already_applied=_termination_protected(ctx, params.instance_id)
            and held(InstanceTags(ctx, params.instance_id), TERMINATION_MARK, ctx.case_id)[0],
        )

    def plan(self, ctx: ActionContext, params: InstanceParams) -> PlannedChange:
        current = _termination_protected(ctx, params.instance_id)
        return PlannedChange(
            summary=f"Enable termination protection on {params.instance_id}",
            diff=(f"- DisableApiTermination: {current}", "+ DisableApiTermination: True"),
            blast_radius=(f"{params.instance_id} cannot be terminated through the API until rollback",),
        )

    def apply(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any]:
        """Hold termination protection for this case (tag, note, then the attribute when it is off)."""
        require_live(ctx, self.spec)
        return _hold_protection(ctx, params.instance_id, _Termination(ctx, params.instance_id))

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        """The attribute is on and this case still holds it (its tag is on the instance)."""
        protected = _termination_protected(ctx, params.instance_id)
        return _protection_verdict(
            ctx, params.instance_id, _Termination.name, protected, "disable_api_termination"
        )

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        """Drop this case's hold; the last case's rollback restores the value noted before eksir's first
        case."""
        require_live(ctx, self.spec)
        _release_protection(ctx, params.instance_id, _Termination(ctx, params.instance_id), applied)


TERMINATION_MARK = "termination-protection"


def _hold_protection(ctx: ActionContext, instance_id: str, mark: BoolMark) -> dict[str, Any]:
    """Hold the protection for this case (instance tag, note, then the attribute when it is off)."""
    done = hold(InstanceTags(ctx, instance_id), mark, ctx.case_id)
    return {"instance_id": instance_id, "previous": note_bool(done.seen), "before": note_bool(done.note)}


def _protection_verdict(
    ctx: ActionContext, instance_id: str, mark: str, protected: bool, observed_as: str
) -> VerifyOutcome:
    """On, and still held by this case: its tag on the instance (another case's rollback must not lift it)."""
    ours, holding = held(InstanceTags(ctx, instance_id), mark, ctx.case_id)
    problems = ([] if protected else ["off"]) + ([] if ours else [f"not held by case {ctx.case_id}"])
    return VerifyOutcome(
        ok=not problems,
        detail=f"{mark} of {instance_id}: " + ("; ".join(problems) or f"on, held by {len(holding)} case(s)"),
        observed={observed_as: protected, "held_by": holding},
    )


def _release_protection(
    ctx: ActionContext, instance_id: str, mark: BoolMark, applied: dict[str, Any]
) -> None:
    """Drop this case's hold; the last one restores the value noted before eksir's first case (a record of
    an older eksir has only `previous`)."""
    fallback = bool_note(note_bool(applied.get("before", applied.get("previous", False))))
    release(InstanceTags(ctx, instance_id), mark, ctx.case_id, fallback)


class _Termination(BoolMark):
    """`DisableApiTermination: true` on the instance, held per case by instance tags."""

    name = TERMINATION_MARK
    note = "eksir.io/termination-protection-before"

    def __init__(self, ctx: ActionContext, instance_id: str) -> None:
        self.ctx, self.instance_id = ctx, instance_id

    def is_set(self) -> bool:
        return _termination_protected(self.ctx, self.instance_id)

    def _put(self, value: bool) -> None:
        with aws_call(f"set termination protection of {self.instance_id} to {value}"):
            self.ctx.aws("ec2").modify_instance_attribute(
                InstanceId=self.instance_id, DisableApiTermination={"Value": value}
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
        iam_actions=(
            "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:SetInstanceProtection",
            "ec2:DescribeTags",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
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
            already_applied=bool(item["ProtectedFromScaleIn"])
            and held(InstanceTags(ctx, params.instance_id), _ScaleIn.name, ctx.case_id)[0],
        )

    def plan(self, ctx: ActionContext, params: AsgProtectParams) -> PlannedChange:
        current = bool(_asg_instance(ctx, params)["ProtectedFromScaleIn"])
        return PlannedChange(
            summary=f"Protect {params.instance_id} from scale-in in {params.autoscaling_group}",
            diff=(f"- ProtectedFromScaleIn: {current}", "+ ProtectedFromScaleIn: True"),
            blast_radius=(f"Auto Scaling group {params.autoscaling_group} will not scale in this instance",),
        )

    def apply(self, ctx: ActionContext, params: AsgProtectParams) -> dict[str, Any]:
        """Hold scale-in protection for this case (instance tag, note, then the protection when it is off)."""
        require_live(ctx, self.spec)
        return _hold_protection(ctx, params.instance_id, _ScaleIn(ctx, params))

    def verify(self, ctx: ActionContext, params: AsgProtectParams, applied: dict[str, Any]) -> VerifyOutcome:
        """The instance is protected and this case still holds the protection (its tag on the instance)."""
        protected = bool(_asg_instance(ctx, params)["ProtectedFromScaleIn"])
        return _protection_verdict(
            ctx, params.instance_id, _ScaleIn.name, protected, "protected_from_scale_in"
        )

    def rollback(self, ctx: ActionContext, params: AsgProtectParams, applied: dict[str, Any]) -> None:
        """Drop this case's hold; the last case's rollback restores the value noted before eksir's first
        case."""
        require_live(ctx, self.spec)
        _release_protection(ctx, params.instance_id, _ScaleIn(ctx, params), applied)


class _ScaleIn(BoolMark):
    """`ProtectedFromScaleIn: true` for the instance in its group, held per case by instance tags."""

    name = "scale-in-protection"
    note = "eksir.io/scale-in-protection-before"

    def __init__(self, ctx: ActionContext, params: AsgProtectParams) -> None:
        self.ctx, self.params = ctx, params

    def is_set(self) -> bool:
        return bool(_asg_instance(self.ctx, self.params)["ProtectedFromScaleIn"])

    def _put(self, value: bool) -> None:
        params = self.params
        with aws_call(f"set scale-in protection of {params.instance_id} to {value}"):
            self.ctx.aws("autoscaling").set_instance_protection(
                InstanceIds=[params.instance_id],
                AutoScalingGroupName=params.autoscaling_group,
                ProtectedFromScaleIn=value,
            )

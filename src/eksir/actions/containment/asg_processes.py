"""`asg.suspend_processes`: stop the node's Auto Scaling group from replacing or rebalancing it.

Why beyond scale-in protection: scale-in protection only stops *scale-in*. A node the isolation makes fail
its health checks (EC2 status, or ELB where the group uses it) is still marked unhealthy and replaced, and
AZRebalance may terminate it to even out zones; either destroys the evidence. Suspending ReplaceUnhealthy,
AZRebalance and HealthCheck for the case stops both (AWS, "Suspend and resume processes").

Processes someone had already suspended are not ours: the before-set is written to a group tag before the
suspension (so a re-run after a crash still knows it) and rollback resumes only what eksir suspended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from eksir.actions.containment.casework import require_live
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

if TYPE_CHECKING:
    from types_boto3_autoscaling.type_defs import TagTypeDef

PROCESSES: tuple[str, ...] = ("ReplaceUnhealthy", "AZRebalance", "HealthCheck")
BEFORE_TAG = "eksir.io/suspended-before"
_NONE = "-"


class AsgGroupParams(ActionParams):
    autoscaling_group: str = Field(min_length=1, max_length=255)


def _group(ctx: ActionContext, name: str) -> dict[str, Any]:
    """The group as DescribeAutoScalingGroups shows it; NotFoundError when it does not exist."""
    with aws_call(f"describe Auto Scaling group {name}"):
        groups = ctx.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    found = groups.get("AutoScalingGroups") or []
    if not found:
        raise NotFoundError(f"Auto Scaling group {name} does not exist")
    return dict(found[0])


def suspended(group: dict[str, Any]) -> set[str]:
    return {str(p["ProcessName"]) for p in group.get("SuspendedProcesses") or []}


def _noted_before(group: dict[str, Any]) -> set[str] | None:
    """The before-set an earlier run wrote to the tag, or None when no run has."""
    for tag in group.get("Tags") or []:
        if tag.get("Key") == BEFORE_TAG:
            value = str(tag.get("Value") or _NONE)
            return set() if value == _NONE else set(value.split(","))
    return None


@register_action
class SuspendScalingProcesses(Action[AsgGroupParams]):
    spec = ActionSpec(
        id="asg.suspend_processes",
        phase=Phase.CONTAINMENT,
        title="Suspend the node group's ReplaceUnhealthy, AZRebalance and HealthCheck processes",
        iam_actions=(
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:SuspendProcesses",
            "autoscaling:ResumeProcesses",
            "autoscaling:CreateOrUpdateTags",
            "autoscaling:DeleteTags",
        ),
        destructive=False,
        reversible=True,
        description="Health-check replacement and AZ rebalancing stop for the whole group until rollback; "
        "processes already suspended before the case stay suspended after it.",
    )
    params_type = AsgGroupParams

    def check(self, ctx: ActionContext, params: AsgGroupParams) -> CheckOutcome:
        try:
            group = _group(ctx, params.autoscaling_group)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        held = suspended(group)
        return CheckOutcome(
            ok=True,
            detail=f"{params.autoscaling_group} suspended processes: {', '.join(sorted(held)) or 'none'}",
            already_applied=set(PROCESSES) <= held,
        )

    def plan(self, ctx: ActionContext, params: AsgGroupParams) -> PlannedChange:
        missing = [p for p in PROCESSES if p not in suspended(_group(ctx, params.autoscaling_group))]
        if not missing:
            return PlannedChange(summary=f"Nothing to do: {', '.join(PROCESSES)} already suspended")
        return PlannedChange(
            summary=f"Suspend {', '.join(missing)} on {params.autoscaling_group}",
            diff=tuple(f"+ suspended process {p}" for p in missing),
            blast_radius=(
                f"every instance of {params.autoscaling_group}: unhealthy ones are not replaced and zones "
                "are not rebalanced until rollback",
            ),
        )

    def apply(self, ctx: ActionContext, params: AsgGroupParams) -> dict[str, Any]:
        """Note the before-set on the group, then suspend; the record holds what rollback resumes."""
        require_live(ctx, self.spec)
        name = params.autoscaling_group
        group = _group(ctx, name)
        before = _noted_before(group)
        if before is None:
            before = suspended(group) & set(PROCESSES)
            self._tag(ctx, name, ",".join(sorted(before)) or _NONE)
        ours = [p for p in PROCESSES if p not in before]
        if ours:
            with aws_call(f"suspend {', '.join(ours)} on {name}"):
                ctx.aws("autoscaling").suspend_processes(AutoScalingGroupName=name, ScalingProcesses=ours)
        return {"autoscaling_group": name, "suspended_before": sorted(before), "suspended": ours}

    def _tag(self, ctx: ActionContext, name: str, value: str) -> None:
        tag: TagTypeDef = {
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
            "Key": BEFORE_TAG,
            "Value": value,
            "PropagateAtLaunch": False,
        }
        with aws_call(f"note the suspended processes of {name}"):
            ctx.aws("autoscaling").create_or_update_tags(Tags=[tag])

    def verify(self, ctx: ActionContext, params: AsgGroupParams, applied: dict[str, Any]) -> VerifyOutcome:
        held = suspended(_group(ctx, params.autoscaling_group))
        missing = [p for p in PROCESSES if p not in held]
        return VerifyOutcome(
            ok=not missing,
            detail=f"not suspended: {', '.join(missing)}" if missing else f"{', '.join(PROCESSES)} suspended",
            observed={"suspended_processes": sorted(held)},
        )

    def rollback(self, ctx: ActionContext, params: AsgGroupParams, applied: dict[str, Any]) -> None:
        """Resume only what eksir suspended, then drop the note; a group gone is left alone."""
        require_live(ctx, self.spec)
        name = params.autoscaling_group
        try:
            group = _group(ctx, name)
        except NotFoundError:
            return
        before = set(applied.get("suspended_before") or ())
        noted = _noted_before(group)
        before |= noted or set()
        ours = [p for p in PROCESSES if p not in before]
        client = ctx.aws("autoscaling")
        with aws_call(f"resume {', '.join(ours)} on {name}"):
            if ours:
                client.resume_processes(AutoScalingGroupName=name, ScalingProcesses=ours)
            if noted is not None:
                client.delete_tags(
                    Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": BEFORE_TAG}]
                )

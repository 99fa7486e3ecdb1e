"""`asg.suspend_processes`: stop the node's Auto Scaling group from replacing or rebalancing it.

Why beyond scale-in protection: scale-in protection only stops *scale-in*. A node the isolation makes fail
its health checks (EC2 status, or ELB where the group uses it) is still marked unhealthy and replaced, and
AZRebalance may terminate it to even out zones; either destroys the evidence. Suspending ReplaceUnhealthy,
AZRebalance and HealthCheck for the case stops both (AWS, "Suspend and resume processes").

Processes someone had already suspended are not ours: the before-set is written to a group tag before the
suspension (so a re-run after a crash still knows it) and rollback resumes only what eksir suspended.

Several cases may hold one group (fleet mode: several incidents on its nodes): the suspension is a shared mark
(aws_holds.py). Each case tags the group `eksir.io/hold/<case-id>` = `suspended-processes`, the before-set is
noted once (in the same call as the first hold), and only the rollback that removes the last hold resumes
anything, so one case's rollback never lets the group replace a node another case still holds.
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
from eksir.actions.containment.aws_holds import AwsMark, GroupTags, held, hold, release
from eksir.actions.containment.casework import require_live
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

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
            "autoscaling:DescribeTags",
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
        held_now = suspended(group)
        return CheckOutcome(
            ok=True,
            detail=f"{params.autoscaling_group} suspended processes: {', '.join(sorted(held_now)) or 'none'}",
            already_applied=set(PROCESSES) <= held_now
            and held(GroupTags(ctx, params.autoscaling_group), _Suspension.name, ctx.case_id)[0],
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
        """Hold the suspension for this case: group tag and note (the before-set) first, then suspend what
        is missing; the record holds what rollback resumes when this case is the last holder."""
        require_live(ctx, self.spec)
        name = params.autoscaling_group
        done = hold(GroupTags(ctx, name), _Suspension(ctx, name), ctx.case_id)
        before = _parse(done.note)
        return {
            "autoscaling_group": name,
            "suspended_before": sorted(before),
            "suspended": [p for p in PROCESSES if p not in before],
        }

    def verify(self, ctx: ActionContext, params: AsgGroupParams, applied: dict[str, Any]) -> VerifyOutcome:
        """Every process is suspended and this case still holds the suspension (its tag on the group)."""
        held_now = suspended(_group(ctx, params.autoscaling_group))
        missing = [p for p in PROCESSES if p not in held_now]
        ours, holding = held(GroupTags(ctx, params.autoscaling_group), _Suspension.name, ctx.case_id)
        problems = [f"not suspended: {', '.join(missing)}"] if missing else []
        problems += [] if ours else [f"not held by case {ctx.case_id}"]
        return VerifyOutcome(
            ok=not problems,
            detail="; ".join(problems) or f"{', '.join(PROCESSES)} suspended, held by {len(holding)} case(s)",
            observed={"suspended_processes": sorted(held_now), "held_by": holding},
        )

    def rollback(self, ctx: ActionContext, params: AsgGroupParams, applied: dict[str, Any]) -> None:
        """Drop this case's hold; the last case's rollback resumes only what eksir suspended (the note says
        what was suspended before), then drops the note. A group gone is left alone."""
        require_live(ctx, self.spec)
        name = params.autoscaling_group
        try:
            _group(ctx, name)
        except NotFoundError:
            return
        fallback = ",".join(applied.get("suspended_before") or ()) or _NONE
        release(GroupTags(ctx, name), _Suspension(ctx, name), ctx.case_id, fallback)


def _parse(note: str) -> set[str]:
    return set() if note in ("", _NONE) else set(note.split(","))


class _Suspension(AwsMark):
    """PROCESSES suspended on the group, held per case by group tags; the note is the before-set (of
    PROCESSES) as a comma list, `-` for none."""

    name = "suspended-processes"
    note = BEFORE_TAG

    def unset(self, note: str) -> bool:
        return not set(PROCESSES) <= _parse(note)

    def __init__(self, ctx: ActionContext, group: str) -> None:
        self.ctx, self.group = ctx, group

    def current(self) -> str:
        return ",".join(p for p in sorted(PROCESSES) if p in suspended(_group(self.ctx, self.group))) or _NONE

    def is_set(self) -> bool:
        return set(PROCESSES) <= suspended(_group(self.ctx, self.group))

    def set(self) -> None:
        missing = [p for p in PROCESSES if p not in suspended(_group(self.ctx, self.group))]
        with aws_call(f"suspend {', '.join(missing)} on {self.group}"):
            self.ctx.aws("autoscaling").suspend_processes(
                AutoScalingGroupName=self.group, ScalingProcesses=missing
            )

    def restore(self, note: str) -> None:
        ours = [p for p in PROCESSES if p not in _parse(note)]
        if ours:
            with aws_call(f"resume {', '.join(ours)} on {self.group}"):
                self.ctx.aws("autoscaling").resume_processes(
                    AutoScalingGroupName=self.group, ScalingProcesses=ours
                )

"""asg.suspend_processes against moto's Auto Scaling (SuspendProcesses, ResumeProcesses, tags)."""

from __future__ import annotations

from typing import Any

import pytest

from eksir.actions.base import ActionContext
from eksir.actions.containment.asg_processes import (
    BEFORE_TAG,
    PROCESSES,
    AsgGroupParams,
    SuspendScalingProcesses,
)
from eksir.errors import RefusedError
from tests.actions.conftest import boto_client, make_ctx, one_instance_group

GROUP = "eks-ng-general"


@pytest.fixture
def group(moto: Any) -> AsgGroupParams:
    one_instance_group(moto, GROUP)
    return AsgGroupParams(autoscaling_group=GROUP)


def _suspended(moto: Any) -> set[str]:
    found = boto_client(moto, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    return {p["ProcessName"] for p in found["AutoScalingGroups"][0].get("SuspendedProcesses", [])}


def _tags(moto: Any) -> dict[str, str]:
    found = boto_client(moto, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    return {t["Key"]: t["Value"] for t in found["AutoScalingGroups"][0].get("Tags", [])}


def test_the_replacement_processes_are_suspended_verified_and_resumed_by_rollback(
    aws_ctx: ActionContext, moto: Any, group: AsgGroupParams
) -> None:
    action = SuspendScalingProcesses()
    assert not action.check(aws_ctx, group).already_applied
    applied = action.apply(aws_ctx, group)
    assert _suspended(moto) == set(PROCESSES)
    assert action.verify(aws_ctx, group, applied).ok
    assert action.check(aws_ctx, group).already_applied
    assert action.apply(aws_ctx, group) == applied, "a second apply is a no-op with the same record"
    action.rollback(aws_ctx, group, applied)
    assert _suspended(moto) == set()
    assert BEFORE_TAG not in _tags(moto)
    assert not action.verify(aws_ctx, group, applied).ok


def test_rollback_leaves_suspended_what_was_suspended_before_the_case(
    aws_ctx: ActionContext, moto: Any, group: AsgGroupParams
) -> None:
    boto_client(moto, "autoscaling").suspend_processes(
        AutoScalingGroupName=GROUP, ScalingProcesses=["AZRebalance", "Launch"]
    )
    action = SuspendScalingProcesses()
    applied = action.apply(aws_ctx, group)
    assert applied["suspended_before"] == ["AZRebalance"]
    assert applied["suspended"] == ["ReplaceUnhealthy", "HealthCheck"]
    assert _tags(moto)[BEFORE_TAG] == "AZRebalance"
    action.rollback(aws_ctx, group, applied)
    assert _suspended(moto) == {"AZRebalance", "Launch"}


def test_a_rerun_after_a_crash_reads_the_before_state_from_the_group_tag(
    aws_ctx: ActionContext, moto: Any, group: AsgGroupParams
) -> None:
    """The first run died after suspending, before its record was kept: the tag still says what was ours."""
    action = SuspendScalingProcesses()
    action.apply(aws_ctx, group)
    again = action.apply(aws_ctx, group)  # now every process reads as suspended, but the tag knows better
    assert again["suspended_before"] == []
    action.rollback(aws_ctx, group, {})  # even an empty record resumes exactly what the tag says is ours
    assert _suspended(moto) == set()


def test_check_reports_a_missing_group_and_a_dry_run_changes_nothing(
    aws_ctx: ActionContext, moto: Any
) -> None:
    missing = AsgGroupParams(autoscaling_group="nope")
    assert not SuspendScalingProcesses().check(aws_ctx, missing).ok
    dry = make_ctx(aws=lambda s: boto_client(moto, s), dry_run=True)
    with pytest.raises(RefusedError):
        SuspendScalingProcesses().apply(dry, missing)

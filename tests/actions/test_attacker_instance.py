"""An instance the attacker launched: snapshotted, its termination protection cleared as its own step once
the snapshots are completed, then terminated (moto's EC2; the plan is pure)."""

from __future__ import annotations

from typing import Any

from eksir.actions.base import ActionContext
from eksir.actions.evidence.snapshots import SnapshotVolumes, SnapshotVolumesParams
from eksir.actions.recovery.aws_resources import InstanceParams, TerminateInstance
from eksir.actions.recovery.node_retire import ClearProtectionParams, ClearTerminationProtection
from eksir.playbooks.recovery import CaseFacts, build_recovery_plan
from eksir.playbooks.recovery_inventory import Item
from tests.actions.conftest import boto_client


def _miner(moto: Any) -> str:
    ec2 = boto_client(moto, "ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.modify_instance_attribute(InstanceId=instance, DisableApiTermination={"Value": True})
    return str(instance)


def test_the_plan_snapshots_then_clears_protection_then_terminates() -> None:
    item = Item(
        "created", "AWS::EC2::Instance", "i-0123456789abcdef0", "e1", "RunInstances", None,
        action_id="ec2.terminate_instance", params={"instance_id": "i-0123456789abcdef0"},
    )  # fmt: skip
    steps = build_recovery_plan([item], CaseFacts(case_id="c1", finding_id="f1")).plan.steps
    by_action = {s.action_id: s for s in steps}
    snapshot, clear = by_action["ec2.snapshot_volumes"], by_action["ec2.clear_termination_protection"]
    terminate = by_action["ec2.terminate_instance"]
    assert snapshot.id in clear.depends_on
    assert {snapshot.id, clear.id} <= set(terminate.depends_on)
    assert all(s.requires_approval for s in steps)


def test_protection_blocks_termination_until_cleared_after_the_case_snapshots(
    aws_ctx: ActionContext, moto: Any
) -> None:
    instance = _miner(moto)
    terminate = TerminateInstance()
    refused = terminate.check(aws_ctx, InstanceParams(instance_id=instance))
    assert not refused.ok
    assert "ec2.clear_termination_protection" in refused.detail
    clear, params = ClearTerminationProtection(), ClearProtectionParams(instance_id=instance)
    early = clear.check(aws_ctx, params)
    assert not early.ok
    assert "no evidence snapshot" in early.detail
    SnapshotVolumes().apply(aws_ctx, SnapshotVolumesParams(instance_id=instance))
    assert clear.check(aws_ctx, params).ok
    applied = clear.apply(aws_ctx, params)
    assert clear.verify(aws_ctx, params, applied).ok
    assert terminate.check(aws_ctx, InstanceParams(instance_id=instance)).ok
    done = terminate.apply(aws_ctx, InstanceParams(instance_id=instance))
    assert terminate.verify(aws_ctx, InstanceParams(instance_id=instance), done).ok

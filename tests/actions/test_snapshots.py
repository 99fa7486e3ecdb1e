"""ec2.snapshot_volumes against moto's EC2: every attached volume, tagged, kept on rollback."""

from __future__ import annotations

from typing import Any

import pytest

from eksir.actions.base import ActionContext
from eksir.actions.evidence.snapshots import SnapshotVolumes, SnapshotVolumesParams
from tests.actions.conftest import CASE_ID, boto_client


@pytest.fixture
def instance(moto: Any) -> tuple[str, set[str]]:
    """An instance with its root volume and one attached data volume."""
    ec2 = boto_client(moto, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"])[
        "Instances"
    ][0]
    data = ec2.create_volume(Size=20, AvailabilityZone=inst["Placement"]["AvailabilityZone"])["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=inst["InstanceId"], Device="/dev/xvdb")
    described = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
    return inst["InstanceId"], {m["Ebs"]["VolumeId"] for m in described["BlockDeviceMappings"]}


def _case_snapshots(moto: Any) -> list[dict[str, Any]]:
    return list(
        boto_client(moto, "ec2").describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:eksir.io/case-id", "Values": [CASE_ID]}]
        )["Snapshots"]
    )


def test_every_attached_volume_gets_a_tagged_snapshot(
    aws_ctx: ActionContext, moto: Any, instance: tuple[str, set[str]]
) -> None:
    instance_id, volumes = instance
    params = SnapshotVolumesParams(instance_id=instance_id)
    applied = SnapshotVolumes().apply(aws_ctx, params)
    snaps = _case_snapshots(moto)
    assert {s["VolumeId"] for s in snaps} == volumes
    for snap in snaps:
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert tags["eksir.io/source-volume"] == snap["VolumeId"]
        assert tags["eksir.io/source-instance"] == instance_id
        assert tags["eksir.io/source-device"].startswith("/dev/")
        assert tags["Name"].startswith(f"eksir {CASE_ID}")
    assert {s["snapshot_id"] for s in applied["snapshots"]} == {s["SnapshotId"] for s in snaps}
    assert SnapshotVolumes().verify(aws_ctx, params, applied).ok


def test_snapshotting_twice_reuses_the_case_snapshots(
    aws_ctx: ActionContext, moto: Any, instance: tuple[str, set[str]]
) -> None:
    params = SnapshotVolumesParams(instance_id=instance[0])
    first = SnapshotVolumes().apply(aws_ctx, params)
    assert SnapshotVolumes().check(aws_ctx, params).already_applied
    second = SnapshotVolumes().apply(aws_ctx, params)
    assert second == first
    assert len(_case_snapshots(moto)) == len(instance[1])


def test_a_rerun_after_a_partial_set_takes_a_whole_new_multi_volume_set(
    aws_ctx: ActionContext, moto: Any, instance: tuple[str, set[str]]
) -> None:
    """A lost snapshot is not topped up alone (that would mix points in time): the re-run takes every volume
    again in one CreateSnapshots call (moto implements it), all sharing one set tag."""
    params = SnapshotVolumesParams(instance_id=instance[0])
    first = SnapshotVolumes().apply(aws_ctx, params)
    ec2 = boto_client(moto, "ec2")
    lost = _case_snapshots(moto)[0]
    ec2.delete_snapshot(SnapshotId=lost["SnapshotId"])
    again = SnapshotVolumes().apply(aws_ctx, params)
    assert {s["volume_id"] for s in again["snapshots"]} == instance[1]
    new_ids = {s["snapshot_id"] for s in again["snapshots"]}
    assert not new_ids & {s["snapshot_id"] for s in first["snapshots"]}
    new = [s for s in _case_snapshots(moto) if s["SnapshotId"] in new_ids]
    sets = {next(t["Value"] for t in s["Tags"] if t["Key"] == "eksir.io/snapshot-set") for s in new}
    assert len(sets) == 1, "the new snapshots come from one multi-volume call"
    assert len(_case_snapshots(moto)) == 2 * len(instance[1]) - 1  # the survivor of the first set is kept
    assert SnapshotVolumes().verify(aws_ctx, params, again).ok


def test_rollback_keeps_the_snapshots_because_they_are_evidence(
    aws_ctx: ActionContext, moto: Any, instance: tuple[str, set[str]]
) -> None:
    params = SnapshotVolumesParams(instance_id=instance[0])
    applied = SnapshotVolumes().apply(aws_ctx, params)
    SnapshotVolumes().rollback(aws_ctx, params, applied)
    assert len(_case_snapshots(moto)) == len(instance[1])
    assert SnapshotVolumes.spec.reversible is False


def test_verify_fails_when_a_snapshot_disappeared(
    aws_ctx: ActionContext, moto: Any, instance: tuple[str, set[str]]
) -> None:
    params = SnapshotVolumesParams(instance_id=instance[0])
    applied = SnapshotVolumes().apply(aws_ctx, params)
    boto_client(moto, "ec2").delete_snapshot(SnapshotId=applied["snapshots"][0]["snapshot_id"])
    assert not SnapshotVolumes().verify(aws_ctx, params, {"snapshots": applied["snapshots"][:1]}).ok

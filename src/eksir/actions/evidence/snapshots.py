"""`ec2.snapshot_volumes`: crash-consistent EBS snapshots of every volume attached to the suspect node.

Why CreateSnapshots (one call for the instance) and not CreateSnapshot per volume: it snapshots all volumes
at the same point in time, so the root and data volumes (Bottlerocket keeps container state on the second
one) agree with each other. Each snapshot is tagged with the case id and its source volume and device, so
the set can be found and restored together without the case record. Snapshots are evidence: rollback never
deletes them (reversible=False). A re-run reuses a complete set the case already took (found by its set
tag) and otherwise takes a whole new set in one call: a partial set is never topped up volume by volume,
which would mix points in time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
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
from eksir.actions.containment.casework import CASE_LABEL, INSTANCE_ID_PATTERN, case_tags, require_live
from eksir.actions.containment.ec2_isolation import describe_instance
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import SnapshotTypeDef

SOURCE_INSTANCE_TAG = "eksir.io/source-instance"
SOURCE_VOLUME_TAG = "eksir.io/source-volume"
SOURCE_DEVICE_TAG = "eksir.io/source-device"
SNAPSHOT_SET_TAG = "eksir.io/snapshot-set"


class SnapshotVolumesParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)


def attached_volumes(instance: dict[str, Any]) -> dict[str, str]:
    """EBS volume id -> device name for every EBS volume attached to the instance."""
    return {
        m["Ebs"]["VolumeId"]: m["DeviceName"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m
    }


def case_snapshots(ctx: ActionContext, instance_id: str) -> list[SnapshotTypeDef]:
    """Snapshots this case already took of this instance (found by tags, so a re-run can reuse them)."""
    with aws_call(f"list the case's snapshots of {instance_id}"):
        pages = (
            ctx.aws("ec2")
            .get_paginator("describe_snapshots")
            .paginate(
                OwnerIds=["self"],
                Filters=[
                    {"Name": f"tag:{CASE_LABEL}", "Values": [ctx.case_id]},
                    {"Name": f"tag:{SOURCE_INSTANCE_TAG}", "Values": [instance_id]},
                ],
            )
        )
        return [s for page in pages for s in page["Snapshots"]]


def complete_set(
    snapshots: Sequence[Mapping[str, Any]], volumes: Mapping[str, str]
) -> dict[str, Mapping[str, Any]] | None:
    """The newest set (one CreateSnapshots call, same set tag) covering every attached volume; None if none.

    Why whole sets only: snapshots from different calls are not of the same instant; topping up a partial
    set with a per-volume snapshot would give a root and a data volume that disagree.
    """
    sets: dict[str, dict[str, Mapping[str, Any]]] = {}
    for snap in snapshots:
        if snap.get("State") == "error":
            continue
        tags = {t["Key"]: t["Value"] for t in snap.get("Tags") or []}
        sets.setdefault(tags.get(SNAPSHOT_SET_TAG, ""), {})[snap["VolumeId"]] = snap
    full = [s for key, s in sets.items() if key and set(volumes) <= set(s)]
    return max(full, key=lambda s: max(str(x.get("StartTime", "")) for x in s.values())) if full else None


def _record(snapshot: Mapping[str, Any], device: str) -> dict[str, Any]:
    return {
        "snapshot_id": snapshot["SnapshotId"],
        "volume_id": snapshot["VolumeId"],
        "device": device,
        "start_time": str(snapshot.get("StartTime", "")),
    }


@register_action
class SnapshotVolumes(Action[SnapshotVolumesParams]):
    spec = ActionSpec(
        id="ec2.snapshot_volumes",
        phase=Phase.EVIDENCE,
        title="Snapshot every EBS volume of the node",
        iam_actions=(
            "ec2:DescribeInstances",
            "ec2:DescribeSnapshots",
            "ec2:CreateSnapshots",
            "ec2:CreateTags",
        ),
        destructive=False,
        reversible=False,
        description="Snapshots are evidence and are kept; rollback does nothing.",
    )
    params_type = SnapshotVolumesParams

    def check(self, ctx: ActionContext, params: SnapshotVolumesParams) -> CheckOutcome:
        try:
            instance = describe_instance(ctx, params.instance_id)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        volumes = attached_volumes(instance)
        if not volumes:
            return CheckOutcome(ok=False, detail=f"{params.instance_id} has no EBS volume to snapshot")
        taken = set(complete_set(case_snapshots(ctx, params.instance_id), volumes) or {})
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} has {len(volumes)} EBS volume(s): {', '.join(sorted(volumes))}",
            warnings=(
                "instance-store volumes are not EBS and are not snapshotted; a snapshot holds only "
                "data already written to disk, not caches or memory",
            ),
            already_applied=set(volumes) <= taken,
        )

    def plan(self, ctx: ActionContext, params: SnapshotVolumesParams) -> PlannedChange:
        volumes = attached_volumes(describe_instance(ctx, params.instance_id))
        return PlannedChange(
            summary=f"Snapshot {len(volumes)} EBS volume(s) of {params.instance_id}",
            diff=tuple(
                f"+ snapshot of {vol} ({dev}) tagged {CASE_LABEL}={ctx.case_id}"
                for vol, dev in sorted(volumes.items())
            ),
            blast_radius=("none: the volumes stay in use while snapshots are pending",),
        )

    def apply(self, ctx: ActionContext, params: SnapshotVolumesParams) -> dict[str, Any]:
        """Reuse a complete set the case already took; otherwise take a new one, all volumes at once."""
        require_live(ctx, self.spec)
        volumes = attached_volumes(describe_instance(ctx, params.instance_id))
        found: Mapping[str, Mapping[str, Any]] | None = complete_set(
            case_snapshots(ctx, params.instance_id), volumes
        )
        if found is None:
            set_id = uuid.uuid4().hex[:12]
            created = self._snapshot_all(ctx, params.instance_id, set_id)
            for snap in created:
                self._tag_source(ctx, params.instance_id, snap, volumes.get(snap["VolumeId"], ""))
            found = {s["VolumeId"]: s for s in created}
        return {
            "instance_id": params.instance_id,
            "snapshots": [_record(found[v], volumes[v]) for v in sorted(volumes) if v in found],
        }

    def _snapshot_all(self, ctx: ActionContext, instance_id: str, set_id: str) -> Sequence[Mapping[str, Any]]:
        tags = case_tags(ctx, **{SOURCE_INSTANCE_TAG: instance_id, SNAPSHOT_SET_TAG: set_id})
        with aws_call(f"snapshot the volumes of {instance_id}"):
            result = ctx.aws("ec2").create_snapshots(
                InstanceSpecification={"InstanceId": instance_id, "ExcludeBootVolume": False},
                Description=f"eksir case {ctx.case_id}: {instance_id}",
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
                CopyTagsFromSource="volume",
            )
        return list(result["Snapshots"])

    def _tag_source(self, ctx: ActionContext, instance_id: str, snap: Mapping[str, Any], device: str) -> None:
        """Per-snapshot tags CreateSnapshots cannot set: which volume and device each one came from."""
        tags = {
            "Name": f"eksir {ctx.case_id} {instance_id} {device}".strip(),
            SOURCE_VOLUME_TAG: snap["VolumeId"],
            SOURCE_DEVICE_TAG: device,
        }
        with aws_call(f"tag snapshot {snap['SnapshotId']}"):
            ctx.aws("ec2").create_tags(
                Resources=[snap["SnapshotId"]], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )

    def verify(
        self, ctx: ActionContext, params: SnapshotVolumesParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        ids = [str(s["snapshot_id"]) for s in applied.get("snapshots", [])]
        if not ids:
            return VerifyOutcome(ok=False, detail="no snapshot was recorded")
        with aws_call("read the case's snapshots back"):
            # A filter, not SnapshotIds: a deleted snapshot must read as "missing", not raise.
            snaps = ctx.aws("ec2").describe_snapshots(
                OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": ids}]
            )["Snapshots"]
        states = {s["SnapshotId"]: s["State"] for s in snaps}
        tagged = all(
            {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get(CASE_LABEL) == ctx.case_id for s in snaps
        )
        failed = [i for i in ids if states.get(i) not in ("pending", "completed")]
        pending = [i for i in ids if states.get(i) == "pending"]
        detail = (
            f"failed or missing: {', '.join(failed)}"
            if failed
            else f"{len(ids)} snapshot(s) exist" + (f", {len(pending)} still pending" if pending else "")
        )
        return VerifyOutcome(ok=not failed and tagged, detail=detail, observed={"states": states})

    def rollback(self, ctx: ActionContext, params: SnapshotVolumesParams, applied: dict[str, Any]) -> None:
        """Nothing to undo: snapshots are evidence and are deliberately kept (delete them by hand if ever)."""

"""`ec2.share_snapshot`: share an evidence snapshot with the forensics account (createVolumePermission).

The KMS caveat, checked before anything changes:
- an unencrypted snapshot is shared by the permission alone;
- a snapshot encrypted with a customer managed key (CMK) is usable by the other account only if the CMK's
  key policy also lets that account use the key (kms:DescribeKey, kms:CreateGrant, kms:Decrypt,
  kms:ReEncrypt*, kms:GenerateDataKeyWithoutPlaintext); eksir shares the snapshot and says so, it does not
  edit key policies;
- a snapshot encrypted with the AWS managed default key (`alias/aws/ebs`) cannot be shared at all: copy it
  with a CMK first. `check` refuses that case.
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
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import BadInputError, NotFoundError, RefusedError

KMS_ACTIONS = (
    "kms:DescribeKey, kms:CreateGrant, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKeyWithoutPlaintext"
)


class ShareSnapshotParams(ActionParams):
    snapshot_id: str = Field(pattern=r"^snap-[0-9a-f]{8,17}$")
    account_id: str = Field(pattern=r"^\d{12}$")


def _snapshot(ctx: ActionContext, snapshot_id: str) -> dict[str, Any]:
    with aws_call(f"describe snapshot {snapshot_id}"):
        return dict(ctx.aws("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0])


def _shared_with(ctx: ActionContext, snapshot_id: str) -> list[str]:
    with aws_call(f"read the createVolumePermission of {snapshot_id}"):
        response = ctx.aws("ec2").describe_snapshot_attribute(
            SnapshotId=snapshot_id, Attribute="createVolumePermission"
        )
    return [str(p["UserId"]) for p in response.get("CreateVolumePermissions", []) if "UserId" in p]


def _volume_key(ctx: ActionContext, volume_id: str | None) -> str | None:
    """The source volume's key: a fallback for snapshot descriptions without KmsKeyId (moto's)."""
    if not volume_id:
        return None
    try:
        with aws_call(f"read volume {volume_id}"):
            volumes = ctx.aws("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"]
    except (NotFoundError, BadInputError):
        return None  # the volume is gone (InvalidVolume.NotFound); the key stays unknown
    return str(volumes[0].get("KmsKeyId") or "") or None if volumes else None


def kms_caveat(ctx: ActionContext, snapshot: dict[str, Any], account_id: str) -> tuple[bool, str]:
    """(shareable, explanation) for the snapshot's encryption."""
    if not snapshot.get("Encrypted"):
        return True, "unencrypted: the forensics account can copy it as soon as it is shared"
    key_id = snapshot.get("KmsKeyId") or _volume_key(ctx, snapshot.get("VolumeId"))
    if not key_id:
        return False, "encrypted with an unknown key: cannot tell whether it can be shared"
    with aws_call(f"describe KMS key {key_id}"):
        metadata = ctx.aws("kms").describe_key(KeyId=key_id)["KeyMetadata"]
    if metadata.get("KeyManager") == "AWS":
        return False, (
            f"encrypted with the AWS managed default key {key_id}: snapshots encrypted with it "
            "cannot be shared; copy the snapshot with a customer managed key first"
        )
    return True, (
        f"encrypted with customer managed key {key_id}: also grant account {account_id} "
        f"{KMS_ACTIONS} on that key in its key policy, or the shared snapshot is unusable"
    )


@register_action
class ShareSnapshot(Action[ShareSnapshotParams]):
    spec = ActionSpec(
        id="ec2.share_snapshot",
        phase=Phase.POST_INCIDENT,
        title="Share an evidence snapshot with the forensics account",
        iam_actions=(
            "ec2:DescribeSnapshots",
            "ec2:DescribeSnapshotAttribute",
            "ec2:ModifySnapshotAttribute",
            "kms:DescribeKey",
        ),
        reversible=True,
        description="Adds createVolumePermission for one account; rollback removes it.",
    )
    params_type = ShareSnapshotParams

    def check(self, ctx: ActionContext, params: ShareSnapshotParams) -> CheckOutcome:
        snapshot = _snapshot(ctx, params.snapshot_id)
        shareable, caveat = kms_caveat(ctx, snapshot, params.account_id)
        if not shareable:
            return CheckOutcome(False, caveat)
        done = params.account_id in _shared_with(ctx, params.snapshot_id)
        return CheckOutcome(True, f"snapshot {params.snapshot_id} ({snapshot.get('State')})", (caveat,), done)

    def plan(self, ctx: ActionContext, params: ShareSnapshotParams) -> PlannedChange:
        _, caveat = kms_caveat(ctx, _snapshot(ctx, params.snapshot_id), params.account_id)
        return PlannedChange(
            f"share {params.snapshot_id} with account {params.account_id}",
            (f"createVolumePermission add UserId {params.account_id}",),
            warnings=(caveat,),
        )

    def apply(self, ctx: ActionContext, params: ShareSnapshotParams) -> dict[str, Any]:
        if ctx.dry_run:
            raise RefusedError(f"{self.spec.id}: dry run, nothing changed")
        before = _shared_with(ctx, params.snapshot_id)
        if params.account_id not in before:
            with aws_call(f"share snapshot {params.snapshot_id} with {params.account_id}"):
                ctx.aws("ec2").modify_snapshot_attribute(
                    SnapshotId=params.snapshot_id,
                    Attribute="createVolumePermission",
                    OperationType="add",
                    UserIds=[params.account_id],
                )
        _, caveat = kms_caveat(ctx, _snapshot(ctx, params.snapshot_id), params.account_id)
        return {
            "before": {"shared_with": before},
            "after": {"shared_with": sorted({*before, params.account_id})},
            "added": params.account_id not in before,
            "kms_caveat": caveat,
        }

    def verify(
        self, ctx: ActionContext, params: ShareSnapshotParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        shared = _shared_with(ctx, params.snapshot_id)
        ok = params.account_id in shared
        return VerifyOutcome(ok, f"shared with {', '.join(shared) or 'nobody'}", {"shared_with": shared})

    def rollback(self, ctx: ActionContext, params: ShareSnapshotParams, applied: dict[str, Any]) -> None:
        if ctx.dry_run:
            raise RefusedError(f"{self.spec.id}: dry run, nothing rolled back")
        if applied.get("added"):
            with aws_call(f"unshare snapshot {params.snapshot_id}"):
                ctx.aws("ec2").modify_snapshot_attribute(
                    SnapshotId=params.snapshot_id,
                    Attribute="createVolumePermission",
                    OperationType="remove",
                    UserIds=[params.account_id],
                )

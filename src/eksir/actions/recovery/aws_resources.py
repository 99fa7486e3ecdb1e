"""EC2 instances, Lambda functions and S3 buckets the attacker created: described as evidence, then removed.

None of these is reversible: a terminated instance, a deleted function's deployment or a bucket's objects
cannot be brought back by eksir, which is why each is destructive (always approved) and its full description
goes into the case before `apply` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from eksir.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    VerifyOutcome,
)
from eksir.actions.containment.casework import INSTANCE_ID_PATTERN, require_live
from eksir.actions.containment.ec2_isolation import describe_instance
from eksir.actions.recovery.base import RecoveryAction, aws_or_none
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import EksirError, NotFoundError

if TYPE_CHECKING:
    from types_boto3_s3.type_defs import ObjectIdentifierTypeDef

_GONE_STATES = ("shutting-down", "terminated")


class InstanceParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)


def instance_or_none(ctx: ActionContext, instance_id: str) -> dict[str, Any] | None:
    """The instance as DescribeInstances shows it, or None when it does not exist (any more)."""
    try:
        return describe_instance(ctx, instance_id)
    except NotFoundError:
        return None


def _termination_protected(ctx: ActionContext, instance_id: str) -> bool:
    with aws_call(f"read termination protection of {instance_id}"):
        attr = ctx.aws("ec2").describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination"
        )
    return bool(attr["DisableApiTermination"]["Value"])


@register_action
class TerminateInstance(RecoveryAction[InstanceParams]):
    spec = ActionSpec(
        id="ec2.terminate_instance",
        phase=Phase.RECOVERY,
        title="Terminate an EC2 instance the attacker launched",
        iam_actions=("ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:TerminateInstances"),
        destructive=True,
        reversible=False,
    )
    params_type = InstanceParams

    def describe(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any] | None:
        return instance_or_none(ctx, params.instance_id)

    def check(self, ctx: ActionContext, params: InstanceParams) -> CheckOutcome:
        found = self.describe(ctx, params)
        state = (found or {}).get("State", {}).get("Name")
        if found is None or state in _GONE_STATES:
            return CheckOutcome(True, f"{params.instance_id} is {state or 'gone'}", already_applied=True)
        if _termination_protected(ctx, params.instance_id):
            return CheckOutcome(
                False,
                f"{params.instance_id} has termination protection (set by the attacker?): the plan's "
                "ec2.clear_termination_protection step clears it once the instance's snapshots are completed",
            )
        return CheckOutcome(True, f"{params.instance_id} is {state} ({found.get('InstanceType')})")

    def plan(self, ctx: ActionContext, params: InstanceParams) -> PlannedChange:
        found = self.describe(ctx, params) or {}
        return PlannedChange(
            f"terminate {params.instance_id} "
            f"({found.get('InstanceType', '?')}, launched {found.get('LaunchTime')})",
            diff=(f"- instance {params.instance_id}",),
            warnings=("termination cannot be undone; the description is kept as evidence",),
        )

    def apply(self, ctx: ActionContext, params: InstanceParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        before = self.describe(ctx, params)
        if before is not None and before["State"]["Name"] not in _GONE_STATES:
            with aws_call(f"terminate {params.instance_id}"):
                ctx.aws("ec2").terminate_instances(InstanceIds=[params.instance_id])
        return {"before": before}

    def verify(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> VerifyOutcome:
        state = (self.describe(ctx, params) or {}).get("State", {}).get("Name", "gone")
        return VerifyOutcome(state in (*_GONE_STATES, "gone"), f"{params.instance_id} is {state}")

    def rollback(self, ctx: ActionContext, params: InstanceParams, applied: dict[str, Any]) -> None:
        return None  # not reversible


class FunctionParams(ActionParams):
    function_name: str = Field(min_length=1, max_length=170)


@register_action
class DeleteLambdaFunction(RecoveryAction[FunctionParams]):
    spec = ActionSpec(
        id="lambda.delete_function",
        phase=Phase.RECOVERY,
        title="Delete a Lambda function the attacker created",
        iam_actions=("lambda:GetFunction", "lambda:DeleteFunction"),
        destructive=True,
        reversible=False,
    )
    params_type = FunctionParams

    def describe(self, ctx: ActionContext, params: FunctionParams) -> dict[str, Any] | None:
        found = aws_or_none(
            f"get function {params.function_name}",
            lambda: ctx.aws("lambda").get_function(FunctionName=params.function_name),
        )
        return None if found is None else {k: v for k, v in found.items() if k != "ResponseMetadata"}

    def check(self, ctx: ActionContext, params: FunctionParams) -> CheckOutcome:
        if self.describe(ctx, params) is None:
            return CheckOutcome(True, f"function {params.function_name} is gone", already_applied=True)
        return CheckOutcome(True, f"function {params.function_name} exists")

    def plan(self, ctx: ActionContext, params: FunctionParams) -> PlannedChange:
        return PlannedChange(
            f"delete Lambda function {params.function_name}", diff=(f"- function {params.function_name}",)
        )

    def apply(self, ctx: ActionContext, params: FunctionParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        before = self.describe(ctx, params)
        if before is not None:
            with aws_call(f"delete function {params.function_name}"):
                ctx.aws("lambda").delete_function(FunctionName=params.function_name)
        return {"before": before}

    def verify(self, ctx: ActionContext, params: FunctionParams, applied: dict[str, Any]) -> VerifyOutcome:
        gone = self.describe(ctx, params) is None
        return VerifyOutcome(gone, f"function {params.function_name} {'is gone' if gone else 'still exists'}")

    def rollback(self, ctx: ActionContext, params: FunctionParams, applied: dict[str, Any]) -> None:
        return None  # not reversible


_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys per request
_KEEP = ("Key", "VersionId", "Size", "ETag", "LastModified")


def _all_versions(s3: Any, bucket: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(object versions, delete markers) over every page of ListObjectVersions."""
    objects: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects += [{k: v for k, v in o.items() if k in _KEEP} for o in page.get("Versions", [])]
        markers += [{k: v for k, v in o.items() if k in _KEEP} for o in page.get("DeleteMarkers", [])]
    return objects, markers


class BucketParams(ActionParams):
    bucket: str = Field(min_length=3, max_length=63)


@register_action
class DeleteS3Bucket(RecoveryAction[BucketParams]):
    spec = ActionSpec(
        id="s3.delete_bucket",
        phase=Phase.RECOVERY,
        title="Empty and delete an S3 bucket the attacker created",
        iam_actions=("s3:ListBucket", "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteBucket"),
        destructive=True,
        reversible=False,
    )
    params_type = BucketParams

    def describe(self, ctx: ActionContext, params: BucketParams) -> dict[str, Any] | None:
        """Every object version and delete marker, over every page (ListObjectVersions returns 1,000 at most
        per call: a bucket read from one page would be "emptied" and then refuse to be deleted)."""
        listing = aws_or_none(
            f"list bucket {params.bucket}", lambda: _all_versions(ctx.aws("s3"), params.bucket)
        )
        if listing is None:
            return None
        objects, markers = listing
        return {"bucket": params.bucket, "objects": objects, "delete_markers": markers}

    def check(self, ctx: ActionContext, params: BucketParams) -> CheckOutcome:
        found = self.describe(ctx, params)
        if found is None:
            return CheckOutcome(True, f"bucket {params.bucket} is gone", already_applied=True)
        return CheckOutcome(True, f"bucket {params.bucket} holds {len(found['objects'])} object version(s)")

    def plan(self, ctx: ActionContext, params: BucketParams) -> PlannedChange:
        found = self.describe(ctx, params) or {"objects": []}
        return PlannedChange(
            f"delete bucket {params.bucket} and its {len(found['objects'])} object version(s)",
            diff=(f"- bucket {params.bucket}",),
            warnings=("the objects are listed as evidence, not copied",),
        )

    def apply(self, ctx: ActionContext, params: BucketParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        before = self.describe(ctx, params)
        if before is None:
            return {"before": None}
        s3 = ctx.aws("s3")
        items: list[ObjectIdentifierTypeDef] = [
            {"Key": i["Key"], "VersionId": i.get("VersionId") or "null"}
            for i in before["objects"] + before["delete_markers"]
        ]
        with aws_call(f"empty and delete bucket {params.bucket}"):
            for start in range(0, len(items), _DELETE_BATCH):
                answer = s3.delete_objects(
                    Bucket=params.bucket,
                    Delete={"Objects": items[start : start + _DELETE_BATCH], "Quiet": True},
                )
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise EksirError(
                        f"bucket {params.bucket}: {len(answer['Errors'])} object version(s) not deleted, "
                        f"first {first.get('Key')!r}: {first.get('Code')}"
                    )
            s3.delete_bucket(Bucket=params.bucket)
        return {"before": before}

    def verify(self, ctx: ActionContext, params: BucketParams, applied: dict[str, Any]) -> VerifyOutcome:
        gone = self.describe(ctx, params) is None
        return VerifyOutcome(gone, f"bucket {params.bucket} {'is gone' if gone else 'still exists'}")

    def rollback(self, ctx: ActionContext, params: BucketParams, applied: dict[str, Any]) -> None:
        return None  # not reversible

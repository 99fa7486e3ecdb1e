"""s3.delete_bucket against moto's S3: every page of object versions and delete markers goes.

ListObjectVersions answers at most 1,000 entries per call; a bucket with more (here 1,050 versions and 2
delete markers, on a versioned bucket) was "emptied" from the first page and then could not be deleted.
"""

from __future__ import annotations

from typing import Any

from eksir.actions.base import ActionContext
from eksir.actions.recovery.aws_resources import BucketParams, DeleteS3Bucket
from tests.actions.conftest import boto_client


def _loot(moto: Any, name: str) -> int:
    s3 = boto_client(moto, "s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for index in range(525):
        for _ in range(2):
            s3.put_object(Bucket=name, Key=f"exfil/{index:04d}.bin", Body=b"x")
    s3.delete_object(Bucket=name, Key="exfil/0000.bin")  # delete markers are versions too
    s3.delete_object(Bucket=name, Key="exfil/0001.bin")
    first = s3.list_object_versions(Bucket=name)
    assert first["IsTruncated"], "moto pages ListObjectVersions at 1,000 like S3"
    return 1052


def test_every_page_of_versions_and_markers_is_described_and_deleted(
    aws_ctx: ActionContext, moto: Any
) -> None:
    total = _loot(moto, "attacker-loot")
    params = BucketParams(bucket="attacker-loot")
    described = DeleteS3Bucket().describe(aws_ctx, params)
    assert described is not None
    assert len(described["objects"]) + len(described["delete_markers"]) == total
    assert len(described["delete_markers"]) == 2
    applied = DeleteS3Bucket().apply(aws_ctx, params)
    assert DeleteS3Bucket().verify(aws_ctx, params, applied).ok
    names = [b["Name"] for b in boto_client(moto, "s3").list_buckets()["Buckets"]]
    assert "attacker-loot" not in names
    assert DeleteS3Bucket().check(aws_ctx, params).already_applied

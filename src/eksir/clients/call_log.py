"""Every AWS API call eksir makes, recorded by the IAM action it needs: what `eksir permissions` must cover.

Why a hook on each product client (botocore's `before-call`, registered where `AwsClients` and the hunt's
`AwsAccess` make their clients), switched on by an environment variable naming a file: a game day runs
phases in this process and hunt workers in others, and every one of them must land in one record. The lab's
own clients (the attacker, the seeding) come from `new_client` directly and are not recorded: they are not
eksir's calls. Lines are appended with O_APPEND, one `write` each, so processes do not interleave them.

`iam_action` names the IAM action a call needs; for most services that is `<signing name>:<operation>`,
the exceptions (S3's listing and HEAD calls, the tagging API's `tag:` prefix) are listed here.
"""

from __future__ import annotations

import os
from typing import Any

RECORD_CALLS_ENV = "EKSIR_RECORD_AWS_CALLS"
_PREFIX = {"tagging": "tag", "monitoring": "cloudwatch", "email": "ses"}
_ACTION = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "PutObjectLockConfiguration"): "s3:PutBucketObjectLockConfiguration",
}


def iam_action(signing_name: str, operation: str) -> str:
    """The IAM action an API operation needs (`s3`, `ListObjectsV2` -> `s3:ListBucket`)."""
    return _ACTION.get((signing_name, operation)) or f"{_PREFIX.get(signing_name, signing_name)}:{operation}"


def record_calls(client: Any) -> Any:
    """Register the recording hook on `client` when RECORD_CALLS_ENV names a file; returns `client`."""
    path = os.environ.get(RECORD_CALLS_ENV)
    if not path:
        return client
    signing_name = str(client.meta.service_model.signing_name)

    def _record(model: Any, **_kwargs: Any) -> None:
        line = (iam_action(signing_name, str(model.name)) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    client.meta.events.register("before-call", _record, unique_id="eksir-record-calls")
    return client

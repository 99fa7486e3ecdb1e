"""The shared case store: `--cases-dir s3://bucket/prefix` with a DynamoDB lease table, behind CaseStore.

Why behind the same CaseStore and CaseHandle: every command, the runner and the report already read and
write cases through them, so an S3 case is a CaseHandle whose directory is a local copy and whose `remote`
sends every write to S3 first (store/s3_case.py). `eksir serve` and the CLI open it the same way:

    store = CaseStore("s3://bucket/prefix", lock_table="eksir-case-leases")
    handle = store.get(case_id)            # materialised from S3
    with handle.writer("respond", wait=False):   # the DynamoDB lease (exit 12 naming the holder)
        ...                                 # every event carries the lease's fencing token

The incident index (store/incident.py) lives in S3 too (`<prefix>/.index/<kind>/<sha256 of key>`, written
once with If-None-Match), so every worker joins a finding to the same case.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eksir.clients.aws import AwsClients, aws_call
from eksir.errors import EksirError, NotFoundError
from eksir.store.s3_case import RemoteCase, materialise
from eksir.store.s3_location import S3Location, check_case_id, lock_table
from eksir.store.s3_record import PRECONDITION_FAILED, S3Record, list_case_ids

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_s3.client import S3Client

INDEX_DIR = ".index"


@dataclass
class S3Backend:
    """One S3 store: its location, the lease table, and the clients (made on first use, one factory)."""

    location: S3Location
    table: str
    aws: AwsClients = field(default_factory=AwsClients)
    _checked: bool = False
    _bucket_lock: dict[str, Any] = field(default_factory=dict)

    @property
    def s3(self) -> S3Client:
        return self.aws.client("s3")

    @property
    def dynamo(self) -> DynamoDBClient:
        return self.aws.client("dynamodb")

    @property
    def cache_root(self) -> Path:
        return self.location.cache_dir()

    def remote(self, case_id: str, case_dir: Path | None = None) -> RemoteCase:
        record = S3Record(self.s3, self.location, case_id, self._bucket_lock)
        return RemoteCase(record, self.dynamo, self.table, case_dir or self.cache_root / case_id)

    def check_bucket(self) -> None:
        """Once per store: the bucket exists and is readable (NotFoundError exit 10, denied exit 8)."""
        if self._checked:
            return
        try:
            with aws_call(f"open the case store {self.location.url}"):
                self.s3.head_bucket(Bucket=self.location.bucket)
        except NotFoundError as exc:
            raise NotFoundError(
                f"case store {self.location.url}: no bucket {self.location.bucket!r}"
            ) from exc
        self._checked = True

    def open(self, case_id: str) -> RemoteCase | None:
        """The case materialised in the local copy, None when S3 has no such case."""
        self.check_bucket()
        remote = self.remote(check_case_id(case_id))
        if not remote.case_dir.is_dir() and not remote.record.exists():
            return None  # a copy here is checked against S3 by materialise instead (one call fewer)
        materialise(remote)
        log = remote.case_dir / "events.jsonl"
        if not log.is_file() or log.stat().st_size == 0:
            return None  # a copy of a case S3 no longer has: materialise emptied its log
        return remote

    def case_ids(self) -> list[str]:
        self.check_bucket()
        return list_case_ids(self.s3, self.location)


def backend_for(location: S3Location, table: str | None = None, aws: AwsClients | None = None) -> S3Backend:
    """The backend of `s3://bucket/prefix`; `table`: `--lock-table`, else EKSIR_LOCK_TABLE, else a default.

    The clients are the process's own (the security account's, not a case's member account), in
    `AWS_REGION` (as every command's `--region` default) or the profile's region.
    """
    return S3Backend(
        location, lock_table(table), aws or AwsClients(region=os.environ.get("AWS_REGION") or None)
    )


class S3IncidentIndex:
    """store/incident.py's IncidentIndex, in S3: one object per key, claimed with If-None-Match."""

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend

    def _key(self, kind: str, key: str) -> str:
        return self.backend.location.key(INDEX_DIR, kind, hashlib.sha256(key.encode()).hexdigest())

    def lookup(self, kind: str, key: str) -> str | None:
        try:
            with aws_call("read the case index"):
                body = self.backend.s3.get_object(
                    Bucket=self.backend.location.bucket, Key=self._key(kind, key)
                )
                value = body["Body"].read().decode("ascii", "replace").strip()
        except NotFoundError:
            return None
        return value if value.startswith("eksir-") and "/" not in value and ".." not in value else None

    def claim(self, kind: str, key: str, case_id: str) -> bool:
        args: dict[str, Any] = {
            "Bucket": self.backend.location.bucket,
            "Key": self._key(kind, key),
            "Body": (case_id + "\n").encode(),
        }
        try:
            with aws_call("write the case index"):
                self.backend.s3.put_object(IfNoneMatch="*", **args)
        except EksirError as exc:
            if exc.code in PRECONDITION_FAILED:
                return False
            raise
        return True

    def release(self, kind: str, key: str) -> None:
        with aws_call("update the case index"):
            self.backend.s3.delete_object(Bucket=self.backend.location.bucket, Key=self._key(kind, key))

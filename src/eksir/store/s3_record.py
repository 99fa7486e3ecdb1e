"""One case's record in S3: one object per event, written once, and content-addressed file versions.

Layout under `<prefix>/<case-id>/`:
  events/00000001.json   event N, written with `If-None-Match: *`: S3 accepts exactly one event N, so two
                         writers can never fork the chain (the loser gets PreconditionFailed and re-reads)
  blobs/<sha256>         every logged version of every file (case.json, documents, evidence), named by its
                         hash and written once; uploaded *before* the event that logs it (write-ahead)

Why content-addressed and not `evidence/001-x`: nothing in the record is ever overwritten (what Object Lock
requires of a record anyway), every logged version of case.json and the plan state stays readable, and a
crash between the upload and the event leaves only an unreferenced blob, never a logged file that is missing.
The names people know come from the events (`path` -> `sha256`), exactly as in a case directory.

Object Lock: when the bucket has it enabled (GetObjectLockConfiguration) and no default retention, every
object gets GOVERNANCE retention for `EKSIR_S3_RETENTION_DAYS` (default 365); S3 applies a default rule.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eksir.clients.aws import aws_call
from eksir.errors import BadInputError, EksirError, NotFoundError
from eksir.store.atomic import sha256_bytes
from eksir.store.s3_location import S3Location, check_case_id

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

RETENTION_ENV = "EKSIR_S3_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 365
PRECONDITION_FAILED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_EVENT_NAME = re.compile(r"^(\d{8})\.json$")
_FETCH_THREADS = 8


def seq_key_name(seq: int) -> str:
    return f"{seq:08d}.json"


class S3Record:
    """The S3 side of one case; every method documents what it raises (eksir errors via `aws_call`)."""

    def __init__(
        self, s3: S3Client, location: S3Location, case_id: str, bucket_lock: dict[str, Any] | None = None
    ) -> None:
        self.s3 = s3
        self.location = location
        self.case_id = check_case_id(case_id)
        self._bucket_lock = {} if bucket_lock is None else bucket_lock
        """Shared by the store's records: the bucket's Object Lock answer, asked once per store."""

    @property
    def url(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.key(self.case_id)}"

    def event_key(self, seq: int) -> str:
        return self.location.key(self.case_id, "events", seq_key_name(seq))

    def blob_key(self, digest: str) -> str:
        return self.location.key(self.case_id, "blobs", digest)

    def exists(self) -> bool:
        """True when the case's first event is in S3; raises PermissionDeniedError, UnreachableError."""
        return self.event_body(1) is not None

    def put_event(self, seq: int, body: bytes) -> bool:
        """Write event `seq` unless one exists: False when another writer wrote it first."""
        return self._put_once(self.event_key(seq), body, "application/json")

    def put_blob(self, data: bytes) -> str:
        """Upload a file version under its sha256 (already there: the same bytes, nothing to do)."""
        digest = sha256_bytes(data)
        self._put_once(self.blob_key(digest), data, "application/octet-stream")
        return digest

    def _put_once(self, key: str, body: bytes, content_type: str) -> bool:
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": key, "Body": body}
        args["ContentType"] = content_type
        try:
            with aws_call(f"write {self.location.bucket}/{key}"):
                self.s3.put_object(IfNoneMatch="*", **args, **self._object_lock())
        except EksirError as exc:
            if exc.code in PRECONDITION_FAILED:
                return False
            raise
        return True

    def _object_lock(self) -> dict[str, Any]:
        """Retention arguments for a bucket with Object Lock but no default rule (asked once)."""
        if "enabled" not in self._bucket_lock:
            try:
                with aws_call(f"read the Object Lock configuration of {self.location.bucket}"):
                    found = self.s3.get_object_lock_configuration(Bucket=self.location.bucket)
                config = found.get("ObjectLockConfiguration", {})
                enabled = config.get("ObjectLockEnabled") == "Enabled" and not config.get("Rule")
            except NotFoundError:
                enabled = False
            self._bucket_lock["enabled"] = enabled
        if not self._bucket_lock["enabled"]:
            return {}
        days = retention_days()
        until = datetime.now(UTC) + timedelta(days=days)
        return {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until}

    def event_body(self, seq: int) -> bytes | None:
        """Event `seq`'s object, None when absent."""
        return self._get(self.event_key(seq))

    def blob(self, digest: str) -> bytes | None:
        """A file version by its sha256, None when absent (the caller checks the bytes hash to it)."""
        return self._get(self.blob_key(digest))

    def download_blob(self, digest: str, target: Path) -> bool:
        """Stream a file version to `target` (large evidence never sits in memory); False when absent."""
        try:
            with aws_call(f"read {self.url}/blobs/{digest}"):
                self.s3.download_file(self.location.bucket, self.blob_key(digest), str(target))
        except NotFoundError:
            return False
        return True

    def _get(self, key: str) -> bytes | None:
        try:
            with aws_call(f"read s3://{self.location.bucket}/{key}"):
                return self.s3.get_object(Bucket=self.location.bucket, Key=key)["Body"].read()
        except NotFoundError:
            return None

    def event_names(self, after: int = 0) -> list[str]:
        """Names of the objects under `events/` after event `after`, in key order (numeric order)."""
        start = self.event_key(after) if after else ""
        prefix = self.location.key(self.case_id, "events") + "/"
        names: list[str] = []
        for page in self._pages(prefix, start):
            names += [obj["Key"][len(prefix) :] for obj in page.get("Contents", [])]
        return names

    def _pages(self, prefix: str, start: str) -> Iterator[dict[str, Any]]:
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": prefix}
        if start:
            args["StartAfter"] = start
        while True:
            with aws_call(f"list s3://{self.location.bucket}/{prefix}"):
                page: dict[str, Any] = dict(self.s3.list_objects_v2(**args))
            yield page
            if not page.get("IsTruncated"):
                return
            args["ContinuationToken"] = page["NextContinuationToken"]

    def events_following(self, after: int, probe: int = 4) -> list[tuple[str, bytes]]:
        """The events after `after` when few are expected (another writer won the append): read by key, one
        GET each until the first absent; past `probe` of them, the rest by listing (`events_after`).

        Why not list at once: the chain has no gaps (event N is written only once N-1 exists), so the next
        keys are known, and a GET is one lookup where a listing walks the prefix (on moto, every key of the
        bucket): under a burst of repeats the two workers win each other's appends all the time."""
        found: list[tuple[str, bytes]] = []
        for seq in range(after + 1, after + 1 + probe):
            body = self.event_body(seq)
            if body is None:
                return found
            found.append((seq_key_name(seq), body))
        return found + self.events_after(after + probe)

    def events_after(self, after: int = 0) -> list[tuple[str, bytes]]:
        """Every object under `events/` after event `after`: (name, body), fetched in parallel."""
        names = self.event_names(after)
        prefix = self.location.key(self.case_id, "events")

        def fetch(name: str) -> tuple[str, bytes]:
            return name, self._get(f"{prefix}/{name}") or b""

        with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
            return list(pool.map(fetch, names))


def retention_days() -> int:
    """`EKSIR_S3_RETENTION_DAYS` (default 365); raises BadInputError when it is not a positive number."""
    raw = os.environ.get(RETENTION_ENV) or str(DEFAULT_RETENTION_DAYS)
    if not raw.isdigit() or int(raw) < 1:
        raise BadInputError(
            f"{RETENTION_ENV}={raw!r}: the Object Lock retention is a number of days (1 or more)"
        )
    return int(raw)


def event_seq(name: str) -> int | None:
    """The sequence number an event object's name claims, None for a name that is not an event's."""
    match = _EVENT_NAME.match(name)
    return int(match.group(1)) if match else None


def list_case_ids(s3: S3Client, location: S3Location) -> list[str]:
    """The case ids under the store's prefix (their folders); raises as `aws_call`."""
    prefix = location.key("") + "/" if location.prefix else ""
    found: list[str] = []
    args: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix, "Delimiter": "/"}
    while True:
        with aws_call(f"list {location.url}"):
            page = s3.list_objects_v2(**args)
        for common in page.get("CommonPrefixes", []):
            name = common.get("Prefix", "")[len(prefix) :].rstrip("/")
            if name.startswith("eksir-"):
                found.append(name)
        if not page.get("IsTruncated"):
            return found
        args["ContinuationToken"] = page["NextContinuationToken"]

"""Where a shared case store lives: `--cases-dir s3://bucket/prefix`, parsed and checked once.

Why a parser of its own: `--cases-dir` is a path for every command, and a path mangles a URL
(`Path("s3://b/p")` is `s3:/b/p`), so the store recognises both spellings. Bucket names follow S3's rules and
the prefix is restricted to a safe alphabet: object keys are built from it and from case ids (ours, checked by
`check_case_id`), never from finding text. Bad input is a BadInputError (exit 3) naming the rule.

The local working copy of an S3 case lives under `$EKSIR_S3_CACHE` (default `~/.cache/eksir/s3-cases`), then
`<bucket>/<prefix>/<case>`: an optimisation only, rebuilt from S3 whenever it disagrees with it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from eksir.errors import BadInputError

SCHEME = "s3://"
CACHE_ENV = "EKSIR_S3_CACHE"
LOCK_TABLE_ENV = "EKSIR_LOCK_TABLE"
DEFAULT_LOCK_TABLE = "eksir-case-leases"
"""The DynamoDB lease table when neither `--lock-table` nor `EKSIR_LOCK_TABLE` names one (partition key
`case_key`, a string; the deploy template creates it)."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9._=-]{1,200}$")
_CASE_ID = re.compile(r"^eksir-[A-Za-z0-9-]{1,100}$")


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (no leading or trailing slash; may be empty)."""

    bucket: str
    prefix: str = ""

    def key(self, *parts: str) -> str:
        """An object key under the prefix; every part is ours (a checked case id, a digest, a number)."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def cache_dir(self) -> Path:
        """This store's local working copy (never the record)."""
        base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "eksir" / "s3-cases")
        return Path(base) / self.bucket / (self.prefix or "_")


def is_s3(value: str | Path) -> bool:
    """True for `s3://...` (and its path-mangled form `s3:/...`)."""
    text = str(value)
    return text.startswith(("s3://", "s3:/"))


def parse_s3(value: str | Path) -> S3Location:
    """Parse `s3://bucket[/prefix]`; raises BadInputError (exit 3) on a bad bucket or prefix."""
    text = str(value)
    rest = text[len(SCHEME) :] if text.startswith(SCHEME) else text[len("s3:/") :]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise BadInputError(f"{text!r}: not an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")
    parts = [p for p in prefix.split("/") if p]
    for part in parts:
        if not _PREFIX_PART.match(part) or part in {".", ".."}:
            raise BadInputError(
                f"{text!r}: the key prefix may hold only letters, digits and . _ = - between slashes"
            )
    return S3Location(bucket, "/".join(parts))


def split_case_url(value: str) -> tuple[S3Location, str]:
    """`s3://bucket/prefix/CASE` -> (the store, the case id); raises BadInputError."""
    location = parse_s3(value)
    head, _, case_id = location.prefix.rpartition("/")
    check_case_id(case_id)
    return S3Location(location.bucket, head), case_id


def check_case_id(case_id: str) -> str:
    """A case id as eksir makes them (`eksir-YYYYMMDD-hex`): the only text keys are built from."""
    if not _CASE_ID.match(case_id):
        raise BadInputError(f"{case_id!r} is not an eksir case id (eksir-...)")
    return case_id


def lock_table(explicit: str | None = None) -> str:
    """The lease table: `--lock-table`, else `EKSIR_LOCK_TABLE`, else `eksir-case-leases`."""
    name = explicit or os.environ.get(LOCK_TABLE_ENV) or DEFAULT_LOCK_TABLE
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", name):
        raise BadInputError(f"{name!r} is not a DynamoDB table name")
    return name

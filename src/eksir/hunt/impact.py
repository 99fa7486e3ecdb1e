"""Who to tell: from the resources each attacker call touched to the owners of those resources.

A hunt is only useful if the owners of the touched buckets, roles and instances hear about it. Resources come
from the record's `resources[]` and the request/response fields named in the rules file; their ARNs are looked
up in the Resource Groups Tagging API (owner/team/application tags, keys configurable) and then in an optional
CMDB file, which wins because it is curated. Failing tag look-ups only produce a warning: the hunt result
matters more than its enrichment.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from eksir.clients.aws import translate_client_error
from eksir.errors import BadInputError, EksirError
from eksir.hunt.classify import ResourceField, resolve
from eksir.hunt.result import HuntEvent, OwnerNotice, ResourceRef
from eksir.hunt.sources.aws import AwsAccess

_BATCH = 100


@dataclass(frozen=True)
class OwnerKeys:
    """Tag keys (case-insensitive) that name owner, team and application."""

    owner: tuple[str, ...] = ("owner",)
    team: tuple[str, ...] = ("team",)
    application: tuple[str, ...] = ("application", "app")

    def pick(self, tags: Mapping[str, str]) -> dict[str, str | None]:
        """Owner/team/application from a tag map."""
        lowered = {k.lower(): v for k, v in tags.items()}

        def first(keys: tuple[str, ...]) -> str | None:
            return next((lowered[k.lower()] for k in keys if lowered.get(k.lower())), None)

        return {"owner": first(self.owner), "team": first(self.team), "application": first(self.application)}


def extract_resources(record: Mapping[str, Any], fields: Sequence[ResourceField]) -> list[str]:
    """ARNs of the resources a CloudTrail record names, per the rules' resource fields."""
    source = str(record.get("eventSource", ""))
    ident = record.get("userIdentity") if isinstance(record.get("userIdentity"), Mapping) else {}
    caller_arn = str(ident.get("arn", "")) if isinstance(ident, Mapping) else ""
    context = {
        "partition": caller_arn.split(":")[1] if caller_arn.count(":") >= 2 else "aws",
        "region": str(record.get("awsRegion", "")),
        "account": str(record.get("recipientAccountId") or (ident or {}).get("accountId", "")),
    }
    found: list[str] = []
    for field in fields:
        if not any(fnmatchcase(source, p) for p in field.event_source):
            continue
        for value in resolve(record, field.path):
            if not isinstance(value, str) or not value:
                continue
            arn = value if value.startswith("arn:") else field.arn.format(value=value, **context)
            if arn not in found:
                found.append(arn)
    return found


@dataclass(frozen=True)
class CmdbEntry:
    """One CMDB line: an ARN or ARN glob and who owns it."""

    pattern: str
    application: str | None
    owner: str | None
    team: str | None


def load_cmdb(path: Path) -> list[CmdbEntry]:
    """Read a CMDB as CSV (`arn,application,owner,team`) or YAML (a list of such mappings).

    Raises BadInputError when the file is unreadable or has no `arn` column.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"CMDB {path}: cannot read: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".csv":
        rows: list[Any] = list(csv.DictReader(text.splitlines()))
    else:
        import yaml  # noqa: PLC0415 - only a YAML CMDB needs it, not every hunt

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInputError(f"CMDB {path}: not valid YAML: {exc}") from exc
        rows = loaded.get("resources", []) if isinstance(loaded, dict) else loaded or []
    entries = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping) or not row.get("arn"):
            raise BadInputError(f"CMDB {path}: entry {number} has no 'arn'")
        entries.append(
            CmdbEntry(
                str(row["arn"]), row.get("application") or row.get("app"), row.get("owner"), row.get("team")
            )
        )
    return entries


class TagLookup:
    """Tags of ARNs via the Resource Groups Tagging API, one client per region, in batches of 100."""

    def __init__(self, access: AwsAccess) -> None:
        self.access = access
        self.warnings: list[str] = []

    def tags(self, arns: Iterable[str]) -> dict[str, dict[str, str]]:
        """Tag maps by ARN; ARNs the API does not know are absent. Failures become warnings."""
        by_region: dict[str, list[str]] = {}
        for arn in sorted(set(arns)):
            parts = arn.split(":")
            if len(parts) > 4:
                by_region.setdefault(parts[3] or self.access.region or "us-east-1", []).append(arn)
        found: dict[str, dict[str, str]] = {}
        for region, batch_arns in by_region.items():
            try:
                client = self.access.client("resourcegroupstaggingapi", region=region)
                for start in range(0, len(batch_arns), _BATCH):
                    chunk = batch_arns[start : start + _BATCH]
                    for page in client.get_paginator("get_resources").paginate(ResourceARNList=chunk):
                        for item in page.get("ResourceTagMappingList", []):
                            found[item["ResourceARN"]] = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            except EksirError as exc:
                self.warnings.append(f"tag look-up in {region} failed: {exc.message}")
            except Exception as exc:
                self.warnings.append(
                    f"tag look-up in {region} failed: {translate_client_error(exc, 'get_resources').message}"
                )
        return found


def attribute(
    events: list[HuntEvent],
    tags: Mapping[str, Mapping[str, str]],
    cmdb: Sequence[CmdbEntry] = (),
    keys: OwnerKeys | None = None,
) -> list[OwnerNotice]:
    """Fill owner/team/application on every resource of every event; return who to notify."""
    keys = keys or OwnerKeys()
    notices: dict[str, OwnerNotice] = {}
    for event in events:
        refs = []
        for ref in event.resources:
            picked = keys.pick(tags.get(ref.arn, {}))
            origin = "tags" if any(picked.values()) else None
            entry = next((e for e in cmdb if fnmatchcase(ref.arn, e.pattern)), None)
            if entry is not None:
                picked = {"owner": entry.owner, "team": entry.team, "application": entry.application}
                origin = "cmdb"
            refs.append(ResourceRef(arn=ref.arn, owner_source=origin, **picked))
        event.resources = refs
        for owner in sorted({str(r.owner or r.team) for r in refs if r.owner or r.team}):
            notice = notices.setdefault(owner, OwnerNotice(owner=owner))
            notice.events += 1
            for ref in refs:
                if (ref.owner or ref.team) == owner:
                    if ref.application and ref.application not in notice.applications:
                        notice.applications.append(ref.application)
                    if ref.arn not in notice.resources:
                        notice.resources.append(ref.arn)
    return sorted(notices.values(), key=lambda n: (-n.events, n.owner))

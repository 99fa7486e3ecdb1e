"""The hunt's link to a case: which principals and window a case implies, and recording the result in it.

Why a module of its own: `eksir hunt CASE`, the game day and recovery all need the same answers (the
principals named by the finding plus the AWS principal online resolution found, and a window reaching back
from the finding), and the result must land in the case the same way every time, as hashed evidence named
`hunt.json`, so the report and recovery find it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from eksir.errors import CaseInvalidError
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.result import HuntResult
from eksir.models.case import EvidenceItem
from eksir.models.finding import Finding
from eksir.models.resolution import Resolution
from eksir.store import CaseHandle

#: The playbook hunts the compromised principals' calls "since the compromise"; CloudTrail's own event
#: history keeps 90 days, so that is how far back a case's hunt reaches unless told otherwise.
CASE_LOOKBACK = timedelta(days=90)
HUNT_EVIDENCE_NAME = "hunt.json"


def case_finding(handle: CaseHandle) -> Finding:
    """The normalised finding triage wrote into the case."""
    path = handle.path / "finding.json"
    try:
        return Finding.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise CaseInvalidError(f"{handle.path} has no finding.json: triage its finding first") from exc
    except ValueError as exc:
        raise CaseInvalidError(f"{path} is not a finding eksir wrote: {str(exc).splitlines()[0]}") from exc


def case_resolution(handle: CaseHandle) -> Resolution | None:
    """The online resolution `eksir plan`/`respond` recorded, if any."""
    path = handle.path / "resolution.json"
    try:
        return Resolution.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise CaseInvalidError(f"{path} is unreadable: {str(exc).splitlines()[0]}") from exc


def case_principals(handle: CaseHandle) -> PrincipalSet:
    """The finding's principals plus the AWS principal (and mappings) resolution tied the actor to.

    A privileged pod can read its node's instance-role credentials from IMDS, so the node's role session
    is hunted too, off the node only (the node's own calls under it are not the attacker's).
    """
    principals = PrincipalSet.from_finding(case_finding(handle))
    resolution = case_resolution(handle)
    if resolution is None:
        return principals
    if resolution.instance is not None:
        own_ips = [ip for eni in resolution.instance.network_interfaces for ip in eni.private_ips]
        principals = principals.union(PrincipalSet.for_instance(resolution.instance.instance_id, own_ips))
    actor = resolution.actor
    arns = (actor.principal_arn, *(m.principal_arn for m in actor.mappings))
    extra = [arn for arn in arns if arn]
    if actor.access_key_id:
        extra.append(f"key:{actor.access_key_id}")
    return principals.union(PrincipalSet.from_values(extra)) if extra else principals


def case_since(handle: CaseHandle) -> datetime:
    """The start of a case's default hunt window: the lookback before the attacker's first-seen activity."""
    finding = case_finding(handle)
    anchor = finding.event_first_seen or finding.created_at or handle.load().opened_at
    return anchor - CASE_LOOKBACK


def record_hunt(handle: CaseHandle, result: HuntResult) -> EvidenceItem:
    """Store the result (with its queries and the sources read) as evidence and log the counts, the
    calls per account, and each Athena round with its execution id and bytes scanned (what it cost)."""
    body = result.to_json().encode()
    item = handle.add_evidence(
        HUNT_EVIDENCE_NAME,
        body,
        source="eksir hunt",
        description=f"{len(result.events)} call(s) by {len(result.principals)} principal(s), "
        f"{result.since.isoformat()} to {result.until.isoformat()}; {len(result.sources)} source(s) read, "
        f"{len(result.skipped)} skipped",
    )
    handle.append(
        "hunt.completed",
        {
            "evidence": item.path,
            "events": len(result.events),
            "by_category": result.counts_by_category(),
            "owners": sorted({notice.owner for notice in result.owners}),
            "sources": [s.name for s in result.sources],
            "accounts": {group.account_id: group.events for group in result.accounts},
            "athena_rounds": [
                {
                    "round": q.round,
                    "execution_id": q.execution_id,
                    "bytes_scanned": q.bytes_scanned,
                    "rows": q.rows,
                }
                for q in result.queries
                if q.kind == "athena" and q.executed
            ],
        },
    )
    return item

"""Ask GuardDuty whether the finding in the file exists, and whether it says what the file says.

Why: a finding file is just JSON. A forged one can point eksir at legitimate principals and workloads, and
`respond` would isolate, revoke and delete on its word. Before any destructive step the finding is fetched
again (GetFindings on the detector named in its ARN: the delegated administrator's or the member's, in the
region of the ARN) and its type, resource and actor compared with the file. A finding GuardDuty does not
know, or that differs, blocks destructive steps unless the responder says `--trust-finding-file`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from eksir.clients.aws import aws_call
from eksir.errors import BadInputError, EksirError
from eksir.findings import read_findings
from eksir.models.finding import Finding

if TYPE_CHECKING:
    from types_boto3_guardduty.client import GuardDutyClient

ClientFor = Callable[[str], "GuardDutyClient"]
"""Returns a GuardDuty client for a region."""


@dataclass(frozen=True)
class FindingCheck:
    confirmed: bool
    detector_id: str
    region: str
    differences: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        where = f"detector {self.detector_id} in {self.region}"
        if self.confirmed:
            return f"GuardDuty confirms the finding ({where})"
        return f"GuardDuty ({where}): " + "; ".join(self.differences)

    def record(self) -> dict[str, Any]:
        return {
            "confirmed": self.confirmed,
            "detector_id": self.detector_id,
            "region": self.region,
            "differences": list(self.differences),
        }


def detector_of(finding: Finding) -> tuple[str, str]:
    """(detector id, region) from the ARN, else the finding's own fields; BadInputError without them."""
    parts = (finding.arn or "").split(":", 5)
    if len(parts) == 6 and parts[2] == "guardduty":
        resource = parts[5].split("/")
        if len(resource) >= 2 and resource[0] == "detector":
            return resource[1], parts[3]
    if finding.detector_id and finding.region:
        return finding.detector_id, finding.region
    raise BadInputError(
        f"finding {finding.id} names no detector and region to confirm it with GuardDuty: "
        "pass --trust-finding-file to act on the file alone"
    )


def confirm_finding(finding: Finding, client_for: ClientFor) -> FindingCheck:
    """Fetch the finding from GuardDuty and compare; raises the eksir error of a failed call (denied: 8,
    unreachable: 7), since not being able to ask is not the same as GuardDuty saying no."""
    detector, region = detector_of(finding)
    with aws_call(f"GuardDuty GetFindings {finding.id} on detector {detector} in {region}"):
        response = client_for(region).get_findings(DetectorId=detector, FindingIds=[finding.id])
    found = response.get("Findings") or []
    if not found:
        return FindingCheck(False, detector, region, ("does not know this finding",))
    try:
        fetched = read_findings(orjson.dumps({"Findings": found[:1]}, default=str))[0]
    except (EksirError, IndexError):
        return FindingCheck(False, detector, region, ("returned a finding eksir cannot read",))
    return FindingCheck(not (diff := differences(finding, fetched)), detector, region, tuple(diff))


def _facts(finding: Finding) -> dict[str, Any]:
    workload, actor, cluster = finding.workload, finding.actor, finding.cluster
    return {
        "id": finding.id,
        "type": finding.type,
        "account": finding.account_id,
        "cluster": cluster.name if cluster else None,
        "workload namespace": workload.namespace if workload else None,
        "workload name": workload.name if workload else None,
        "workload uid": workload.uid if workload else None,
        "actor username": actor.username if actor else None,
        "actor access key": actor.access_key_id if actor else None,
        "actor principal": actor.principal_id if actor else None,
    }


def differences(given: Finding, fetched: Finding) -> list[str]:
    """Each type, resource or actor field on which the file and GuardDuty disagree (bounded text)."""
    theirs = _facts(fetched)
    return [
        f"{name} differs from the file's"
        for name, value in _facts(given).items()
        if value is not None and value != theirs[name]
    ]

"""`respond` only acts destructively on a finding GuardDuty confirms, or on the responder's recorded word.

The check itself is in resolve/finding_check.py; here it meets the case (every outcome is an event, so the
report can say whether the finding was confirmed or taken on trust) and the approval gate (an unconfirmed
finding blocks destructive steps: evidence still runs, then the command exits 12).
"""

from __future__ import annotations

from typing import Annotated

import typer

from eksir.clients.aws import AwsClients
from eksir.engine.approval import ApprovalGate, UnconfirmedFindingGate
from eksir.models.finding import Finding
from eksir.resolve.finding_check import ClientFor, FindingCheck, confirm_finding
from eksir.store.case_store import CaseHandle

TrustFindingOpt = Annotated[
    bool,
    typer.Option(
        "--trust-finding-file",
        help="act on the finding file without confirming it with GuardDuty GetFindings (recorded in the case "
        "and the report)",
    ),
]
TRUSTED_EVENT = "finding.trusted-as-given"


def guardduty_in(profile: str | None, endpoint_url: str | None) -> ClientFor:
    """GuardDuty clients for the finding's own region (its ARN's), whatever --region says for the rest."""
    return lambda region: AwsClients(region, profile, endpoint_url)("guardduty")


def gate_for_finding(
    case: CaseHandle, finding: Finding, gate: ApprovalGate, client_for: ClientFor, trust: bool
) -> tuple[ApprovalGate, FindingCheck | None]:
    """Confirm the finding with GuardDuty (or record that it was trusted as given); wrap the gate so that an
    unconfirmed finding's destructive steps are declined. Raises the eksir error of a failed GetFindings."""
    if trust:
        case.append(TRUSTED_EVENT, {"finding_id": finding.id, "reason": "--trust-finding-file"})
        return gate, None
    check = confirm_finding(finding, client_for)
    kind = "finding.confirmed" if check.confirmed else "finding.unconfirmed"
    case.append(kind, {"finding_id": finding.id, **check.record()})
    if check.confirmed:
        return gate, check
    return UnconfirmedFindingGate(gate, f"destructive steps blocked: {check.detail}"), check


def recorded_gate(case: CaseHandle, gate: ApprovalGate, trust: bool) -> tuple[ApprovalGate, str | None]:
    """For `resume`: keep the case's last decision about its finding, so resuming cannot bypass a block.

    A case whose finding GuardDuty did not confirm stays blocked (the exit-12 message is returned) unless the
    responder now passes --trust-finding-file, which is recorded like at `respond`.
    """
    decisions = [
        e for e in case.log.events() if e.type in {"finding.unconfirmed", "finding.confirmed", TRUSTED_EVENT}
    ]
    if not decisions or decisions[-1].type != "finding.unconfirmed":
        return gate, None
    if trust:
        case.append(
            TRUSTED_EVENT,
            {"finding_id": decisions[-1].data.get("finding_id"), "reason": "--trust-finding-file"},
        )
        return gate, None
    reason = "the finding was not confirmed by GuardDuty when the response started"
    message = (
        f"{reason}; destructive steps were not run (pass --trust-finding-file to act on it, on the record)"
    )
    return UnconfirmedFindingGate(gate, f"destructive steps blocked: {reason}"), message


def refusal(check: FindingCheck | None) -> str | None:
    """The exit-12 message of a run whose finding GuardDuty did not confirm; None when there is none."""
    if check is None or check.confirmed:
        return None
    return (
        f"the finding is not confirmed: {check.detail}; destructive steps were not run "
        "(pass --trust-finding-file to act on the file alone, on the record)"
    )

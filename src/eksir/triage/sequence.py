"""Triage of an attack sequence: every workload it names judged as its own pod, the rest of its scope listed.

GuardDuty raises an attack sequence only after correlating several signals into one incident, at Critical
severity. No change record can cover that as a whole, so a sequence is never `authorized-change`: it is
`unauthorized` when any of its workloads is, `suspicious` otherwise, and each workload's own verdict (with
its reasons) is in `scope`, so the responder sees which parts an approved change explains.
"""

from __future__ import annotations

from typing import Any

from eksir.findings.scope import scope_of
from eksir.models.finding import Finding
from eksir.triage.checks import CheckResult, CheckStatus
from eksir.triage.config import TriageConfig
from eksir.triage.outcome import Decision, Verdict


def triage_sequence(finding: Finding, config: TriageConfig) -> Verdict:
    """Judge each workload of the sequence; pure, no I/O."""
    from eksir.triage.verdict import triage_finding  # noqa: PLC0415 - verdict dispatches sequences here

    sequence = finding.sequence
    scope = scope_of(finding)
    entries: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    for workload in scope.workloads:
        verdict = triage_finding(workload, config)
        decisions.append(verdict.decision)
        entries.append(_workload_entry(workload, verdict))
    entries += [{"kind": "cluster", "key": name} for name in scope.clusters]
    entries += [{"kind": "node", "key": node} for node in scope.nodes]
    entries += [{"kind": "principal", "key": principal} for principal in scope.principals]
    entries += [{"kind": "container", "key": container} for container in scope.containers]
    signals = len(sequence.signals) if sequence else 0
    detail = (
        f"GuardDuty attack sequence {sequence.uid if sequence else '?'}: {signals} signals correlated over "
        f"{len(scope.workloads)} workloads, {len(scope.nodes)} nodes and {len(scope.principals)} credentials"
    )
    check = CheckResult("attack-sequence", CheckStatus.FAIL, detail)
    reasons = [
        detail,
        "an attack sequence is never an approved change as a whole; see each workload's verdict",
    ]
    unauthorized = Decision.UNAUTHORIZED in decisions
    if unauthorized:
        reasons.append("at least one workload's call came from an unexpected origin or an anonymous caller")
    decision = Decision.UNAUTHORIZED if unauthorized else Decision.SUSPICIOUS
    return Verdict(decision, tuple(reasons), (check,), scope=tuple(entries))


def _workload_entry(workload: Finding, verdict: Verdict) -> dict[str, Any]:
    pod = workload.workload
    return {
        "kind": "workload",
        "key": f"{pod.namespace}/{pod.name}" if pod else "?",
        "uid": pod.uid if pod else None,
        "cluster": workload.cluster.name if workload.cluster else None,
        "images": [c.image for c in pod.containers] if pod else [],
        "decision": verdict.decision.value,
        "reasons": list(verdict.reasons),
    }

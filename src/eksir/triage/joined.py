"""Where a joined finding's triage goes in a case (shared/DESIGN.md, "Case identity").

A case has one primary finding (the one that opened it): `finding.json`, `triage.json` and `summary.md` are
its. A finding that joined the case later (it names one of the case's workloads) keeps its own documents
beside them, named by a hash of its id (the id is the finding's text, never a path), so the primary's are
never overwritten and the report can still read both. The case's verdict only ever gets more severe.
"""

from __future__ import annotations

import hashlib

from eksir.models.finding import Finding
from eksir.triage.outcome import Decision

JOINED_FINDING_KIND = "joined-normalised-finding"
_SEVERITY = {
    Decision.AUTHORIZED_CHANGE.value: 0,
    Decision.SUSPICIOUS.value: 1,
    Decision.UNAUTHORIZED.value: 2,
}


def document_names(finding: Finding, primary_finding_id: str) -> tuple[str, str, str, str]:
    """(finding doc, triage doc, summary, finding kind) for this finding in a case opened by another one."""
    if finding.id == primary_finding_id:
        return "finding.json", "triage.json", "summary.md", "normalised-finding"
    tag = hashlib.sha256(finding.id.encode()).hexdigest()[:12]
    return (
        f"finding-joined-{tag}.json",
        f"triage-joined-{tag}.json",
        f"summary-joined-{tag}.md",
        JOINED_FINDING_KIND,
    )


def weaker(new: str, recorded: str | None) -> bool:
    """`new` is a milder verdict than the one recorded (e.g. suspicious after unauthorized)."""
    return recorded is not None and _SEVERITY.get(new, 1) < _SEVERITY.get(recorded, 1)


def case_verdict(current: str | None, new: str, joined: bool) -> str:
    """The case's verdict after this triage: it only ever gets more severe.

    A joined finding may only raise it; a re-triage of the primary finding that comes out milder (another
    config, a change record added later) is recorded and flagged, never a silent downgrade of an incident
    (issue: a re-run without --config turned "unauthorized" into "suspicious" in the report).
    """
    del joined  # the same rule for both since verdicts have a history (triage/case.py)
    if current is None:
        return new
    return new if _SEVERITY.get(new, 1) > _SEVERITY.get(current, 1) else current

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


def case_verdict(current: str | None, new: str, joined: bool) -> str:
    """The case's verdict after this triage: the primary's decides; a joined finding may only raise it."""
    if not joined or current is None:
        return new
    return new if _SEVERITY.get(new, 1) > _SEVERITY.get(current, 1) else current

"""Assemble the Report from a loaded case record: nothing here reads a cluster, an account or a clock but
one.

The only outside input is `now` (when the report was generated). Everything else comes from the case:
`finding.json`/`triage.json` (the finding and actor), `hunt.json` (attacker activity, categories, owners),
`plan.json` (step phases), the step events (response with approvers and before/after), the evidence
manifest and custody events, and the prevention records written by `eksir prevent`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from eksir.models.finding import Finding
from eksir.report.briefing import build_briefing
from eksir.report.custody import build_custody
from eksir.report.lessons import lessons
from eksir.report.model import EvidenceRow, HuntAccount, HuntCategory, Lane, OwnerRow, Report, StepRow
from eksir.report.sequence_timeline import joined_findings, sequence_entries
from eksir.report.steps import phase_map, step_rows
from eksir.report.timeline import (
    attacker_entries,
    detection_entries,
    duration_text,
    merge,
    metrics,
    response_entries,
)
from eksir.store.record import CaseRecord
from eksir.store.sensitivity import sensitive_reason

ASSESSMENT_DOC = "prevention/assessment.json"
RECOVERY_PLAN_DOC = "recovery-plan.json"
WORKLIST_DOC = "recovery/worklist.json"
PROOF_DOC = "prevention/proof.json"
PREVENTION_ACTION = "k8s.enforce_pod_security"
_OWNER_NOTICE_EVENTS = ("hunt.owners-notified", "owners.notified", "notification.sent")


def load_finding(record: CaseRecord) -> Finding | None:
    """The normalised finding the triage stored (`finding.json`); None when absent or from another schema."""
    data = record.read_json("finding.json")
    if not isinstance(data, dict):
        return None
    try:
        return Finding.model_validate(data)
    except ValidationError:
        record.unverified.append("finding.json (unexpected shape; finding details taken from triage.json)")
        return None


def build_report(record: CaseRecord, now: datetime) -> Report:
    finding = load_finding(record)
    triage = record.read_json("triage.json") or {}
    hunt = record.hunt()
    steps = step_rows(record.events, phase_map(record.read_json("plan.json")))
    by_id = {s.step_id: s for s in steps}
    assessment = record.read_json(ASSESSMENT_DOC)
    proof = record.read_json(PROOF_DOC)
    timeline = merge(
        attacker_entries(finding, hunt),
        *(sequence_entries(f) for f in (finding, *joined_findings(record))),
        detection_entries(finding),
        response_entries(record.events, by_id),
    )
    attacker_times = [e.at for e in timeline if e.lane is Lane.ATTACKER]
    first_attacker = min(attacker_times) if attacker_times else None
    detected = next((e.at for e in timeline if e.lane is Lane.DETECTION), None)
    applied = any(s.action_id == PREVENTION_ACTION and s.status in ("applied", "verified") for s in steps)
    report = Report(
        case_id=record.case.id,
        generated_at=now,
        status=str(record.case.status),
        verdict=record.case.verdict,
        title=record.case.title,
        summary=[],
        finding=triage.get("finding") or {"id": record.case.finding_id, "type": record.case.finding_type},
        actor=triage.get("actor") or {},
        timeline=timeline,
        steps=steps,
        hunt_categories=hunt_categories(hunt),
        hunt_total=len(hunt.get("events") or []) if hunt else None,
        owners=owner_rows(hunt, record),
        evidence=evidence_rows(record),
        metrics=metrics(first_attacker, detected, steps),
        lessons=lessons(finding, assessment, proof, applied),
        prevention={"assessment": assessment, "proof": proof, "applied": applied},
    )
    report.finding = {
        **report.finding,
        "workload": triage.get("workload"),
        "api_call": triage.get("api_call"),
        "cluster": triage.get("cluster"),
    }
    report.briefing = build_briefing(hunt, steps, _recovery(record), (proof or {}).get("result") == "proven")
    report.custody = build_custody(record.events)
    report.summary = executive_summary(report, finding) + milder_triage_runs(record)
    told_below = {*impact_lines(report), *_steps_needing_attention(report.steps)}
    report.briefing.headline = [line for line in report.summary if line not in told_below]
    report.hunt_accounts = hunt_accounts(hunt)
    report.notes = [f"{path}: read without a logged hash (unverified)" for path in record.unverified]
    if hunt is None:
        report.notes.append("no hunt result in the case: attacker activity is only what the finding shows")
    report.notes += _node_notes(record.read_json("plan.json"))
    return report


_NODE_SUBJECTS = ("node-kind", "node", "checkpoint")


def _node_notes(plan: Any) -> list[str]:
    """What the plan said about the node's kind and the steps it replaced (README, "Node kinds")."""
    notes = plan.get("notes") if isinstance(plan, dict) else None
    return [
        f"plan, {n['subject']}: {n.get('message', '')}"
        for n in notes or []
        if isinstance(n, dict) and n.get("subject") in _NODE_SUBJECTS
    ]


def _recovery(record: CaseRecord) -> dict[str, Any]:
    """The recovery plan (what removed the attacker's persistence) and worklist (what is left by hand)."""
    worklist, plan = record.read_json(WORKLIST_DOC), record.read_json(RECOVERY_PLAN_DOC)
    return {
        "plan": plan if isinstance(plan, dict) else {},
        "worklist": (worklist.get("worklist") if isinstance(worklist, dict) else None) or [],
    }


def hunt_accounts(hunt: dict[str, Any] | None) -> list[HuntAccount]:
    """The hunt's calls per account, busiest first. Grouped here from the (merged) events, not taken from a
    run's `accounts`, so every run of the case counts, older hunts included."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in (hunt or {}).get("events") or []:
        if isinstance(event, dict) and isinstance(event.get("account_id"), str):
            groups[event["account_id"]].append(event)
    rows = []
    for account, events in groups.items():
        regions = tuple(sorted({str(e["region"]) for e in events if e.get("region")}))
        counts = Counter(str(e.get("category")) for e in events)
        rows.append(
            HuntAccount(account, len(events), regions, tuple(f"{c} {n}" for c, n in counts.most_common()))
        )
    return sorted(rows, key=lambda row: (-row.count, row.account))


def hunt_categories(hunt: dict[str, Any] | None) -> list[HuntCategory]:
    if not hunt:
        return []
    grouped: dict[str, list[str]] = {}
    for event in hunt.get("events") or []:
        if isinstance(event, dict):
            label = " ".join(str(p) for p in (event.get("service"), event.get("action")) if p) or "call"
            grouped.setdefault(str(event.get("category") or "other"), []).append(label)
    rows = [HuntCategory(cat, len(labels), tuple(sorted(set(labels))[:5])) for cat, labels in grouped.items()]
    return sorted(rows, key=lambda r: (-r.count, r.category))


def owner_rows(hunt: dict[str, Any] | None, record: CaseRecord) -> list[OwnerRow]:
    notified: set[str] = set()
    for event in record.events_of(*_OWNER_NOTICE_EVENTS):
        owners = event.data.get("owners") or [event.data.get("owner")]
        notified.update(str(o) for o in owners if o)
    rows = []
    for notice in (hunt or {}).get("owners") or []:
        if isinstance(notice, dict) and notice.get("owner"):
            owner = str(notice["owner"])
            rows.append(
                OwnerRow(
                    owner,
                    tuple(notice.get("applications") or ()),
                    tuple(notice.get("resources") or ()),
                    int(notice.get("events") or 0),
                    owner in notified,
                )
            )
    return rows


def evidence_rows(record: CaseRecord) -> list[EvidenceRow]:
    """The evidence manifest with each item's custody: collection, then every event naming its path."""
    rows = []
    for item in record.case.evidence:
        custody = [
            f"{item.collected_at:%Y-%m-%d %H:%M:%SZ} collected by {item.collected_by} from {item.source}"
        ]
        for event in record.events:
            refs = event.data.get("evidence") or event.data.get("paths") or []
            if event.type != "evidence.collected" and (
                event.data.get("path") == item.path or item.path in refs
            ):
                custody.append(f"{event.at:%Y-%m-%d %H:%M:%SZ} {event.type} by {event.actor}")
        rows.append(
            EvidenceRow(
                item.number,
                item.name,
                item.path,
                item.sha256,
                item.size,
                item.collected_at,
                item.collected_by,
                item.source,
                item.description,
                tuple(custody),
                sensitive_reason(item, record.path),
            )
        )
    return rows


def _step_counts(steps: list[StepRow]) -> str:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none recorded"


_NOT_DONE = ("failed", "blocked", "rollback-failed")


def _steps_needing_attention(steps: list[StepRow]) -> list[str]:
    """Every step that did not do its job, by name and reason; a lab-mode step is named as such."""
    lines: list[str] = []
    for step in steps:
        if step.status == "unavailable-in-lab":
            lines.append(f"Not performed in the lab: {step.step_id} ({step.detail}).")
        elif step.status in _NOT_DONE:
            lines.append(f"Step {step.step_id} {step.status}: {step.detail}.")
        if any(status == "ran-without" for _, status in step.history):
            lines.append(f"Step {step.step_id} ran without a step that is unavailable in the lab.")
    return lines


def milder_triage_runs(record: CaseRecord) -> list[str]:
    """A re-triage that judged the incident milder than recorded (another config, a late change record):
    said where a reader sees the verdict, since the case kept the more severe one."""
    lines = []
    for event in record.events:
        recorded = event.data.get("milder_than_recorded") if event.type == "triage.completed" else None
        if recorded:
            config = str(event.data.get("config_sha256", "?"))[:12]
            lines.append(
                f"A later triage (event {event.seq}, config sha256 {config}) judged "
                f"{event.data.get('decision')}, milder than the recorded {recorded}; "
                f"the case keeps {record.case.verdict}."
            )
    return lines


def executive_summary(report: Report, finding: Finding | None) -> list[str]:
    """Four or five sentences for someone who reads nothing else."""
    workload = report.finding.get("workload") or {}
    cluster = (report.finding.get("cluster") or {}).get("name") or "an EKS cluster"
    who = report.actor.get("username") or "an unknown caller"
    pod = f"{workload.get('namespace')}/{workload.get('name')}" if workload else "a privileged pod"
    when = finding.event_first_seen if finding and finding.event_first_seen else None
    lines = [
        f"{who} ({report.actor.get('kind', 'unknown kind')}) created privileged pod {pod} in {cluster} "
        f"(account {report.finding.get('account_id')}, region {report.finding.get('region')})"
        + (f", first seen {when:%Y-%m-%d %H:%M:%SZ}." if when else "."),
        f"Triage verdict: {report.verdict or 'none recorded'}. Case status: {report.status}.",
        f"Response steps: {_step_counts(report.steps)}.",
        *_steps_needing_attention(report.steps),
    ]
    lines += impact_lines(report)
    lines.append(
        f"Time to detection {report.metrics[0].text}, to containment {report.metrics[1].text}, to recovery "
        f"{report.metrics[2].text} (from the first attacker event)."
    )
    if report.hunt_total is not None:
        cats = ", ".join(f"{c.category} {c.count}" for c in report.hunt_categories) or "none"
        lines.append(f"The hunt found {report.hunt_total} call(s) by the attacker's principals ({cats}).")
    proof = report.prevention.get("proof") or {}
    lines.append(
        "Prevention proven: the API server now rejects the attacker's pod (" + str(proof.get("status")) + ")."
        if proof.get("result") == "proven"
        else "Prevention is not yet proven in the cluster."
    )
    return lines


def impact_lines(report: Report) -> list[str]:
    """The impact, a sentence each: data read, persistence created (and removed), logging tampered with."""
    brief = report.briefing
    lines = []
    for label, items in (
        ("Data read", brief.data_read),
        ("Persistence created", brief.persistence),
        ("Logging tampered with", brief.logging_tampered),
    ):
        if items:
            shown = "; ".join(
                f"{i.call} {i.target}" + (f" ({i.outcome})" if i.outcome != "succeeded" else "")
                for i in items[:3]
            )
            more = len(items) - 3 + brief.more.get(_KINDS[label], 0)
            lines.append(f"{label}: {shown}" + (f" and {more} more." if more > 0 else "."))
    return lines


_KINDS = {
    "Data read": "data_read",
    "Persistence created": "persistence",
    "Logging tampered with": "logging_tampered",
}


__all__ = ["build_report", "duration_text"]

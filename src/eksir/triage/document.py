"""The stable triage result: one JSON object per finding (documented in the README) and a readable summary.

The JSON shape is a public contract (`eksir triage --output json`): fields are only ever added, never renamed.
One small function per section, in the order the document has them.
"""

from __future__ import annotations

from typing import Any

from eksir.models.finding import Actor, ApiCall, Finding, Workload
from eksir.safetext import md_escape
from eksir.triage.sections import extra_sections, summary_lines
from eksir.triage.verdict import Verdict

TRIAGE_SCHEMA = "eksir.triage/v1"


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def triage_document(
    finding: Finding, verdict: Verdict, case_id: str | None, case_path: str | None
) -> dict[str, Any]:
    """Build the documented triage object for one finding."""
    return {
        "schema": TRIAGE_SCHEMA,
        "finding": _finding(finding),
        "cluster": {"name": finding.cluster.name, "arn": finding.cluster.arn} if finding.cluster else None,
        "workload": _workload(finding.workload) if finding.workload is not None else None,
        "actor": _actor(finding.actor) if finding.actor is not None else None,
        "api_call": _api_call(finding.api_call) if finding.api_call is not None else None,
        "verdict": _verdict(verdict),
        "case": {"id": case_id, "path": case_path},
        **extra_sections(finding, verdict),
    }


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "arn": finding.arn,
        "type": finding.type,
        "family": finding.family.value,
        "severity": finding.severity,
        "account_id": finding.account_id,
        "region": finding.region,
        "created_at": _iso(finding.created_at),
        "sample": finding.sample,
        "source_format": finding.source_format.value,
    }


def _workload(workload: Workload) -> dict[str, Any]:
    return {
        "namespace": workload.namespace,
        "name": workload.name,
        "uid": workload.uid,
        "type": workload.type,
        "service_account": workload.service_account,
        "host_network": workload.host_network,
        "host_pid": workload.host_pid,
        "host_ipc": workload.host_ipc,
        "containers": [
            {"name": c.name, "image": c.image, "privileged": c.privileged} for c in workload.containers
        ],
        "host_paths": [v.host_path for v in workload.volumes if v.host_path],
    }


def _actor(actor: Actor) -> dict[str, Any]:
    return {
        "kind": actor.kind.value,
        "username": actor.username,
        "uid": actor.uid,
        "groups": list(actor.groups),
        "access_key_id": actor.access_key_id,
        "principal_id": actor.principal_id,
        "user_type": actor.user_type,
        "user_name": actor.user_name,
        "session_name": actor.session_name,
        "reason": actor.reason,
    }


def _api_call(call: ApiCall) -> dict[str, Any]:
    return {
        "verb": call.verb,
        "request_uri": call.request_uri,
        "status_code": call.status_code,
        "user_agent": call.user_agent,
        "source_ips": list(call.source_ips),
        "asn": call.asn,
        "asn_org": call.asn_org,
        "country_code": call.country_code,
    }


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {
        "decision": verdict.decision.value,
        "reasons": list(verdict.reasons),
        "checks": [{"name": c.name, "status": c.status.value, "detail": c.detail} for c in verdict.checks],
        "change_record": verdict.change_record.id if verdict.change_record else None,
        "suppression_filter": verdict.suppression_filter,
        "follow_ups": list(verdict.follow_ups),
    }


def summary_markdown(document: dict[str, Any]) -> str:
    """A short human summary for the case folder, written from the triage document only.

    Every value is escaped (`md_escape`): pod names, images and user agents are the attacker's text, and a
    backtick in one would close a code span and let the rest render as Markdown or HTML.
    """
    e = md_escape
    finding, verdict = document["finding"], document["verdict"]
    workload, actor, call = document["workload"] or {}, document["actor"] or {}, document["api_call"] or {}
    cluster = (document["cluster"] or {}).get("name")
    lines = [
        f"# Case {e(document['case']['id'])}",
        "",
        f"**{e(finding['type'])}** (severity {e(finding['severity'])}) "
        f"in account {e(finding['account_id'])}, region {e(finding['region'])}, cluster {e(cluster)}, "
        f"created {e(finding['created_at'])}.",
        "",
        f"- Pod: {e(workload.get('namespace'))}/{e(workload.get('name'))} (uid {e(workload.get('uid'))}), "
        f"service account {e(workload.get('service_account'))}, "
        f"hostNetwork={e(workload.get('host_network'))}, hostPID={e(workload.get('host_pid'))}, "
        f"hostIPC={e(workload.get('host_ipc'))}",
    ]
    lines += [
        f"  - container {e(c['name'])} image {e(c['image'])} privileged={e(c['privileged'])}"
        for c in workload.get("containers", [])
    ]
    actor_credentials = f"access key {e(actor.get('access_key_id'))}, session {e(actor.get('session_name'))}"
    source_ips = e(", ".join(call.get("source_ips") or []) or "unknown IP")
    origin = f"ASN {e(call.get('asn'))} {e(call.get('asn_org'))}, country {e(call.get('country_code'))}"
    lines += [
        f"- Actor: **{e(actor.get('kind'))}** {e(actor.get('username'))} ({actor_credentials}): "
        f"{e(actor.get('reason'))}",
        f"- Call: {e(call.get('verb'))} {e(call.get('request_uri'))} -> {e(call.get('status_code'))} from "
        f"{source_ips} ({origin}), user agent {e(call.get('user_agent'))}",
        "",
        f"## Verdict: {e(verdict['decision'])}",
        "",
    ]
    lines += [f"- {e(reason, starts_line=True)}" for reason in verdict["reasons"]]
    lines += ["", "| check | status | detail |", "|---|---|---|"]
    lines += [f"| {e(c['name'])} | {e(c['status'])} | {e(c['detail'])} |" for c in verdict["checks"]]
    if verdict["follow_ups"]:
        lines += ["", "## Follow-ups", ""]
        lines += [f"- {e(item, starts_line=True)}" for item in verdict["follow_ups"]]
    return "\n".join(lines + summary_lines(document)) + "\n"

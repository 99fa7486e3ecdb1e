"""Rich rendering of a triage document for a responder's terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

_DECISION_STYLE = {"authorized-change": "green", "suspicious": "yellow", "unauthorized": "bold red"}
_STATUS_STYLE = {"pass": "green", "fail": "red", "not-configured": "dim", "no-data": "yellow"}


def render_triage(console: Console, document: dict[str, Any]) -> None:
    finding, verdict = document["finding"], document["verdict"]
    workload, actor, call = document["workload"] or {}, document["actor"] or {}, document["api_call"] or {}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Finding", f"{finding['type']}  (severity {finding['severity']})")
    facts.add_row("Id", str(finding["id"]))
    facts.add_row("Account/region", f"{finding['account_id']} / {finding['region']}")
    facts.add_row("Cluster", str((document["cluster"] or {}).get("name")))
    facts.add_row("Pod", f"{workload.get('namespace')}/{workload.get('name')}  uid {workload.get('uid')}")
    for container in workload.get("containers", []):
        flag = "[red]privileged[/]" if container["privileged"] else "not privileged"
        facts.add_row("  container", f"{container['name']}  {container['image']}  {flag}")
    facts.add_row("Actor", f"[bold]{actor.get('kind')}[/]  {actor.get('username')}")
    if actor.get("access_key_id"):
        facts.add_row("  access key", f"{actor['access_key_id']} ({actor.get('user_type')})")
    facts.add_row("Call", f"{call.get('verb')} {call.get('request_uri')} -> {call.get('status_code')}")
    facts.add_row(
        "  from",
        f"{', '.join(call.get('source_ips') or []) or '?'}  ASN {call.get('asn')} "
        f"{call.get('asn_org')}  {call.get('country_code')}",
    )
    facts.add_row("Case", f"{document['case']['id']}  {document['case']['path']}")
    style = _DECISION_STYLE.get(verdict["decision"], "bold")
    console.print(Panel(facts, title=f"[{style}]{verdict['decision']}[/]", expand=False))
    checks = Table("check", "status", "detail", title="Triage checks", expand=False)
    for check in verdict["checks"]:
        status_style = _STATUS_STYLE.get(check["status"], "")
        checks.add_row(check["name"], f"[{status_style}]{check['status']}[/]", check["detail"])
    console.print(checks)
    for reason in verdict["reasons"]:
        console.print(f"  - {reason}", markup=False)
    for item in verdict["follow_ups"]:
        console.print(f"  follow-up: {item}", markup=False)

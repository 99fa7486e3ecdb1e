"""Rich rendering of a triage document for a responder's terminal.

Every value comes from the finding (the attacker chose the image, the pod name, the user agent): cells are
plain strings on a markup-free console or `Text` with eksir's own style, never markup (`eksir.safetext`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from eksir.safetext import cells, line, styled

_DECISION_STYLE = {"authorized-change": "green", "suspicious": "yellow", "unauthorized": "bold red"}
_STATUS_STYLE = {"pass": "green", "fail": "red", "not-configured": "dim", "no-data": "yellow"}


def _facts(document: dict[str, Any]) -> Table:
    finding = document["finding"]
    workload, actor, call = document["workload"] or {}, document["actor"] or {}, document["api_call"] or {}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row(*cells("Finding", f"{finding['type']}  (severity {finding['severity']})"))
    facts.add_row(*cells("Id", str(finding["id"])))
    facts.add_row(*cells("Account/region", f"{finding['account_id']} / {finding['region']}"))
    facts.add_row(*cells("Cluster", str((document["cluster"] or {}).get("name"))))
    facts.add_row(
        *cells("Pod", f"{workload.get('namespace')}/{workload.get('name')}  uid {workload.get('uid')}")
    )
    for container in workload.get("containers", []):
        flag = styled("privileged", "red") if container["privileged"] else "not privileged"
        facts.add_row(*cells("  container", line(f"{container['name']}  {container['image']}  ", flag)))
    facts.add_row(*cells("Actor", line(styled(actor.get("kind"), "bold"), f"  {actor.get('username')}")))
    if actor.get("access_key_id"):
        facts.add_row(*cells("  access key", f"{actor['access_key_id']} ({actor.get('user_type')})"))
    facts.add_row(
        *cells("Call", f"{call.get('verb')} {call.get('request_uri')} -> {call.get('status_code')}")
    )
    source = ", ".join(call.get("source_ips") or []) or "?"
    origin = f"ASN {call.get('asn')} {call.get('asn_org')}  {call.get('country_code')}"
    facts.add_row(*cells("  from", f"{source}  {origin}"))
    facts.add_row(*cells("Case", f"{document['case']['id']}  {document['case']['path']}"))
    return facts


def render_triage(console: Console, document: dict[str, Any]) -> None:
    """Print the finding panel, the checks table, the reasons and follow-ups (console: `plain_console`)."""
    verdict = document["verdict"]
    title = styled(verdict["decision"], _DECISION_STYLE.get(verdict["decision"], "bold"))
    console.print(Panel(_facts(document), title=title, expand=False))
    checks = Table("check", "status", "detail", title="Triage checks", expand=False)
    for check in verdict["checks"]:
        status = styled(check["status"], _STATUS_STYLE.get(check["status"], ""))
        checks.add_row(*cells(check["name"], status, check["detail"]))
    console.print(checks)
    for reason in verdict["reasons"]:
        console.print(f"  - {reason}")
    for item in verdict["follow_ups"]:
        console.print(f"  follow-up: {item}")
    history = document.get("verdict_history")
    if history:
        console.print(styled(f"! {history['note']}", "bold yellow"))
    _render_sections(console, document)


def _render_sections(console: Console, document: dict[str, Any]) -> None:
    """The runtime process tree, the kubectl debug traits and an attack sequence's scope, when present."""
    runtime = document.get("runtime")
    if runtime:
        tree = Table("pid", "process", "executable", "user", title="Process tree (runtime)", expand=False)
        for process in [runtime["process"], *runtime["lineage"]]:
            if process:
                who = process["user"] or f"euid {process['euid']}"
                row = (process["pid"], process["name"], process["executable_path"], who)
                tree.add_row(*cells(*(str(value) for value in row)))
        console.print(tree)
        for key, value in runtime["context"].items():
            console.print(f"  context {key}: {value}")
    debug = document.get("node_debugger")
    if debug:
        console.print(f"  kubectl debug node/{debug['node']} (profile {debug['profile']}):")
        for trait in debug["traits"]:
            console.print(f"    {'present' if trait['present'] else 'MISSING'}: {trait['trait']}")
    if document.get("scope"):
        scope = Table("kind", "resource", "verdict", title="Attack sequence scope", expand=False)
        for entry in document["scope"]:
            scope.add_row(*cells(entry["kind"], entry["key"], entry.get("decision") or "in scope"))
        console.print(scope)

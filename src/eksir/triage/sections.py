"""The triage document's sections for the newer finding families (fields only added to `eksir.triage/v1`).

- `runtime`: the container, node and process tree a Runtime Monitoring finding gives (the process, its
  ancestors nearest first, and what it did); kept in the case with the triage so the hunt and the report can
  name the exact process.
- `node_debugger`: what a `kubectl debug node` pod looked like, trait by trait (triage/node_debugger.py).
- `sequence` and `scope`: an attack sequence's uid, signals (the report's timeline), indicators and the
  incident graph with each workload's verdict (triage/sequence.py).
Every value is the finding's text, unchanged: the views escape it.
"""

from __future__ import annotations

from typing import Any

from eksir.models.finding import Finding, RuntimeProcess
from eksir.triage.outcome import Verdict


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def extra_sections(finding: Finding, verdict: Verdict) -> dict[str, Any]:
    """`runtime`, `node_debugger`, `sequence` and `scope` (each None or empty when not applicable)."""
    return {
        "runtime": runtime_section(finding),
        "node_debugger": verdict.debug_pod,
        "sequence": sequence_section(finding),
        "scope": list(verdict.scope),
    }


def _process(process: RuntimeProcess | None) -> dict[str, Any] | None:
    if process is None:
        return None
    return {
        "name": process.name,
        "executable_path": process.executable_path,
        "executable_sha256": process.executable_sha256,
        "pid": process.pid,
        "namespace_pid": process.namespace_pid,
        "user": process.user,
        "euid": process.euid,
        "start_time": _iso(process.start_time),
        "uuid": process.uuid,
        "parent_uuid": process.parent_uuid,
    }


def runtime_section(finding: Finding) -> dict[str, Any] | None:
    runtime, container = finding.runtime, finding.container
    if runtime is None and container is None:
        return None
    return {
        "instance_id": finding.instance_id,
        "container": None
        if container is None
        else {
            "id": container.id,
            "name": container.name,
            "image": container.image,
            "runtime": container.runtime,
        },
        "process": _process(runtime.process) if runtime else None,
        "lineage": [_process(p) for p in runtime.lineage] if runtime else [],
        "context": dict(runtime.context) if runtime else {},
        "modifying_process": _process(runtime.modifying_process) if runtime else None,
    }


def sequence_section(finding: Finding) -> dict[str, Any] | None:
    sequence = finding.sequence
    if sequence is None:
        return None
    return {
        "uid": sequence.uid,
        "description": sequence.description,
        "signals": [
            {
                "uid": s.uid,
                "type": s.type,
                "name": s.name,
                "description": s.description,
                "severity": s.severity,
                "count": s.count,
                "first_seen": _iso(s.first_seen),
                "last_seen": _iso(s.last_seen),
                "resource_uids": list(s.resource_uids),
            }
            for s in sequence.signals
        ],
        "indicators": [
            {"key": i.key, "title": i.title, "values": list(i.values)} for i in sequence.indicators
        ],
        "endpoints": [
            {"ip": e.ip, "domain": e.domain, "port": e.port, "country": e.country} for e in sequence.endpoints
        ],
    }


def summary_lines(document: dict[str, Any]) -> list[str]:
    """Markdown lines for `summary.md` from the sections above (every value escaped)."""
    from eksir.safetext import md_escape as e  # noqa: PLC0415 - only the case summary needs it

    lines: list[str] = []
    debug = document.get("node_debugger")
    if debug:
        lines += [
            "",
            "## kubectl debug node",
            "",
            f"- node {e(debug['node'])}, profile {e(debug['profile'])}, "
            f"all traits present: {e(debug['genuine'])}",
        ]
        lines += [f"  - {e(t['trait'])}: {e(t['present'])}" for t in debug["traits"]]
    runtime = document.get("runtime")
    if runtime:
        lines += [
            "",
            "## Runtime",
            "",
            f"- node instance {e(runtime['instance_id'])}, container "
            f"{e((runtime['container'] or {}).get('id'))}, context {e(runtime['context'])}",
        ]
        tree = [runtime["process"], *runtime["lineage"]]
        lines += [f"  - {e(p.get('pid'))} {e(p.get('executable_path'))}" for p in tree if p]
    sequence = document.get("sequence")
    if sequence:
        lines += ["", f"## Attack sequence {e(sequence['uid'])}", ""]
        lines += [f"- {e(s['first_seen'])} {e(s['type'])} {e(s['name'])}" for s in sequence["signals"]]
    for entry in document.get("scope") or []:
        lines.append(f"- {e(entry['kind'])} {e(entry['key'])}: {e(entry.get('decision', 'in scope'))}")
    return lines

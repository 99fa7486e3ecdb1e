"""Resolve and plan a finding: one pod, or every workload an attack sequence names (one merged plan).

Why here and not in `resolve/` or `playbooks/`: resolution goes online and the plan is pure, and the case
records each resolution, so the loop over a sequence's workloads is command glue. Every workload of the
sequence's cluster is resolved with the same clients (one cluster per `eksir plan`); a workload in another
cluster is left out with a note naming it, since this run's credentials reach one API server.
"""

from __future__ import annotations

import orjson

from eksir.clients.aws import AwsClients
from eksir.engine.context import KubeProvider
from eksir.findings.scope import scope_of
from eksir.models.finding import Finding
from eksir.models.resolution import Resolution
from eksir.playbooks import Plan, PlaybookOptions, build_plan
from eksir.playbooks.sequence import build_sequence_plan
from eksir.store import CaseHandle


def resolve_and_plan(
    finding: Finding, aws: AwsClients, kube: KubeProvider, case: CaseHandle, options: PlaybookOptions
) -> Plan:
    """Resolve online, record each resolution in the case, and build the plan."""
    from eksir.resolve import resolve  # noqa: PLC0415 - imported only by the verbs that go online

    if finding.sequence is None:
        resolution = resolve(finding, aws.client, kube, checkpoint=options.checkpoint)
        _store(case, "resolution.json", resolution)
        return build_plan(finding, resolution, options)
    cluster = finding.cluster.name if finding.cluster else None
    parts: list[tuple[Finding, Resolution]] = []
    elsewhere: list[str] = []
    for workload in scope_of(finding).workloads:
        pod = workload.workload
        label = f"{pod.namespace}/{pod.name}" if pod else "?"
        if workload.cluster is None or workload.cluster.name != cluster:
            elsewhere.append(label)
            continue
        parts.append((workload, resolve(workload, aws.client, kube, checkpoint=options.checkpoint)))
    if parts:
        _store(case, "resolution.json", parts[0][1])
        body = [
            {
                "workload": f.workload.model_dump(mode="json") if f.workload else None,
                "resolution": r.model_dump(mode="json"),
            }
            for f, r in parts
        ]
        case.write_document(
            "scope-resolutions.json", orjson.dumps(body, option=orjson.OPT_INDENT_2), "resolution"
        )
    notes = (
        *options.extra_notes,
        *(f"workload {w} is in another cluster: not planned here" for w in elsewhere),
    )
    from dataclasses import replace  # noqa: PLC0415

    return build_sequence_plan(finding, parts, replace(options, extra_notes=notes))


def _store(case: CaseHandle, name: str, resolution: Resolution) -> None:
    case.write_document(
        name, orjson.dumps(resolution.model_dump(mode="json"), option=orjson.OPT_INDENT_2), "resolution"
    )

"""Triage one finding and record it in its case: judge, then open (or reuse) the case and write the verdict.

`eksir triage` and the game day call `triage_one`; `eksir respond` uses `finding_evidence` when it opens
a case itself. The CLI keeps only argument handling and rendering. Judging is pure (`triage_finding`);
this module adds the case: the finding as received (evidence), the normalised finding, the triage
documents and the verdict, written under the case's writer lease.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from eksir.models.finding import Finding
from eksir.store import CaseHandle, CaseStore
from eksir.triage.config import TriageConfig
from eksir.triage.document import summary_markdown, triage_document
from eksir.triage.joined import case_verdict, document_names, weaker
from eksir.triage.verdict import Verdict, triage_finding


def finding_evidence(
    finding: Finding, raw: bytes, input_name: str, count: int
) -> tuple[bytes, dict[str, Any]]:
    """What a case keeps as the finding as received, and what it records about the input.

    One finding: the whole input, every byte. Several (an S3 export, a get-findings page): only this
    finding's own element, plus the input's name, size and sha256, so the input can be matched later. Storing
    the whole input in every case made 100 findings cost 100 copies of all 100 (quadratic).
    """
    if count <= 1:
        return raw, {}
    element, exact = finding.raw.as_json()
    digest = hashlib.sha256(raw).hexdigest()
    how = "its line, every byte" if exact else "its object, re-serialised as JSON (same content)"
    info = {
        "input_size": len(raw),
        "input_sha256": digest,
        "input_findings": count,
        "evidence": f"This finding's own element of {input_name} ({how}); the input held {count} findings, "
        f"{len(raw)} bytes, sha256 {digest}.",
    }
    return element, info


def triage_one(
    finding: Finding,
    config: TriageConfig,
    store: CaseStore | None,
    raw: bytes,
    input_name: str,
    *,
    count: int = 1,
    wait: bool = False,
) -> dict[str, Any]:
    """Judge one finding and, with a store, record the verdict in its (new or existing) case.

    `count` is how many findings the input held (see `finding_evidence`).
    """
    verdict = triage_finding(finding, config)
    if store is None:
        return triage_document(finding, verdict, None, None)
    evidence, info = finding_evidence(finding, raw, input_name, count)
    handle, created = store.open_for_finding(finding, evidence, input_name, info)
    inputs = {"config_sha256": hashlib.sha256(config.model_dump_json().encode()).hexdigest()}
    with handle.writer("eksir triage", wait=wait):
        return _record_triage(handle, created, finding, verdict, inputs)


def _record_triage(
    handle: CaseHandle, created: bool, finding: Finding, verdict: Verdict, inputs: dict[str, str]
) -> dict[str, Any]:
    """Write the triage documents and the verdict into the case (under its writer lease).

    Every run is kept (`triage-runs/NNN.json`, and a `triage.completed` event with its config digest); the
    case's verdict never gets milder: a milder run is flagged in the document, the output and the report.
    """
    case = handle.load()
    document = triage_document(finding, verdict, case.id, str(handle.path))
    runs = sum(1 for event in handle.log.events() if event.type == "triage.completed")
    new = verdict.decision.value
    if weaker(new, case.verdict):
        document["verdict_history"] = {
            "recorded": case.verdict,
            "this_run": new,
            "kept": case.verdict,
            "note": f"this run judged {new}, milder than the recorded {case.verdict}: the case keeps "
            f"{case.verdict} (compare the runs in triage-runs/; was the same --config used?)",
        }
    finding_doc, triage_doc, summary_doc, kind = document_names(finding, case.finding_id)
    handle.write_document(
        finding_doc,
        orjson.dumps(finding.model_dump(mode="json", exclude={"raw"}), option=orjson.OPT_INDENT_2),
        kind,
    )
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    handle.write_document(triage_doc, body, "triage")
    handle.write_document(f"triage-runs/{runs + 1:03d}.json", body, "triage-run")
    handle.write_document(summary_doc, summary_markdown(document).encode(), "summary")
    event: dict[str, Any] = {
        "decision": new,
        "reasons": list(verdict.reasons),
        "finding_id": finding.id,
        **inputs,
    }
    if "verdict_history" in document:
        event["milder_than_recorded"] = case.verdict
    handle.append("triage.completed", event)
    decided = case_verdict(case.verdict, new, finding.id != case.finding_id)
    if case.verdict != decided:
        handle.save(case.model_copy(update={"verdict": decided}), "verdict recorded")
    document["case"]["created"] = created
    return document


def record_triage(
    handle: CaseHandle, created: bool, finding: Finding, config: TriageConfig
) -> tuple[dict[str, Any], Verdict]:
    """Judge `finding` and record the verdict in an open case whose writer lease the caller holds (the fleet
    worker opens the case itself, so a repeat is recorded once, as an update, and never triaged again)."""
    verdict = triage_finding(finding, config)
    inputs = {"config_sha256": hashlib.sha256(config.model_dump_json().encode()).hexdigest()}
    return _record_triage(handle, created, finding, verdict, inputs), verdict

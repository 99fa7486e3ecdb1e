"""The new triage sections carry the finding's text unchanged in JSON and escaped in summary.md."""

from __future__ import annotations

import json

from eksir.findings import read_findings
from eksir.triage import TriageConfig, triage_finding
from eksir.triage.document import summary_markdown, triage_document
from tests.new_findings import Pod, runtime_finding

HOSTILE = "<img src=x onerror=alert(1)>`| x |`\n# heading"


def test_a_hostile_process_path_is_kept_in_json_and_escaped_in_the_summary() -> None:
    wire = runtime_finding("reverse-shell", Pod(), finding_id="1" * 32)
    wire["service"]["runtimeDetails"]["process"]["executablePath"] = HOSTILE
    [finding] = read_findings(json.dumps(wire).encode())
    document = triage_document(finding, triage_finding(finding, TriageConfig()), "eksir-x", "cases/eksir-x")
    assert document["runtime"]["process"]["executable_path"] == HOSTILE
    summary = summary_markdown(document)
    assert "<img" not in summary
    assert "\n# heading" not in summary
    assert "&lt;img" in summary

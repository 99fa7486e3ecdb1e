"""Issue #18 ("The report"): raw JSON filled the before/after columns of the technical timeline. The steps'
before- and after-states now appear as JSON only in the appendix; the tables above it carry none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from eksir.report import generate_report
from tests.report.case_builder import build_case

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_before_and_after_states_are_raw_json_only_in_the_appendix(tmp_path: Path) -> None:
    handle = build_case(tmp_path)  # isolate-pod: before {"labels": {}}, after the quarantine label
    generate_report(handle, ["html"], now=NOW)
    html = (handle.path / "report.html").read_text(encoding="utf-8")
    body, appendix = html.split('<section id="appendix">')
    assert "Appendix: step states (raw JSON)" in appendix
    assert "&#34;eksir.io/quarantine&#34;: &#34;true&#34;" in appendix
    assert "quarantine" not in body
    assert 'class="raw"' not in body.split("<style>")[-1].split("</style>", 1)[-1]

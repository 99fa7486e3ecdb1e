"""`not-effective` never reads as done: not green in `eksir status`/respond, spelled out with its reason in
the Markdown and HTML reports, named under its phase in the game-day summary."""

from __future__ import annotations

from eksir.cli.gameday_summary import NOT_EFFECTIVE
from eksir.cli.respond_view import _STATUS_STYLE
from eksir.cli.run_progress import _MARKS
from eksir.engine.state import StepStatus
from eksir.report.markdown import status_text
from eksir.report.model import StepRow

REASON = "standalone pod (no metadata.ownerReferences): the VPC CNI does not apply network policies to it"


def test_status_and_progress_show_it_in_warning_colours_not_green() -> None:
    assert "green" not in _STATUS_STYLE[StepStatus.NOT_EFFECTIVE]
    assert _MARKS[StepStatus.NOT_EFFECTIVE] == "NOT EFFECTIVE"
    assert StepStatus.NOT_EFFECTIVE.value == NOT_EFFECTIVE


def test_the_markdown_report_spells_out_the_reason() -> None:
    row = StepRow(
        "s03",
        "k8s.isolate_pod",
        "containment",
        "not-effective",
        detail=f"applied but not effective: {REASON}",
    )
    assert status_text(row) == f"NOT EFFECTIVE: applied but not effective: {REASON}"
    assert status_text(StepRow("s04", "x.y", "containment", "verified")) == "verified"


def test_a_hostile_reason_is_bounded() -> None:
    row = StepRow("s03", "k8s.isolate_pod", "containment", "not-effective", detail="x" * 5000)
    assert len(status_text(row)) < 400

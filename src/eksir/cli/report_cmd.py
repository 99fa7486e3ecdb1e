"""`eksir report CASE`: write the incident report (Markdown, HTML, JSON) into the case, from its record."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from eksir.cli.anchoring import anchor_phase
from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    CasesDirOption,
    OutputFormat,
    OutputOption,
    ReasonOption,
    ReopenOption,
    WaitOption,
    print_document,
)
from eksir.report import FORMATS, generate_report
from eksir.safetext import plain_console
from eksir.store import CaseStore
from eksir.store.frozen import reopening


class ReportFormat(StrEnum):
    MD = "md"
    HTML = "html"
    JSON = "json"
    ALL = "all"


def report(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id (under --cases-dir) or path to the case directory")],
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="md, html, json or all")
    ] = ReportFormat.ALL,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
) -> None:
    """Build the report from the case record (every input hash-checked) and write it into the case."""
    handle = CaseStore(cases_dir).get(case)
    formats = FORMATS if fmt is ReportFormat.ALL else (fmt.value,)
    with reopening(reopen, reason), handle.writer("eksir report", wait=wait):
        built, written = generate_report(handle, formats)
        anchor_phase(handle, "report", [])
    if output.structured:
        print_document(
            output,
            {
                "case": built.case_id,
                "written": [
                    {"format": w.format, "path": str(handle.path / w.path), "sha256": w.sha256}
                    for w in written
                ],
            },
        )
        return
    console = plain_console()
    for item in written:
        console.print(f"wrote {handle.path / item.path}  sha256 {item.sha256}", markup=False)
    for line in built.summary:
        console.print(f"  {line}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)

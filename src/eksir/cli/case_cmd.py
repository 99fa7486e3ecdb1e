"""`eksir case ...`: inspect and verify case bundles."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from eksir.cli.options import DEFAULT_CASES_DIR, CasesDirOption, OutputFormat, OutputOption, print_json
from eksir.errors import CaseInvalidError
from eksir.store import CaseStore, verify_case

case_app = typer.Typer(help="Inspect and verify case bundles.", no_args_is_help=True)


@case_app.command("verify")
def verify(
    case: Annotated[str, typer.Argument(help="case id (under --cases-dir) or path to the case directory")],
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Recompute every hash and the event chain; name every altered, missing or unrecorded file."""
    handle = CaseStore(cases_dir).get(case)
    report = verify_case(handle)
    if output is OutputFormat.JSON:
        print_json(
            {
                "case": str(report.case_path),
                "ok": report.ok,
                "events_checked": report.events_checked,
                "files_checked": report.files_checked,
                "problems": report.problems,
            }
        )
    else:
        console = Console(highlight=False)
        for problem in report.problems:
            console.print(f"[red]ALTERED[/] {problem}")
        if report.ok:
            console.print(
                f"[green]OK[/] {report.case_path}: {report.events_checked} events, "
                f"{report.files_checked} files verified"
            )
    if not report.ok:
        raise CaseInvalidError(
            f"case {report.case_path} failed verification ({len(report.problems)} problems)"
        )


@case_app.command("show")
def show(
    case: Annotated[str, typer.Argument(help="case id or path")],
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Print the case header and its event log."""
    handle = CaseStore(cases_dir).get(case)
    record = handle.load()
    events = list(handle.log.events())
    if output is OutputFormat.JSON:
        print_json(
            {"case": record.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]}
        )
        return
    console = Console(highlight=False)
    console.print(
        f"[bold]{record.id}[/]  {record.status}  verdict={record.verdict}  finding={record.finding_id}"
    )
    for event in events:
        console.print(
            f"  {event.seq:4d} {event.at:%Y-%m-%dT%H:%M:%SZ} {event.actor} {event.type}", markup=False
        )


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")

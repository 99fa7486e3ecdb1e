"""`eksir case ...`: inspect, verify, close out, close and export case bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eksir.cli.case_closeout import register_close_commands
from eksir.cli.options import DEFAULT_CASES_DIR, CasesDirOption, OutputFormat, OutputOption, print_json
from eksir.errors import CaseInvalidError
from eksir.store import CaseStore, verify_case
from eksir.store.export import is_archive, verify_archive

case_app = typer.Typer(help="Inspect and verify case bundles.", no_args_is_help=True)


@case_app.command("verify")
def verify(
    case: Annotated[str, typer.Argument(help="case id, case directory, or an exported .tar.gz")],
    expect_fingerprint: Annotated[
        str | None, typer.Option(help="archive only: fail unless signed by this key (SHA256:...)")
    ] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Recompute every hash and the event chain; name every altered, missing or unrecorded file.

    Given an exported archive, also checks the manifest signature and every file against the signed manifest.
    """
    if is_archive(Path(case)):
        _verify_archive(Path(case), expect_fingerprint, output)
        return
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


def _verify_archive(archive: Path, expect: str | None, output: OutputFormat) -> None:
    result = verify_archive(archive, expect)
    if output is OutputFormat.JSON:
        print_json(
            {
                "archive": str(archive),
                "case": result.case_id,
                "ok": result.ok,
                "signed_by": result.fingerprint,
                "files_checked": result.files_checked,
                "events_checked": result.events_checked,
                "problems": result.problems,
            }
        )
    else:
        console = Console(highlight=False)
        for problem in result.problems:
            console.print(f"[red]FAILED[/] {problem}", markup=False)
        if result.ok:
            console.print(
                f"OK {archive}: case {result.case_id}, {result.files_checked} files, {result.events_checked} "
                f"events; signed by {result.fingerprint} (compare with the sender)",
                markup=False,
            )
    if not result.ok:
        raise CaseInvalidError(f"archive {archive} failed verification ({len(result.problems)} problems)")


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


register_close_commands(case_app)


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")

"""`eksir case sir-sync CASE`: mirror the case into AWS Security Incident Response (notify/sir.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    CasesDirOption,
    OutputFormat,
    OutputOption,
    WaitOption,
    print_document,
)
from eksir.safetext import plain_console
from eksir.store import CaseHandle, CaseStore

SirCaseOpt = Annotated[
    str | None, typer.Option("--sir-case", help="feed this existing Security Incident Response case")
]


def sir_sync_cmd(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id or path")],
    sir_case: SirCaseOpt = None,
    watcher: Annotated[
        list[str] | None, typer.Option("--watcher", help="'Name <email>' or email to watch the case (repeat)")
    ] = None,
    resolver: Annotated[str, typer.Option(help="Self (your team) or AWS (AWS's responders)")] = "Self",
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION", help="AWS region")] = None,
    profile: Annotated[str | None, typer.Option(envvar="AWS_PROFILE", help="AWS profile")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="AWS endpoint")] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
) -> None:
    """Create or update the case in AWS Security Incident Response: comments, attachments, status, close."""
    from eksir.clients.aws import AwsClients  # noqa: PLC0415 - only this command talks to security-ir
    from eksir.clients.presigned import put_presigned  # noqa: PLC0415
    from eksir.errors import BadInputError  # noqa: PLC0415
    from eksir.notify.sir import SirOptions, parse_watcher, sync_case  # noqa: PLC0415

    if resolver not in ("Self", "AWS"):
        raise BadInputError("--resolver is Self or AWS")
    handle = CaseStore(cases_dir).get(case)
    watchers = tuple(parse_watcher(text) for text in watcher or [])
    options = SirOptions(
        link_case=sir_case, watchers=watchers, resolver="AWS" if resolver == "AWS" else "Self"
    )
    client = AwsClients(region=region, profile=profile, endpoint_url=endpoint_url)("security-ir")
    # a notification, like export: allowed on a closed case (its close is what it reports)
    with handle.writer("eksir case sir-sync", wait=wait, closed_ok=True):
        result = sync_case(handle, client, options, put_presigned)
    document = {
        "sir_case_id": result.sir_case_id,
        "created": result.created,
        "comments": result.comments,
        "attachments": result.attachments,
        "status": result.status,
        "closed": result.closed,
    }
    if output.structured:
        print_document(output, document)
        return
    sent = f"{len(result.comments)} comment(s), {len(result.attachments)} attachment(s)"
    state = f", status {result.status}" if result.status else ""
    closed = ", closed" if result.closed else ""
    plain_console().print(
        f"Security Incident Response case {result.sir_case_id}: {sent}{state}{closed}", markup=False
    )


def attach_export(
    handle: CaseHandle, archive: Path, region: str | None, profile: str | None, endpoint: str | None
) -> str:
    """Upload an exported archive to the linked Security Incident Response case (`case export --to-sir`)."""
    from eksir.clients.aws import AwsClients  # noqa: PLC0415
    from eksir.clients.presigned import put_presigned  # noqa: PLC0415
    from eksir.notify.sir import attach_file  # noqa: PLC0415

    client = AwsClients(region=region, profile=profile, endpoint_url=endpoint)("security-ir")
    return attach_file(handle, client, archive.name, archive.read_bytes(), put_presigned)

"""`eksir hunt`: every AWS and Kubernetes API call the compromised principals made, classified, with owners.

Playbook Part 3 (eradication) starts from this list: what the attacker created, changed, read and deleted.
Output is a table for people, JSON (the full `HuntResult`, stored as case evidence) or CSV for a
spreadsheet. Progress goes to stderr and only on a terminal, so piping JSON stays clean.

What only some runs need (the finding reader and case store for CASE/--finding, rich's progress bar on a
terminal, its table for table output) is imported where it is used: a hunt over local files should start
scanning as soon as possible (see README, Benchmarks).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from eksir.cli.accounts import load_role_map
from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    AssumeRoleOpt,
    CasesDirOption,
    ExternalIdOpt,
    ReasonOption,
    ReopenOption,
    RoleMapOpt,
)
from eksir.clients.assume import AssumedRole, RoleMap
from eksir.errors import BadInputError, UsageError
from eksir.hunt.impact import OwnerKeys
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.cloud import AthenaTarget
from eksir.hunt.window import TimeWindow

if TYPE_CHECKING:
    from rich.console import Console

    from eksir.hunt.cost import Estimate
    from eksir.hunt.result import HuntResult
    from eksir.hunt.scan import ScanProgress
    from eksir.store import CaseHandle


class HuntOutput(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    CSV = "csv"


_CSV_COLUMNS = (
    "time",
    "category",
    "failed",
    "service",
    "action",
    "principal",
    "access_key_id",
    "source_ip",
    "region",
    "resources",
    "owners",
    "tags",
    "rule",
    "found_in",
)


def _principals(values: list[str], finding: Path | None) -> PrincipalSet:
    principals = PrincipalSet.from_values(values)
    if finding is not None:
        from eksir.findings import read_findings_from_path  # noqa: PLC0415 - see module docstring

        for item in read_findings_from_path(str(finding)):
            principals = principals.union(PrincipalSet.from_finding(item))
    return principals


CaseArg = Annotated[
    str | None,
    typer.Argument(
        help="case id or folder: hunt its principals (finding + resolution) and store the result in it"
    ),
]
PrincipalOpt = Annotated[
    list[str],
    typer.Option("--principal", "-p", help="access key id, ARN, principal id, user name, k8s:USER (repeat)"),
]
SinceOpt = Annotated[str | None, typer.Option(help="start: ISO 8601 time or an age such as 36h, 7d")]
UntilOpt = Annotated[str | None, typer.Option(help="end (default now)")]
SourceOpt = Annotated[
    list[str], typer.Option("--source", "-s", help="CloudTrail folder/file or s3://bucket/prefix (repeat)")
]
LookupOpt = Annotated[
    bool, typer.Option("--lookup-events", help="also ask CloudTrail LookupEvents (90 days)")
]
WorkgroupOpt = Annotated[str | None, typer.Option(help="run the Athena query in this workgroup")]
AthenaOutputOpt = Annotated[str | None, typer.Option(help="s3:// location for Athena results")]
DatabaseOpt = Annotated[str, typer.Option(help="Athena database for the table")]
AuditLogOpt = Annotated[
    list[Path], typer.Option("--audit-log", help="Kubernetes audit log file or folder (repeat)")
]
ClusterOpt = Annotated[
    str | None, typer.Option(help="EKS cluster: query /aws/eks/<cluster>/cluster with Logs Insights")
]
RulesOpt = Annotated[list[Path], typer.Option("--rules", help="extra classification rules YAML (repeat)")]
CmdbOpt = Annotated[Path | None, typer.Option(help="CMDB (CSV or YAML: arn, application, owner, team)")]
TagsOpt = Annotated[bool, typer.Option("--tags/--no-tags", help="look owners up in resource tags")]
OwnerTagOpt = Annotated[list[str], typer.Option("--owner-tag", help="tag key naming the owner (repeat)")]
FindingOpt = Annotated[Path | None, typer.Option(help="take the principals from this GuardDuty finding")]
OutputOpt = Annotated[HuntOutput, typer.Option("--output", "-o", help="table, json, yaml or csv")]
ShowQueriesOpt = Annotated[
    bool, typer.Option("--show-queries", help="print the generated Athena/Lake/Insights queries")
]
RegionOpt = Annotated[str | None, typer.Option(help="AWS region")]
ProfileOpt = Annotated[str | None, typer.Option(help="AWS CLI profile")]
EndpointOpt = Annotated[str | None, typer.Option(help="AWS endpoint override")]
WorkersOpt = Annotated[int, typer.Option(min=1, max=64, help="scan processes")]
OrgTrailOpt = Annotated[
    list[str],
    typer.Option(
        "--org-trail",
        help="organisation trail s3://bucket/[prefix/]AWSLogs/o-xxxx/: every account and region (repeat)",
    ),
]
AthenaTableOpt = Annotated[
    str | None,
    typer.Option(help="Athena table to define and query (default: named after the trail and its projection)"),
]
SecurityLakeOpt = Annotated[
    str | None,
    typer.Option(
        "--security-lake-table",
        help="with --athena-workgroup: hunt this Security Lake CloudTrail table too (OCSF, db.table)",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="with --athena-workgroup: print the partitions, bytes and price the Athena hunt would scan, "
        "run nothing",
    ),
]
MaxScanBytesOpt = Annotated[
    int | None, typer.Option(min=0, help="refuse (exit 12) an Athena hunt that would scan more bytes")
]
PricePerTbOpt = Annotated[
    float | None, typer.Option(min=0, help="Athena $ per TB scanned (default: the region's list price)")
]
AccountOpt = Annotated[
    list[str],
    typer.Option("--account", help="account the Athena table projects (repeat; default: the trail's)"),
]
CountEventsOpt = Annotated[
    bool,
    typer.Option(
        "--count-events", help="count every event in local/S3 logs (exact totals; about 12% slower)"
    ),
]


def hunt(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    case: CaseArg = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    principal: PrincipalOpt = [],  # noqa: B006
    since: SinceOpt = None,
    until: UntilOpt = None,
    source: SourceOpt = [],  # noqa: B006
    org_trail: OrgTrailOpt = [],  # noqa: B006
    lookup_events: LookupOpt = False,
    athena_workgroup: WorkgroupOpt = None,
    athena_output: AthenaOutputOpt = None,
    athena_database: DatabaseOpt = "default",
    athena_table: AthenaTableOpt = None,
    security_lake_table: SecurityLakeOpt = None,
    audit_log: AuditLogOpt = [],  # noqa: B006
    cluster: ClusterOpt = None,
    rules: RulesOpt = [],  # noqa: B006
    cmdb: CmdbOpt = None,
    tags: TagsOpt = False,
    owner_tag: OwnerTagOpt = [],  # noqa: B006
    finding: FindingOpt = None,
    output: OutputOpt = HuntOutput.TABLE,
    show_queries: ShowQueriesOpt = False,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    workers: WorkersOpt = 2,
    count_events: CountEventsOpt = False,
    dry_run: DryRunOpt = False,
    max_scan_bytes: MaxScanBytesOpt = None,
    athena_price_per_tb: PricePerTbOpt = None,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
) -> None:
    """Hunt the compromised principals' API calls in CloudTrail and Kubernetes audit logs.

    With CASE: its principals too, --since 90 days before first seen, the result stored as evidence."""
    athena = _athena(athena_workgroup, athena_output, athena_database, max_scan_bytes, athena_price_per_tb)
    handle = _open_case(cases_dir, case, reopen)
    principals, window = _with_case(handle, _principals(principal, finding), since, until)
    lake = athena is not None and security_lake_table is not None
    source = _sources(source, org_trail, athena, bool(lookup_events or audit_log or cluster or lake))
    _refuse_a_closed_case(handle, reopen, reason)
    access = AwsAccess(region=region, profile=profile, endpoint_url=endpoint_url)
    if _reads_aws(source, lookup_events, athena, cluster, tags):
        access = _aws_access(handle, access, load_role_map(assume_role, external_id, role_map))
    options = HuntOptions(
        lookup_events=lookup_events, athena=athena, audit_logs=tuple(audit_log), cluster=cluster
    )
    options = replace(options, athena_table=athena_table, security_lake_table=security_lake_table)
    options = _more_options(options, rules, cmdb, owner_tag, tags, workers, count_events)
    run = _dry_run if dry_run else _hunt_and_render
    run(handle, principals, source, window, access, options, output, show_queries)


def _more_options(  # noqa: PLR0917 - one per CLI option
    options: HuntOptions,
    rules: list[Path],
    cmdb: Path | None,
    owner_tag: list[str],
    tags: bool,
    workers: int,
    count_events: bool,
) -> HuntOptions:
    """The options that shape classification, ownership and scanning (Logs Insights with --cluster)."""

    return replace(
        options,
        logs_insights=options.cluster is not None,
        rules=tuple(rules),
        cmdb=cmdb,
        owner_keys=OwnerKeys(owner=tuple(owner_tag)) if owner_tag else OwnerKeys(),
        tag_lookup=tags,
        workers=workers,
        count_events=count_events,
    )


def _reads_aws(
    source: list[str], lookup: bool, athena: AthenaTarget | None, cluster: str | None, tags: bool
) -> bool:
    """Whether the hunt calls AWS at all: a hunt over local files never asks which account it is in."""
    return bool(any(s.startswith("s3://") for s in source) or lookup or athena or cluster or tags)


def _aws_access(handle: CaseHandle | None, access: AwsAccess, roles: RoleMap) -> AwsAccess:
    """The hunt reads the incident's account: a case's account through its role (exit 12 without one when
    it is not the caller's); without a case, a role ARN naming one account is assumed as given."""
    if handle is None:
        concrete = roles.template if roles.template and "{account}" not in roles.template else None
        return replace(access, role=AssumedRole(concrete, "eksir-hunt")) if concrete else access
    from eksir.cli.accounts import AccountAccess  # noqa: PLC0415 - see module docstring

    header = handle.load()
    region = access.region or header.region
    accounts = AccountAccess(region, access.profile, access.endpoint_url, roles, handle.actor)
    role = accounts.route(header.account_id, region).role(header.id)
    return replace(access, region=region, role=role)


def _hunt_and_render(  # noqa: PLR0917 - the same arguments as _dry_run, chosen between by --dry-run
    handle: CaseHandle | None,
    principals: PrincipalSet,
    sources: list[str],
    window: TimeWindow,
    access: AwsAccess,
    options: HuntOptions,
    output: HuntOutput,
    show_queries: bool,
) -> None:
    """Hunt, store the result in the case (if any), then print it."""
    result = _run_with_progress(principals, sources, window, access, options)
    if handle is not None:
        _store_in_case(handle, result)
    _render(result, output, show_queries)


def _dry_run(  # noqa: PLR0917 - the same arguments as _hunt_and_render
    handle: CaseHandle | None,
    principals: PrincipalSet,
    sources: list[str],
    window: TimeWindow,
    access: AwsAccess,
    options: HuntOptions,
    output: HuntOutput,
    show_queries: bool,
) -> None:
    """Print what the Athena hunt would read and cost, then refuse (exit 12) if it is over a budget.

    Nothing is scanned, queried or stored in the case (`handle` and `show_queries` are unused).
    """
    del handle, show_queries
    from eksir.hunt import cost  # noqa: PLC0415 - see module docstring
    from eksir.hunt.run import estimate_athena  # noqa: PLC0415

    if options.athena is None:
        raise UsageError("--dry-run estimates an Athena hunt: give --athena-workgroup and --athena-output")
    found = estimate_athena(
        principals, [s for s in sources if s.startswith("s3://")], window, access=access, options=options
    )
    if output is HuntOutput.JSON:
        typer.echo(orjson.dumps(found.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        for line in _estimate_lines(found):
            typer.echo(line)
    cost.check_budget(found, options.athena.max_scan_bytes)


def _estimate_lines(found: Estimate) -> list[str]:
    from eksir.hunt.cost import megabytes  # noqa: PLC0415 - see module docstring

    lines = [
        f"{p.account} {p.region} {p.timestamp}  {megabytes(n)}"
        for p, n in sorted(found.bytes_by_partition.items())
    ]
    limit = f"; workgroup limit {megabytes(found.workgroup_limit)}" if found.workgroup_limit else ""
    lines.append(
        f"{len(found.partitions)} partition(s), {found.objects} object(s), {found.total_bytes} bytes "
        f"({megabytes(found.total_bytes)}); billed {megabytes(found.billed_bytes)} (10 MB minimum) at "
        f"${found.price_per_tb:g}/TB: ${found.price:.4f}{limit}"
    )
    return lines


def _athena(
    workgroup: str | None, output: str | None, database: str, max_scan_bytes: int | None, price: float | None
) -> AthenaTarget | None:
    """Where to run the Athena query, if asked, and its budget; BadInputError when only one of workgroup and
    output is set, or a budget is given without them."""
    if bool(workgroup) != bool(output):
        raise BadInputError("--athena-workgroup and --athena-output go together")
    if not workgroup and (max_scan_bytes is not None or price is not None):
        raise BadInputError("--max-scan-bytes and --athena-price-per-tb apply to --athena-workgroup")
    return AthenaTarget(workgroup, output, database, max_scan_bytes, price) if workgroup and output else None


def _with_case(
    handle: CaseHandle | None, principals: PrincipalSet, since: str | None, until: str | None
) -> tuple[PrincipalSet, TimeWindow]:
    """Add the case's principals and default --since to the case's hunt start; BadInputError without one."""
    if handle is not None:
        from eksir.hunt.case import case_principals, case_since  # noqa: PLC0415 - see module docstring

        principals = principals.union(case_principals(handle))
        since = since or case_since(handle).isoformat()
    if not since:
        raise BadInputError("--since is required (e.g. --since 2024-08-01T10:00Z or --since 7d)")
    return principals, TimeWindow.parse(since, until)


def _store_in_case(handle: CaseHandle, result: HuntResult) -> None:
    """Record the hunt as case evidence (`hunt.json`) and anchor the phase, under the case's writer lease."""
    from eksir.cli.anchoring import anchor_phase  # noqa: PLC0415 - see module docstring
    from eksir.hunt.case import record_hunt  # noqa: PLC0415
    from eksir.safetext import plain_console  # noqa: PLC0415

    with handle.writer("eksir hunt", wait=True):
        item = record_hunt(handle, result)
        anchor_phase(handle, "hunt", [])
    plain_console(stderr=True).print(f"hunt stored in the case as {item.path} (sha256 {item.sha256[:12]})")


def _sources(source: list[str], org_trails: list[str], athena: AthenaTarget | None, other: bool) -> list[str]:
    """The CloudTrail sources, org trails included (each must name its organisation: `AWSLogs/o-xxxx/`).

    A hunt that reads nothing finds nothing; stored in a case it would read as "no attacker calls": a
    UsageError (`other`: LookupEvents or an audit log is asked for). An org trail is an ordinary source
    to the scan (every account and region under it is listed) and to Athena (its accounts and regions are
    listed into the table's projection).
    """
    from eksir.hunt.sources.files import trail_location  # noqa: PLC0415 - see module docstring

    for url in org_trails:
        if not url.startswith("s3://") or trail_location(url).org_id is None:
            raise BadInputError(f"--org-trail {url!r} is not s3://bucket/[prefix/]AWSLogs/o-xxxx/")
    source = [*source, *org_trails]
    if not (source or athena or other):
        raise UsageError(
            "nothing to hunt in: give at least one source: --source PATH|s3://BUCKET/PREFIX (CloudTrail "
            "files), --lookup-events (CloudTrail API, 90 days), --athena-workgroup with --athena-output, "
            "--security-lake-table with --athena-workgroup (OCSF), --audit-log FILE (Kubernetes), "
            "--cluster NAME (its audit log in CloudWatch Logs)"
        )
    return source


def _open_case(cases_dir: Path, case: str | None, reopen: bool) -> CaseHandle | None:
    """The case named on the command line, if any (the case store is imported only then); a closed case
    refuses at once unless it is to be reopened (that is recorded once the arguments are all valid)."""
    if not case:
        return None
    from eksir.store import CaseStore  # noqa: PLC0415 - see module docstring
    from eksir.store.frozen import ensure_open  # noqa: PLC0415

    handle = CaseStore(cases_dir).get(case)
    if not reopen:
        ensure_open(handle, "eksir hunt")
    return handle


def _refuse_a_closed_case(handle: CaseHandle | None, reopen: bool, reason: str | None) -> None:
    """A closed case refuses before anything is read, unless reopened (store/frozen.py)."""
    if handle is None:
        if reopen or reason:
            raise UsageError("--reopen and --reason apply to a hunt stored in a CASE")
        return
    from eksir.store.frozen import ensure_open, reopening  # noqa: PLC0415 - see module docstring

    with reopening(reopen, reason):
        ensure_open(handle, "eksir hunt")


_REDRAW_SECONDS = 0.1


def _run_with_progress(
    principals: PrincipalSet, sources: list[str], window: TimeWindow, access: AwsAccess, options: HuntOptions
) -> HuntResult:
    stderr = _terminal_stderr()
    if stderr is None:
        return run_hunt(principals, sources, window, access=access, options=options)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    columns = (
        TextColumn("[bold]hunting"),
        BarColumn(),
        TextColumn("{task.fields[detail]}", markup=False),
        TimeElapsedColumn(),
    )
    # No auto-refresh: its thread would make the scan start its workers the slow way (see
    # hunt.workers.start_context); the display is redrawn from the scan's own progress calls instead, at
    # most ten times a second (redrawing for every chunk cost more than the scan itself).
    with Progress(*columns, console=stderr, transient=True, auto_refresh=False) as progress:
        task = progress.add_task("scan", total=None, detail="listing sources")
        progress.refresh()
        drawn = [0.0]

        def update(totals: ScanProgress) -> None:
            events = f"{totals.events:,} events, " if options.count_events else ""
            size = f"{totals.bytes_inflated / 1e6:,.0f} MB"
            progress.update(task, detail=f"{totals.files} files, {size}, {events}{totals.matched} matched")
            if time.monotonic() - drawn[0] >= _REDRAW_SECONDS:
                drawn[0] = time.monotonic()
                progress.refresh()

        return run_hunt(principals, sources, window, access=access, options=options, on_progress=update)


def _terminal_stderr() -> Console | None:
    """rich's console on stderr when rich takes it for a terminal; rich is imported only if it may be one.

    Without a tty, rich calls stderr a terminal only when TTY_COMPATIBLE or FORCE_COLOR says so.
    """
    if not sys.stderr.isatty() and not {"TTY_COMPATIBLE", "FORCE_COLOR"} & set(os.environ):
        return None
    from eksir.safetext import plain_console  # noqa: PLC0415 - see module docstring

    stderr = plain_console(stderr=True)
    return stderr if stderr.is_terminal else None


def _render(result: HuntResult, output: HuntOutput, show_queries: bool) -> None:
    if output is HuntOutput.JSON:
        typer.echo(result.to_json())
    elif output is HuntOutput.YAML:
        from eksir.cli.options import OutputFormat, print_document  # noqa: PLC0415 - see module docstring

        print_document(OutputFormat.YAML, result.model_dump(mode="json"))
    elif output is HuntOutput.CSV:
        typer.echo(_csv(result), nl=False)
    else:
        _table(result)
    if show_queries:
        for query in result.queries:
            typer.echo(
                f"-- {query.kind}{' (executed ' + str(query.execution_id) + ')' if query.executed else ''}"
                f"{' ' + query.note if query.note else ''}\n{query.text};\n"
            )


def _csv(result: HuntResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for e in result.events:
        writer.writerow(
            [
                e.event_time.isoformat() if e.event_time else "",
                e.category,
                e.failed,
                e.service,
                e.action,
                e.principal,
                e.access_key_id,
                e.source_ip,
                e.region,
                " ".join(r.arn for r in e.resources),
                " ".join(e.owners),
                " ".join(e.tags),
                e.rule_id,
                e.found_in,
            ]
        )
    return buffer.getvalue()


_ALARMING = frozenset(
    {"defense-evasion", "identity-persistence", "exfiltration", "privileged-workload", "rbac-change"}
)


def _table(result: HuntResult) -> None:
    from rich.table import Table  # noqa: PLC0415 - only table output needs rich

    from eksir.safetext import cells, line, plain_console, styled  # noqa: PLC0415

    console = plain_console(soft_wrap=False)
    table = Table(
        title=f"Calls by the hunted principals, {result.since:%Y-%m-%d %H:%M} to "
        f"{result.until:%Y-%m-%d %H:%M} UTC"
    )
    for column in ("time (UTC)", "category", "call", "principal", "source IP", "resources", "owner"):
        table.add_column(column, overflow="fold")
    for e in result.events:
        category = styled(e.category, "red" if e.category in _ALARMING else "")
        call = line(f"{e.service}:{e.action}", (f" (failed: {e.error_code})" if e.failed else "", "yellow"))
        table.add_row(
            *cells(
                f"{e.event_time:%Y-%m-%d %H:%M:%S}" if e.event_time else "?",
                category,
                call,
                e.principal,
                e.source_ip,
                "\n".join(r.arn for r in e.resources[:3]),
                ", ".join(e.owners),
            )
        )
    console.print(table)
    scanned = sum(s.bytes_scanned for s in result.sources)
    counted = [s.events_scanned for s in result.sources if s.events_scanned is not None]
    events = f", {sum(counted):,} events" if counted else ""
    console.print(
        f"{len(result.events)} calls found; scanned {scanned / 1e6:,.1f} MB{events} "
        f"from {len(result.sources)} source(s); {len(result.skipped)} file(s) skipped."
    )
    counts = ", ".join(f"{k}: {v}" for k, v in result.counts_by_category().items())
    if counts:
        console.print(f"By category: {counts}")
    for group in result.accounts:
        cats = ", ".join(f"{k}: {v}" for k, v in group.by_category.items())
        console.print(
            f"Account {group.account_id}: {group.events} call(s) in {', '.join(group.regions)} ({cats})"
        )
    if result.chained_principals:
        console.print(f"Chained credentials also hunted: {', '.join(result.chained_principals)}")
    for skipped in result.skipped:
        console.print(line(("skipped", "yellow"), f" {skipped.name}: {skipped.reason}"))
    for notice in result.owners:
        console.print(f"notify {notice.owner}: {notice.events} call(s) on {', '.join(notice.resources[:5])}")
    for warning in result.warnings:
        console.print(line(("warning", "yellow"), f" {warning}"))


def register(app: typer.Typer) -> None:
    """Add `eksir hunt` to the app."""
    app.command(name="hunt")(hunt)

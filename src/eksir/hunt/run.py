"""One hunt, end to end: list sources, scan, query, classify, attribute owners, and record everything.

`run_hunt` is the function the CLI and the case workflow call; it does no printing. The order matters:
CloudTrail is scanned first because role chaining there can reveal sessions whose LookupEvents, Athena and
Kubernetes audit trails must be hunted too, so the later steps use the grown principal set.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from eksir.errors import BadInputError
from eksir.hunt import cost, queries
from eksir.hunt.athena import HuntTable, Rounds, hunt_rounds
from eksir.hunt.classify import RuleBook, load_rules
from eksir.hunt.cost import Estimate
from eksir.hunt.decode import DecodeError, inflate, parse_records
from eksir.hunt.events import audit_time, cloudtrail_event, dedupe_audit, is_audit_event, kubernetes_event
from eksir.hunt.impact import OwnerKeys, TagLookup, attribute, load_cmdb
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.result import GeneratedQuery, HuntEvent, HuntResult, SkippedInput, SourceStat
from eksir.hunt.scan import Chainer, Scanner, ScanProgress
from eksir.hunt.sources import cloud
from eksir.hunt.sources.aws import AwsAccess
from eksir.hunt.sources.files import (
    FileRef,
    TrailLocation,
    list_local,
    list_s3,
    trail_accounts,
    trail_location,
    trail_regions,
)
from eksir.hunt.window import TimeWindow

DEFAULT_REGIONS = ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1")


@dataclass(frozen=True)
class HuntOptions:
    """Everything optional about a hunt; defaults scan only the given sources, offline."""

    lookup_events: bool = False
    athena: cloud.AthenaTarget | None = None
    athena_table: str | None = None
    """None: `cloudtrail_logs_eksir_<hash>` of the location and projection (see `athena_plan`)."""
    lake_event_data_store: str = "<event-data-store-id>"
    security_lake_table: str | None = None
    """With `athena`: the Security Lake CloudTrail table (`db.table`) the rounds also run over (OCSF)."""
    audit_logs: tuple[Path, ...] = ()
    cluster: str | None = None
    logs_insights: bool = False
    rules: tuple[Path, ...] = ()
    cmdb: Path | None = None
    owner_keys: OwnerKeys = field(default_factory=OwnerKeys)
    tag_lookup: bool = False
    regions: tuple[str, ...] = ()
    """Regions the Athena table projects; empty: the trail's region folders, else DEFAULT_REGIONS."""
    workers: int = 2
    engine: str = "auto"
    count_events: bool = False
    accounts: tuple[str, ...] = ()


@dataclass
class _Hunt:
    principals: PrincipalSet
    window: TimeWindow
    access: AwsAccess
    options: HuntOptions
    ct_book: RuleBook
    k8s_book: RuleBook
    result: HuntResult
    events: list[HuntEvent] = field(default_factory=list)


def run_hunt(
    principals: PrincipalSet,
    sources: Sequence[str],
    window: TimeWindow,
    *,
    access: AwsAccess | None = None,
    options: HuntOptions | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
) -> HuntResult:
    """Hunt every call the principals (and what they chained into) made in the window.

    Raises BadInputError (no principal, bad rules/CMDB), NotFoundError (missing source) and the AWS errors
    of `eksir.hunt.sources.aws.translate`. Unreadable individual files are reported, not raised.
    """
    if principals.is_empty():
        raise BadInputError("nothing to hunt: give --principal or --finding")
    opts = options or HuntOptions()
    hunt = _Hunt(
        principals,
        window,
        access or AwsAccess(),
        opts,
        load_rules("cloudtrail", opts.rules),
        load_rules("kubernetes", opts.rules),
        HuntResult(since=window.since, until=window.until, principals=principals.values()),
    )
    cmdb = load_cmdb(opts.cmdb) if opts.cmdb else []
    s3_sources = [s for s in sources if s.startswith("s3://")]
    # With a workgroup the trail is searched where it lies: its s3:// sources go to Athena, not downloaded.
    scanned = [s for s in sources if opts.athena is None or s not in s3_sources]
    if scanned or not s3_sources:
        _scan_sources(hunt, scanned, on_progress)
    if opts.lookup_events:
        _lookup(hunt)
    _athena(hunt, s3_sources)
    _audit(hunt)
    hunt.result.chained_principals = sorted(set(hunt.principals.values()) - set(principals.values()))
    hunt.events.sort(key=lambda e: (e.event_time is None, e.event_time.isoformat() if e.event_time else ""))
    tags: dict[str, dict[str, str]] = {}
    if opts.tag_lookup:
        lookup = TagLookup(hunt.access)
        tags = lookup.tags(ref.arn for event in hunt.events for ref in event.resources)
        hunt.result.warnings.extend(lookup.warnings)
    hunt.result.owners = attribute(hunt.events, tags, cmdb, opts.owner_keys)
    hunt.result.events = hunt.events
    hunt.result.accounts = hunt.result.group_by_account()
    return hunt.result


def _scan_sources(
    hunt: _Hunt, sources: Sequence[str], on_progress: Callable[[ScanProgress], None] | None
) -> None:
    files: list[FileRef] = []
    labels: dict[str, str] = {}
    for source in sources:
        listed = (
            list(list_s3(source, hunt.window, hunt.access))
            if source.startswith("s3://")
            else list(list_local(Path(source), hunt.window))
        )
        for ref in listed:
            if ref.location not in labels:
                labels[ref.location] = source
                files.append(ref)
    started = time.monotonic()
    scanner = Scanner(
        hunt.window,
        workers=hunt.options.workers,
        access=hunt.access,
        engine=hunt.options.engine,
        count_events=hunt.options.count_events,
        on_progress=on_progress,
    )
    report = scanner.run(files, hunt.principals, labels)
    seconds = time.monotonic() - started
    hunt.principals = report.principals
    matched = Counter(labels[location] for _record, location in report.records)  # unique records
    for source in sources:
        totals = report.by_label.get(source, ScanProgress())
        hunt.result.sources.append(
            SourceStat(
                name=source,
                kind="s3" if source.startswith("s3://") else "local",
                files=totals.files,
                bytes_read=totals.bytes_read,
                bytes_scanned=totals.bytes_inflated,
                events_scanned=totals.events if hunt.options.count_events else None,
                events_matched=matched[source],
                seconds=round(seconds, 3),
            )
        )
    hunt.result.skipped.extend(SkippedInput(name=o.location, reason=o.error or "") for o in report.skipped)
    for record, location in report.records:
        hunt.events.append(cloudtrail_event(record, hunt.ct_book, hunt.principals.match(record), location))


def _lookup(hunt: _Hunt) -> None:
    """LookupEvents per attribute, repeated for credentials the found calls chained into."""
    client = hunt.access.client("cloudtrail")
    chainer = Chainer(hunt.principals)
    asked = PrincipalSet()
    known = {e.event_id for e in hunt.events}
    found = 0
    for _round in range(8):
        todo = PrincipalSet(
            **{
                name: getattr(chainer.principals, name) - getattr(asked, name)
                for name in PrincipalSet.model_fields
            }
        )
        if todo.is_empty() or not cloud.lookup_attributes(todo):
            break
        records = list(cloud.lookup_events(client, todo, hunt.window))
        asked = asked.union(todo)
        chainer.add(records, "cloudtrail:LookupEvents")
    for key, record in chainer.records.items():
        if key not in known:
            hunt.events.append(
                cloudtrail_event(
                    record, hunt.ct_book, chainer.principals.match(record), "cloudtrail:LookupEvents"
                )
            )
            found += 1
    hunt.principals = chainer.principals
    hunt.result.sources.append(
        SourceStat(name="cloudtrail:LookupEvents", kind="lookup-events", events_matched=found)
    )


@dataclass(frozen=True)
class AthenaPlan:
    """The table the Athena hunt defines: the trail it reads, the accounts and regions it projects."""

    ddl: str
    table: str
    trail: TrailLocation | None
    accounts: list[str]
    regions: list[str]


def athena_plan(
    principals: PrincipalSet, s3_sources: Sequence[str], access: AwsAccess, options: HuntOptions
) -> AthenaPlan:
    """The DDL over the first s3:// source's trail (a placeholder bucket without one).

    The projected accounts are `options.accounts`, else the trail's account folders (listed: an org hunt
    must cover accounts the principals never named, where a chained session may act), else the accounts
    the principals' ARNs name; the regions likewise `options.regions`, else (when the hunt runs in Athena)
    the trail's region folders, else `DEFAULT_REGIONS`.
    Raises the AWS errors of `sources.files.trail_accounts`.
    """
    trail = trail_location(s3_sources[0]) if s3_sources else None
    accounts = list(options.accounts)
    if not accounts and trail is not None:
        accounts = trail_accounts(access, trail)
    accounts = accounts or queries.accounts_of(principals)
    regions = list(options.regions)
    if not regions and trail is not None and options.athena is not None:  # a listing per account: only to run
        regions = trail_regions(access, trail, accounts)
    regions = regions or list(DEFAULT_REGIONS)
    root = trail.url if trail else "s3://<trail-bucket>"
    org_id = trail.org_id if trail else None
    table = options.athena_table or _table_name(queries.athena_ddl("t", root, accounts, regions, org_id))
    ddl = queries.athena_ddl(table, root, accounts, regions, org_id)
    return AthenaPlan(ddl, table, trail, accounts, regions)


def _table_name(ddl: str) -> str:
    """A table name that changes with the location and projection. The DDL is `CREATE ... IF NOT EXISTS`:
    under a fixed name, an older table projecting fewer accounts or regions would be kept and queried, and
    the calls outside it silently missed."""
    return f"cloudtrail_logs_eksir_{hashlib.sha256(ddl.encode()).hexdigest()[:12]}"


def estimate_athena(
    principals: PrincipalSet,
    s3_sources: Sequence[str],
    window: TimeWindow,
    *,
    access: AwsAccess | None = None,
    options: HuntOptions | None = None,
) -> Estimate:
    """What the Athena hunt would read and cost (`--dry-run`): partitions, bytes under them, price, and
    the workgroup's per-query limit. Runs nothing in Athena.

    Raises BadInputError without an s3:// trail source (nothing to measure), and the AWS errors.
    """
    opts = options or HuntOptions()
    aws = access or AwsAccess()
    return _estimate(athena_plan(principals, s3_sources, aws, opts), window, aws, opts)


def _estimate(plan: AthenaPlan, window: TimeWindow, aws: AwsAccess, opts: HuntOptions) -> Estimate:
    """`estimate_athena` for a plan already made (the hunt estimates the very table it then queries)."""
    if plan.trail is None:
        raise BadInputError("an Athena estimate needs the trail's s3:// location as --source")
    selected = cost.partitions(plan.accounts, plan.regions, window)
    prefix = plan.trail.accounts_prefix
    found = cost.estimate(
        aws,
        plan.trail.bucket,
        prefix,
        selected,
        cost.price_for(aws.region, opts.athena.price_per_tb if opts.athena else None),
    )
    if opts.athena is not None:
        found.workgroup_limit = cost.workgroup_limit(aws.client("athena"), opts.athena.workgroup)
    return found


def _athena(hunt: _Hunt, s3_sources: list[str]) -> None:
    """Generate (always) and run (with a workgroup) the Athena DDL and hunt rounds; the Lake query texts.

    With a Security Lake table the rounds run there too (alone when no s3:// trail is given): many
    organisations keep CloudTrail only in Security Lake.
    """
    opts = hunt.options
    runs_lake = opts.athena is not None and opts.security_lake_table is not None
    if s3_sources or not runs_lake:
        _cloudtrail_table(hunt, s3_sources)
    lake = queries.lake_query(opts.lake_event_data_store, hunt.principals, hunt.window)
    hunt.result.queries.append(GeneratedQuery(kind="cloudtrail-lake", text=lake))
    if opts.athena is not None and opts.security_lake_table is not None:
        _run_rounds(hunt, HuntTable(opts.security_lake_table, "security-lake"), opts.athena)
        return
    region = (hunt.access.region or "us-east-1").replace("-", "_")
    table = opts.security_lake_table or (
        f"amazon_security_lake_glue_db_{region}.amazon_security_lake_table_{region}_cloud_trail_mgmt_2_0"
    )
    text = queries.security_lake_query(table, hunt.principals, hunt.window)
    hunt.result.queries.append(GeneratedQuery(kind="security-lake", text=text, note="OCSF 1.1, source 2.0"))


def _cloudtrail_table(hunt: _Hunt, s3_sources: list[str]) -> None:
    """The CloudTrail table over the trail's bucket: DDL and query printed, or run in rounds."""
    opts = hunt.options
    plan = athena_plan(hunt.principals, s3_sources, hunt.access, opts)
    ddl = GeneratedQuery(kind="athena-ddl", text=plan.ddl)
    hunt.result.queries.append(ddl)
    if opts.athena is None:
        query = queries.athena_query(plan.table, hunt.principals, hunt.window)
        hunt.result.queries.append(GeneratedQuery(kind="athena", text=query))
        return
    _athena_guard(hunt, plan)
    answer = cloud.run_athena(hunt.access.client("athena"), opts.athena, plan.ddl)
    ddl.executed, ddl.execution_id = True, answer.execution_id
    _run_rounds(hunt, HuntTable(plan.table), opts.athena)


def _run_rounds(hunt: _Hunt, table: HuntTable, target: cloud.AthenaTarget) -> None:
    """The hunt's rounds in Athena over one table, to the role chain's fixed point; the records as events."""
    client = hunt.access.client("athena")
    rounds = hunt_rounds(
        hunt.principals, hunt.window, table, lambda text: cloud.run_athena(client, target, text)
    )
    hunt.result.queries.extend(rounds.queries)
    _athena_events(hunt, rounds, table)


def _athena_guard(hunt: _Hunt, plan: AthenaPlan) -> None:
    """Estimate and refuse over budget before anything runs (RefusedError, exit 12).

    Without an s3:// source there is nothing to measure: a budget then cannot be kept, so it is refused
    as bad input rather than ignored; without a budget the hunt runs and says it was not estimated.
    """
    opts = hunt.options
    budget = opts.athena.max_scan_bytes if opts.athena else None
    if plan.trail is None:
        if budget is not None:
            raise BadInputError("--max-scan-bytes needs the trail's s3:// location as --source")
        hunt.result.warnings.append("Athena cost not estimated: no s3:// trail source given")
        return
    found = _estimate(plan, hunt.window, hunt.access, opts)
    hunt.result.athena_estimate = found.as_dict()
    cost.check_budget(found, budget)


def _athena_events(hunt: _Hunt, rounds: Rounds, table: HuntTable) -> None:
    """The rounds' records as events (kept only when they really match); the chain joins the hunt's."""
    known = {e.event_id for e in hunt.events}
    principals = hunt.principals.union(rounds.chainer.principals)
    found = 0
    for record in rounds.chainer.records.values():
        matched = principals.match(record)
        if matched and record.get("eventID") not in known:
            hunt.events.append(cloudtrail_event(record, hunt.ct_book, matched, table.kind))
            found += 1
    hunt.principals = principals
    hunt.result.sources.append(
        SourceStat(
            name=f"{table.kind}:{table.name}",
            kind=table.kind,
            bytes_scanned=sum(q.bytes_scanned or 0 for q in rounds.queries),
            events_matched=found,
        )
    )
    if not rounds.closed:
        hunt.result.warnings.append(
            f"{table.kind}: role chain not closed after {len(rounds.queries)} rounds; not searched: "
            + ", ".join(rounds.unsearched)
        )


def _audit(hunt: _Hunt) -> None:
    """Kubernetes audit logs: local files, and Logs Insights on the cluster's log group when asked."""
    opts = hunt.options
    text = queries.logs_insights_query(hunt.principals)
    log_group = f"/aws/eks/{opts.cluster}/cluster" if opts.cluster else "/aws/eks/<cluster>/cluster"
    generated = GeneratedQuery(kind="logs-insights", text=text, note=f"log group {log_group}")
    raw_events: list[tuple[dict[str, Any], str]] = []
    for path in opts.audit_logs:
        raw_events.extend((event, str(path)) for event in _read_audit(hunt, path))
    if opts.logs_insights and opts.cluster:
        query_id, messages = cloud.run_logs_insights(hunt.access, log_group, text, hunt.window)
        generated.executed, generated.execution_id = True, query_id
        for message in messages:
            try:
                event = orjson.loads(message)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and is_audit_event(event):
                raw_events.append((event, log_group))
    hunt.result.queries.append(generated)
    origins = {id(event): where for event, where in raw_events}
    matched = 0
    for event in dedupe_audit(e for e, _ in raw_events):
        if not hunt.window.contains(audit_time(event)):
            continue
        on = hunt.principals.match_kubernetes(event)
        if on:
            hunt.events.append(kubernetes_event(event, hunt.k8s_book, on, origins.get(id(event))))
            matched += 1
    if raw_events:
        hunt.result.sources.append(
            SourceStat(
                name="kubernetes-audit", kind="audit", events_scanned=len(raw_events), events_matched=matched
            )
        )


def _read_audit(hunt: _Hunt, path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise BadInputError(f"audit log {path} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    events: list[dict[str, Any]] = []
    for file in files:
        try:
            decoded = parse_records(inflate(file.read_bytes()))
        except (DecodeError, OSError) as exc:
            hunt.result.skipped.append(SkippedInput(name=str(file), reason=str(exc)))
            continue
        if decoded.bad_lines:
            reason = f"{len(decoded.bad_lines)} unreadable line(s), first: {decoded.bad_lines[0]}"
            hunt.result.skipped.append(SkippedInput(name=str(file), reason=reason))
        events.extend(e for e in decoded.records if is_audit_event(e))
    return events

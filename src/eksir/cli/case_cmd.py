"""`eksir case ...`: inspect, verify, close out, close and export case bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eksir.actions.base import ActionContext
from eksir.cli.accounts import AccountAccess, SplitClients, load_role_map
from eksir.cli.anchoring import anchor_phase
from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    AssumeRoleOpt,
    CasesDirOption,
    ExternalIdOpt,
    OutputFormat,
    OutputOption,
    ReasonOption,
    ReopenOption,
    RoleMapOpt,
    WaitOption,
    print_document,
)
from eksir.cli.prevent_cmd import approval_gate
from eksir.cli.sir_cmd import attach_export, sir_sync_cmd
from eksir.errors import BadInputError, CaseInvalidError
from eksir.models.case import Case
from eksir.phases.closeout import CloseoutRequest, close_case, closeout, waive_step
from eksir.safetext import line, plain_console
from eksir.store import CaseStore, VerificationReport, verify_case
from eksir.store.anchor import parse_anchor
from eksir.store.encryption import is_encrypted
from eksir.store.export import ExportResult, export_case, is_archive, verify_archive
from eksir.store.frozen import reopening
from eksir.store.keys import trusted_fingerprints
from eksir.store.repair import repair_case

case_app = typer.Typer(help="Inspect and verify case bundles.", no_args_is_help=True)


@case_app.command("verify")
def verify(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id, case directory, or an exported .tar.gz")],
    expect_fingerprint: Annotated[
        str | None, typer.Option(help="archive only: fail unless signed by this key (SHA256:...)")
    ] = None,
    trusted_key: Annotated[
        list[str] | None,
        typer.Option(help="archive only: trust signatures by this key (SHA256:... or a public key PEM file)"),
    ] = None,
    trusted_keys: Annotated[
        Path | None,
        typer.Option(
            help="archive only: file of trusted fingerprints (default ~/.config/eksir/trusted-keys)"
        ),
    ] = None,
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            help="a published chain head (SEQ:SHA256 or the anchor's JSON file) the case must reach"
        ),
    ] = None,
    identity: Annotated[
        Path | None,
        typer.Option("--identity", help="archive only: age key file to decrypt an encrypted export"),
    ] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Recompute every hash and the event chain; name every altered, missing or unrecorded file.

    Given an exported archive, also checks the manifest signature (trusted only from a pinned key) and every
    file against the signed manifest.
    """
    heads = [parse_anchor(value) for value in anchor or []]
    if is_archive(Path(case)) or is_encrypted(Path(case)):
        trusted = trusted_fingerprints(trusted_key or [], trusted_keys)
        _verify_archive(Path(case), expect_fingerprint, trusted, output, identity)
        return
    report = verify_case(CaseStore(cases_dir).get(case), heads)
    _print_case_report(report, output)
    if not report.ok:
        raise CaseInvalidError(
            f"case {report.case_path} failed verification ({len(report.problems)} problems)"
        )


def _print_case_report(report: VerificationReport, output: OutputFormat) -> None:
    """A case folder's verification: JSON, or every altered file in red and one OK line when clean."""
    if output.structured:
        print_document(
            output,
            {
                "case": str(report.case_path),
                "ok": report.ok,
                "events_checked": report.events_checked,
                "files_checked": report.files_checked,
                "anchoring": report.anchoring,
                "problems": report.problems,
            },
        )
        return
    console = plain_console(soft_wrap=True)
    for problem in report.problems:
        console.print(line(("ALTERED", "red"), f" {problem}"))
    if report.ok:
        console.print(
            line(
                ("OK", "green"),
                f" {report.case_path}: {report.events_checked} events, "
                f"{report.files_checked} files verified; {report.anchoring}",
            )
        )


def _verify_archive(
    archive: Path, expect: str | None, trusted: set[str], output: OutputFormat, identity: Path | None
) -> None:
    result = verify_archive(archive, expect, trusted, identity)
    if output.structured:
        print_document(
            output,
            {
                "archive": str(archive),
                "case": result.case_id,
                "ok": result.ok,
                "signed_by": result.fingerprint,
                "files_checked": result.files_checked,
                "events_checked": result.events_checked,
                "problems": result.problems,
            },
        )
    else:
        console = plain_console(soft_wrap=True)
        for problem in result.problems:
            console.print(line(("FAILED", "red"), f" {problem}"))
        if result.ok:
            console.print(
                f"OK {archive}: case {result.case_id}, {result.files_checked} files, {result.events_checked} "
                f"events; signed by trusted key {result.fingerprint}",
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
    if output.structured:
        print_document(
            output,
            {"case": record.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]},
        )
        return
    console = plain_console()
    console.print(
        line((record.id, "bold"), f"  {record.status}  verdict={record.verdict}  finding={record.finding_id}")
    )
    for event in events:
        console.print(
            f"  {event.seq:4d} {event.at:%Y-%m-%dT%H:%M:%SZ} {event.actor} {event.type}", markup=False
        )


@case_app.command("close")
def close(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id or path")],
    waive: Annotated[str | None, typer.Option(help="accept this unfinished step (needs --reason)")] = None,
    reason: Annotated[str, typer.Option(help="why the waived step is acceptable")] = "",
    revoke_break_glass: Annotated[
        bool,
        typer.Option("--revoke-break-glass", help="first remove the break-glass access this case granted"),
    ] = False,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    wait: WaitOption = False,
) -> None:
    """Close the case; refused while steps are unfinished or the report is missing or stale.

    Also refused while break-glass access this case granted is in place (--revoke-break-glass removes it).
    """
    from eksir.cli import break_glass  # noqa: PLC0415 - engine, kubernetes: only for close

    handle = CaseStore(cases_dir).get(case)
    if revoke_break_glass and break_glass.revoke_break_glass(handle):  # takes the writer lease itself
        plain_console(stderr=True).print("break-glass access removed (rolled back and verified)")
    with handle.writer("eksir case close", wait=wait, closed_ok=True):
        if waive:
            waive_step(handle, waive, reason)
        break_glass.refuse_close_while_granted(handle)
        result = close_case(handle)
        if not result.already_closed:  # a closed case is frozen: closing it again records nothing
            anchor_phase(handle, "case close", [])
    state = "was already closed" if result.already_closed else f"closed ({result.steps} steps final)"
    plain_console().print(f"case {result.case_id} {state}", markup=False)


@case_app.command("export")
def export(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id or path")],
    out: Annotated[
        Path | None, typer.Option("--out", help="archive path (default ./<case-id>.tar.gz)")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="Ed25519 private key (PEM); default ~/.config/eksir/signing-key, created on first use",
        ),
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient", "-r", help="encrypt the archive to this age public key (age1..., repeat)"
        ),
    ] = None,
    to_sir: Annotated[
        bool,
        typer.Option(
            "--to-sir", help="also attach the archive to the linked Security Incident Response case"
        ),
    ] = False,
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION", help="AWS region (--to-sir)")] = None,
    profile: Annotated[str | None, typer.Option(envvar="AWS_PROFILE", help="AWS profile (--to-sir)")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="AWS endpoint (--to-sir)")] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
) -> None:
    """Write the case as one signed tar.gz (manifest of sha256 per file, Ed25519 signature).

    Sensitive evidence (process environments, Secrets) is marked in the manifest; `--recipient` encrypts the
    archive with age so only the receiver can read it.
    """
    handle = CaseStore(cases_dir).get(case)
    recipients = recipient or []
    suffix = ".tar.gz.age" if recipients else ".tar.gz"
    target = (out or Path(f"{handle.load().id}{suffix}")).resolve()
    if target.is_relative_to(handle.path.resolve()):
        raise BadInputError("the archive cannot be written inside the case it contains")
    with handle.writer("eksir case export", wait=wait, closed_ok=True):
        result = export_case(handle, target, key, recipients)
        if to_sir:
            attach_export(handle, result.archive, region, profile, endpoint_url)
    _print_export(result, recipients, output)


def _print_export(result: ExportResult, recipients: list[str], output: OutputFormat) -> None:
    if output.structured:
        document = {
            "archive": str(result.archive),
            "case": result.case_id,
            "files": result.files,
            "fingerprint": result.fingerprint,
            "key": str(result.key_path),
            "key_created": result.key_created,
            "sensitive": result.sensitive,
            "encrypted_to": recipients,
        }
        print_document(output, document)
        return
    console = plain_console()
    if result.key_created:
        console.print(f"created signing key {result.key_path} (keep it private)")
    sealed = f", encrypted to {len(recipients)} age recipient(s)" if recipients else ""
    console.print(f"wrote {result.archive}: {result.files} files{sealed}")
    for path in result.sensitive:
        console.print(line(("sensitive", "yellow"), f" {path} (credentials likely: see the manifest)"))
    console.print(f"signing key fingerprint {result.fingerprint} (send it to the receiver separately)")


@case_app.command("closeout")
def closeout_cmd(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id or path")],
    note: Annotated[str, typer.Option(help="note for Security Hub and the GuardDuty feedback")],
    feedback: Annotated[str, typer.Option(help="USEFUL, NOT_USEFUL or none")] = "USEFUL",
    securityhub: Annotated[bool, typer.Option(help="resolve the Security Hub finding")] = True,
    archive: Annotated[bool, typer.Option(help="archive the GuardDuty finding")] = True,
    forensics_account: Annotated[
        str | None, typer.Option(help="share evidence snapshots with this account")
    ] = None,
    snapshot: Annotated[list[str] | None, typer.Option(help="snapshot id (default: the case's)")] = None,
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION")] = None,
    profile: Annotated[str | None, typer.Option(envvar="AWS_PROFILE")] = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="approve each step without prompting")] = False,
    approver: Annotated[str | None, typer.Option(help="name recorded as approver")] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    wait: WaitOption = False,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
) -> None:
    """Resolve in Security Hub, archive + feedback in GuardDuty, share snapshots: each step on approval.

    GuardDuty and Security Hub in the caller's (security) account; snapshots shared from the case's."""
    if feedback.upper() not in ("USEFUL", "NOT_USEFUL", "NONE"):
        raise BadInputError("--feedback must be USEFUL, NOT_USEFUL or none")
    handle = CaseStore(cases_dir).get(case)
    record = handle.load()
    console = plain_console()
    accounts = AccountAccess(region, profile, None, load_role_map(assume_role, external_id, role_map))
    ctx = _closeout_context(record, accounts.with_operator(approver or handle.actor), bool(forensics_account))
    request = CloseoutRequest(
        note=note,
        securityhub=securityhub,
        archive=archive,
        feedback=None if feedback.upper() == "NONE" else feedback.upper(),  # type: ignore[arg-type]
        forensics_account=forensics_account,
        snapshots=tuple(snapshot or ()),
    )
    with reopening(reopen, reason), handle.writer("eksir case closeout", wait=wait):
        for outcome in closeout(
            handle, lambda: ctx, request, approval_gate(yes, approver, handle.actor, console)
        ):
            console.print(f"{outcome.step_id}: {outcome.detail}", markup=False)
        anchor_phase(handle, "closeout", [])


def _closeout_context(record: Case, accounts: AccountAccess, share: bool) -> ActionContext:
    """Home clients, plus the case's account for sharing its snapshots (asked for only when sharing)."""
    home = accounts.home(record.region)
    if not share:
        return ActionContext(
            case_id=record.id, aws=home.client, k8s=lambda: None, region=home.region, dry_run=False
        )
    incident = accounts.route(record.account_id, record.region).clients(record.id)
    aws = SplitClients(incident, home).client
    return ActionContext(case_id=record.id, aws=aws, k8s=lambda: None, region=home.region, dry_run=False)


@case_app.command("repair")
def repair(
    case: Annotated[str, typer.Argument(help="case id or path")],
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
) -> None:
    """Record what a crash left (torn last log line, unfinished or unlogged writes) as events, then verify."""
    handle = CaseStore(cases_dir).get(case)
    done = repair_case(handle, wait=wait)
    report = verify_case(handle)
    if output.structured:
        print_document(
            output, {"case": str(handle.path), "repairs": done, "ok": report.ok, "problems": report.problems}
        )
    else:
        console = plain_console(soft_wrap=True)
        for repaired in done or ["nothing to repair"]:
            console.print(repaired)
        for problem in report.problems:
            console.print(line(("STILL WRONG", "red"), f" {problem}"))
    if not report.ok:
        raise CaseInvalidError(
            f"case {handle.path} still fails verification ({len(report.problems)} problems)"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")


case_app.command("sir-sync")(sir_sync_cmd)

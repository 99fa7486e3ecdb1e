"""`eksir recover CASE`: recovery from the case's hunt and containment records (playbook Part 4).

Without `--approve` it is a dry run: the plan and each step's preview are shown and the targets' descriptions
are preserved as evidence, nothing else changes. `--approve non-destructive` runs only steps that need no
approval (deletions always do); `--approve all --yes` runs everything (without `--yes` it is a usage error,
exit 2, as for respond: the deletions cannot be undone); `--approve none` records every step as declined.
Exits non-zero when a step failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from eksir.cli.accounts import AccountAccess, load_role_map
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
    YesOption,
    print_document,
    require_yes,
)
from eksir.engine import ApprovalPolicy, DenyAllGate, PolicyGate
from eksir.engine.approval import ApprovalGate
from eksir.engine.context import ContextFactory, KubeProvider
from eksir.errors import StepFailedError, UsageError
from eksir.phases.recovery import recover
from eksir.safetext import line, plain_console, styled
from eksir.store import CaseStore
from eksir.store.frozen import reopening


def gate_for(approve: ApprovalPolicy | None, actor: str) -> ApprovalGate | None:
    """None (dry run) without --approve; deny-all for `none`; a policy gate otherwise."""
    if approve is None:
        return None
    if approve is ApprovalPolicy.NONE:
        return DenyAllGate(actor)
    return PolicyGate(approve, actor)


def recover_cmd(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id (under --cases-dir) or case directory")],
    approve: Annotated[
        ApprovalPolicy | None,
        typer.Option("--approve", help="run the plan: all | non-destructive | none (default: dry run)"),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", envvar="AWS_REGION")] = None,
    profile: Annotated[str | None, typer.Option("--profile", envvar="AWS_PROFILE")] = None,
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="AWS endpoint (moto)")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="kubeconfig instead of an EKS token")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context")] = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
    override_pdb: Annotated[
        str | None,
        typer.Option(
            "--override-pdb",
            metavar="REASON",
            help="delete pods a PodDisruptionBudget keeps from eviction when the node is drained; the "
            "reason is recorded in the case",
        ),
    ] = None,
    yes: YesOption = False,
) -> None:
    """Preserve, then delete/restore what the attacker created or changed; worklist for the rest."""
    require_yes(approve, yes)
    if override_pdb is not None and not override_pdb.strip():
        raise UsageError("--override-pdb needs a reason (it is recorded in the case)")
    store = CaseStore(cases_dir)
    handle = store.get(case)
    with reopening(reopen, reason), handle.writer("eksir recover", wait=wait):
        header = handle.load()
        roles = load_role_map(assume_role, external_id, role_map)
        accounts = AccountAccess(region, profile, endpoint_url, roles, store.actor)
        aws = accounts.route(header.account_id, header.region).clients(header.id)
        kube = KubeProvider(aws=aws, cluster_name=header.cluster_name, kubeconfig=kubeconfig, context=context)
        gate = gate_for(approve, store.actor)
        ctx = ContextFactory(header.id, aws, kube, dry_run=gate is None, account_id=header.account_id)
        document = recover(handle, ctx, gate, override_pdb)
        anchor_phase(handle, "recover", [])
        if output.structured:
            print_document(output, document)
        else:
            render(plain_console(), document, dry_run=gate is None)
        failed = [s["step_id"] for s in document["steps"] if s["status"] == "failed"]
        if failed:
            raise StepFailedError(f"{len(failed)} recovery step(s) failed: {', '.join(failed)}")


def render(console: Console, document: dict[str, Any], dry_run: bool) -> None:
    console.print(styled(f"case {document['case']}: recovery{' (dry run)' if dry_run else ''}", "bold"))
    for step in document["steps"]:
        console.print(f"  {step['status']:10} {step['step_id']}  {step['detail']}")
    for kept in document["kept_as_evidence"]:
        console.print(line("  ", ("kept", "yellow"), f"       {kept['resource']}: {kept['todo']}"))
    for item in document["worklist"]:
        console.print(
            line("  ", ("worklist", "yellow"), f"   {item['resource']} ({item['call']}): {item['todo']}")
        )
    preserved = [p for p in document["preserved"] if p["evidence"]]
    console.print(f"{len(preserved)} description(s) preserved as evidence")


def register(app: typer.Typer) -> None:
    app.command("recover")(recover_cmd)

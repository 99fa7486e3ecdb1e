"""`eksir prevent CASE`: Pod Security prevention for the affected namespace, applied on approval and proven.

Without flags it only assesses (dry run + policy files into the case); `--apply` enforces the labels after
showing the change and getting approval; `--prove` sends the attacker's exact pod spec as a server-side dry
run with the responder's own credentials (as the attacker, RBAC would refuse it before admission once
contained) and fails unless the API server refuses it with the Pod Security message. `--create-filter`
creates the GuardDuty suppression filter of an authorized-change verdict instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from eksir.actions.base import ActionContext, PlannedChange
from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    CasesDirOption,
    OutputFormat,
    OutputOption,
    WaitOption,
    print_json,
)
from eksir.clients.aws import AwsClients
from eksir.engine.context import KubeProvider
from eksir.errors import RefusedError, StepFailedError
from eksir.prevention import PsaLevel, assess, create_suppression_filter, enforce, prove
from eksir.prevention.replay import verdict_text
from eksir.prevention.stepper import Approver
from eksir.safetext import line, plain_console
from eksir.store import CaseStore


def approver_for(yes: bool, approver: str | None, actor: str, console: Console) -> Approver:
    """Approval: `--yes` approves as --approver (or the current user); otherwise ask on a terminal."""

    def approve(planned: PlannedChange) -> str | None:
        console.print(line(("Planned:", "bold"), f" {planned.summary}"))
        for detail in (*planned.diff, *planned.blast_radius, *planned.warnings):
            console.print(f"  {detail}")
        if yes:
            return approver or actor
        if not sys.stdin.isatty():
            raise RefusedError("approval needed and no terminal to ask on: re-run with --yes after review")
        return (approver or actor) if typer.confirm("Apply this change?", default=False) else None

    return approve


def prevent(  # noqa: PLR0917 - typer maps parameters to options
    case: Annotated[str, typer.Argument(help="case id (under --cases-dir) or path")],
    level: Annotated[
        PsaLevel, typer.Option("--level", help="Pod Security level to enforce")
    ] = PsaLevel.BASELINE,
    apply: Annotated[bool, typer.Option("--apply", help="enforce the labels (after approval)")] = False,
    do_prove: Annotated[
        bool, typer.Option("--prove", help="dry-run the attacker's pod spec as the responder")
    ] = False,
    namespace: Annotated[str | None, typer.Option(help="namespace (default: the finding's)")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, else an EKS token)")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    create_filter: Annotated[
        bool,
        typer.Option(
            "--create-filter", help="create the GuardDuty suppression filter (authorized-change verdict)"
        ),
    ] = False,
    detector_id: Annotated[str | None, typer.Option(help="GuardDuty detector id for --create-filter")] = None,
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION")] = None,
    profile: Annotated[str | None, typer.Option(envvar="AWS_PROFILE")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="approve without prompting (after review)")] = False,
    approver: Annotated[str | None, typer.Option(help="name recorded as approver")] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
) -> None:
    """Assess, enforce (--apply) and prove (--prove) Pod Security prevention for the case's namespace."""
    handle = CaseStore(cases_dir).get(case)
    with handle.writer("eksir prevent", wait=wait):
        console = plain_console(stderr=output is OutputFormat.JSON)
        approve = approver_for(yes, approver, handle.actor, console)
        header = handle.load()
        case_id = header.id
        result: dict[str, Any] = {"case": case_id}
        if create_filter:
            aws = AwsClients(region=region, profile=profile)
            ctx = ActionContext(case_id=case_id, aws=aws, k8s=lambda: None, region=region, dry_run=False)
            outcome = create_suppression_filter(handle, ctx, approve, detector_id)
            result["suppression_filter"] = {"step": outcome.step_id, "approver": outcome.approver}
            _emit(console, output, result, f"suppression filter in place ({outcome.detail})")
            return
        aws = AwsClients(region=region or header.region, profile=profile)
        api = KubeProvider(aws, header.cluster_name, kubeconfig, context)()
        result["assessment"] = assess(handle, api, level, namespace)
        console.print(
            f"violating pods: {', '.join(result['assessment']['violating_pods']) or 'none'}", markup=False
        )
        if apply:
            ctx = ActionContext(
                case_id=case_id,
                aws=AwsClients(region=region, profile=profile),
                k8s=lambda: api,
                dry_run=False,
            )
            outcome = enforce(handle, ctx, level, approve, namespace)
            result["enforced"] = {
                "step": outcome.step_id,
                "approver": outcome.approver,
                "detail": outcome.detail,
            }
            console.print(f"enforced: {outcome.detail}", markup=False)
        if do_prove:
            proof = prove(handle, api, namespace)
            result["proof"] = proof
            console.print(
                f"replay by {proof['replayed_by']}: {proof['status']} {proof['message']}", markup=False
            )
            if proof["result"] != "proven":
                _emit(console, output, result, "")
                raise StepFailedError(f"prevention {verdict_text(proof)}")
        _emit(console, output, result, "done")


def _emit(console: Console, output: OutputFormat, result: dict[str, Any], line: str) -> None:
    if output is OutputFormat.JSON:
        print_json(result)
    elif line:
        console.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.command("prevent")(prevent)

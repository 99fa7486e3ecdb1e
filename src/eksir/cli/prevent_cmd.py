"""`eksir prevent CASE`: Pod Security prevention for the affected namespace, applied on approval and proven.

Without flags it only assesses (dry run + policy files into the case); `--apply` enforces the labels after
showing the change and getting approval; `--prove` sends the attacker's exact pod spec as a server-side dry
run with the responder's own credentials (as the attacker, RBAC would refuse it before admission once
contained) and fails unless the API server refuses it with the Pod Security message. `--create-filter`
creates the GuardDuty suppression filter of an authorized-change verdict instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from eksir.actions.base import ActionContext
from eksir.actions.prevention.replay import verdict_text
from eksir.cli.accounts import AccountAccess, load_role_map
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
from eksir.clients.aws import AwsClients
from eksir.engine.approval import (
    ApprovalGate,
    ApprovalPolicy,
    ApprovalRequest,
    PolicyGate,
)
from eksir.engine.context import KubeProvider
from eksir.engine.interactive import InteractiveGate
from eksir.engine.state import Approval
from eksir.errors import StepFailedError, UsageError
from eksir.phases.prevention import (
    PsaLevel,
    assess,
    create_suppression_filter,
    deny_cluster_wide,
    enforce,
    prove,
    prove_cluster_wide,
)
from eksir.safetext import line, plain_console
from eksir.store import CaseStore
from eksir.store.case_store import CaseHandle
from eksir.store.frozen import reopening


def approval_gate(yes: bool, approver: str | None, actor: str, console: Console) -> ApprovalGate:
    """Approval for steps asked for by name: `--yes` approves as --approver (or the current user) after the
    plan is shown; otherwise each step is shown and asked on a terminal; with neither, nothing is run."""
    who = approver or actor
    if yes:
        return ShowingGate(PolicyGate(ApprovalPolicy.ALL, who), console)
    if not sys.stdin.isatty():
        raise UsageError("approval needed and no terminal to ask on: re-run with --yes after review")
    return InteractiveGate(who, console, ask_all=True)


class ShowingGate:
    """Shows each planned change before the inner gate decides, so `--yes` still leaves the change on record
    in the responder's terminal."""

    def __init__(self, inner: ApprovalGate, console: Console) -> None:
        self.inner = inner
        self.console = console

    def decide(self, request: ApprovalRequest) -> Approval:
        change = request.change
        self.console.print(line(("Planned:", "bold"), f" {change.summary}"))
        for detail in (*change.diff, *change.blast_radius, *change.warnings):
            self.console.print(f"  {detail}", markup=False)
        return self.inner.decide(request)


ClusterPolicyOpt = Annotated[
    bool,
    typer.Option(
        "--cluster-policy",
        help="also deny privileged pods cluster-wide (ValidatingAdmissionPolicy; --prove then also replays "
        "the attacker's pod in --proof-namespace)",
    ),
]
ProofNamespaceOpt = Annotated[
    str, typer.Option(help="another namespace where --prove replays the attacker's pod (--cluster-policy)")
]
CreateFilterOpt = Annotated[
    bool,
    typer.Option(
        "--create-filter", help="create the GuardDuty suppression filter (authorized-change verdict)"
    ),
]


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
    cluster_policy: ClusterPolicyOpt = False,
    proof_namespace: ProofNamespaceOpt = "default",
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, else an EKS token)")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    create_filter: CreateFilterOpt = False,
    detector_id: Annotated[str | None, typer.Option(help="GuardDuty detector id for --create-filter")] = None,
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION")] = None,
    profile: Annotated[str | None, typer.Option(envvar="AWS_PROFILE")] = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="approve without prompting (after review)")] = False,
    approver: Annotated[str | None, typer.Option(help="name recorded as approver")] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
) -> None:
    """Assess, enforce (--apply) and prove (--prove) Pod Security prevention for the case's namespace."""
    handle = CaseStore(cases_dir).get(case)
    with reopening(reopen, reason), handle.writer("eksir prevent", wait=wait):
        console = plain_console(stderr=output.structured)
        run = _PreventRun(
            handle, console, output, lambda: approval_gate(yes, approver, handle.actor, console)
        )
        if create_filter:
            aws = AwsClients(region=region, profile=profile)
            run.suppress(
                ActionContext(case_id=run.case_id, aws=aws, k8s=lambda: None, region=region, dry_run=False),
                detector_id,
            )
            return
        header, roles = handle.load(), load_role_map(assume_role, external_id, role_map)
        accounts = AccountAccess(region, profile, None, roles, approver or handle.actor)
        aws = accounts.route(header.account_id, header.region).clients(header.id)  # the cluster's account
        api = KubeProvider(aws, header.cluster_name, kubeconfig, context)()
        run.assess(api, level, namespace)
        ctx = ActionContext(case_id=run.case_id, aws=aws, k8s=lambda: api, dry_run=False)
        if apply:
            run.enforce(ctx, level, namespace)
        if cluster_policy:
            run.cluster_policy(api, ctx, proof_namespace)
        if do_prove:
            run.prove(api, namespace, proof_namespace if cluster_policy else None)
        _emit(console, output, run.result, "done")


class _PreventRun:
    """One `eksir prevent` invocation: the case, where to print, how to approve, and the JSON result."""

    def __init__(
        self, handle: CaseHandle, console: Console, output: OutputFormat, gate: Callable[[], ApprovalGate]
    ) -> None:
        self.handle, self.console, self.output, self.gate = handle, console, output, gate
        self.case_id = handle.load().id
        self.result: dict[str, Any] = {"case": self.case_id}

    def suppress(self, ctx: ActionContext, detector_id: str | None) -> None:
        outcome = create_suppression_filter(self.handle, lambda: ctx, self.gate(), detector_id)
        self.result["suppression_filter"] = {"step": outcome.step_id, "approver": outcome.approver}
        _emit(self.console, self.output, self.result, f"suppression filter in place ({outcome.detail})")

    def assess(self, api: Any, level: PsaLevel, namespace: str | None) -> None:
        self.result["assessment"] = assess(self.handle, api, level, namespace)
        violating = ", ".join(self.result["assessment"]["violating_pods"]) or "none"
        self.console.print(f"violating pods: {violating}", markup=False)

    def enforce(self, ctx: ActionContext, level: PsaLevel, namespace: str | None) -> None:
        outcome = enforce(self.handle, lambda: ctx, level, self.gate(), namespace)
        self.result["enforced"] = {
            "step": outcome.step_id,
            "approver": outcome.approver,
            "detail": outcome.detail,
        }
        self.console.print(f"enforced: {outcome.detail}", markup=False)

    def cluster_policy(self, api: Any, ctx: ActionContext, probe_namespace: str) -> None:
        outcome = deny_cluster_wide(self.handle, api, lambda: ctx, self.gate(), probe_namespace)
        self.result["cluster_policy"] = {
            "step": outcome.step_id,
            "approver": outcome.approver,
            "detail": outcome.detail,
        }
        self.console.print(f"cluster policy: {outcome.detail}", markup=False)

    def prove(self, api: Any, namespace: str | None, elsewhere: str | None) -> None:
        """Record the proofs; a replay that was not refused by admission fails the command (exit 9)."""
        proofs = [("proof", prove(self.handle, api, namespace))]
        if elsewhere:
            proofs.append(("cluster_proof", prove_cluster_wide(self.handle, api, elsewhere)))
        for key, proof in proofs:
            self.result[key] = proof
            self.console.print(
                f"replay by {proof['replayed_by']}: {proof['status']} {proof['message']}", markup=False
            )
        failed = [proof for _, proof in proofs if proof["result"] != "proven"]
        if failed:
            _emit(self.console, self.output, self.result, "")
            raise StepFailedError(f"prevention {verdict_text(failed[0])}")


def _emit(console: Console, output: OutputFormat, result: dict[str, Any], line: str) -> None:
    if output.structured:
        print_document(output, result)
    elif line:
        console.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.command("prevent")(prevent)

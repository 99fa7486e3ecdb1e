"""`eksir doctor`: a preflight of an account and cluster, before the incident (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eksir.cli.accounts import load_role_map
from eksir.cli.options import (
    AssumeRoleOpt,
    ExternalIdOpt,
    OutputFormat,
    OutputOption,
    RoleMapOpt,
    print_document,
)
from eksir.errors import StepFailedError
from eksir.preflight.result import CheckResult, Verdict
from eksir.safetext import plain_console


def doctor_cmd(  # noqa: PLR0917 - typer maps parameters to options
    cluster: Annotated[str, typer.Option("--cluster", help="the EKS cluster to check")],
    evidence_bucket: Annotated[
        str | None, typer.Option("--evidence-bucket", help="the bucket volatile captures upload to")
    ] = None,
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION", help="AWS region")] = None,
    profile: Annotated[str | None, typer.Option(envvar="AWS_PROFILE", help="AWS profile")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="AWS endpoint (moto, VPC endpoint)")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="use this kubeconfig instead of an EKS token")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="check this (member) account through --assume-role")
    ] = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Check, before an incident, that eksir can authenticate, has its permissions and sees what it needs.

    With --account, as eksir will in an incident there: through the role (exit 12 without one)."""
    from eksir.cli.respond_cmd import Access  # noqa: PLC0415 - the same access path as the response
    from eksir.preflight.run import Target, run_doctor  # noqa: PLC0415

    access = Access(region, profile, endpoint_url, kubeconfig, context)
    access = access.with_roles(load_role_map(assume_role, external_id, role_map), "eksir doctor")
    aws = access.accounts().route(account, region).clients("doctor") if account else access.aws()
    results = run_doctor(Target(aws, cluster, access.kube(aws, cluster), evidence_bucket))
    report(cluster, results, output)


def report(cluster: str, results: list[CheckResult], output: OutputFormat) -> None:
    """Print the checks; a failed one exits 9 naming every failure (a lab-unavailable one does not)."""
    if output.structured:
        print_document(output, {"cluster": cluster, "checks": [r.as_dict() for r in results]})
    else:
        _print(results)
    failures = [r.name for r in results if r.verdict is Verdict.FAIL]
    if failures:
        raise StepFailedError(f"{len(failures)} check(s) failed: {', '.join(failures)}")


def _print(results: list[CheckResult]) -> None:
    console = plain_console()
    for result in results:
        console.print(
            f"[{result.verdict.value:>4}] {result.name}: {result.detail}", markup=False, highlight=False
        )
        if result.fix:
            console.print(f"       fix: {result.fix}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_cmd)

"""`eksir permissions`: the least-privilege IAM policy and Kubernetes ClusterRole eksir needs.

Why derived, not written by hand: each action declares the IAM actions and RBAC rules it calls next to its
code (ActionSpec), so the policy can never drift from what the tool does. Resolution (finding -> cluster ->
pod -> owners -> node -> instance -> principal) is not an action but runs before every plan; its read-only
needs are declared here as one more spec. IAM statements are grouped by service, Kubernetes rules by
(apiGroups, resources), everything sorted, so two runs print the same bytes and a diff shows what changed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
import yaml

from eksir.actions.permissions import DEFAULT_ROLE_NAME, all_specs, cluster_role, iam_policy
from eksir.actions.permissions_template import cloudformation_template
from eksir.cli.options import OutputFormat, OutputOption, print_document, print_json


class PermissionsFormat(StrEnum):
    POLICY = "policy"
    CLOUDFORMATION = "cloudformation"


def permissions_cmd(
    output: OutputOption = OutputFormat.TABLE,
    form: Annotated[
        PermissionsFormat,
        typer.Option(
            "--format",
            help="policy (the IAM policy and the ClusterRole) or cloudformation (the member account's "
            "template: the responder role, its trust to the security account, the policy; JSON, or YAML "
            "with -o yaml)",
        ),
    ] = PermissionsFormat.POLICY,
    role_name: Annotated[
        str, typer.Option("--role-name", help="name of the ClusterRole")
    ] = DEFAULT_ROLE_NAME,
) -> None:
    """Print the least-privilege IAM policy and Kubernetes ClusterRole derived from the actions.

    `-o table` (the default) prints the policy as JSON and the ClusterRole as YAML, ready to paste.
    """
    specs = all_specs()
    policy, role = iam_policy(specs), cluster_role(specs, role_name)
    if form is PermissionsFormat.CLOUDFORMATION:
        template = cloudformation_template(policy)
        if output.structured:
            print_document(output, template)
        else:
            print_json(template)
        return
    if output.structured:
        print_document(output, {"iam_policy": policy, "cluster_role": role, "actions": [s.id for s in specs]})
        return
    typer.echo("# IAM policy (attach to the responder's role or user)")
    print_json(policy)
    typer.echo("---")
    typer.echo(
        f"# Kubernetes ClusterRole; bind it to the responder. Actions: {', '.join(s.id for s in specs)}"
    )
    typer.echo(yaml.safe_dump(role, sort_keys=False, default_flow_style=False).rstrip())


def register(app: typer.Typer) -> None:
    app.command("permissions")(permissions_cmd)

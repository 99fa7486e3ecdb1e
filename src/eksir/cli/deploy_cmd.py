"""`eksir deploy template`: the security account's CloudFormation for fleet mode.

Why a command and not a file in the repository: the worker's policy is derived from the actions
(`eksir permissions`) and the rule's pattern from the finding types eksir handles, so a checked-in template
would drift from the code that runs. The command only prints; deploying is `aws cloudformation deploy`
(README, "Deploying fleet mode").
"""

from __future__ import annotations

from typing import Annotated

import typer

from eksir.actions.permissions import all_specs, iam_policy
from eksir.cli.options import OutputFormat, print_document
from eksir.deploy.template import fleet_template

deploy_app = typer.Typer(
    help="Deploy fleet mode: the security account's CloudFormation.", no_args_is_help=True
)


@deploy_app.command("template")
def template_cmd(
    output: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", help="yaml (the default) or json; table prints YAML"),
    ] = OutputFormat.YAML,
    org_units: Annotated[
        list[str] | None,
        typer.Option(
            "--org-unit",
            help="an OU id (ou-...) or root id (r-...) whose accounts get the member role as a StackSet; "
            "repeatable. Without it, deploy `eksir permissions --format cloudformation` as a StackSet "
            "yourself",
        ),
    ] = None,
) -> None:
    """Print the fleet-mode template: rule, queues, lease table, case bucket, worker role, ECS service.

    Exit 3 for a malformed --org-unit.
    """
    template = fleet_template(iam_policy(all_specs()), org_units or ())
    print_document(OutputFormat.JSON if output is OutputFormat.JSON else OutputFormat.YAML, template)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")

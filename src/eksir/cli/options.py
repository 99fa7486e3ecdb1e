"""Options shared by several commands, so every verb spells them the same way."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from eksir.errors import UsageError


class OutputFormat(StrEnum):
    """`-o table|json|yaml` on every command (the hunt adds csv): like aws and kubectl."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"

    @property
    def structured(self) -> bool:
        """JSON or YAML: the same document, for tools; stable across releases."""
        return self is not OutputFormat.TABLE


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table (for people), json or yaml (the same document, for tools)"),
]
CasesDirOption = Annotated[
    Path,
    typer.Option(
        "--cases-dir",
        envvar="EKSIR_CASES_DIR",
        help="where case bundles live: a directory, or s3://bucket/prefix (shared; one DynamoDB lease per"
        " case, see eksir --lock-table)",
        show_default=True,
    ),
]
DEFAULT_CASES_DIR = Path("cases")
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait", help="queue behind another process writing the case instead of refusing (exit 12)"
    ),
]
ReopenOption = Annotated[
    bool,
    typer.Option("--reopen", help="act on a closed case: reopen it (needs --reason; recorded in the case)"),
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="why a closed case is reopened (with --reopen)")
]


MaxInputOption = Annotated[
    int,
    typer.Option(
        "--max-input-bytes",
        min=1,
        help="refuse finding input larger than this once uncompressed (exit 3); default 1 GiB",
    ),
]


YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="confirm --approve all (destructive steps without asking)")
]


def require_yes(approve: object, yes: bool) -> None:
    """`--approve all` applies destructive, partly irreversible steps unasked: it must be confirmed with
    `--yes` on every verb that runs steps (respond, resume, recover). Raises UsageError (exit 2)."""
    if str(approve) == "all" and not yes:
        raise UsageError("--approve all applies destructive steps without asking: confirm it with --yes")


def print_document(output: OutputFormat, value: object) -> None:
    """Print a command's document as JSON or YAML (YAML from the JSON form, so both carry the same values)."""
    if output is OutputFormat.YAML:
        import yaml  # noqa: PLC0415 - only YAML output pays for it

        plain = orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
        typer.echo(
            yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()
        )
        return
    print_json(value)


def print_json(value: object) -> None:
    """Print JSON to stdout (UTF-8, indented) without going through rich's markup."""
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


# AWS, cluster and war-room options shared by respond, serve and the account-aware commands. Declared here (a
# module that imports nothing heavy) so `eksir serve` can install its SIGTERM handler before importing the
# engine. The env names are clients/assume.py's ASSUME_ROLE_ENV and EXTERNAL_ID_ENV.
RegionOpt = Annotated[str | None, typer.Option("--region", envvar="AWS_REGION", help="AWS region")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", envvar="AWS_PROFILE", help="AWS profile")]
EndpointOpt = Annotated[str | None, typer.Option("--endpoint-url", help="AWS endpoint (moto, VPC endpoint)")]
KubeconfigOpt = Annotated[
    Path | None, typer.Option("--kubeconfig", help="use this kubeconfig instead of an EKS token from AWS")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context")]
WebhookOpt = Annotated[str | None, typer.Option("--webhook-url", help="Slack-compatible war-room webhook")]
SnsOpt = Annotated[str | None, typer.Option("--sns-topic-arn", help="SNS topic for war-room summaries")]
EvidenceBucketOpt = Annotated[str | None, typer.Option("--evidence-bucket", help="S3 bucket for captures")]
AssumeRoleOpt = Annotated[
    str | None,
    typer.Option(
        "--assume-role",
        envvar="EKSIR_ASSUME_ROLE",
        help="role to act in the finding's account, a template: arn:aws:iam::{account}:role/eksir-responder",
    ),
]
ExternalIdOpt = Annotated[
    str | None,
    typer.Option(
        "--external-id", envvar="EKSIR_EXTERNAL_ID", help="external id the member role's trust requires"
    ),
]
RoleMapOpt = Annotated[
    Path | None,
    typer.Option(
        "--role-map",
        envvar="EKSIR_ROLE_MAP",
        help="YAML: assume_role, external_id, accounts {id: ARN}, "
        "organizational_units {ou: {role, accounts}}",
    ),
]

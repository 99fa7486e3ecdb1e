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

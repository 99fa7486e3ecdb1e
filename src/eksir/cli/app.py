"""Entry point: builds the typer app from the command modules and turns eksir errors into exit codes.

Every command module exposes `register(app)`. Errors derived from `EksirError` are printed as one line on
stderr and mapped to their documented exit code; nothing a user can cause ends in a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from eksir.errors import EksirError
from eksir.safetext import plain_console

COMMAND_MODULES: tuple[str, ...] = (
    "eksir.cli.triage_cmd",
    "eksir.cli.case_cmd",
    "eksir.cli.lab_cmd",
    "eksir.cli.hunt_cmd",
    "eksir.cli.report_cmd",
    "eksir.cli.prevent_cmd",
    "eksir.cli.recover_cmd",
    "eksir.cli.gameday_cmd",
    "eksir.cli.respond_cmd",
    "eksir.cli.permissions_cmd",
)


def build_app() -> typer.Typer:
    """Create the typer app with every command module that is installed registered on it."""
    app = typer.Typer(
        name="eksir",
        help="Incident response for a privileged container launched on Amazon EKS.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for module_name in COMMAND_MODULES:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(app)
    return app


def main() -> None:
    """Console-script entry point.

    Usage errors are handled by click (exit 2); eksir errors become one line on stderr and their exit code.
    """
    stderr = plain_console(stderr=True, soft_wrap=True)
    try:
        build_app()(prog_name="eksir")
    except EksirError as exc:
        stderr.print(f"eksir: error: {exc.message}", markup=False)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        stderr.print("eksir: interrupted; the case record is intact")
        sys.exit(130)

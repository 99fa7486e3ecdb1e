"""Entry point: builds the typer app and turns eksir errors into exit codes.

Every command module exposes `register(app)`; the table in `eksir.cli.commands` names them, and only the
module of the command being run is imported (see `eksir.cli.lazy`). Errors derived from `EksirError` are
printed as one line on stderr and mapped to their documented exit code; nothing a user can cause ends in a
traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from eksir.cli.lazy import LazyGroup
from eksir.errors import EksirError

if TYPE_CHECKING:
    from rich.console import Console


def _top_level() -> None:
    # No options of its own; typer needs a callback to build a group whose commands are resolved lazily.
    pass


def build_app() -> typer.Typer:
    """Create the typer app; each command's module is imported only when that command runs (cli.lazy)."""
    app = typer.Typer(
        name="eksir",
        help="Incident response for a privileged container launched on Amazon EKS.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        cls=LazyGroup,
    )
    app.callback()(_top_level)
    return app


def main() -> None:
    """Console-script entry point.

    Usage errors are handled by click (exit 2); eksir errors become one line on stderr and their exit code.
    """
    try:
        build_app()(prog_name="eksir")
    except EksirError as exc:
        _stderr().print(f"eksir: error: {exc.message}", markup=False)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _stderr().print("eksir: interrupted; the case record is intact")
        sys.exit(130)


def _stderr() -> Console:
    """A text-only console on stderr, made (and rich imported) only when there is an error to print."""
    from eksir.safetext import plain_console  # noqa: PLC0415 - a run that succeeds with JSON never needs rich

    return plain_console(stderr=True, soft_wrap=True)

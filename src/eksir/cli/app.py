"""Entry point: builds the typer app and turns eksir errors into exit codes.

Every command module exposes `register(app)`; the table in `eksir.cli.commands` names them, and only the
module of the command being run is imported (see `eksir.cli.lazy`). Errors derived from `EksirError` are
printed as one line on stderr and mapped to their documented exit code; nothing a user can cause ends in a
traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from eksir.cli.lazy import LazyGroup
from eksir.errors import EksirError, ExitCode

if TYPE_CHECKING:
    from rich.console import Console


_DEBUG = {"on": False}


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # noqa: PLC0415 - only `--version` reads the metadata

        print(f"eksir {version('eksir')}")
        raise typer.Exit


def _top_level(
    show_version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit"),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="log every call and print the full trace of an error to stderr")
    ] = False,
    lock_table: Annotated[
        str | None,
        typer.Option(
            "--lock-table",
            envvar="EKSIR_LOCK_TABLE",
            help="DynamoDB table of case leases of a `--cases-dir s3://...` store (eksir-case-leases)",
        ),
    ] = None,
) -> None:
    """Options of every command; typer also needs a callback to build a group resolved lazily."""
    if lock_table:
        import os  # noqa: PLC0415

        os.environ["EKSIR_LOCK_TABLE"] = lock_table  # read by store/s3_location.py's lock_table()
    if debug:
        import logging  # noqa: PLC0415

        _DEBUG["on"] = True
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")


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
        _trace_if_debugging()
        _stderr().print(f"eksir: error: {exc.message}", markup=False)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _stderr().print("eksir: interrupted; the case record is intact")
        sys.exit(130)
    except Exception as exc:  # a bug: one line (the case record is written ahead), the trace with --debug
        _trace_if_debugging()
        what = f"{exc.__class__.__name__}: {exc}"
        _stderr().print(f"eksir: internal error: {what} (run with --debug for the trace)", markup=False)
        sys.exit(int(ExitCode.INTERNAL))


def _trace_if_debugging() -> None:
    if _DEBUG["on"]:
        import traceback  # noqa: PLC0415

        traceback.print_exc(file=sys.stderr)


def _stderr() -> Console:
    """A text-only console on stderr, made (and rich imported) only when there is an error to print."""
    from eksir.safetext import plain_console  # noqa: PLC0415 - a run that succeeds with JSON never needs rich

    return plain_console(stderr=True, soft_wrap=True)

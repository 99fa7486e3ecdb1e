"""`eksir gameday`: the whole playbook against the local lab in one command, timed per phase.

Progress goes to stderr; the summary (gameday_view.py) names the verdict, every failed, blocked or
lab-unavailable step with its reason, the containment steps, the hunt's highlights and where the report is.
Exits 9 when any phase failed or ended with a failed or blocked step, 11 when the lab itself could not be
built, started or stopped (always after the lab is down).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from eksir.cli.gameday_run import run_gameday, write_summary
from eksir.cli.gameday_view import render_summary
from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    CasesDirOption,
    OutputFormat,
    OutputOption,
    print_document,
)
from eksir.errors import LabError, StepFailedError
from eksir.lab.lab import DEFAULT_LAB_DIR
from eksir.lab.scenarios import ScenarioName, get_scenario
from eksir.safetext import plain_console


def gameday(
    scenario: Annotated[
        str,
        typer.Option("--scenario", help=f"lab scenario: {', '.join(s.value for s in ScenarioName)}"),
    ] = ScenarioName.IAM_USER.value,
    lab_dir: Annotated[Path, typer.Option("--lab-dir", help="folder for the lab's state")] = DEFAULT_LAB_DIR,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Lab up, triage, plan, respond, hunt, recover, prove prevention, report; then lab down."""
    get_scenario(scenario)  # an unknown name is a usage error before anything starts
    err = plain_console(stderr=True)
    start = time.monotonic()
    result = run_gameday(
        scenario,
        lab_dir,
        cases_dir,
        lambda m: err.print(f"{time.monotonic() - start:6.1f}s {m}", markup=False, soft_wrap=True),
    )
    write_summary(result)
    if output.structured:
        print_document(output, result.to_json())
    else:
        render_summary(plain_console(), result)
    if result.failed or not result.lab_down:
        names = ", ".join(f"{p.name} ({p.detail})" for p in result.failed)
        message = f"game day finished with failed phase(s): {names or 'lab still running'}"
        lab_failed = not result.lab_down or any(p.name in ("lab up", "lab down") for p in result.failed)
        raise LabError(message) if lab_failed else StepFailedError(message)


def register(app: typer.Typer) -> None:
    app.command("gameday")(gameday)

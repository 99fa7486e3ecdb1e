"""`eksir gameday`: the whole playbook against the local lab in one command, timed per phase.

Progress goes to stderr; the last lines say where the report is and how long each phase took. Exits non-zero
when any phase failed (after the lab is down).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from eksir.cli.options import DEFAULT_CASES_DIR, CasesDirOption, OutputFormat, OutputOption, print_json
from eksir.errors import StepFailedError
from eksir.gameday import run_gameday, write_summary
from eksir.lab.lab import DEFAULT_LAB_DIR
from eksir.lab.scenarios import ScenarioName, get_scenario
from eksir.safetext import plain_console


def gameday(
    scenario: Annotated[
        str,
        typer.Option("--scenario", "-s", help=f"lab scenario: {', '.join(s.value for s in ScenarioName)}"),
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
        lambda m: err.print(f"{time.monotonic() - start:6.1f}s {m}", markup=False),
    )
    write_summary(result)
    if output is OutputFormat.JSON:
        print_json(result.to_json())
    else:
        out = plain_console()
        for phase in result.phases:
            out.print(f"{phase.name:18} {phase.status:7} {phase.seconds:6.1f}s  {phase.detail}", markup=False)
        out.print(f"case   {result.case_dir}", markup=False)
        out.print(f"report {result.report or '(not written)'}", markup=False)
        out.print(
            f"lab    {'down' if result.lab_down else 'STILL RUNNING: run eksir lab down'}", markup=False
        )
    if result.failed or not result.lab_down:
        names = ", ".join(f"{p.name} ({p.detail})" for p in result.failed)
        raise StepFailedError(f"game day finished with failed phase(s): {names or 'lab still running'}")


def register(app: typer.Typer) -> None:
    app.command("gameday")(gameday)

"""The game day's closing summary: verdict, phases (every failed, blocked or lab-unavailable step named with
its reason), containment steps, the hunt's highlights, the prevention verdict, the case and the report.

Why plain text only: the verdict reasons, step details and hunt lines carry finding-derived text (usernames,
pod names, API messages) that must never be read as rich markup.
"""

from __future__ import annotations

from rich.console import Console

from eksir.cli.gameday_run import GameDay
from eksir.cli.gameday_summary import NOT_DONE, NOT_EFFECTIVE, UNAVAILABLE, StepLine


def _line(out: Console, text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def render_summary(out: Console, result: GameDay) -> None:
    """Print the summary a responder reads after the day (stdout; progress went to stderr)."""
    if result.verdict:
        reasons = "; ".join(result.verdict.get("reasons") or [])
        _line(out, f"verdict  {result.verdict.get('decision')}" + (f": {reasons}" if reasons else ""))
    for phase in result.phases:
        _line(out, f"{phase.name:18} {phase.status:7} {phase.seconds:6.1f}s  {phase.detail}")
        for step in phase.steps:
            if step.status in NOT_DONE or step.status in (UNAVAILABLE, NOT_EFFECTIVE):
                _line(out, f"{'':20}{step.step}: {step.explained}")
    respond = result.phase("respond")
    if respond and respond.steps:
        _line(out, "containment")
        for step in respond.steps:
            _step(out, step)
    _hunt(out, result)
    if result.prevention:
        _line(out, f"prevention {result.prevention['verdict']}")
    _line(out, f"case   {result.case_dir}")
    _line(out, f"report {result.report or '(not written)'}")
    _line(out, f"lab    {'down' if result.lab_down else 'STILL RUNNING: run eksir lab down'}")


def _step(out: Console, step: StepLine) -> None:
    _line(out, f"  {step.status:18} {step.step}: {step.reason}")


def _hunt(out: Console, result: GameDay) -> None:
    if not result.hunt:
        return
    categories = ", ".join(f"{c} {n}" for c, n in result.hunt["by_category"].items()) or "none"
    _line(out, f"hunt   {result.hunt['calls']} call(s) by the attacker's principals ({categories})")
    for highlight in result.hunt["highlights"]:
        _line(out, f"  {highlight}")
    if result.hunt["more"]:
        _line(out, f"  ... and {result.hunt['more']} more in the report")

"""Rendering of plans, previews and run states for `eksir plan|respond|status|resume|rollback`.

Kept apart from the commands so each stays short; JSON output is built here too, so the table and the JSON
always describe the same thing.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from eksir.actions.containment.netpol import NOT_EFFECTIVE_PREFIX
from eksir.engine.guards import FALLBACK_DECLINED, OVERRIDE_OPTION
from eksir.engine.preview import StepPreview
from eksir.engine.state import RunState, StepRecord, StepStatus
from eksir.playbooks.plan import NoteLevel, Plan, PlanStep
from eksir.safetext import cells, line, styled

_STATUS_STYLE = {
    StepStatus.VERIFIED: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.ROLLBACK_FAILED: "bold red",
    StepStatus.BLOCKED: "yellow",
    StepStatus.SKIPPED: "yellow",
    StepStatus.ROLLED_BACK: "cyan",
    StepStatus.UNAVAILABLE_IN_LAB: "magenta",
    StepStatus.NOT_EFFECTIVE: "bold yellow",
}
_NOTE_STYLE = {NoteLevel.INFO: "dim", NoteLevel.WARNING: "yellow", NoteLevel.BLOCKING: "bold red"}


def plan_document(case_id: str, plan: Plan, previews: list[StepPreview]) -> dict[str, Any]:
    by_id = {p.step_id: p.as_dict() for p in previews}
    steps = [{**s.model_dump(mode="json"), "preview": by_id.get(s.id)} for s in plan.order()]
    return {
        "case_id": case_id,
        "plan_digest": plan.digest(),
        "plan": {**plan.model_dump(mode="json"), "steps": steps},
    }


def render_plan(console: Console, case_id: str, plan: Plan, previews: list[StepPreview]) -> None:
    by_id = {p.step_id: p for p in previews}
    table = Table(title=f"Plan for case {case_id} (dry run: nothing was changed)", show_lines=True)
    for column in ("step", "approval", "after", "what and why", "blast radius / preview"):
        table.add_column(column, overflow="fold")
    for step in plan.order():
        preview = by_id.get(step.id)
        table.add_row(
            *cells(
                step.id,
                _approval_cell(step),
                ", ".join(step.depends_on) or "-",
                _why_cell(step),
                _preview_cell(preview),
            )
        )
    console.print(table)
    render_notes(console, plan)


def _approval_cell(step: PlanStep) -> Text:
    if step.outage_blocks:
        return styled(f"blocked (outage): needs {OVERRIDE_OPTION}", "bold red")
    return styled("ask", "bold red") if step.requires_approval else styled("auto")


def _why_cell(step: PlanStep) -> Text:
    """The rationale, the outage items that block the step, and the choice offered if its evidence fails."""
    parts = [styled(step.rationale)]
    for item in step.outage_blocks:
        parts.append(styled(f"blocked by the outage check: {item}", "bold red"))
    if step.fallback is not None:
        fallback = step.fallback
        parts.append(
            styled(
                f"if {', '.join(fallback.without)} fails: asks {fallback.approval_id} "
                f"({fallback.title}): {fallback.trade_off}",
                "yellow",
            )
        )
    return Text("\n").join(parts)


def _preview_cell(preview: StepPreview | None) -> Text:
    if preview is None:
        return Text()
    if preview.problem:
        return styled(f"cannot preview: {preview.problem}", "yellow")
    change = preview.change or {}
    parts = [styled(change.get("summary", ""))]
    radius = change.get("blast_radius") or ()
    if radius:
        parts.append(line(("blast radius:", "bold"), " " + ", ".join(radius)))
    for warning in change.get("warnings") or ():
        if str(warning).startswith(NOT_EFFECTIVE_PREFIX):  # e.g. pod isolation no CNI will enforce
            parts.append(
                styled(f"NOT EFFECTIVE: {str(warning).removeprefix(NOT_EFFECTIVE_PREFIX)}", "bold yellow")
            )
    if preview.reversible is False:
        parts.append(styled("not reversible", "red"))
    return Text("\n").join(parts)


def render_notes(console: Console, plan: Plan) -> None:
    for note in plan.notes:
        style = _NOTE_STYLE[note.level]
        console.print(styled(f"{note.level.value}: {note.subject}: {note.message}", style))


def state_document(state: RunState) -> dict[str, Any]:
    return {
        "case_id": state.case_id,
        "plan_digest": state.plan_digest,
        "counts": state.counts(),
        "steps": [_step_document(state, s) for s in state.plan.order()],
    }


def _step_document(state: RunState, step: PlanStep) -> dict[str, Any]:
    """The step's record, and the choice its plan offers should its evidence fail (with the trade-off)."""
    document = state.steps[step.id].model_dump(mode="json")
    if step.fallback is not None:
        document["fallback"] = step.fallback.model_dump(mode="json")
    return document


def _detail(record: StepRecord, step: PlanStep) -> str:
    """The record's detail; a declined fallback adds what approving it would trade (status shows it)."""
    detail = record.full_detail()
    if step.fallback is not None and record.error_kind == FALLBACK_DECLINED:
        detail += f"\nif {step.fallback.approval_id} is approved: {step.fallback.trade_off}"
    return detail


def render_state(console: Console, state: RunState, title: str) -> None:
    table = Table(title=title)
    for column in ("step", "status", "detail", "approved by"):
        table.add_column(column, overflow="fold")
    for step in state.plan.order():
        record = state.steps[step.id]
        style = _STATUS_STYLE.get(record.status, "")
        approver = record.approval.approver if record.approval and record.approval.approved else ""
        table.add_row(*cells(step.id, styled(record.status.value, style), _detail(record, step), approver))
    console.print(table)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(state.counts().items()))
    console.print(styled(counts, "bold"))

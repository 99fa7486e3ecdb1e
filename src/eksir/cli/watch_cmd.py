"""`eksir watch CASE`: a live terminal view of a case, read from the case record only; it never writes.

Why a separate viewer: at 3 a.m. the responder running `eksir respond` in one terminal, the lead approving in
another and the incident manager on a call all want the same answer to "where are we": the phase, which steps
changed state, what waits for an approval, what is still open, and the next command to run. `eksir status`
answers once and loads the engine's state (which may bring a lagging state file up to date, a write); watch
reads only `case.json`, `events.jsonl` and the tracks' plan files, takes no lock, so it can run beside any
writer, and ignores a last event line still being written. It refreshes until Ctrl-C (exit 0: stopping is
the way to leave it); `--once` prints one snapshot.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.text import Text

from eksir.cli.options import DEFAULT_CASES_DIR, CasesDirOption, OutputFormat, OutputOption, print_document
from eksir.engine.guards import FALLBACK_DECLINED, OUTAGE_BLOCKED, OVERRIDE_OPTION
from eksir.engine.tracks import TRACKS
from eksir.models.case import CaseEvent
from eksir.report.briefing import bounded
from eksir.report.status import status_tone
from eksir.report.steps import flatten, phase_map, step_rows
from eksir.safetext import plain_console
from eksir.safetext.terminal import line
from eksir.store import CaseStore
from eksir.store.case_store import CaseHandle

RECENT = 8
_UNDECIDED = ("", "pending", "checked")
_UNFINISHED = ("pending", "checked", "approved", "applying", "applied", "rolling-back")
_RETRIED = ("failed", "blocked", "rollback-failed")
"""What running the track's command again acts on; `not-effective` is final (a risk, not a retry)."""


@dataclass(frozen=True)
class StepView:
    track: str
    step_id: str
    action_id: str
    phase: str
    status: str
    since: datetime | None
    approver: str | None
    declined_by: str | None = None

    @property
    def declined(self) -> bool:
        """Declined at its approval gate and not approved since: it waits for someone to approve it."""
        return self.status == "skipped" and self.declined_by is not None


@dataclass
class Snapshot:
    """What the case record says now: enough to know where the response stands."""

    case_id: str
    status: str
    verdict: str | None
    phase: str
    last_seq: int
    steps: list[StepView] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)
    next_command: str = ""


def read_events(path: Path) -> list[CaseEvent]:
    """Every complete event line; a last line a writer has not finished yet is left for the next refresh."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    events = []
    for raw in data.split(b"\n")[:-1]:
        try:
            events.append(CaseEvent.model_validate_json(raw))
        except ValidationError:
            continue
    return events


def _plans(case_dir: Path) -> dict[str, dict[str, Any]]:
    """Each track's plan document, read as it is on disk (None-safe: a track not started has none)."""
    plans = {}
    for track in TRACKS:
        try:
            plan = orjson.loads((case_dir / track.plan_file).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            continue
        if isinstance(plan, dict):
            plans[track.name] = plan
    return plans


def _plan_steps(plans: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Step id -> (track, the step as planned)."""
    found = {}
    for name, plan in plans.items():
        for step in plan.get("steps") or []:
            if isinstance(step, dict) and step.get("id"):
                found[str(step["id"])] = (name, step)
    return found


def _step_views(events: list[CaseEvent], plans: dict[str, dict[str, Any]]) -> list[StepView]:
    """Every planned step in plan order (`pending` until its first event), then those only the log names."""
    planned = _plan_steps(plans)
    phases: dict[str, str] = {}
    for plan in plans.values():
        phases.update(phase_map(plan))
    rows = {row.step_id: row for row in step_rows(events, phases)}
    views = []
    for step_id, (track, step) in planned.items():
        row = rows.pop(step_id, None)
        views.append(
            StepView(
                track,
                step_id,
                str(step.get("action_id") or (row.action_id if row else "?")),
                str(step.get("phase") or (row.phase if row else "?")),
                row.status if row else "pending",
                row.history[-1][0] if row and row.history else None,
                row.approver if row else None,
                row.declined_by if row else None,
            )
        )
    for row in rows.values():
        since = row.history[-1][0] if row.history else None
        views.append(
            StepView(
                "?", row.step_id, row.action_id, row.phase, row.status, since, row.approver, row.declined_by
            )
        )
    return views


def _changes(events: list[CaseEvent]) -> list[str]:
    """The latest step transitions, newest last."""
    lines = []
    for event in events:
        if event.type.startswith("step."):
            step = flatten(event.data).get("step_id") or "?"
            lines.append(f"{event.at:%H:%M:%SZ} #{event.seq} {bounded(step, 80)} -> {event.type[5:]}")
    return lines[-RECENT:]


def _holds(events: list[CaseEvent], plans: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Step id -> the option that releases it, for a step blocked now by the outage check or by a declined
    fallback (engine/guards.py): `--override-outage REASON`, or `--approve-step <step>:without-evidence`."""
    planned, holds = _plan_steps(plans), dict[str, str]()
    for event in events:
        record = event.data.get("record") if event.type.startswith("step.") else None
        if not isinstance(record, dict) or not record.get("step_id"):
            continue
        step_id, kind = str(record["step_id"]), record.get("error_kind")
        holds.pop(step_id, None)
        fallback = planned.get(step_id, ("", {}))[1].get("fallback") or {}
        if record.get("status") == "blocked" and kind == OUTAGE_BLOCKED:
            holds[step_id] = OVERRIDE_OPTION
        elif record.get("status") == "blocked" and kind == FALLBACK_DECLINED and fallback.get("approval_id"):
            holds[step_id] = f"--approve-step {fallback['approval_id']}"
    return holds


def _pending(
    views: list[StepView], plans: dict[str, dict[str, Any]], holds: dict[str, str] | None = None
) -> list[str]:
    """Steps that need a person: planned with approval and not decided yet, declined and not run, or held
    by the outage check or a declined fallback (with the option that releases them)."""
    planned = _plan_steps(plans)
    waiting = []
    for v in views:
        if v.step_id in (holds or {}):
            waiting.append(f"{v.step_id} ({v.action_id}, {v.track}): needs {(holds or {})[v.step_id]}")
        elif v.declined:
            waiting.append(f"{v.step_id} ({v.action_id}, {v.track}): declined by {v.declined_by}")
        elif v.status in _UNDECIDED and planned.get(v.step_id, ("", {}))[1].get("requires_approval"):
            waiting.append(f"{v.step_id} ({v.action_id}, {v.track})")
    return waiting


def _phase(status: str, views: list[StepView], events: list[CaseEvent]) -> str:
    if status == "closed":
        return "closed"
    latest = [v for v in views if v.since is not None]
    if latest:
        newest = max(latest, key=lambda v: v.since or datetime.min)
        return f"{newest.track}: {newest.phase}"
    return "triage" if any(e.type == "triage.completed" for e in events) else "opened"


_TRACK_COMMANDS = {
    "response": "eksir resume {case}",
    "recovery": "eksir recover {case}",
    "prevention": "eksir prevent {case} --apply --prove",
    "closeout": "eksir case closeout {case} --note TEXT",
}
"""The command that carries an unfinished track on."""


def _next_command(
    snap: Snapshot, plans: dict[str, Any], evidence: list[str], docs: set[str], holds: dict[str, str]
) -> str:
    """The next command in playbook order, from what the record holds (the README's incident sequence)."""
    case = snap.case_id
    if snap.status == "closed":
        return "none: the case is closed"
    open_steps = [v for v in snap.steps if v.status in _UNFINISHED + _RETRIED or v.declined]
    if open_steps:
        first = open_steps[0]
        command = _TRACK_COMMANDS.get(first.track, "eksir status {case}").format(case=case)
        if first.step_id in holds:
            return f"{command} {holds[first.step_id]}"
        waiting = first.step_id if f"{first.step_id} (" in " ".join(snap.pending) else None
        return f"{command} --approve-step {waiting}" if waiting and first.track == "response" else command
    for missing, command in (
        ("response" not in plans, "eksir respond FINDING"),
        (
            not any(name.endswith("hunt.json") for name in evidence) and "hunt.json" not in docs,
            "eksir hunt {case}",
        ),
        ("recovery" not in plans, "eksir recover {case}"),
        ("prevention" not in plans, "eksir prevent {case} --apply --prove"),
        ("report.md" not in docs, "eksir report {case}"),
    ):
        if missing:
            return command.format(case=case)
    return f"eksir case close {case}"


def snapshot(handle: CaseHandle) -> Snapshot:
    """The case as its record says now; reads case.json, events.jsonl and the plan files, writes nothing."""
    case = handle.load()
    events = read_events(handle.path / "events.jsonl")
    plans = _plans(handle.path)
    views = _step_views(events, plans)
    snap = Snapshot(
        case.id,
        str(case.status),
        case.verdict,
        _phase(str(case.status), views, events),
        events[-1].seq if events else 0,
        steps=views,
        changes=_changes(events),
        pending=_pending(views, plans, holds := _holds(events, plans)),
    )
    snap.risks = [
        f"{v.step_id} ({v.action_id}) {v.status}" for v in views if status_tone(v.status) == "bad"
    ] + [f"{v.step_id}: not performed in the lab" for v in views if v.status == "unavailable-in-lab"]
    docs = {str(e.data.get("path")) for e in events if e.type == "document.written"}
    snap.next_command = _next_command(snap, plans, [item.name for item in case.evidence], docs, holds)
    return snap


def _safe(value: object, limit: int = 160) -> str:
    """Text from the case (step ids, details) for a terminal: one bounded line, control characters shown
    as escapes, so a hostile value cannot move the cursor, recolour or clear the screen."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in bounded(value, limit))


_TONE_STYLES = {"ok": "green", "warn": "yellow", "bad": "bold red", "neutral": ""}


def _step_line(v: StepView, width: int) -> Text:
    """One step: track, id, its status coloured by the report's tone table, when it changed, the action."""
    since = f"{v.since:%H:%M:%SZ}" if v.since else "-"
    return line(
        f"  {_safe(v.track, 12):<11} {_safe(v.step_id, 48):<{width}} ",
        (f"{_safe(v.status, 24):<19}", _TONE_STYLES[status_tone(v.status)]),
        f" {since:<10} {_safe(v.action_id, 48)}",
    )


def render(snap: Snapshot) -> list[str | Text]:
    """The snapshot as lines; step statuses carry a colour (Text styles, never markup)."""
    lines: list[str | Text] = [
        f"case {_safe(snap.case_id)}  status {snap.status}  verdict {_safe(snap.verdict or 'n/a')}  "
        f"phase {_safe(snap.phase)}  (event {snap.last_seq})",
        "",
        "steps:",
    ]
    width = max((len(_safe(v.step_id, 48)) for v in snap.steps), default=0) + 1
    lines += [_step_line(v, width) for v in snap.steps] or ["  none planned yet"]
    lines += ["", "recent changes:"] + ([f"  {_safe(c)}" for c in snap.changes] or ["  none"])
    lines += ["", "waiting for approval:"] + ([f"  {_safe(p)}" for p in snap.pending] or ["  none"])
    lines += ["", "open risks:"] + ([f"  {_safe(r)}" for r in snap.risks] or ["  none recorded"])
    return [*lines, "", f"next: {_safe(snap.next_command, 200)}"]


def _document(snap: Snapshot) -> dict[str, Any]:
    data = asdict(snap)
    for step in data["steps"]:
        step["since"] = step["since"].isoformat().replace("+00:00", "Z") if step["since"] else None
    return data


def _signature(handle: CaseHandle) -> tuple[float, int]:
    """What changes when a writer touches the record: the event log's mtime and size."""
    try:
        stat = (handle.path / "events.jsonl").stat()
    except FileNotFoundError:
        return (0.0, 0)
    return (stat.st_mtime, stat.st_size)


def watch(
    case: Annotated[str, typer.Argument(help="case id (under --cases-dir) or path to the case directory")],
    once: Annotated[bool, typer.Option("--once", help="print one snapshot and exit")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, help="seconds between looks at the record")
    ] = 2.0,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Watch a case live: phase, steps changing state, pending approvals, open risks, the next command.

    Reads the case record only (case.json, events.jsonl, the plan files) and never writes; refreshes when the
    event log changes until Ctrl-C (exit 0). `--once` prints a single snapshot (`-o json|yaml` as a document).
    """
    handle = CaseStore(cases_dir).get(case)
    if once or output.structured:
        snap = snapshot(handle)
        if output.structured:
            print_document(output, _document(snap))
        else:
            _print(snap)
        return
    _follow(handle, interval)


def _print(snap: Snapshot, *, clear: bool = False) -> None:
    console = plain_console()
    if clear:
        console.clear()
    for text in render(snap):
        console.print(text, markup=False, soft_wrap=True)


def _follow(handle: CaseHandle, interval: float) -> None:
    """Redraw whenever the event log changes; Ctrl-C ends the watch (exit 0)."""
    seen: tuple[float, int] | None = None
    try:
        while True:
            current = _signature(handle)
            if current != seen:
                seen = current
                _print(snapshot(handle), clear=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)

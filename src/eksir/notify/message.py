"""What the war room is told: one short summary per milestone, as plain text and Slack blocks.

Why both: Slack-compatible receivers (Slack, Mattermost, Chime bridges) render `blocks` and fall back to
`text`; SNS (email, SMS, chat bots) only carries text. The summary is built from the case's run state only,
so it never contains more than the case record does (no secrets, no tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eksir.engine.state import RunState, StepStatus
from eksir.safetext import mrkdwn_escape

_MAX_LISTED = 10


@dataclass(frozen=True)
class Message:
    kind: str
    title: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join((self.title, *self.lines))

    def slack(self) -> dict[str, Any]:
        """The Slack-compatible webhook body: `text` (fallback) plus a header and a section block.

        Both mrkdwn parts are escaped (`mrkdwn_escape`): step details and notes carry finding text.
        """
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
        ]
        if self.lines:
            section = mrkdwn_escape("\n".join(self.lines))[:3000]
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
        return {"text": mrkdwn_escape(self.text), "blocks": blocks}


def _counts(state: RunState) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(state.counts().items()))


def _failures(state: RunState) -> list[str]:
    failed = [r for r in state.steps.values() if r.status in (StepStatus.FAILED, StepStatus.ROLLBACK_FAILED)]
    return [f"FAILED {r.step_id}: {r.error or r.detail}" for r in failed[:_MAX_LISTED]]


def run_started(state: RunState) -> Message:
    plan = state.plan
    lines = [
        f"cluster: {plan.cluster_name or 'unknown'}; finding {plan.finding_id}",
        f"{len(plan.steps)} planned steps, {sum(s.requires_approval for s in plan.steps)} need approval",
    ]
    lines += [f"note: {n.message}" for n in plan.notes if n.level.value != "info"][:_MAX_LISTED]
    return Message("run-started", f"eksir case {state.case_id}: response started", tuple(lines))


def phase_finished(phase: str, state: RunState) -> Message:
    members = [s for s in state.plan.steps if s.phase.value == phase]
    lines = [f"{s.id}: {state.steps[s.id].status.value}" for s in members[:_MAX_LISTED]]
    lines.append(f"case so far: {_counts(state)}")
    return Message("phase-finished", f"eksir case {state.case_id}: {phase} phase finished", tuple(lines))


def step_failed(step_id: str, state: RunState) -> Message:
    record = state.steps[step_id]
    lines = (f"{step_id} ({record.action_id}): {record.error or record.detail}", f"case: {_counts(state)}")
    return Message("step-failed", f"eksir case {state.case_id}: step {step_id} FAILED", lines)


def run_finished(state: RunState) -> Message:
    lines = [f"result: {_counts(state)}", *_failures(state)]
    return Message("run-finished", f"eksir case {state.case_id}: response run finished", tuple(lines))


def case_opened(case_id: str, title: str, cluster: str | None, created: bool) -> Message:
    verb = "opened" if created else "reopened"
    lines = (f"finding: {title}", f"cluster: {cluster or 'unknown'}")
    return Message("case-opened", f"eksir case {case_id} {verb}", lines)


def approvals_waiting(case_id: str, waiting: list[str], hint: str = "") -> Message:
    """The fleet worker ran what policy allows; these steps wait: the exact commands that approve or deny
    them (`hint`: the options those commands need, such as `--cases-dir` and `--queue-url`)."""
    suffix = f" {hint}" if hint else ""
    lines = [f"eksir approve {case_id} --step {step} --yes{suffix}" for step in waiting[:_MAX_LISTED]]
    lines.append(f"eksir approve {case_id} --destructive --yes{suffix}   (every step that waits)")
    lines.append(f"eksir deny {case_id} --destructive --yes{suffix}")
    return Message(
        "approvals-waiting", f"Case {case_id}: {len(waiting)} step(s) wait for approval", tuple(lines)
    )


def closed_repeat(case_id: str, finding_id: str, count: int | None) -> Message:
    """GuardDuty repeated a finding whose case is closed: recorded, not re-run."""
    return Message(
        "closed-repeat",
        f"Case {case_id} is closed; finding {finding_id} arrived again (count {count})",
        ("recorded in the fleet log, nothing re-run; to act: eksir respond ... --reopen --reason TEXT",),
    )

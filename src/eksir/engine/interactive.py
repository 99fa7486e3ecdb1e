"""The interactive approval gate: a person approves step by step at a terminal, at 3 a.m.

What it must get right, learned from responders walking the playbook by hand:
- the prompt shows its options literally (`[y]es [n]o ...` is text, never Rich markup that eats brackets);
- an answer it does not understand (`?`, a typo) shows the options again instead of counting as "no";
- `d` shows the step's full parameters and check before deciding, `a` approves this and every remaining
  prompt, `q` declines this and every remaining prompt (end of input or Ctrl-C is "no" too: a prompt that
  cannot be answered never becomes a change);
- when several steps wait at once (the runner works in parallel), the most urgent is asked first: evidence,
  then the pod's isolation, then the rest of containment, then everything else.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
from rich.console import Console

from eksir.actions.base import Phase
from eksir.engine.approval import ApprovalRequest
from eksir.engine.state import Approval
from eksir.safetext import line, styled

Ask = Callable[[str], str]
OPTIONS = "[y]es [n]o [d]etails [a]ll remaining [q]uit"
_YES, _NO, _DETAILS, _ALL, _QUIT = (
    {"y", "yes"},
    {"n", "no", ""},
    {"d", "details"},
    {"a", "all"},
    {"q", "quit"},
)
_URGENT_ACTIONS = ("k8s.isolate_pod",)
_SETTLE_SECONDS = 0.2
"""How long the first prompt waits for steps that become ready at the same moment, so it can pick the most
urgent of them instead of whichever thread came first."""


def urgency(request: ApprovalRequest) -> int:
    """Lower is asked first: evidence (lost if late), pod isolation, other containment, the rest."""
    phase = request.step.phase
    if phase is Phase.EVIDENCE:
        return 0
    if request.step.action_id in _URGENT_ACTIONS:
        return 1
    return 2 if phase is Phase.CONTAINMENT else 3


class InteractiveGate:
    """Asks a person per step (one prompt at a time, most urgent first, even with parallel workers).

    Steps that need no approval are approved without asking unless `ask_all` is set.
    """

    def __init__(self, actor: str, console: Console, ask: Ask | None = None, ask_all: bool = False) -> None:
        self.actor = actor
        self.console = console
        self.ask: Ask = ask or (lambda prompt: console.input(prompt, markup=False))
        self.ask_all = ask_all
        self._mode = "ask"  # "ask", or "all"/"none" once a person answered `a` or `q`
        self._queue: list[tuple[int, int]] = []
        self._numbers = itertools.count()
        self._busy = False
        self._turns = threading.Condition()

    def decide(self, request: ApprovalRequest) -> Approval:
        if not request.needs_approval and not self.ask_all:
            return _approval(True, self.actor, "auto:non-destructive")
        with self._turn(urgency(request)):
            if self._mode == "all":
                return _approval(True, self.actor, "interactive:all-remaining")
            if self._mode == "none":
                return _approval(False, self.actor, "interactive", "declined: quit at an earlier prompt")
            self._show(request)
            return self._answer(request)

    def _answer(self, request: ApprovalRequest) -> Approval:
        while True:
            try:
                answer = self.ask(f"Apply {request.step.id}? {OPTIONS} (default n): ").strip().lower()
            except (EOFError, KeyboardInterrupt):
                answer = "n"
            if answer in _YES:
                return _approval(True, self.actor, "interactive")
            if answer in _NO:
                return _approval(False, self.actor, "interactive", "declined at the prompt")
            if answer in _DETAILS:
                self._details(request)
            elif answer in _ALL:
                self._mode = "all"
                return _approval(True, self.actor, "interactive:all-remaining")
            elif answer in _QUIT:
                self._mode = "none"
                return _approval(False, self.actor, "interactive", "declined: quit at the prompt")
            else:
                self.console.print(f"answer one of {OPTIONS}", markup=False)

    @contextmanager
    def _turn(self, rank: int) -> Iterator[None]:
        """Wait until no prompt is open and this is the most urgent waiting request."""
        key = (rank, next(self._numbers))
        with self._turns:
            heapq.heappush(self._queue, key)
            if not self._busy:
                self._turns.wait(_SETTLE_SECONDS)
            self._turns.wait_for(lambda: not self._busy and self._queue[0] == key)
            heapq.heappop(self._queue)
            self._busy = True
        try:
            yield
        finally:
            with self._turns:
                self._busy = False
                self._turns.notify_all()

    def _show(self, request: ApprovalRequest) -> None:
        step, change = request.step, request.change
        out = self.console
        out.rule(line((step.id, "bold"), f" ({request.spec.title})"))
        out.print(line(("why:", "bold"), f" {step.rationale}"))
        out.print(line(("change:", "bold"), f" {change.summary}"))
        for diff_line in change.diff:
            style = "green" if diff_line.startswith("+") else "red" if diff_line.startswith("-") else ""
            out.print(line("  ", styled(diff_line, style)))
        if change.blast_radius:
            out.print(line(("blast radius:", "bold yellow"), " " + ", ".join(change.blast_radius)))
        for warning in (*request.check.warnings, *change.warnings, *step.approval_reasons):
            out.print(styled(f"! {warning}", "yellow"))
        if not request.spec.reversible:
            out.print(styled("this step cannot be rolled back", "bold red"))

    def _details(self, request: ApprovalRequest) -> None:
        """The step's parameters and its check, as JSON text (finding-derived values are never markup)."""
        details = {
            "action": request.step.action_id,
            "phase": request.step.phase.value,
            "params": request.step.params,
            "depends_on": list(request.step.depends_on),
            "check": {"detail": request.check.detail, "already_applied": request.check.already_applied},
            "destructive": request.spec.destructive,
            "reversible": request.spec.reversible,
        }
        self.console.print(orjson.dumps(details, option=orjson.OPT_INDENT_2).decode(), markup=False)


def _approval(approved: bool, actor: str, how: str, reason: str = "") -> Approval:
    return Approval(approved=approved, approver=actor, at=datetime.now(UTC), how=how, reason=reason)

"""The Runner: executes a Plan step by step, persisting every transition before the next side effect.

Each step goes pending -> checked -> approved | skipped -> applying -> applied -> verified | failed.
Independent steps run in parallel (a thread pool honouring `depends_on`, where a dependency counts only once
it is *verified*); a failed step blocks only its dependents. The applied record (what rollback needs) is
persisted the moment `apply` returns. A process killed mid-run is resumed from the case: a step found
`applying` is not blindly re-applied; its action's `check` decides, and the step is marked resumed.
In lab mode (engine/lab_mode.py) a step the lab cannot perform ends `unavailable-in-lab` instead of `failed`,
and its dependents run without it, each saying so in its record. Two guards beyond the gate
(engine/guards.py): a step a blocking outage item names ends `blocked` unless the run carries an outage
override, and a step whose plan offers a fallback (node isolation after a failed capture) asks that
fallback's own approval instead of being blocked by the dead dependency.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import asdict
from typing import Any, NoReturn, Protocol

from pydantic import ValidationError

from eksir.actions.base import Action, ActionContext, ActionParams, CheckOutcome, VerifyOutcome
from eksir.actions.evidence.case_evidence import CASE_EXTRA
from eksir.actions.registry import get_action
from eksir.engine.accumulate import merge_plans
from eksir.engine.approval import ApprovalGate, ApprovalRequest
from eksir.engine.guards import (
    FALLBACK_DECLINED,
    OUTAGE_BLOCKED,
    OutageOverride,
    declined_detail,
    fallback_request_step,
    outage_block_detail,
    waivable_now,
    waived_deps,
)
from eksir.engine.lab_mode import LabMode, ran_without_detail, unavailable_detail
from eksir.engine.retry import RetryPolicy
from eksir.engine.state import (
    TERMINAL,
    Approval,
    RunState,
    StateStore,
    StepRecord,
    StepStatus,
    dependency_dead,
    dependency_met,
)
from eksir.engine.tracks import RESPONSE, Track
from eksir.errors import EksirError, NotFoundError, PermissionDeniedError, RefusedError, TemporaryError
from eksir.playbooks.plan import Plan, PlanStep
from eksir.store.case_store import CaseHandle

log = logging.getLogger("eksir.engine")
ContextFactory = Callable[[], ActionContext]


def with_case(factory: ContextFactory, case: CaseHandle) -> ContextFactory:
    """Contexts that carry the open case, so actions enter what they collect into its evidence manifest."""

    def make() -> ActionContext:
        ctx = factory()
        ctx.extras.setdefault(CASE_EXTRA, case)
        return ctx

    return make


_HAS_EFFECT = frozenset(
    {StepStatus.APPLYING, StepStatus.APPLIED, StepStatus.VERIFIED, StepStatus.NOT_EFFECTIVE}
)


class RunObserver(Protocol):
    """Told about milestones (the war room implements it); must never raise."""

    def run_started(self, state: RunState) -> None: ...
    def step_failed(self, step: PlanStep, record: StepRecord, state: RunState) -> None: ...
    def step_finished(self, step: PlanStep, record: StepRecord, state: RunState) -> None: ...
    def phase_finished(self, phase: str, state: RunState) -> None: ...
    def run_finished(self, state: RunState) -> None: ...


class _StepFailed(Exception):
    """Internal: the step has been recorded as failed; stop working on it."""


class Runner:
    """Runs one plan for one case. Construct, then `run()`; the result is the final RunState."""

    def __init__(
        self,
        case: CaseHandle,
        plan: Plan,
        ctx_factory: ContextFactory,
        gate: ApprovalGate,
        max_workers: int = 4,
        *,
        retry: RetryPolicy | None = None,
        observer: RunObserver | None = None,
        lab_mode: LabMode | None = None,
        track: Track = RESPONSE,
        outage_override: OutageOverride | None = None,
    ) -> None:
        self.case = case
        self.outage_override = outage_override
        self.plan = plan
        self.ctx_factory = with_case(ctx_factory, case)
        self.gate = gate
        self.max_workers = max(1, max_workers)
        self.retry = retry or RetryPolicy()
        self.observer = observer
        self.lab_mode = lab_mode
        self.store = StateStore(case, track)
        with case.writer(f"record plan {plan.digest()[:12]}"):
            self.state = self._open_state()
        self._order_lock = threading.Lock()
        self._order = 0

    def _open_state(self) -> RunState:
        """Continue this plan's state if the case has one; refuse to replace another plan with effects."""
        case_id = self.case.load().id
        if not self.store.exists():
            return self.store.record_plan(self.plan, case_id)
        state = self.store.load()
        if state.plan_digest == self.plan.digest():
            return state
        if self.store.track.accumulates:
            self.plan, kept = merge_plans(state, self.plan, self._outstanding)
            return (
                state
                if state.plan_digest == self.plan.digest()
                else self.store.record_plan(self.plan, case_id, kept)
            )
        if any(self._outstanding(r) for r in state.steps.values()):
            raise RefusedError(
                f"case {case_id} has applied steps of an earlier plan: run `eksir resume {case_id}` to "
                f"finish it or `eksir rollback {case_id}` to undo it first"
            )
        return self.store.record_plan(self.plan, case_id)

    def _outstanding(self, record: StepRecord) -> bool:
        """A change of the earlier plan that is still in effect and could be undone (rolled-back steps and
        irreversible evidence such as snapshots do not hold a new plan back)."""
        if record.status is StepStatus.ROLLED_BACK or not (record.status in _HAS_EFFECT or record.applied):
            return False
        try:
            return get_action(record.action_id).spec.reversible
        except KeyError:
            return True

    # ---------------------------------------------------------------- scheduling
    def run(self, retry_unfinished: bool = False, *, wait: bool = False) -> RunState:
        """Run every runnable step; `retry_unfinished` (resume) re-asks skipped/blocked/failed steps.

        Holds the case's writer lease throughout (exit 12 while another process holds it, or queue with
        `wait`) and re-reads the state under it, so a second runner never re-applies what the first did.
        """
        with self.case.writer(f"run plan {self.plan.digest()[:12]}", wait=wait):
            self.state = self._open_state()
            with self.store.flushed():
                return self._run(retry_unfinished)

    def _run(self, retry_unfinished: bool) -> RunState:
        if retry_unfinished:
            self._reset_unfinished()
        if self.observer:
            self.observer.run_started(self.state)
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="eksir-step") as pool:
            while True:
                self._block_unreachable(set(running.values()))
                for step in self._ready(set(running.values())):
                    running[pool.submit(self._execute, step)] = step.id
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    future.result()
                self._phases_finished()
        self._phases_finished()
        if self.observer:
            self.observer.run_finished(self.state)
        return self.state

    def _ready(self, running: set[str]) -> list[PlanStep]:
        steps = self.state.steps
        return [
            step
            for step in self.plan.order()
            if step.id not in running
            and steps[step.id].status not in TERMINAL
            and (
                all(dependency_met(steps[d].status, self.lab_mode is not None) for d in step.depends_on)
                or waived_deps(step, self.state, self.lab_mode is not None)
            )
        ]

    def _block_unreachable(self, running: set[str]) -> None:
        for step in self.plan.order():
            record = self.state.steps[step.id]
            if step.id in running or record.status is not StepStatus.PENDING:
                continue
            lab = self.lab_mode is not None
            dead = [d for d in step.depends_on if dependency_dead(self.state.steps[d].status, lab)]
            if dead and not waivable_now(step, self.state, lab):
                detail = ", ".join(f"{d} is {self.state.steps[d].status.value}" for d in dead)
                self._transition(record, status=StepStatus.BLOCKED, detail=f"blocked: {detail}")
                if self.observer:
                    self.observer.step_finished(step, self.state.steps[step.id], self.state)

    def _reset_unfinished(self) -> None:
        for record in list(self.state.steps.values()):
            if record.status in (StepStatus.SKIPPED, StepStatus.BLOCKED) or (
                record.status is StepStatus.FAILED and not record.applied
            ):
                reset = {"fallback_approval": None, "outage_override": None, "error_kind": None}
                self._transition(
                    record, status=StepStatus.PENDING, detail="reset for resume", error=None, **reset
                )
            elif (
                record.status in (StepStatus.FAILED, StepStatus.UNAVAILABLE_IN_LAB, StepStatus.NOT_EFFECTIVE)
                and record.applied
            ):
                self._transition(record, status=StepStatus.APPLIED, detail="re-verify on resume")
            elif record.status is StepStatus.UNAVAILABLE_IN_LAB:
                self._transition(record, status=StepStatus.PENDING, detail="reset for resume", error=None)

    def _phases_finished(self) -> None:
        for phase in dict.fromkeys(step.phase.value for step in self.plan.steps):
            members = [s for s in self.plan.steps if s.phase.value == phase]
            done = all(self.state.steps[s.id].status in TERMINAL for s in members)
            if done and phase not in self.state.notified_phases:
                self.state.notified_phases.append(phase)
                self.store.event(
                    self.state, "phase.finished", {"phase": phase, "counts": self._counts(members)}
                )
                if self.observer:
                    self.observer.phase_finished(phase, self.state)

    def _counts(self, steps: list[PlanStep]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in steps:
            status = self.state.steps[step.id].status.value
            counts[status] = counts.get(status, 0) + 1
        return counts

    # ---------------------------------------------------------------- one step
    def _execute(self, step: PlanStep) -> None:
        """Drive one step to a terminal state; never raises (one bad step must not stop the others)."""
        try:
            self._drive(step)
        except _StepFailed:
            pass
        except Exception as exc:  # an action bug is recorded as that step's failure, not a crash
            log.exception("case %s step %s: internal error", self.state.case_id, step.id)
            with suppress(_StepFailed):  # recorded as the step's failure; the run goes on
                self._fail(step, f"internal error: {exc.__class__.__name__}: {exc}", "internal")
        if self.observer:
            self.observer.step_finished(step, self.state.steps[step.id], self.state)

    def _drive(self, step: PlanStep) -> None:
        action, params = self._load(step)
        ctx = self.ctx_factory()
        status = self.state.steps[step.id].status
        if status is StepStatus.PENDING:
            self._note_ran_without(step)
        if status not in (StepStatus.APPLYING, StepStatus.APPLIED):
            self._guard_outage(step)
        if status is StepStatus.APPLYING:
            if not self._resume_applying(step, action, params, ctx):
                return
        elif status is not StepStatus.APPLIED:
            # Always the current gate, also for a step approved before a crash: `resume --approve none` must
            # apply nothing, whatever an earlier run was allowed to do.
            check = self._check(step, action, params, ctx)
            if not self._approve(step, action, params, ctx, check):
                return
            self._apply(step, action, params, ctx, resumed=False)
        self._verify(step, action, params, ctx)

    def _note_ran_without(self, step: PlanStep) -> None:
        """Lab mode: name, in the step's record and the log, each dependency it runs without."""
        waived = {
            d: self.state.steps[d].lab_reason or "unavailable in the lab"
            for d in step.depends_on
            if self.state.steps[d].status is StepStatus.UNAVAILABLE_IN_LAB
        }
        if not waived:
            return
        self.store.event(
            self.state, "step.ran-without", {"step_id": step.id, "detail": ran_without_detail(waived)}
        )
        self.state.steps[step.id] = self.state.steps[step.id].model_copy(update={"ran_without": waived})

    def _guard_outage(self, step: PlanStep) -> None:
        """A step the outage check blocks runs only under an override that covers it (recorded, with the
        approver and reason); otherwise it ends `blocked` naming the items and the option."""
        if not step.outage_blocks:
            return
        override = self.outage_override
        if override is None or not override.covers(step.id):
            record = self.state.steps[step.id]
            detail = outage_block_detail(step)
            self._transition(record, status=StepStatus.BLOCKED, detail=detail, error_kind=OUTAGE_BLOCKED)
            log.warning("case %s step %s: %s", self.state.case_id, step.id, detail)
            raise _StepFailed
        approval = override.approval()
        data = {"step_id": step.id, "approver": approval.approver, "reason": approval.reason}
        self.store.event(self.state, "step.outage-overridden", {**data, "items": list(step.outage_blocks)})
        self.state.steps[step.id] = self.state.steps[step.id].model_copy(update={"outage_override": approval})

    def _decide(self, request: ApprovalRequest) -> Approval:
        """The gate's answer; for a step whose fallback applies (only the dependencies it may run without
        are dead), the answer to the fallback's own approval id, recorded apart; declined, the step ends
        `blocked` saying what stays open."""
        step = request.step
        waived = waived_deps(step, self.state, self.lab_mode is not None)
        if not waived or step.fallback is None:
            return self.gate.decide(request)
        asked = ApprovalRequest(
            fallback_request_step(step, waived, self.state), request.spec, request.check, request.change
        )
        approval = self.gate.decide(asked)
        data = {"step_id": step.id, "approval_id": step.fallback.approval_id, "without": waived}
        self.store.event(self.state, "step.fallback", {**data, "approval": approval.model_dump(mode="json")})
        record = self.state.steps[step.id].model_copy(update={"fallback_approval": approval})
        if not approval.approved:
            detail = declined_detail(step, waived, self.state, approval.reason)
            self._transition(record, status=StepStatus.BLOCKED, detail=detail, error_kind=FALLBACK_DECLINED)
            log.warning("case %s step %s: %s", self.state.case_id, step.id, detail)
            raise _StepFailed
        self.state.steps[step.id] = record
        how = f"{step.fallback.approval_id} ({approval.how})"
        return approval.model_copy(update={"how": how})

    def _load(self, step: PlanStep) -> tuple[Action[Any], ActionParams]:
        try:
            action = get_action(step.action_id)
        except KeyError:
            self._unavailable(step)
        try:
            params = action.params_type.model_validate(step.params)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            self._fail(step, f"invalid parameters for {step.action_id}: {problems}", "bad-params")
        return action, params

    def _unavailable(self, step: PlanStep) -> NoReturn:
        """A planned action this version does not ship: skipped and said so, never a crash or a failure."""
        message = f"{step.action_id}: not available in this version"
        record = self.state.steps[step.id]
        self._transition(record, status=StepStatus.SKIPPED, detail=message, error_kind="not-available")
        log.warning("case %s step %s skipped: %s", self.state.case_id, step.id, message)
        raise _StepFailed

    def _check(
        self, step: PlanStep, action: Action[Any], params: ActionParams, ctx: ActionContext
    ) -> CheckOutcome:
        outcome: CheckOutcome = self._call(step, "check", lambda: action.check(ctx, params))
        status = StepStatus.CHECKED if outcome.ok else StepStatus.FAILED
        detail = outcome.detail if outcome.ok else f"precondition failed: {outcome.detail}"
        record = self.state.steps[step.id]
        if not outcome.ok:
            self._record_failure(step, detail=detail, check=asdict(outcome))
            raise _StepFailed
        self._transition(record, status=status, detail=detail, check=asdict(outcome))
        return outcome

    def _approve(
        self,
        step: PlanStep,
        action: Action[Any],
        params: ActionParams,
        ctx: ActionContext,
        check: CheckOutcome,
        *,
        declined_note: str = "",
    ) -> bool:
        change = self._call(step, "plan", lambda: action.plan(ctx, params))
        approval = self._decide(ApprovalRequest(step=step, spec=action.spec, check=check, change=change))
        record = self.state.steps[step.id]
        status = StepStatus.APPROVED if approval.approved else StepStatus.SKIPPED
        detail = (
            f"approved by {approval.approver} ({approval.how})"
            if approval.approved
            else declined_note + approval.reason
        )
        self._transition(record, status=status, detail=detail, approval=approval, planned=asdict(change))
        return approval.approved

    def _apply(
        self, step: PlanStep, action: Action[Any], params: ActionParams, ctx: ActionContext, resumed: bool
    ) -> None:
        current = self.state.steps[step.id]
        record = self._transition(
            current, status=StepStatus.APPLYING, detail="applying", apply_calls=current.apply_calls + 1
        )
        applied = self._call(step, "apply", lambda: action.apply(ctx, params))
        self._transition(
            record,
            status=StepStatus.APPLIED,
            detail="applied (resumed)" if resumed else "applied",
            applied=dict(applied),
            applied_order=self._next_order(),
            resumed=resumed or record.resumed,
        )

    def _resume_applying(
        self, step: PlanStep, action: Action[Any], params: ActionParams, ctx: ActionContext
    ) -> bool:
        """A previous process died after starting apply: let `check` say whether the change is in place.

        The idempotent `apply` runs once more, because its return value (what rollback needs) was lost with
        the process; when check says the change is already there, that call changes nothing. It runs only if
        the current gate approves it (the earlier run's approval does not carry over); False when declined.
        """
        outcome = self._call(step, "check", lambda: action.check(ctx, params))
        decision = "already applied: re-apply is a no-op" if outcome.already_applied else "not applied: apply"
        self.store.event(self.state, "step.resume-decision", {"step_id": step.id, "decision": decision})
        note = f"interrupted while applying ({decision}); not re-applied: "
        if not self._approve(step, action, params, ctx, outcome, declined_note=note):
            return False
        record = self.state.steps[step.id].model_copy(update={"resumed": True})
        self.state.steps[step.id] = record
        self._apply(step, action, params, ctx, resumed=True)
        return True

    def _verify(self, step: PlanStep, action: Action[Any], params: ActionParams, ctx: ActionContext) -> None:
        applied = self.state.steps[step.id].applied or {}
        for attempt in range(1, self.retry.verify_attempts + 1):
            outcome = self._call(step, "verify", lambda: action.verify(ctx, params, applied))
            if outcome.ok:
                self._verified(step, outcome)
                return
            if attempt < self.retry.verify_attempts:
                self.store.event(
                    self.state, "step.verify-pending", {"step_id": step.id, "detail": outcome.detail}
                )
                time.sleep(self.retry.delay(attempt))
        self._fail(step, f"verification failed: {outcome.detail}", "verify", verify=asdict(outcome))

    def _verified(self, step: PlanStep, outcome: VerifyOutcome) -> None:
        """In place: verified, or `not-effective` with the reason when verify says it contains nothing."""
        record = self.state.steps[step.id]
        if outcome.effective:
            self._transition(
                record, status=StepStatus.VERIFIED, detail=outcome.detail, verify=asdict(outcome)
            )
            return
        detail = f"applied but not effective: {outcome.not_effective or outcome.detail}"
        self._transition(record, status=StepStatus.NOT_EFFECTIVE, detail=detail, verify=asdict(outcome))
        log.warning("case %s step %s: %s", self.state.case_id, step.id, detail)

    # ---------------------------------------------------------------- helpers
    def _call(self, step: PlanStep, what: str, fn: Callable[[], Any]) -> Any:
        def on_retry(attempt: int, exc: TemporaryError, wait_s: float) -> None:
            self.store.event(
                self.state,
                "step.retry",
                {
                    "step_id": step.id,
                    "call": what,
                    "attempt": attempt,
                    "error": exc.message,
                    "wait_s": wait_s,
                },
            )

        try:
            return self.retry.call(fn, on_retry)
        except PermissionDeniedError as exc:
            self._fail(step, f"{what}: {exc.message}", "permission-denied")
        except TemporaryError as exc:
            self._fail(
                step, f"{what}: gave up after {self.retry.attempts} attempts: {exc.message}", "temporary"
            )
        except NotFoundError as exc:
            self._fail(step, f"{what}: {exc.message}", "not-found")
        except EksirError as exc:
            self._fail(step, f"{what}: {exc.message}", exc.__class__.__name__)

    def _fail(self, step: PlanStep, message: str, kind: str, **extra: Any) -> NoReturn:
        self._record_failure(step, detail=message, error=message, error_kind=kind, **extra)
        raise _StepFailed

    def _record_failure(self, step: PlanStep, detail: str, **extra: Any) -> None:
        """Record the step as failed, or in lab mode as unavailable-in-lab when the lab cannot perform it."""
        record = self.state.steps[step.id]
        reason = self.lab_mode.reason(step.action_id) if self.lab_mode else None
        if reason is not None:
            lab_detail = unavailable_detail(reason, detail)
            status = StepStatus.UNAVAILABLE_IN_LAB
            self._transition(record, status=status, detail=lab_detail, lab_reason=reason, **extra)
            log.warning("case %s step %s: %s", self.state.case_id, step.id, lab_detail)
            return
        self._transition(record, status=StepStatus.FAILED, detail=detail, **extra)
        log.error(
            "case %s phase %s step %s failed: %s", self.state.case_id, step.phase.value, step.id, detail
        )
        self._notify_failed(step)

    def _notify_failed(self, step: PlanStep) -> None:
        if self.observer:
            self.observer.step_failed(step, self.state.steps[step.id], self.state)

    def _next_order(self) -> int:
        with self._order_lock:
            self._order = max(self._order, *(r.applied_order or 0 for r in self.state.steps.values())) + 1
            return self._order

    def _transition(self, record: StepRecord, **update: Any) -> StepRecord:
        return self.store.transition(self.state, record.model_copy(update=update))

"""Undo applied steps, newest first, from the recorded applied data; each undo is recorded and verified.

Why newest first: later steps were built on earlier ones (a node is isolated only after its capture, a pod
orphaned only after it is isolated), so undoing in reverse never leaves a half state the plan never had.
Why verify: a rollback is itself a production change; it is done only when reading the state back shows the
effect is gone (the action's `verify` no longer holds, or the thing it checks no longer exists).
"""

from __future__ import annotations

import logging
from typing import Any

from eksir.actions.base import ActionSpec
from eksir.actions.registry import get_action
from eksir.engine.retry import RetryPolicy
from eksir.engine.runner import ContextFactory, with_case
from eksir.engine.state import RunState, StateStore, StepRecord, StepStatus
from eksir.engine.tracks import RESPONSE, Track
from eksir.errors import EksirError, NotFoundError, RefusedError
from eksir.store.case_store import CaseHandle

log = logging.getLogger("eksir.engine")
ROLLBACK_ELIGIBLE = frozenset(
    {
        StepStatus.APPLIED,
        StepStatus.VERIFIED,
        StepStatus.NOT_EFFECTIVE,
        StepStatus.FAILED,
        StepStatus.ROLLING_BACK,
        StepStatus.ROLLBACK_FAILED,
        StepStatus.UNAVAILABLE_IN_LAB,
    }
)


def rollback_targets(state: RunState, step_id: str | None = None) -> list[StepRecord]:
    """Records that can be undone, newest application first; one named step if `step_id` is given."""
    eligible = [r for r in state.steps.values() if r.status in ROLLBACK_ELIGIBLE and r.applied is not None]
    eligible.sort(key=lambda r: r.applied_order or 0, reverse=True)
    if step_id is None:
        return eligible
    record = state.record(step_id)
    if record not in eligible:
        raise RefusedError(
            f"step {step_id} is {record.status.value}: there is no applied change to roll back"
        )
    return [record]


def rollback(
    case: CaseHandle,
    ctx_factory: ContextFactory,
    step_id: str | None = None,
    retry: RetryPolicy | None = None,
    track: Track = RESPONSE,
) -> RunState:
    """Roll back one step or every applied step of `track`; what cannot be undone is recorded, not skipped
    silently.

    Holds the case's writer lease (exit 12 while another process writes it) and reads the state under it.
    """
    with case.writer(f"roll back ({track.name})"):
        return _rollback(case, ctx_factory, step_id, retry, track)


def _rollback(
    case: CaseHandle,
    ctx_factory: ContextFactory,
    step_id: str | None,
    retry: RetryPolicy | None,
    track: Track,
) -> RunState:
    ctx_factory = with_case(ctx_factory, case)
    store = StateStore(case, track)
    state = store.load()
    policy = retry or RetryPolicy()
    targets = rollback_targets(state, step_id)
    kept = [r.step_id for r in targets if step_id is None and not _reversible(state, r)]
    targets = [r for r in targets if r.step_id not in kept]
    store.event(state, "rollback.started", {"steps": [r.step_id for r in targets], "kept": kept})
    with store.flushed():
        for record in targets:
            _rollback_one(store, state, record, ctx_factory, policy)
    store.event(state, "rollback.finished", {"counts": state.counts()})
    return state


_READ_IAM_VERBS = ("Describe", "List", "Get", "BatchGet", "Lookup", "StartQuery", "StopQuery")
_READ_RBAC_VERBS = frozenset({"get", "list", "watch"})
_REVIEWS = frozenset({"subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews"})


def changes_nothing(spec: ActionSpec) -> bool:
    """True when every permission the action declares only reads (queries and access reviews included):
    such a step (a worklist, an audit query) has no effect to undo, so rolling everything back skips it."""
    iam_reads = all(a.split(":", 1)[-1].startswith(_READ_IAM_VERBS) for a in spec.iam_actions)
    rbac_reads = all(
        set(rule.verbs) <= _READ_RBAC_VERBS
        or (set(rule.verbs) == {"create"} and set(rule.resources) <= _REVIEWS)
        for rule in spec.rbac
    )
    return iam_reads and rbac_reads


def _reversible(state: RunState, record: StepRecord) -> bool:
    """False for steps with nothing to undo when everything is rolled back: actions that declare themselves
    irreversible (evidence such as snapshots is kept) and read-only ones. Naming such a step with --step
    still runs it, so the responder gets the action's own answer."""
    try:
        spec = get_action(state.plan.step(record.step_id).action_id).spec
    except KeyError:
        return True  # reported by _rollback_one as "cannot load"
    return spec.reversible and not changes_nothing(spec)


def _rollback_one(
    store: StateStore, state: RunState, record: StepRecord, ctx_factory: ContextFactory, policy: RetryPolicy
) -> None:
    step = state.plan.step(record.step_id)
    try:
        action = get_action(step.action_id)
        params = action.params_type.model_validate(step.params)
    except (KeyError, ValueError) as exc:
        _failed(store, state, record, f"cannot load {step.action_id}: {exc}")
        return
    if not action.spec.reversible:
        _failed(store, state, record, f"{step.action_id} is not reversible; undo it by hand")
        return
    applied: dict[str, Any] = record.applied or {}
    record = store.transition(state, record.model_copy(update={"status": StepStatus.ROLLING_BACK}))
    ctx = ctx_factory()
    try:
        policy.call(lambda: action.rollback(ctx, params, applied))
        outcome = policy.call(lambda: action.verify(ctx, params, applied))
        still_there, detail = outcome.ok, outcome.detail
    except NotFoundError as exc:
        still_there, detail = False, f"gone: {exc.message}"
    except EksirError as exc:
        _failed(store, state, record, exc.message)
        return
    if still_there:
        _failed(store, state, record, f"the change is still in effect after rollback: {detail}")
        return
    update = {"status": StepStatus.ROLLED_BACK, "detail": "rolled back", "rollback": {"verified": detail}}
    store.transition(state, record.model_copy(update=update))


def _failed(store: StateStore, state: RunState, record: StepRecord, message: str) -> None:
    log.error("case %s step %s rollback failed: %s", state.case_id, record.step_id, message)
    update = {"status": StepStatus.ROLLBACK_FAILED, "detail": message, "rollback": {"error": message}}
    store.transition(state, record.model_copy(update=update))

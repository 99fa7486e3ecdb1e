"""Step records and their persistence: every transition is in the case log before the next side effect, and
in `plan-state.json` then too (a case folder) or at the latest when the run ends (a shared S3 case).

Why two places: `events.jsonl` is append-only and hash-chained (the custody record, and the source of truth),
while `plan-state.json` is the current state a person or `eksir status` reads at a glance. The state file
remembers the sequence number of the last event it includes; on load, later `step.*` events are replayed
onto it, so a process killed between the two writes loses nothing.

Why a shared case writes it less often: there every version of the state file is one more object and one
more logged event in S3 (two conditional PUTs), some 60 per response against about 60 step events: most of
a fleet worker's S3 traffic. A shared case's state file is rewritten when `STATE_EVERY_S` has passed since
the last write and when the run ends (`flush`); in between, `load` replays the step events as it always did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eksir.engine.lab_mode import ran_without_detail
from eksir.engine.tracks import RESPONSE, Track
from eksir.errors import CaseInvalidError, EksirError, NotFoundError
from eksir.playbooks.plan import Plan
from eksir.store.case_store import CaseHandle

STATE_FILE = RESPONSE.state_file
PLAN_FILE = RESPONSE.plan_file
STEP_EVENT_PREFIX = "step."
STATE_EVERY_S = 10.0
"""A shared (S3) case's state file is rewritten at most this often during a run, and when it ends."""


class StepStatus(StrEnum):
    PENDING = "pending"
    CHECKED = "checked"
    APPROVED = "approved"
    SKIPPED = "skipped"
    APPLYING = "applying"
    APPLIED = "applied"
    VERIFIED = "verified"
    FAILED = "failed"
    BLOCKED = "blocked"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    UNAVAILABLE_IN_LAB = "unavailable-in-lab"
    """Lab mode only: the lab cannot perform this step; neither a failure nor verified (DESIGN.md)."""
    NOT_EFFECTIVE = "not-effective"
    """Applied and read back, but it does not contain anything (verify said `effective=False`, with the
    reason): final, never green, rolled back like any change in effect, and a met dependency (what follows
    must still run: node isolation becomes the primary control when pod isolation is not effective)."""


TERMINAL: frozenset[StepStatus] = frozenset(
    {
        StepStatus.VERIFIED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.BLOCKED,
        StepStatus.ROLLED_BACK,
        StepStatus.ROLLBACK_FAILED,
        StepStatus.UNAVAILABLE_IN_LAB,
        StepStatus.NOT_EFFECTIVE,
    }
)
"""A run is over when every step is in one of these."""
_DEAD_ENDS = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.BLOCKED, StepStatus.ROLLED_BACK})


def dependency_met(status: StepStatus, lab_mode: bool) -> bool:
    """A dependency counts once verified or applied-but-not-effective (the change is in place; what depends
    on it must still run); in lab mode also when the lab cannot perform it."""
    return status in (StepStatus.VERIFIED, StepStatus.NOT_EFFECTIVE) or (
        lab_mode and status is StepStatus.UNAVAILABLE_IN_LAB
    )


def dependency_dead(status: StepStatus, lab_mode: bool) -> bool:
    """A dependency that will never count; outside lab mode a lab-unavailable step blocks like a failure."""
    return status in _DEAD_ENDS or (status is StepStatus.UNAVAILABLE_IN_LAB and not lab_mode)


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    approved: bool
    approver: str
    at: datetime
    how: str
    reason: str = ""


class StepRecord(BaseModel):
    """Everything the engine knows about one step; replaced (never mutated) on each transition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    action_id: str
    status: StepStatus = StepStatus.PENDING
    detail: str = ""
    check: dict[str, Any] | None = None
    planned: dict[str, Any] | None = None
    approval: Approval | None = None
    applied: dict[str, Any] | None = None
    applied_order: int | None = None
    apply_calls: int = 0
    verify: dict[str, Any] | None = None
    error: str | None = None
    error_kind: str | None = None
    resumed: bool = False
    rollback: dict[str, Any] | None = None
    lab_reason: str | None = None
    """Why the lab cannot perform this step (status `unavailable-in-lab`)."""
    ran_without: dict[str, str] = Field(default_factory=dict)
    """Lab mode: dependencies unavailable in the lab (step id -> reason) that this step ran without."""
    outage_override: Approval | None = None
    """Who accepted the outage the check predicted for this step, and why (`--override-outage`)."""
    fallback_approval: Approval | None = None
    """The answer to the step's fallback choice (e.g. isolate without volatile evidence), when asked."""
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def approver(self) -> str | None:
        """Who approved the step (None when it was not approved, or not asked yet)."""
        return self.approval.approver if self.approval and self.approval.approved else None

    def full_detail(self) -> str:
        """The detail, plus (lab mode) the unavailable dependencies the step ran without."""
        if not self.ran_without:
            return self.detail
        return f"{self.detail}; {ran_without_detail(self.ran_without)}"


class RunState(BaseModel):
    """The materialised view written to `plan-state.json`."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    plan_digest: str
    plan: Plan
    steps: dict[str, StepRecord]
    last_seq: int = 0
    notified_phases: list[str] = Field(default_factory=list)

    def record(self, step_id: str) -> StepRecord:
        try:
            return self.steps[step_id]
        except KeyError:
            raise NotFoundError(f"the plan has no step {step_id!r}") from None

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for rec in self.steps.values():
            result[rec.status.value] = result.get(rec.status.value, 0) + 1
        return result


def fresh_state(case_id: str, plan: Plan) -> RunState:
    records = {s.id: StepRecord(step_id=s.id, action_id=s.action_id) for s in plan.steps}
    return RunState(case_id=case_id, plan_digest=plan.digest(), plan=plan, steps=records)


class StateStore:
    """Persists transitions of one track (engine/tracks.py) of one case; thread-safe (the runner's workers
    share one store)."""

    def __init__(self, case: CaseHandle, track: Track = RESPONSE) -> None:
        self.case = case
        self.track = track
        self._lock = threading.RLock()
        self._coalesce = case.remote is not None
        self._unwritten: RunState | None = None
        self._written_at = 0.0
        self._dumped: dict[int, tuple[BaseModel, dict[str, Any]]] = {}
        """JSON dumps of the plan and of step records, by object: both are frozen, and the state file is
        rewritten on every transition, so dumping only what changed keeps that cost flat as a plan grows."""

    @property
    def path(self) -> Any:
        return self.case.path / self.track.state_file

    def exists(self) -> bool:
        return bool(self.path.is_file())

    def record_plan(self, plan: Plan, case_id: str, kept: dict[str, StepRecord] | None = None) -> RunState:
        """Write the plan document and a fresh state; the plan's digest ties later events to it.

        `kept`: records carried over from the track's previous plan (an accumulating track), by step id.
        """
        body = orjson.dumps(plan.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
        self.case.write_document(self.track.plan_file, body, self.track.plan_kind)
        state = fresh_state(case_id, plan)
        state.steps.update(kept or {})
        data: dict[str, Any] = {"plan_digest": state.plan_digest, "steps": len(plan.steps)}
        if kept:
            data["kept"] = sorted(kept)
        event = self.case.append(self.track.plan_recorded_event, data)
        state.last_seq = event.seq
        self._write(state)
        return state

    def load(self) -> RunState:
        """Read plan-state.json and replay any later step events; raises NotFoundError/CaseInvalidError."""
        with self._lock:
            try:
                state = RunState.model_validate(orjson.loads(self.path.read_bytes()))
            except FileNotFoundError:
                raise NotFoundError(self._no_plan_message()) from None
            except (orjson.JSONDecodeError, ValidationError) as exc:
                raise CaseInvalidError(f"{self.path} is not a valid plan state") from exc
            replayed = False
            for event in self.case.log.events():
                if event.seq <= state.last_seq or not event.type.startswith(STEP_EVENT_PREFIX):
                    continue
                if event.data.get("plan_digest") != state.plan_digest or "record" not in event.data:
                    continue
                record = StepRecord.model_validate(event.data["record"])
                state.steps[record.step_id] = record
                state.last_seq = event.seq
                replayed = True
            if replayed:
                self._write(state)
            return state

    def transition(
        self, state: RunState, record: StepRecord, note: dict[str, Any] | None = None
    ) -> StepRecord:
        """Log the new record (hash-chained), then rewrite the state file; only then may work continue."""
        with self._lock:
            record = record.model_copy(update={"updated_at": datetime.now(UTC)})
            data: dict[str, Any] = {
                "step_id": record.step_id,
                "status": record.status.value,
                "plan_digest": state.plan_digest,
                "record": record.model_dump(mode="json"),
            }
            if note:
                data["note"] = note
            self._remember(record, data["record"])
            event = self.case.append(STEP_EVENT_PREFIX + record.status.value, data)
            state.steps[record.step_id] = record
            state.last_seq = event.seq
            if self._coalesce and time.monotonic() - self._written_at < STATE_EVERY_S:
                self._unwritten = state
            else:
                self._write(state)
            return record

    def flush(self) -> None:
        """Write the state file a shared case held back (a run or rollback ends); nothing otherwise."""
        with self._lock:
            if self._unwritten is not None:
                self._write(self._unwritten)

    @contextmanager
    def flushed(self) -> Iterator[None]:
        """Run the block, then `flush`; when the block fails, flush as far as possible and re-raise its error
        (the step events already hold every transition: a failed flush must not hide the news)."""
        try:
            yield
        except BaseException:
            with suppress(EksirError):
                self.flush()
            raise
        self.flush()

    def event(self, state: RunState, event_type: str, data: dict[str, Any]) -> None:
        """Log a non-transition event (retry, resume decision, notification) and keep last_seq current."""
        with self._lock:
            event = self.case.append(event_type, {"plan_digest": state.plan_digest, **data})
            state.last_seq = event.seq
            self._write(state)

    def _write(self, state: RunState) -> None:
        """Rewrite the state file atomically and log its hash, so `eksir case verify` covers it too."""
        body = orjson.dumps(self._document(state), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        self.case.write_document(self.track.state_file, body, self.track.state_kind)
        self._unwritten, self._written_at = None, time.monotonic()

    def _document(self, state: RunState) -> dict[str, Any]:
        """`state.model_dump(mode="json")`, with the plan and each unchanged step record dumped only once."""
        document = state.model_dump(mode="json", exclude={"plan", "steps"})
        document["plan"] = self._dump(state.plan)
        document["steps"] = {step_id: self._dump(record) for step_id, record in state.steps.items()}
        live = {id(state.plan), *(id(r) for r in state.steps.values())}
        for gone in set(self._dumped) - live:  # replaced records: drop them, and their ids may be reused
            del self._dumped[gone]
        return document

    def _dump(self, model: BaseModel) -> dict[str, Any]:
        cached = self._dumped.get(id(model))
        if cached is None or cached[0] is not model:
            return self._remember(model, model.model_dump(mode="json"))
        return cached[1]

    def _remember(self, model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
        self._dumped[id(model)] = (model, dumped)
        return dumped

    def _no_plan_message(self) -> str:
        name = self.case.path.name
        if self.track is RESPONSE:
            return f"case {name} has no plan yet (run `eksir respond`)"
        return f"case {name} has no {self.track.name} plan yet"

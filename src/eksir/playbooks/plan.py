"""The Plan: what a playbook decided to do, as data the engine can persist, show, resume and roll back.

A plan is built once (pure, from the finding and the online resolution), recorded in the case, and then
only read: the engine's progress lives beside it in the step records, never inside it. Steps name actions by
id and carry plain-JSON parameters, so a plan written by one process can be resumed by another that has the
same actions installed; the parameters are validated against the action's `params_type` when the step runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from eksir.actions.base import Phase
from eksir.models.resolution import OutageItem

PLAN_SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoteLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    BLOCKING = "blocking"


class PlanNote(_Frozen):
    """What the responder must know that is not a step: a gap in the resolution, a step left out, why."""

    subject: str
    message: str
    level: NoteLevel = NoteLevel.INFO


class Fallback(_Frozen):
    """A choice offered, as its own approval, when dependencies of the step end without being met.

    Why: node isolation waits for the volatile capture, and a failed capture must not leave the node on the
    network silently; the responder is asked "isolate now without volatile evidence?" with the trade-off,
    and that answer (approvable by `approval_id`) is recorded apart from the step's own approval.
    """

    approval_id: str
    without: tuple[str, ...]
    """The dependency step ids the step may run without (the capture and what only follows it)."""
    title: str
    trade_off: str
    declined_risk: str
    """What stays open when the choice is declined (recorded as the step's blocked detail)."""


_OPTIONAL_STEP_FIELDS = {"outage_blocks": (), "fallback": None}
"""Fields added after plans were first recorded: left out of the document while at their default, so the
digest of a plan recorded by an earlier version (and the resume that compares it) does not change."""


class PlanStep(_Frozen):
    """One action to run with its parameters; `depends_on` steps must be *verified* before it starts."""

    id: str
    action_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    requires_approval: bool = False
    phase: Phase
    rationale: str = ""
    approval_reasons: tuple[str, ...] = ()
    outage_blocks: tuple[str, ...] = ()
    """Blocking outage items (resolve/outage.py) naming this step: the engine blocks it until a run is
    given an explicit outage override with a reason (`--override-outage`)."""
    fallback: Fallback | None = None

    @model_serializer(mode="wrap")
    def _omit_new_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name, default in _OPTIONAL_STEP_FIELDS.items():
            if name in data and data[name] in (default, []):
                del data[name]
        return data


class Plan(_Frozen):
    """An ordered set of steps (a DAG by `depends_on`) plus the notes and outage items shown with it."""

    schema_version: int = PLAN_SCHEMA_VERSION
    playbook: str
    case_id: str | None = None
    finding_id: str
    cluster_name: str | None = None
    created_at: datetime
    steps: tuple[PlanStep, ...] = ()
    notes: tuple[PlanNote, ...] = ()
    outage: tuple[OutageItem, ...] = ()

    @model_validator(mode="after")
    def _check_graph(self) -> Plan:
        """Refuse duplicate ids, unknown dependencies and cycles: a bad graph must never reach the runner."""
        ids = [step.id for step in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("plan has duplicate step ids")
        known = set(ids)
        for step in self.steps:
            unknown = [dep for dep in step.depends_on if dep not in known]
            if unknown:
                raise ValueError(f"step {step.id} depends on unknown steps {unknown}")
        _topological(self.steps)
        return self

    def step(self, step_id: str) -> PlanStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def order(self) -> list[PlanStep]:
        """Steps in a dependency-respecting order (plan order among independent steps)."""
        return _topological(self.steps)

    def dependents(self, step_id: str) -> Iterator[PlanStep]:
        """Every step that depends on `step_id`, directly or through other steps."""
        seen: set[str] = set()
        frontier = [step_id]
        while frontier:
            current = frontier.pop()
            for step in self.steps:
                if current in step.depends_on and step.id not in seen:
                    seen.add(step.id)
                    frontier.append(step.id)
                    yield step

    def digest(self) -> str:
        """A content hash that identifies the plan (so a resume can tell it is continuing the same plan)."""
        body = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(body).hexdigest()


def _topological(steps: tuple[PlanStep, ...]) -> list[PlanStep]:
    placed: list[PlanStep] = []
    done: set[str] = set()
    remaining = list(steps)
    while remaining:
        ready = [s for s in remaining if all(dep in done for dep in s.depends_on)]
        if not ready:
            raise ValueError(f"plan has a dependency cycle among {[s.id for s in remaining]}")
        for step in ready:
            placed.append(step)
            done.add(step.id)
        remaining = [s for s in remaining if s.id not in done]
    return placed

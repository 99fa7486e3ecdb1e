"""What a queue message does to the cases: open or update the incident's case, run what policy allows.

One run per incident, however often GuardDuty repeats itself: `CaseStore.open_for_finding` maps the same
finding id (any count or updatedAt) to its case and records the repeat (`finding.received-again`), and a
finding about a pod an open case names joins that case (`case.joined`). The response runs under the case's
writer lease only while the case has no `serve.responded` event; a worker killed mid-run leaves its message
in the queue, and the next worker resumes the case from its record (`serve.started` without
`serve.responded`): steps found `applying` are checked by the engine, never blindly applied again.

A repeat of a closed case changes nothing (a closed case is frozen): it is recorded in the fleet log and
announced in the war room.

The seam for a shared store: `FleetSetup.store_factory` makes the CaseStore and `lock_factory` the case's
one-writer lease: a directory and its flock, or S3 and a DynamoDB lease (`case_store`, `case_lease`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksir.cli.finding_trust import gate_for_finding, guardduty_in, recorded_gate
from eksir.cli.respond_cmd import Access, _case_access, prepare_case
from eksir.cli.serve_gate import STOPPING, FleetGate
from eksir.engine import LabMode, Runner, RunState, StateStore, StepStatus
from eksir.engine.context import ContextFactory
from eksir.engine.observers import Observers
from eksir.errors import EksirError, RefusedError, TemporaryError
from eksir.models.case import CaseStatus
from eksir.models.finding import Finding
from eksir.notify.message import approvals_waiting, closed_repeat
from eksir.playbooks import PlaybookOptions
from eksir.policy import Decision, ResponsePolicy, decide, facts_of
from eksir.serve.intake import ContinueIntake, FindingIntake
from eksir.serve.records import CLOSED_REPEATS, FleetLog
from eksir.serve.worker import HandOverError
from eksir.store import CaseHandle, CaseStore, case_id_for
from eksir.store.frozen import ensure_open
from eksir.store.incident import IncidentIndex, finding_key
from eksir.store.lock import CaseLockedError
from eksir.store.repeats import record_at_head
from eksir.triage.case import finding_evidence, record_triage
from eksir.triage.config import TriageConfig

STARTED = "serve.started"
RESPONDED = "serve.responded"
CONTINUED = "serve.continued"
HANDED_OVER = "serve.handed-over"
QUICK_TRIES = 3
"""Appends a quick repeat tries, re-reading what other writers appended in between, before the full path."""
StoreFactory = Callable[[], CaseStore]
LockFactory = Callable[[CaseHandle, str], AbstractContextManager[object]]


def case_store(cases_dir: Path | str, actor: str, lock_table: str | None = None) -> StoreFactory:
    """The local cases directory (one machine; several worker processes share it through flock), or an
    `s3://` store (any number of machines; the case's writer lease is then a DynamoDB item).

    An S3 store is made once per worker thread, not per message: it holds a boto3 session and clients
    (0.1-0.5 s to make) whose creation is not thread-safe, and its bucket check is done once."""
    if not isinstance(cases_dir, str):
        return lambda: CaseStore(cases_dir, actor)
    stores = threading.local()

    def per_thread() -> CaseStore:
        store: CaseStore | None = getattr(stores, "store", None)
        if store is None:
            store = stores.store = CaseStore(cases_dir, actor, lock_table=lock_table)
        return store

    return per_thread


_THREAD_LEASES: dict[Path, threading.Lock] = {}
_THREAD_GUARD = threading.Lock()


@contextmanager
def case_lease(case: CaseHandle, command: str) -> Iterator[object]:
    """The case's writer lease (a flock for a directory store, a DynamoDB lease for an S3 store), plus a
    per-process mutex: both are re-entrant within a process, and two worker threads of one process must not
    both write one case."""
    with _THREAD_GUARD:
        mutex = _THREAD_LEASES.setdefault(case.path.resolve(), threading.Lock())
    if not mutex.acquire(blocking=False):
        raise CaseLockedError(f"case {case.path.name} is being written by another worker thread")
    try:
        with case.writer(command, wait=False) as lease:
            yield lease
    finally:
        mutex.release()


@dataclass
class FleetSetup:
    """Everything a worker needs to act on a case (built once by `eksir serve`)."""

    access: Access
    policy: ResponsePolicy
    options: PlaybookOptions
    triage_config: TriageConfig
    store_factory: StoreFactory
    lock_factory: LockFactory
    fleet_log: FleetLog
    actor: str
    trust_findings: bool = False
    lab_mode: LabMode | None = None
    max_workers: int = 4
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set by SIGTERM: the gate starts no new step (serve/worker.py shares the event)."""
    approve_hint: str = ""
    """Options the war room's approve command needs (e.g. `--cases-dir ... --queue-url ...`)."""
    notes: list[str] = field(default_factory=list)


def _has(case: CaseHandle, event_type: str) -> bool:
    return case.log.has_type(event_type)


def closed_case(store: CaseStore, finding: Finding) -> CaseHandle | None:
    """The closed case this finding repeats (same id, or a joined finding's case), if any."""
    joined = IncidentIndex(store.root).lookup("findings", finding_key(finding))
    for case_id in (case_id_for(finding), joined):
        if case_id is None:
            continue
        try:
            case = store.get(case_id)
        except EksirError:  # not found or unreadable: not a closed case
            continue
        if case.load().status is CaseStatus.CLOSED:
            return case
    return None


def _hand_over_if_stopping(case: CaseHandle, state: RunState, message_id: str) -> None:
    """A run cut short by SIGTERM (steps declined as `worker-stopping`) records no outcome: its message goes
    back to the queue and the next worker resumes the case, asking those steps again."""
    cut = [r.step_id for r in state.steps.values() if r.approval is not None and r.approval.how == STOPPING]
    if cut:
        case.append(HANDED_OVER, {"message_id": message_id, "steps_not_started": cut})
        raise HandOverError(
            f"case {state.case_id}: worker stopping, {len(cut)} step(s) left for the next worker"
        )


def _started_soon(case: CaseHandle) -> bool:
    """Whether a worker runs this case: its `serve.started` is there now or within a second (the holder may
    have just taken the lease)."""
    if _has(case, STARTED):
        return True
    time.sleep(1.0)
    return _has(case, STARTED)


class CaseHandler:
    """serve.worker.Handler: a finding opens/updates its case and runs the response once; a continuation
    resumes a case with its recorded approvals."""

    def __init__(self, setup: FleetSetup) -> None:
        self.setup = setup
        self._held: dict[str, CaseHandle] = {}
        """Finding key -> its case, for cases this process has seen respond: a repeat of one is recorded
        with one append on the case copy this process holds (`quick`), not a full re-open of the case."""
        self._responded: set[str] = set()
        """Cases this process has seen respond: a repeat for one is recorded without taking the case's
        lease (an outcome, once in the append-only log, stays there), which on an S3 store saves the
        DynamoDB acquire and release and a re-read of the case for every repeat."""
        self._guard = threading.Lock()

    def finding(self, intake: FindingIntake, message_id: str) -> str:
        outcomes = [self._one(f, intake.raw, message_id, len(intake.findings)) for f in intake.findings]
        return "processed" if "processed" in outcomes else outcomes[0]

    def quick(self, intake: FindingIntake, message_id: str) -> str | None:
        """A repeat of a finding whose case this process holds, recorded with one append on the head its
        copy knows (store/repeats.py): no case re-open, no lease (the response is over and recorded), no
        index read. When another writer appended meanwhile, the copy pulls what they wrote and the case is
        checked again (closed? repeat recorded already?) before the next try; after QUICK_TRIES, or for
        a closed case, the full path (`finding`) takes over. Returns None when it did not record."""
        if len(intake.findings) != 1:
            return None
        finding = intake.findings[0]
        with self._guard:
            case = self._held.get(finding_key(finding))
        if case is None:
            return None
        name = f"sqs:{message_id}"
        body, info = finding_evidence(finding, intake.raw, name, 1)
        for _ in range(QUICK_TRIES):
            try:
                ensure_open(case, "record the finding received again")
            except RefusedError:
                return None  # closed meanwhile: the full path records it in the fleet log and announces it
            if record_at_head(case, finding, body, name, info) is not None:
                return "repeats"
            if case.remote is not None:
                case.remote.refresh()
        return None

    def _hold(self, case: CaseHandle, finding: Finding) -> None:
        with self._guard:
            self._responded.add(case.path.name)
            self._held[finding_key(finding)] = case

    def _one(self, finding: Finding, raw: bytes, message_id: str, count: int) -> str:
        store = self.setup.store_factory()
        name = f"sqs:{message_id}"
        evidence, info = finding_evidence(finding, raw, name, count)
        try:
            case, created = store.open_for_finding(finding, evidence, name, info)
        except RefusedError:  # a closed case refuses the repeat (store/frozen.py), or the store refused
            closed = closed_case(store, finding)
            if closed is None:
                raise
            self._closed_repeat(closed, finding, message_id)
            return "repeats"
        if self._seen_respond(case.path.name):
            self._hold(case, finding)
            return "repeats"
        try:
            with self.setup.lock_factory(case, "eksir serve"):
                if _has(case, RESPONDED):
                    self._hold(case, finding)
                    return "repeats"
                self._respond(case, created, finding, message_id)
                self._hold(case, finding)
        except CaseLockedError:
            if _started_soon(case):
                return "repeats"  # another worker runs this case; its own message stays until it is done
            raise TemporaryError(f"case {case.path.name} is held by another writer; retried later") from None
        return "processed"

    def _seen_respond(self, case_id: str) -> bool:
        with self._guard:
            return case_id in self._responded

    def _respond(self, case: CaseHandle, created: bool, finding: Finding, message_id: str) -> None:
        setup = self.setup
        resuming = _has(case, STARTED) and StateStore(case).exists()
        case.append(STARTED, {"message_id": message_id, "resumed": resuming})  # first: repeats see it
        if not _has(case, "triage.completed"):
            _, verdict = record_triage(case, created, finding, setup.triage_config)
        else:
            from eksir.triage.verdict import triage_finding  # noqa: PLC0415

            verdict = triage_finding(finding, setup.triage_config)
        decision = decide(setup.policy, facts_of(finding, setup.policy, verdict.decision.value))
        if resuming:
            case_id, aws, kube = _case_access(case, setup.access)
            plan, war_room = StateStore(case).load().plan, setup.access.war_room(case, setup.access.aws())
        else:
            prepared = prepare_case(case, created, finding, setup.access, setup.options)
            case_id, aws, kube, plan, war_room = (
                prepared.case_id,
                prepared.aws,
                prepared.kube,
                prepared.plan,
                prepared.war_room,
            )
        gate, _check = gate_for_finding(
            case,
            finding,
            FleetGate(case, case_id, decision, setup.actor, setup.stopping),
            guardduty_in(setup.access.profile, setup.access.endpoint_url),
            setup.trust_findings,
        )
        runner = Runner(
            case,
            plan,
            ContextFactory(case_id, aws, kube, dry_run=False),
            gate,
            setup.max_workers,
            observer=Observers([war_room]),
            lab_mode=setup.lab_mode,
        )
        state = runner.run(retry_unfinished=resuming)
        _hand_over_if_stopping(case, state, message_id)
        self._record(case, state, decision, RESPONDED, war_room)

    def resume(self, intake: ContinueIntake, message_id: str) -> str:
        """Continue a case after `eksir approve`/`deny`: approved steps run, the rest keep waiting."""
        setup = self.setup
        case = setup.store_factory().get(intake.case_id)
        with setup.lock_factory(case, "eksir serve (continue)"):
            case_id, aws, kube = _case_access(case, setup.access)
            stored = StateStore(case).load()
            decision = Decision(setup.policy.default, matched=False)
            gate, _blocked = recorded_gate(
                case, FleetGate(case, case_id, decision, setup.actor, setup.stopping), setup.trust_findings
            )
            war_room = setup.access.war_room(case, setup.access.aws())
            runner = Runner(
                case,
                stored.plan,
                ContextFactory(case_id, aws, kube, dry_run=False),
                gate,
                setup.max_workers,
                observer=Observers([war_room]),
                lab_mode=setup.lab_mode,
            )
            state = runner.run(retry_unfinished=True)
            _hand_over_if_stopping(case, state, message_id)
            self._record(case, state, decision, CONTINUED, war_room, message_id=message_id)
        return "continued"

    def _record(
        self, case: CaseHandle, state: RunState, decision: Decision, event: str, war_room: Any, **extra: str
    ) -> None:
        waiting = [
            r.step_id
            for r in state.steps.values()
            if r.status is StepStatus.SKIPPED
            and r.approval is not None
            and r.approval.how == "awaiting-approval"
        ]
        counts: dict[str, int] = {}
        for record in state.steps.values():
            counts[record.status.value] = counts.get(record.status.value, 0) + 1
        case.append(
            event,
            {
                "rule": decision.rule.name,
                "notify": list(decision.rule.notify),
                "steps": counts,
                "waiting_for_approval": waiting,
                **extra,
            },
        )
        if war_room is not None and waiting:
            war_room.send(approvals_waiting(state.case_id, waiting, self.setup.approve_hint))

    def _closed_repeat(self, case: CaseHandle, finding: Finding, message_id: str) -> None:
        entry = {
            "case_id": case.path.name,
            "finding_id": finding.id,
            "message_id": message_id,
            "count": finding.count,
            "updated_at": str(finding.updated_at),
        }
        self.setup.fleet_log.append(CLOSED_REPEATS, entry)
        war_room = self.setup.access.war_room(case, self.setup.access.aws())
        if war_room is not None:
            war_room.send(closed_repeat(case.path.name, finding.id, finding.count))

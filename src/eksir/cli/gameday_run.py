"""The game day: every playbook part, end to end, against the local lab, in one call.

lab up -> triage -> plan -> respond (auto-approved: allowed only against the lab) -> hunt -> recover ->
prevention proof -> report, each phase timed. A phase that fails is recorded with its one-line error and the
day continues where the next phase still makes sense (nothing runs without a case). A phase whose runner
finished with a failed or blocked step is not `ok` either (cli/gameday_summary.py); the engine runs in
lab mode, so a step the lab cannot perform is `unavailable-in-lab` with its reason, never a failure. The lab
is always taken down at the end, on failure and on Ctrl-C too, because a forgotten etcd/kube-apiserver/moto is
exactly the kind of leftover a training exercise must not leave behind.

It lives in cli/ because it drives what the CLI drives (triage, anchoring, the runner) the way a responder's
commands would, one after the other; nothing below cli/ imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from eksir.cli.gameday_summary import (
    StepLine,
    counts,
    document_steps,
    engine_steps,
    hunt_highlights,
    problems,
    verdict_summary,
)
from eksir.errors import EksirError, RefusedError, StepFailedError
from eksir.lab import lab
from eksir.lab.processes import ProcState
from eksir.store.case_store import CaseHandle, CaseStore

Progress = Callable[[str], None]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
AUTO_APPROVED = frozenset({"respond", "recover", "prevention proof"})
"""Phases that change things without asking: each runs only after `require_lab` passes, right before it."""
CAPTURE_WAIT_S = 120.0
"""The lab node's capture takes seconds; this bounds a stuck one (per verify attempt), not a slow one."""
SIMULATED_CAPTURE_WAIT_S = 1.0
"""A simulated node runs no agent: nothing will ever be uploaded, so each verify attempt is kept short."""
LAB_TRUST_REASON = "lab: moto has no GuardDuty GetFindings (the game day passes --trust-finding-file itself)"


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    status: str = "skipped"
    detail: str = ""
    steps: list[StepLine] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in vars(self).items() if k != "steps"},
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass
class GameDay:
    """What happened: per-phase status and wall time, the case and where the report is."""

    scenario: str
    phases: list[Phase] = field(default_factory=list)
    case_id: str | None = None
    case_dir: str | None = None
    report: str | None = None
    lab_down: bool = False
    verdict: dict[str, Any] | None = None
    hunt: dict[str, Any] | None = None
    prevention: dict[str, Any] | None = None

    @property
    def failed(self) -> list[Phase]:
        return [p for p in self.phases if p.status == "failed"]

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        respond = self.phase("respond")
        return {
            "scenario": self.scenario,
            "clean": not self.failed and self.lab_down,
            "case": self.case_id,
            "case_dir": self.case_dir,
            "report": self.report,
            "lab_down": self.lab_down,
            "verdict": self.verdict,
            "containment": [s.to_json() for s in respond.steps] if respond else [],
            "hunt": self.hunt,
            "prevention": self.prevention,
            "phases": [p.to_json() for p in self.phases],
            "total_seconds": round(sum(p.seconds for p in self.phases), 2),
        }


def one_line(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, EksirError) else f"{type(exc).__name__}: {exc}"
    return (text.splitlines() or [""])[0][:300]


@dataclass
class _Day:
    result: GameDay
    progress: Progress
    state: lab.LabState | None = None
    case: CaseHandle | None = None
    finding: Any = None
    aws: Any = None
    kube: Any = None
    plan: Any = None

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        record = Phase(name)
        self.result.phases.append(record)
        self.progress(f"{name}...")
        start = time.monotonic()
        try:
            yield record
            record.status = "failed" if problems(record.steps) else "ok"
        except Exception as exc:  # a phase's failure is recorded; the day goes on where safe
            record.status, record.detail = "failed", one_line(exc)
        finally:
            record.seconds = round(time.monotonic() - start, 2)
            self.progress(f"{name}: {record.status} in {record.seconds:.1f}s {record.detail}".rstrip())


def require_lab(state: lab.LabState, lab_dir: Path, phase: str = "respond") -> None:
    """Auto-approval is for the lab only: the endpoints must be the lab's loopback servers, every one of its
    recorded processes running (one that died may have been replaced by something that is not the lab)."""
    hosts = {urlparse(state.aws_endpoint).hostname, urlparse(state.k8s_server).hostname}
    statuses = lab.process_status(lab_dir)
    stopped = sorted(s.record.name for s in statuses if s.state is not ProcState.RUNNING)
    if not hosts <= set(LOOPBACK) or not statuses or stopped:
        why = f" ({', '.join(stopped)} not running)" if stopped else ""
        raise RefusedError(
            f"auto-approval is only allowed against a running local lab{why}; refusing to {phase}"
        )


@contextmanager
def lab_environment(state: lab.LabState) -> Iterator[None]:
    """Point the AWS SDK at the lab for the duration (dummy credentials), restoring the environment after."""
    saved = {k: os.environ.get(k) for k in state.endpoint.env()}
    os.environ.update(state.endpoint.env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_gameday(scenario: str, lab_dir: Path, cases_dir: Path, progress: Progress | None = None) -> GameDay:
    """Run the whole game day; always leaves the lab down (also on Ctrl-C, which is re-raised)."""
    day = _Day(GameDay(scenario), progress or (lambda _m: None))
    lab_dir = lab_dir.resolve()
    try:
        with day.phase("lab up"):
            day.state = lab.up(lab_dir, scenario, progress=day.progress)
        if day.state is not None:
            with lab_environment(day.state):
                _run_phases(day, lab_dir, cases_dir)
    finally:
        with day.phase("lab down"):
            lab.down(lab_dir)
            day.result.lab_down = not any(s.state is ProcState.RUNNING for s in lab.process_status(lab_dir))
    return day.result


def _run_phases(day: _Day, lab_dir: Path, cases_dir: Path) -> None:
    """Triage first (nothing runs without a case), then each phase whatever the previous one did."""
    with day.phase("triage"):
        _triage(day, cases_dir)
    if day.case is None:
        return
    with day.phase("plan"):
        day.plan = _plan(day)
    for name, run in PHASES:
        run_phase(day, name, run, lab_dir)


PhaseRun = Callable[["_Day", Phase], str]
"""A phase after the plan: does its work, may list its steps on the record, returns the phase's detail."""


def run_phase(day: _Day, name: str, run: PhaseRun, lab_dir: Path) -> Phase:
    """One phase; an auto-approved one only after the lab guard passed, checked right before it runs."""
    with day.phase(name) as record:
        if name in AUTO_APPROVED:
            require_lab(_state(day), lab_dir, name)
        record.detail = run(day, record)
        _anchor(day, name)
    return record


def _anchor(day: _Day, name: str) -> None:
    """Sign the phase's chain head and put it into the lab's Object-Lock evidence bucket (and on stderr)."""
    from eksir.cli.anchoring import anchor_phase, bucket_publisher  # noqa: PLC0415

    state = _state(day)
    publisher = bucket_publisher(state.endpoint.client("s3"), state.evidence_bucket)
    anchor_phase(_handle(day), f"gameday {name}", [publisher])


def _report(day: _Day, _record: Phase) -> str:
    from eksir.report import generate_report  # noqa: PLC0415

    case = _handle(day)
    _, written = generate_report(case)
    day.result.report = str(case.path / next(w.path for w in written if w.format == "html"))
    return ""


def _state(day: _Day) -> lab.LabState:
    assert day.state is not None
    return day.state


def _handle(day: _Day) -> CaseHandle:
    if day.case is None:
        raise RefusedError("no case")
    return day.case


def _triage(day: _Day, cases_dir: Path) -> None:
    from eksir.findings import read_findings  # noqa: PLC0415
    from eksir.triage import load_triage_config  # noqa: PLC0415
    from eksir.triage.case import triage_one  # noqa: PLC0415

    state = _state(day)
    raw = Path(state.finding).read_bytes()
    day.finding = read_findings(raw)[0]
    store = CaseStore(cases_dir)
    day.result.verdict = verdict_summary(
        triage_one(day.finding, load_triage_config(None), store, raw, state.finding)
    )
    day.case, _ = store.open_for_finding(day.finding, raw, state.finding)
    day.result.case_id = day.case.load().id
    day.result.case_dir = str(day.case.path)


def _plan(day: _Day) -> Any:
    from eksir.clients.aws import AwsClients  # noqa: PLC0415
    from eksir.engine.context import KubeProvider  # noqa: PLC0415
    from eksir.playbooks import PlaybookOptions, build_plan  # noqa: PLC0415
    from eksir.resolve import resolve  # noqa: PLC0415

    state, case = _state(day), _handle(day)
    day.aws = AwsClients(region=state.region, endpoint_url=state.aws_endpoint)
    day.kube = KubeProvider(aws=day.aws, cluster_name=state.cluster, kubeconfig=Path(state.admin_kubeconfig))
    resolution = resolve(day.finding, day.aws.client, day.kube)
    case.write_document(
        "resolution.json",
        orjson.dumps(resolution.model_dump(mode="json"), option=orjson.OPT_INDENT_2),
        "resolution",
    )
    options = PlaybookOptions(
        case_id=case.load().id,
        evidence_bucket=state.evidence_bucket,
        capture_wait_seconds=CAPTURE_WAIT_S if state.node_runtime else SIMULATED_CAPTURE_WAIT_S,
        pause_container=bool(
            state.node_runtime
        ),  # a real node: freeze the container after capture, as on EKS
    )
    return build_plan(day.finding, resolution, options)


def _context(day: _Day) -> Any:
    from eksir.engine.context import ContextFactory  # noqa: PLC0415

    case = _handle(day).load()
    return ContextFactory(case.id, day.aws, day.kube, dry_run=False, account_id=case.account_id)


def _steps_detail(steps: list[StepLine], extra: str = "") -> str:
    """Totals, then every failed or blocked step by name with its reason."""
    named = "; ".join(f"{s.step} {s.explained}" for s in problems(steps))
    return "; ".join(p for p in (counts(steps), extra, named) if p)


def _respond(day: _Day, record: Phase) -> str:
    """Containment in lab mode: the lab's own table says which steps it cannot perform (lab/limits.py)."""
    from eksir.engine import ApprovalPolicy, LabMode, PolicyGate, Runner  # noqa: PLC0415
    from eksir.lab.limits import unavailable_in_lab  # noqa: PLC0415

    case, plan = _handle(day), day.plan
    case.append("finding.trusted-as-given", {"finding_id": day.finding.id, "reason": LAB_TRUST_REASON})
    gate = PolicyGate(ApprovalPolicy.ALL, f"gameday:{case.actor}")
    lab_mode = LabMode(unavailable_in_lab(_state(day).node_runtime_reason))
    state = Runner(case, plan, _context(day), gate, lab_mode=lab_mode).run()
    record.steps = engine_steps(state)
    return _steps_detail(record.steps)


def _hunt(day: _Day, _record: Phase) -> str:
    from eksir.hunt.case import case_principals, record_hunt  # noqa: PLC0415
    from eksir.hunt.run import HuntOptions, run_hunt  # noqa: PLC0415
    from eksir.hunt.sources.aws import AwsAccess  # noqa: PLC0415
    from eksir.hunt.window import TimeWindow  # noqa: PLC0415

    state, case = _state(day), _handle(day)
    result = run_hunt(
        case_principals(case),
        [f"s3://{state.cloudtrail_bucket}/"],
        TimeWindow.parse("4d"),
        access=AwsAccess(region=state.region, endpoint_url=state.aws_endpoint),
        options=HuntOptions(audit_logs=(Path(state.audit_log),), workers=1),
    )
    record_hunt(case, result)
    day.result.hunt = hunt_highlights(result)
    return f"{len(result.events)} call(s) by the attacker's principals"


def _recover(day: _Day, record: Phase) -> str:
    from eksir.engine import ApprovalPolicy, PolicyGate  # noqa: PLC0415
    from eksir.phases.recovery import recover  # noqa: PLC0415

    case = _handle(day)
    document = recover(case, _context(day), PolicyGate(ApprovalPolicy.ALL, f"gameday:{case.actor}"))
    record.steps = document_steps(document["steps"])
    return _steps_detail(record.steps, f"{len(document['worklist'])} worklist item(s)")


def _prove(day: _Day, record: Phase) -> str:
    """Enforce PSA, then dry-run the attacker's pod spec as the responder (the game day's admin identity).

    As the attacker the replay would be refused by RBAC (containment removed the attacker's grants) before
    admission could judge it; an RBAC refusal is reported as not proven, never as a proof.
    """
    from eksir.actions.prevention.replay import verdict_text  # noqa: PLC0415
    from eksir.clients.k8s import api_client_from_kubeconfig  # noqa: PLC0415
    from eksir.engine import ApprovalPolicy, PolicyGate  # noqa: PLC0415
    from eksir.phases.prevention import PsaLevel, assess, enforce, prove  # noqa: PLC0415

    case, state = _handle(day), _state(day)
    api = api_client_from_kubeconfig(Path(state.admin_kubeconfig))
    assess(case, api, PsaLevel.BASELINE)
    gate = PolicyGate(ApprovalPolicy.ALL, f"gameday:{case.actor}")
    outcome = enforce(case, _context(day), PsaLevel.BASELINE, gate)
    record.steps = [StepLine(outcome.step_id, outcome.action_id, outcome.status.value, outcome.detail)]
    proof = prove(case, api)
    day.result.prevention = {
        "result": proof["result"],
        "status": proof["status"],
        "message": proof["message"],
        "replayed_by": proof["replayed_by"],
        "pod_source": proof["request"]["pod_source"],
        "verdict": verdict_text(proof),
    }
    if proof["result"] != "proven":
        raise StepFailedError(f"prevention {verdict_text(proof)}")
    return f"{verdict_text(proof)}, dry run by {proof['replayed_by']}"


PHASES: tuple[tuple[str, PhaseRun], ...] = (
    ("respond", _respond),
    ("hunt", _hunt),
    ("recover", _recover),
    ("prevention proof", _prove),
    ("report", _report),
)
"""The phases after the plan, in order; those in AUTO_APPROVED run behind `require_lab`."""


def write_summary(result: GameDay) -> None:
    """Keep the game day's own timings in the case (a document the report and export cover)."""
    if result.case_dir:
        handle = CaseHandle(Path(result.case_dir), CaseStore(Path(result.case_dir).parent).actor)
        handle.write_document(
            "gameday.json", orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2), "gameday"
        )

"""A lab per scenario with a case holding the triage, containment run and hunt (as the game day does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eksir.cli.gameday_run import GameDay, Phase, _Day, _hunt, _plan, _triage, lab_environment
from eksir.engine import ApprovalPolicy, PolicyGate, Runner
from eksir.lab import lab as lab_module
from eksir.lab.scenarios import SINGLE_ACCOUNT
from eksir.phases.recovery import recover
from eksir.store.case_store import CaseHandle


@dataclass
class Incident:
    state: lab_module.LabState
    truth: dict[str, Any]
    case: CaseHandle
    day: Any

    def context(self) -> Any:
        from eksir.cli.gameday_run import _context

        return _context(self.day)


SCENARIOS = [s.value for s in SINGLE_ACCOUNT]  # cross-account: tests/lab/test_cross_account_lab.py


@pytest.fixture(scope="module", params=SCENARIOS)
def incident(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incident]:
    lab_dir = tmp_path_factory.mktemp(f"lab-{request.param}")
    state = lab_module.up(lab_dir, str(request.param), seed=7)
    try:
        with lab_environment(state):
            day = _Day(GameDay(str(request.param)), lambda _m: None, state=state)
            _triage(day, lab_dir / "cases")
            plan = _plan(day)
            Runner(day.case, plan, _context_of(day), PolicyGate(ApprovalPolicy.ALL, "test")).run()
            _hunt(day, Phase("hunt"))
            truth = json.loads(Path(state.ground_truth).read_text())
            yield Incident(state, truth, day.case, day)
    finally:
        lab_module.down(lab_dir)


def _context_of(day: Any) -> Any:
    from eksir.cli.gameday_run import _context

    return _context(day)


@pytest.fixture(scope="module")
def recovered(incident: Incident) -> dict[str, Any]:
    with lab_environment(incident.state):
        return recover(incident.case, incident.context(), PolicyGate(ApprovalPolicy.ALL, "test"))

"""A repeat of a closed case's finding is recorded in the fleet log and never re-run: the case (frozen) does
not change and the message counts as a repeat."""

from __future__ import annotations

from pathlib import Path

from eksir.cli.respond_cmd import Access
from eksir.cli.serve_case import CaseHandler, FleetSetup, case_lease, case_store
from eksir.models.case import CaseStatus
from eksir.playbooks import PlaybookOptions
from eksir.policy.model import DEFAULT_POLICY
from eksir.serve.intake import FindingIntake, classify
from eksir.serve.records import CLOSED_REPEATS, FleetLog
from eksir.store import CaseStore
from eksir.triage import load_triage_config
from tests.cli.helpers import FIXTURES


def test_a_repeat_of_a_closed_case_is_recorded_in_the_fleet_log_and_changes_nothing(tmp_path: Path) -> None:
    body = (FIXTURES / "iam-user.eventbridge.json").read_text()
    intake = classify(body)
    assert isinstance(intake, FindingIntake)
    case, _ = CaseStore(tmp_path).open_for_finding(intake.findings[0], body.encode(), "test")
    case.save(case.load().model_copy(update={"status": CaseStatus.CLOSED}), "closed for the test")
    events_before = (case.path / "events.jsonl").read_bytes()
    setup = FleetSetup(
        access=Access(None, None, None, None, None),
        policy=DEFAULT_POLICY,
        options=PlaybookOptions(),
        triage_config=load_triage_config(None),
        store_factory=case_store(tmp_path, "worker"),
        lock_factory=case_lease,
        fleet_log=FleetLog(tmp_path),
        actor="worker",
    )
    assert CaseHandler(setup).finding(intake, "m-1") == "repeats"
    assert (case.path / "events.jsonl").read_bytes() == events_before
    [entry] = FleetLog(tmp_path).read(CLOSED_REPEATS)
    assert entry["case_id"] == case.path.name
    assert entry["finding_id"] == intake.findings[0].id
    assert entry["message_id"] == "m-1"

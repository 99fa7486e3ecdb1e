"""A repeat of a closed case's finding is recorded in the fleet log and never re-run: the case (frozen) does
not change and the message counts as a repeat."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

from eksir.cli.respond_cmd import Access
from eksir.cli.serve_case import CaseHandler, FleetSetup, LockFactory, case_lease, case_store
from eksir.lab.fleet import repeat_of
from eksir.models.case import CaseStatus
from eksir.playbooks import PlaybookOptions
from eksir.policy.model import DEFAULT_POLICY
from eksir.serve.intake import FindingIntake, classify
from eksir.serve.records import CLOSED_REPEATS, FleetLog
from eksir.store import CaseHandle, CaseStore
from eksir.triage import load_triage_config
from tests.cli.helpers import FIXTURES


def _setup(cases: Path, lease: LockFactory) -> FleetSetup:
    """A worker's setup on a local cases dir, with no AWS or cluster access (repeats need none)."""
    return FleetSetup(
        access=Access(None, None, None, None, None),
        policy=DEFAULT_POLICY,
        options=PlaybookOptions(),
        triage_config=load_triage_config(None),
        store_factory=case_store(cases, "worker"),
        lock_factory=lease,
        fleet_log=FleetLog(cases),
        actor="worker",
    )


def test_a_repeat_of_a_closed_case_is_recorded_in_the_fleet_log_and_changes_nothing(tmp_path: Path) -> None:
    body = (FIXTURES / "iam-user.eventbridge.json").read_text()
    intake = classify(body)
    assert isinstance(intake, FindingIntake)
    case, _ = CaseStore(tmp_path).open_for_finding(intake.findings[0], body.encode(), "test")
    case.save(case.load().model_copy(update={"status": CaseStatus.CLOSED}), "closed for the test")
    events_before = (case.path / "events.jsonl").read_bytes()
    assert CaseHandler(_setup(tmp_path, case_lease)).finding(intake, "m-1") == "repeats"
    assert (case.path / "events.jsonl").read_bytes() == events_before
    [entry] = FleetLog(tmp_path).read(CLOSED_REPEATS)
    assert entry["case_id"] == case.path.name
    assert entry["finding_id"] == intake.findings[0].id
    assert entry["message_id"] == "m-1"


def test_repeats_of_a_case_that_responded_are_recorded_without_taking_its_lease_again(tmp_path: Path) -> None:
    """The first repeat reads the outcome under the lease; later ones (same process) only record themselves:
    on an S3 store every lease costs a DynamoDB acquire and release and a re-read of the case."""
    body = (FIXTURES / "iam-user.eventbridge.json").read_text()
    intake = classify(body)
    assert isinstance(intake, FindingIntake)
    case, _ = CaseStore(tmp_path).open_for_finding(intake.findings[0], body.encode(), "test")
    case.append("serve.responded", {"rule": "default"})
    leases: list[str] = []

    def counted_lease(handle: CaseHandle, command: str) -> AbstractContextManager[object]:
        leases.append(handle.path.name)
        return case_lease(handle, command)

    handler = CaseHandler(_setup(tmp_path, counted_lease))
    repeats = [classify(json.dumps(repeat_of(json.loads(body), i + 2, 60 * (i + 1)))) for i in range(4)]
    assert all(isinstance(r, FindingIntake) for r in repeats)
    assert [handler.finding(r, f"m-{i}") for i, r in enumerate(repeats)] == ["repeats"] * 4  # type: ignore[arg-type]
    assert leases == [case.path.name]
    again = [e for e in case.log.events() if e.type == "finding.received-again"]
    assert [e.data["input"] for e in again] == [f"sqs:m-{i}" for i in range(4)]

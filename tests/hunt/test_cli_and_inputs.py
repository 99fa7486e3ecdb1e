"""User-facing behaviour: the CLI's one-line errors and exit codes, principal parsing, rule validation."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eksir.errors import BadInputError, ExitCode
from eksir.hunt.classify import load_rules
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.window import TimeWindow
from eksir.models.finding import Actor, ActorKind
from eksir.store import CaseStore
from eksir.store.verify import verify_case
from tests.factories import make_finding


def _eksir(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from eksir.cli.app import main; main()"
    argv = [sys.executable, "-c", code, *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)


def test_cli_hunt_prints_json_with_the_ground_truth(tree: Path, truth: dict[str, Any]) -> None:
    done = _eksir(
        "hunt",
        "-p",
        truth["principal"],
        "--since",
        truth["since"],
        "--until",
        truth["until"],
        "-s",
        str(tree),
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    assert {e["event_id"] for e in json.loads(done.stdout)["events"]} == set(truth["event_ids"])


@pytest.mark.parametrize("count", [False, True])
def test_cli_table_summary_counts_events_only_when_asked(
    tree: Path, truth: dict[str, Any], count: bool
) -> None:
    window = ["--since", truth["since"], "--until", truth["until"]]
    flags = ["--count-events"] if count else []
    done = _eksir("hunt", "-p", truth["principal"], *window, "-s", str(tree), *flags)
    assert done.returncode == 0, done.stderr
    summary = next(line for line in done.stdout.splitlines() if "calls found; scanned" in line)
    assert (" events from " in summary) is count, summary


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["hunt", "-p", "AKIAATTACKER00000001"], "--since is required", ExitCode.BAD_INPUT),
        (["hunt", "--since", "1d", "-s", "."], "nothing to hunt", ExitCode.BAD_INPUT),
        (
            ["hunt", "-p", "AKIAATTACKER00000001", "--since", "1d"],
            "nothing to hunt in: give at least one source: --source",
            ExitCode.USAGE,
        ),
        (
            ["hunt", "-p", "AKIAATTACKER00000001", "--since", "yesterday-ish", "-s", "."],
            "cannot read time",
            ExitCode.BAD_INPUT,
        ),
        (
            ["hunt", "-p", "arn:aws:s3:::bucket", "--since", "1d", "-s", "."],
            "not an IAM user, role or STS",
            ExitCode.BAD_INPUT,
        ),
        (
            ["hunt", "-p", "AKIAATTACKER00000001", "--since", "1d", "-s", "/no/such/dir"],
            "does not exist",
            ExitCode.NOT_FOUND,
        ),
    ],
)
def test_cli_errors_are_one_line_with_their_exit_code(args: list[str], message: str, code: ExitCode) -> None:
    done = _eksir(*args)
    assert done.returncode == int(code)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_principal_values_land_in_the_slot_cloudtrail_uses() -> None:
    principals = PrincipalSet.from_values(
        [
            "AKIAATTACKER00000001",
            "arn:aws:iam::111122223333:user/ci",
            "arn:aws:iam::111122223333:role/ops",
            "arn:aws:sts::111122223333:assumed-role/ops/evil",
            "AROAOPSADMIN00000001:evil",
            "session:evil",
            "system:serviceaccount:argocd:controller",
            "ci-deployer",
        ]
    )
    assert principals.access_key_ids == {"AKIAATTACKER00000001"}
    assert principals.user_arns == {"arn:aws:iam::111122223333:user/ci"}
    assert principals.role_arns == {"arn:aws:iam::111122223333:role/ops"}
    assert principals.session_arns == {"arn:aws:sts::111122223333:assumed-role/ops/evil"}
    assert principals.principal_ids == {"AROAOPSADMIN00000001:evil"}
    assert principals.session_names == {"evil"}
    assert principals.k8s_usernames == {"system:serviceaccount:argocd:controller"}
    assert principals.user_names == {"ci-deployer"}


def test_a_role_arn_matches_every_session_of_that_role() -> None:
    record = {
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::1:assumed-role/ops/any",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/ops"}},
        }
    }
    assert (
        PrincipalSet.from_values(["arn:aws:iam::111122223333:role/ops"]).match(record) == "sessionIssuer.arn"
    )
    assert PrincipalSet.from_values(["arn:aws:iam::111122223333:role/other"]).match(record) is None


def test_irsa_web_identity_sessions_of_a_hunted_service_account_are_chained() -> None:
    record = {
        "eventName": "AssumeRoleWithWebIdentity",
        "userIdentity": {"type": "WebIdentityUser", "userName": "system:serviceaccount:argocd:controller"},
        "responseElements": {
            "credentials": {"accessKeyId": "ASIAIRSA000000000001"},
            "assumedRoleUser": {"arn": "arn:aws:sts::1:assumed-role/irsa/botocore"},
        },
    }
    issued = PrincipalSet.from_values(["k8s:system:serviceaccount:argocd:controller"]).issued_by(record)
    assert issued is not None
    assert issued.access_key_ids == {"ASIAIRSA000000000001"}


def test_pre_filter_tokens_drop_those_containing_a_shorter_one() -> None:
    tokens = PrincipalSet.from_values(["ci-deployer", "arn:aws:iam::111122223333:user/ci-deployer"]).tokens()
    assert tokens == (b"ci-deployer",)


def test_window_rejects_an_end_before_the_start() -> None:
    with pytest.raises(BadInputError, match="before --since"):
        TimeWindow.parse("2024-08-02", "2024-08-01")


def test_a_bad_user_rule_is_reported_with_file_and_rule(tmp_path: Path) -> None:
    rules = tmp_path / "mine.yaml"
    rules.write_text("kind: cloudtrail\nrules:\n  - id: team.typo\n    category: data-acess\n")
    with pytest.raises(BadInputError, match=r"mine\.yaml: rule team\.typo: category"):
        load_rules("cloudtrail", [rules])


def test_a_user_rule_wins_over_the_shipped_rule_of_equal_priority(tmp_path: Path) -> None:
    rules = tmp_path / "mine.yaml"
    rules.write_text(
        "kind: cloudtrail\nrules:\n  - id: team.kms-is-noise\n    category: read\n"
        "    priority: 900\n    event_source: [kms.amazonaws.com]\n    event_name: [Decrypt]\n"
    )
    verdict = load_rules("cloudtrail", [rules]).classify(
        {"eventSource": "kms.amazonaws.com", "eventName": "Decrypt"}
    )
    assert (verdict.category, verdict.rule_id) == ("read", "team.kms-is-noise")
    assert "data-access" in verdict.tags


def test_rule_conditions_read_request_parameters() -> None:
    book = load_rules("cloudtrail")
    base = {"eventSource": "ssm.amazonaws.com", "eventName": "GetParameter"}
    assert book.classify({**base, "requestParameters": {"withDecryption": True}}).category == "data-access"
    assert book.classify({**base, "requestParameters": {"withDecryption": False}}).category == "read"
    run = {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}
    assert book.classify({**run, "requestParameters": {"iamInstanceProfile": {"arn": "x"}}}).category == (
        "identity-persistence"
    )
    assert book.classify(run).category == "resource-creation"


def test_cli_hunt_of_a_case_takes_its_principals_and_stores_the_result_as_evidence(
    tmp_path: Path, tree: Path, truth: dict[str, Any]
) -> None:
    finding = make_finding(
        event_first_seen=datetime(2024, 8, 3, 23, 0, tzinfo=UTC),
        actor=Actor(kind=ActorKind.IAM_USER, username="kubernetes-admin", access_key_id=truth["principal"]),
    )
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(finding, b"{}", "test")
    handle.write_document("finding.json", finding.model_dump_json().encode(), "normalised-finding")

    done = _eksir("hunt", str(handle.path), "--until", truth["until"], "-s", str(tree), "-o", "json")

    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["events"]
    found = {e["event_id"] for e in events}
    assert set(truth["event_ids"]) <= found
    # The case window reaches 90 days back, so the same key's earlier calls are found as well.
    earlier = [e for e in events if e["event_id"] not in truth["event_ids"]]
    assert all(e["event_time"] < truth["since"].replace("Z", "+00:00") for e in earlier)
    evidence = [item for item in handle.load().evidence if item.name == "hunt.json"]
    assert len(evidence) == 1
    stored = json.loads((handle.path / evidence[0].path).read_bytes())
    assert {e["event_id"] for e in stored["events"]} == found
    assert stored["since"].startswith("2024-05-05")  # 90 days before the attacker was first seen
    assert verify_case(handle).ok


def test_cli_hunt_of_a_case_without_a_finding_is_a_case_error(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(make_finding(), b"{}", "test")
    done = _eksir("hunt", str(handle.path), "-s", str(tmp_path))
    assert done.returncode == ExitCode.CASE_INVALID
    assert done.stderr.strip().endswith("has no finding.json: triage its finding first")


def test_hunts_add_to_the_case_and_a_later_narrower_hunt_loses_nothing(
    tmp_path: Path, tree: Path, truth: dict[str, Any]
) -> None:
    """Each run is its own evidence item; the case's hunt (what the report and recovery read) is the union
    with every source that found each call (issue: a re-run replaced 14 calls with none)."""
    from eksir.store.record import load_record

    finding = make_finding(
        event_first_seen=datetime(2024, 8, 3, 23, 0, tzinfo=UTC),
        actor=Actor(kind=ActorKind.IAM_USER, username="kubernetes-admin", access_key_id=truth["principal"]),
    )
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(finding, b"{}", "test")
    handle.write_document("finding.json", finding.model_dump_json().encode(), "normalised-finding")
    first = _eksir("hunt", str(handle.path), "--until", truth["until"], "-s", str(tree), "-o", "json")
    assert first.returncode == 0, first.stderr
    empty = tmp_path / "empty-source"
    empty.mkdir()
    second = _eksir("hunt", str(handle.path), "--until", truth["until"], "-s", str(empty), "-o", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["events"] == []
    runs = [item for item in handle.load().evidence if item.name == "hunt.json"]
    assert len(runs) == 2
    merged = load_record(handle).hunt()
    assert merged is not None
    assert merged["runs"] == 2
    assert set(truth["event_ids"]) <= {e["event_id"] for e in merged["events"]}
    assert all(e["found_in_all"] for e in merged["events"])
    assert {s["name"] for s in merged["sources"]} >= {str(tree), str(empty)}
    assert verify_case(handle).ok


def test_a_hunt_of_a_closed_case_refuses_before_reading_anything(tmp_path: Path, tree: Path) -> None:
    from eksir.models.case import CaseStatus

    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(make_finding(), b"{}", "test")
    handle.save(handle.load().model_copy(update={"status": CaseStatus.CLOSED}), "closed for the test")
    done = _eksir("hunt", str(handle.path), "--since", "2024-08-01", "-s", str(tree))
    assert done.returncode == ExitCode.REFUSED
    assert "is closed" in done.stderr
    assert not [item for item in handle.load().evidence if item.name == "hunt.json"]

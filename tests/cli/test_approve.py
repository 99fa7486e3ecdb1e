"""`eksir approve` / `eksir deny`: a decision written into the case with who made it; --yes required; a
continuation message for the workers with --queue-url."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eksir.lab.moto_server import AwsEndpoint
from tests.cli.helpers import FIXTURES, run_eksir


def _case(tmp_path: Path) -> tuple[Path, str]:
    cases = tmp_path / "cases"
    done = run_eksir(
        "triage", str(FIXTURES / "iam-user.eventbridge.json"), "--cases-dir", str(cases), "-o", "json"
    )
    assert done.returncode in (0, 1), done.stderr
    case_id = next(p.name for p in cases.iterdir() if p.name.startswith("eksir-"))
    return cases, case_id


def _events(cases: Path, case_id: str) -> list[dict[str, object]]:
    lines = (cases / case_id / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def test_approve_without_yes_is_a_usage_error_and_records_nothing(tmp_path: Path) -> None:
    cases, case_id = _case(tmp_path)
    before = len(_events(cases, case_id))
    done = run_eksir("approve", case_id, "--destructive", "--cases-dir", str(cases))
    assert done.returncode == 2
    assert "--yes" in done.stderr
    nothing = run_eksir("deny", case_id, "--yes", "--cases-dir", str(cases))
    assert nothing.returncode == 2
    assert len(_events(cases, case_id)) == before


def test_approve_records_the_decision_and_the_approver_in_the_case(tmp_path: Path) -> None:
    cases, case_id = _case(tmp_path)
    done = run_eksir(
        "approve",
        case_id,
        "--destructive",
        "--yes",
        "--approver",
        "alice",
        "--reason",
        "seen the pod",
        "--cases-dir",
        str(cases),
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    granted = [e for e in _events(cases, case_id) if e["type"] == "approval.granted"]
    assert granted[-1]["data"] == {
        "approver": "alice",
        "steps": [],
        "destructive": True,
        "reason": "seen the pod",
    }
    denied = run_eksir("deny", case_id, "--destructive", "--yes", "--cases-dir", str(cases))
    assert denied.returncode == 0, denied.stderr
    assert _events(cases, case_id)[-1]["type"] == "approval.denied"


def test_a_step_the_plan_does_not_have_is_bad_input(tmp_path: Path) -> None:
    cases, case_id = _case(tmp_path)
    done = run_eksir("approve", case_id, "--step", "no-such-step", "--yes", "--cases-dir", str(cases))
    assert done.returncode == 3
    assert "no-such-step" in done.stderr


def test_approve_with_a_queue_url_sends_the_continuation_message(
    tmp_path: Path, moto_server: AwsEndpoint
) -> None:
    cases, case_id = _case(tmp_path)
    sqs = moto_server.client("sqs")
    url = sqs.create_queue(QueueName="approve-continue")["QueueUrl"]
    env = {**os.environ, **moto_server.env()}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksir",
            "approve",
            case_id,
            "--destructive",
            "--yes",
            "--cases-dir",
            str(cases),
            "--queue-url",
            url,
            "--endpoint-url",
            moto_server.url,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert body["kind"] == "eksir.continue-case"
    assert body["case_id"] == case_id


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_an_unknown_case_is_not_found(tmp_path: Path, verb: str) -> None:
    done = run_eksir(
        verb, "eksir-20990101-0000000000", "--destructive", "--yes", "--cases-dir", str(tmp_path)
    )
    assert done.returncode == 10

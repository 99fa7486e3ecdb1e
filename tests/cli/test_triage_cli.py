"""`eksir triage` end to end in a subprocess: every representation and actor, the case, and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eksir.errors import ExitCode
from tests.cli.helpers import FIXTURES, REPO, run_eksir, run_in_process

INDEX = json.loads((FIXTURES / "index.json").read_text())
EXAMPLE = REPO / "examples" / "finding-eventbridge.json"
EXAMPLE_CONFIG = REPO / "examples" / "triage-config.yaml"


@pytest.mark.parametrize("fixture", sorted(INDEX), ids=str)
def test_every_representation_and_actor_kind_triages_to_the_expected_actor(
    fixture: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_in_process(
        ["triage", str(FIXTURES / fixture), "--no-case", "--output", "json"], capsys, monkeypatch
    )
    assert code == 0, err
    document = json.loads(out)
    expected = INDEX[fixture]
    assert document["actor"]["kind"] == expected["actor_kind"]
    assert document["actor"]["username"] == expected["username"]
    assert document["workload"]["name"] == expected["pod"]
    assert document["finding"]["source_format"] == expected["source_format"]
    assert document["case"] == {"id": None, "path": None}


def test_the_example_opens_a_case_whose_json_follows_the_documented_shape(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    result = run_eksir(
        "triage", str(EXAMPLE), "--config", str(EXAMPLE_CONFIG), "--cases-dir", str(cases), "--output", "json"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) >= {"finding", "cluster", "workload", "actor", "api_call", "verdict", "case"}
    assert document["verdict"]["decision"] == "unauthorized"
    assert document["actor"]["kind"] == "iam-user"
    assert document["workload"]["containers"][0]["privileged"] is True
    case_dir = Path(document["case"]["path"])
    assert {"case.json", "events.jsonl", "triage.json", "summary.md", "finding.json"} <= {
        p.name for p in case_dir.iterdir()
    }
    evidence = json.loads((case_dir / "case.json").read_text())["evidence"][0]
    assert (case_dir / evidence["path"]).read_bytes() == EXAMPLE.read_bytes()
    assert run_eksir("case", "verify", str(case_dir)).returncode == 0


def test_triaging_the_same_finding_again_reuses_the_case(tmp_path: Path) -> None:
    first = json.loads(run_eksir("triage", str(EXAMPLE), "--cases-dir", str(tmp_path), "-o", "json").stdout)
    second = json.loads(run_eksir("triage", str(EXAMPLE), "--cases-dir", str(tmp_path), "-o", "json").stdout)
    assert first["case"]["created"] is True
    assert second["case"]["created"] is False
    assert second["case"]["id"] == first["case"]["id"]
    events = (Path(second["case"]["path"]) / "events.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["type"] == "triage.completed" for line in events) == 2


def test_stdin_and_gzip_are_read(tmp_path: Path) -> None:
    packed = gzip.compress(EXAMPLE.read_bytes(), mtime=0)
    (tmp_path / "f.gz").write_bytes(packed)
    from_stdin = run_eksir("triage", "-", "--no-case", "-o", "json", stdin=EXAMPLE.read_bytes())
    from_gzip = run_eksir("triage", str(tmp_path / "f.gz"), "--no-case", "-o", "json")
    assert json.loads(from_stdin.stdout)["finding"]["id"] == json.loads(from_gzip.stdout)["finding"]["id"]


def test_several_findings_in_one_input_give_json_lines_one_document_per_line(tmp_path: Path) -> None:
    lines = (FIXTURES / "iam-user.s3-export.jsonl").read_text().splitlines()
    other = (FIXTURES / "service-account.s3-export.jsonl").read_text().splitlines()
    (tmp_path / "two.jsonl").write_text("\n".join([*lines, *other]) + "\n")
    for case_args in (["--no-case"], ["--cases-dir", str(tmp_path / "cases")]):
        result = run_eksir("triage", str(tmp_path / "two.jsonl"), *case_args, "-o", "json")
        assert result.returncode == 0, result.stderr
        documents = [json.loads(line) for line in result.stdout.splitlines()]
        assert [d["actor"]["kind"] for d in documents] == ["iam-user", "service-account"]


def test_a_tampered_case_fails_verification_with_exit_6(tmp_path: Path) -> None:
    document = json.loads(
        run_eksir("triage", str(EXAMPLE), "--cases-dir", str(tmp_path), "-o", "json").stdout
    )
    summary = Path(document["case"]["path"]) / "summary.md"
    summary.write_text(summary.read_text() + "\nverdict: authorized-change\n")
    result = run_eksir("case", "verify", document["case"]["path"])
    assert result.returncode == ExitCode.CASE_INVALID
    assert "summary.md: altered" in result.stdout


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, ExitCode]]:
    event = json.loads(EXAMPLE.read_text())
    no_workload = json.loads(EXAMPLE.read_text())
    no_workload["detail"]["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"] = None
    other_type = json.loads(EXAMPLE.read_text())
    other_type["detail"]["type"] = "Discovery:Kubernetes/MaliciousIPCaller"
    health = {
        "detail-type": "GuardDuty Runtime Protection Unhealthy",
        "source": "aws.guardduty",
        "detail": {},
    }
    files = {
        "empty": (b"", ExitCode.BAD_INPUT),
        "truncated": (EXAMPLE.read_bytes()[:200], ExitCode.BAD_INPUT),
        "no-finding": (b'{"hello": "world"}', ExitCode.NOT_A_FINDING),
        "health-event": (json.dumps(health).encode(), ExitCode.NOT_A_FINDING),
        "other-k8s-type": (json.dumps(other_type).encode(), ExitCode.NOT_HANDLED),
        "no-workload": (json.dumps(no_workload).encode(), ExitCode.BAD_INPUT),
        "binary": (b"\x00\xff\xfe garbage", ExitCode.BAD_INPUT),
    }
    assert event["detail-type"] == "GuardDuty Finding"
    paths: dict[str, tuple[Path, ExitCode]] = {}
    for name, (data, code) in files.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        paths[name] = (path, code)
    paths["missing-path"] = (tmp_path / "does-not-exist.json", ExitCode.BAD_INPUT)
    paths["directory"] = (tmp_path, ExitCode.BAD_INPUT)
    return paths


BAD_INPUT_NAMES = [
    "empty",
    "truncated",
    "no-finding",
    "health-event",
    "other-k8s-type",
    "no-workload",
    "binary",
    "missing-path",
    "directory",
]


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_input_gives_one_line_a_documented_exit_code_and_no_case(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path, expected = _bad_inputs(inputs)[name]
    cases = tmp_path / "cases"
    code, _out, err = run_in_process(["triage", str(path), "--cases-dir", str(cases)], capsys, monkeypatch)
    assert code == expected, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("eksir: error: ")
    assert not cases.exists() or not any(cases.iterdir())


def test_bad_input_through_the_installed_entry_point_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_bytes(b"")
    result = run_eksir("triage", str(tmp_path / "empty.json"), "--cases-dir", str(tmp_path / "cases"))
    assert result.returncode == ExitCode.BAD_INPUT
    assert result.stderr.startswith("eksir: error: ")
    assert "Traceback" not in result.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    result = run_eksir("triage", "--frobnicate")
    assert result.returncode == ExitCode.USAGE
    assert "Traceback" not in result.stderr

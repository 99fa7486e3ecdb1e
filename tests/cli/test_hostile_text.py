"""Issue 12 item 2/13: text an attacker chose (images, pod names, S3 keys, finding ids, file names) is shown
as text in every view: it never crashes the CLI as broken markup and never draws styled output of its own."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from eksir.store import CaseStore
from tests.cli.helpers import REPO, run_in_process

EXAMPLE = REPO / "examples" / "finding-eventbridge.json"
FAKE_ROW = "[green]ok: verified by change CR-1234[/]"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide console, so a long value is not folded across lines and can be found in the output."""
    monkeypatch.setenv("COLUMNS", "400")


def _hostile_finding(tmp_path: Path, **details: Any) -> Path:
    event = json.loads(EXAMPLE.read_text())
    workload = event["detail"]["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    workload["containers"][0]["image"] = details.get("image", workload["containers"][0]["image"])
    event["detail"]["id"] = details.get("finding_id", event["detail"]["id"])
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(event))
    return path


def test_an_image_with_a_stray_closing_tag_is_shown_as_text_and_triage_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    finding = _hostile_finding(tmp_path, image="alpine:3.20[/oops]")
    code, out, err = run_in_process(
        ["triage", str(finding), "--cases-dir", str(tmp_path / "cases")], capsys, monkeypatch
    )
    assert code == 0, err
    assert "alpine:3.20[/oops]" in out


def test_markup_in_an_image_is_printed_literally_instead_of_drawing_a_green_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    finding = _hostile_finding(tmp_path, image=f"alpine:3.20 {FAKE_ROW}")
    code, out, err = run_in_process(["triage", str(finding), "--no-case"], capsys, monkeypatch)
    assert code == 0, err
    assert FAKE_ROW in out


def test_a_finding_id_that_is_broken_markup_does_not_crash_case_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = tmp_path / "cases"
    finding = _hostile_finding(tmp_path, finding_id="abc[/oops]")
    code, _, err = run_in_process(["triage", str(finding), "--cases-dir", str(cases)], capsys, monkeypatch)
    assert code == 0, err
    [case_dir] = [p for p in cases.iterdir() if not p.name.startswith(".")]
    code, out, err = run_in_process(["case", "show", str(case_dir)], capsys, monkeypatch)
    assert code == 0, err
    assert "finding=abc[/oops]" in out


def test_a_file_name_with_brackets_is_named_in_full_by_case_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = tmp_path / "cases"
    code, _, err = run_in_process(["triage", str(EXAMPLE), "--cases-dir", str(cases)], capsys, monkeypatch)
    assert code == 0, err
    [case_dir] = [p for p in cases.iterdir() if not p.name.startswith(".")]
    (case_dir / "evidence" / "[bold]planted.txt").write_text("not logged")
    code, out, _ = run_in_process(["case", "verify", str(case_dir)], capsys, monkeypatch)
    assert code == 6
    assert "evidence/[bold]planted.txt: not recorded in the event log" in out


def test_an_s3_key_that_is_broken_markup_is_listed_by_hunt_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAATTACKER00000001", "userName": "mallory"},
        "eventTime": "2024-08-03T00:04:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9",
        "requestParameters": {"bucketName": "finance", "key": "q4[/oops].csv"},
        "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::finance/q4[/oops].csv"}],
        "eventID": "1",
    }
    logs = tmp_path / "trail.json.gz"
    logs.write_bytes(gzip.compress(json.dumps({"Records": [event]}).encode(), mtime=0))
    window = ["--since", "2024-08-01T00:00Z", "--until", "2024-08-04T00:00Z"]
    args = ["hunt", "-p", "AKIAATTACKER00000001", *window]
    code, out, err = run_in_process([*args, "-s", str(logs)], capsys, monkeypatch)
    assert code == 0, err
    assert "arn:aws:s3:::finance/q4[/oops].csv" in out


def test_hostile_text_in_the_triage_summary_is_escaped_markdown(tmp_path: Path) -> None:
    from eksir.findings import read_findings
    from eksir.triage import load_triage_config
    from eksir.triage.case import triage_one

    finding_file = _hostile_finding(tmp_path, image="x`<img src=x onerror=alert(1)>`[click](http://evil)")
    [finding] = read_findings(finding_file)
    store = CaseStore(tmp_path / "cases")
    document = triage_one(finding, load_triage_config(None), store, finding_file.read_bytes(), "hostile.json")
    summary = (Path(document["case"]["path"]) / "summary.md").read_text()
    assert "<img" not in summary
    assert "[click](http" not in summary
    assert "\\[click\\](http://evil)" in summary
    assert "&lt;img src=x onerror=alert(1)&gt;" in summary


def test_archive_verify_prints_failed_as_a_word_not_as_literal_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import tarfile

    from eksir.store.export import export_case
    from tests.report.case_builder import build_case

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    archive = export_case(build_case(tmp_path / "cases"), tmp_path / "case.tar.gz").archive
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            changed = data + b" " if info.name.endswith("/summary.md") else data
            info.size = len(changed)
            tar.addfile(info, io.BytesIO(changed))
    archive.write_bytes(buffer.getvalue())
    code, out, _ = run_in_process(["case", "verify", str(archive)], capsys, monkeypatch)
    assert code == 6
    assert "FAILED " in out
    assert "[red]" not in out

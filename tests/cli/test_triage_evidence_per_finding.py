"""Issue 12 item 8: triage of an input holding many findings stores in each case only that finding's own
element (plus the input's name, size and sha256), not the whole input: case sizes grow linearly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from eksir.store import CaseStore, verify_case
from tests.cli.helpers import REPO, run_in_process

EXAMPLE = REPO / "examples" / "finding-eventbridge.json"
FINDINGS = 20


def _s3_export(tmp_path: Path) -> tuple[Path, list[bytes]]:
    detail = json.loads(EXAMPLE.read_text())["detail"]
    lines = []
    for number in range(FINDINGS):
        finding_id = f"{number:032x}"
        item = {**detail, "id": finding_id, "arn": detail["arn"].replace(detail["id"], finding_id)}
        # each finding names its own pod: twenty incidents (findings naming one pod join one case)
        item["resource"] = json.loads(json.dumps(detail["resource"]))
        workload = item["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
        workload["name"], workload["uid"] = (
            f"{workload['name']}-{number}",
            f"{number:08x}-0000-4000-8000-000000000000",
        )
        lines.append(json.dumps(item).encode())
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, lines


def test_each_case_keeps_its_own_line_of_an_s3_export_and_names_the_input_by_size_and_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    export, lines = _s3_export(tmp_path)
    cases = tmp_path / "cases"
    code, _, err = run_in_process(
        ["triage", str(export), "--cases-dir", str(cases), "-o", "json"], capsys, monkeypatch
    )
    assert code == 0, err
    handles = [CaseStore(cases).get(p.name) for p in sorted(cases.iterdir()) if not p.name.startswith(".")]
    assert len(handles) == FINDINGS
    stored = []
    for handle in handles:
        item = handle.load().evidence[0]
        stored.append((handle.path / item.path).read_bytes())
        opened = next(e for e in handle.log.events() if e.type == "case.opened")
        assert opened.data["input_size"] == export.stat().st_size
        assert opened.data["input_sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
        assert opened.data["input_findings"] == FINDINGS
        assert "own element of" in item.description
        assert verify_case(handle).ok
    assert sorted(stored) == sorted(lines)
    assert sum(map(len, stored)) < export.stat().st_size


def test_a_single_finding_is_still_kept_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = tmp_path / "cases"
    code, _, err = run_in_process(["triage", str(EXAMPLE), "--cases-dir", str(cases)], capsys, monkeypatch)
    assert code == 0, err
    [case_dir] = [p for p in cases.iterdir() if not p.name.startswith(".")]
    item = CaseStore(cases).get(case_dir.name).load().evidence[0]
    assert (case_dir / item.path).read_bytes() == EXAMPLE.read_bytes()

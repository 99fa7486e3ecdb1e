"""The case bundle: atomic creation, evidence hashing, reuse, and tamper detection."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eksir.errors import NotFoundError
from eksir.store import CaseStore, case_id_for, verify_case
from eksir.store.atomic import sha256_bytes
from tests.factories import make_finding

RAW = b'{"detail-type": "GuardDuty Finding", "detail": {}}\n'


def test_a_new_case_holds_the_raw_finding_as_evidence_item_one_with_its_hash(tmp_path: Path) -> None:
    handle, created = CaseStore(tmp_path).open_for_finding(make_finding(), RAW, "finding.json")
    case = handle.load()
    assert created
    assert case.evidence[0].number == 1
    assert case.evidence[0].sha256 == sha256_bytes(RAW)
    assert (handle.path / case.evidence[0].path).read_bytes() == RAW
    assert verify_case(handle).ok


def test_the_same_finding_reuses_its_case_and_appends_an_event(tmp_path: Path) -> None:
    store = CaseStore(tmp_path)
    first, _ = store.open_for_finding(make_finding(), RAW, "a.json")
    second, created = store.open_for_finding(make_finding(), RAW, "b.json")
    assert not created
    assert second.path == first.path
    assert [e.type for e in second.log.events()][-1] == "finding.received-again"
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 1


def test_case_ids_are_valid_kubernetes_label_values(tmp_path: Path) -> None:
    case_id = case_id_for(make_finding())
    assert len(case_id) <= 63
    assert case_id.replace("-", "").isalnum()
    assert case_id == case_id.lower()


def test_verify_names_an_altered_evidence_file(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path).open_for_finding(make_finding(), RAW, "finding.json")
    evidence = handle.path / handle.load().evidence[0].path
    evidence.write_bytes(RAW.replace(b"Finding", b"Findinh"))
    report = verify_case(handle)
    assert not report.ok
    assert any("evidence/001-" in p and "altered" in p for p in report.problems)


def test_verify_names_an_altered_event_line(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path).open_for_finding(make_finding(), RAW, "finding.json")
    handle.append("note", {"text": "pod isolated"})
    lines = (handle.path / "events.jsonl").read_text().splitlines()
    event = json.loads(lines[-1])
    event["data"]["text"] = "nothing happened"
    lines[-1] = json.dumps(event)
    (handle.path / "events.jsonl").write_text("\n".join(lines) + "\n")
    problems = verify_case(handle).problems
    assert any(f"line {len(lines)}" in p and "altered" in p for p in problems)


def test_verify_detects_a_removed_event_line(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path).open_for_finding(make_finding(), RAW, "finding.json")
    handle.append("note", {"text": "one"})
    handle.append("note", {"text": "two"})
    lines = (handle.path / "events.jsonl").read_text().splitlines()
    del lines[1]
    (handle.path / "events.jsonl").write_text("\n".join(lines) + "\n")
    assert any("link broken" in p for p in verify_case(handle).problems)


def test_verify_reports_a_torn_last_line_from_a_crash(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path).open_for_finding(make_finding(), RAW, "finding.json")
    with (handle.path / "events.jsonl").open("ab") as log:
        log.write(b'{"seq": 99, "at": "2026')
    assert any("incomplete" in p for p in verify_case(handle).problems)


def test_verify_reports_a_file_nobody_recorded(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path).open_for_finding(make_finding(), RAW, "finding.json")
    (handle.path / "evidence" / "planted.txt").write_text("x")
    assert any("planted.txt: not recorded" in p for p in verify_case(handle).problems)


def test_a_failure_while_assembling_leaves_no_half_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CaseStore(tmp_path)

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk vanished")

    monkeypatch.setattr("eksir.store.case_store.CaseHandle.add_evidence", explode)
    with pytest.raises(RuntimeError):
        store.open_for_finding(make_finding(), RAW, "finding.json")
    assert [p.name for p in tmp_path.iterdir() if p.name != ".index"] == []
    assert [p for p in (tmp_path / ".index").rglob("*") if p.is_file()] == []  # the pod's claim given back


def test_an_unknown_case_is_a_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no case 'eksir-nope'"):
        CaseStore(tmp_path).get("eksir-nope")


def test_evidence_added_from_parallel_steps_is_all_listed_once_with_distinct_numbers(tmp_path: Path) -> None:
    handle, _ = CaseStore(tmp_path).open_for_finding(make_finding(), b"{}", "finding.json")
    payloads = [f"artefact {i}".encode() for i in range(24)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        items = list(pool.map(lambda body: handle.add_evidence("artefact.txt", body, "test"), payloads))

    listed = handle.load().evidence
    assert sorted(i.number for i in listed) == list(range(1, len(payloads) + 2))  # + the finding itself
    assert {i.sha256 for i in items} == {sha256_bytes(p) for p in payloads}
    assert verify_case(handle).ok

"""One case per incident: an attack sequence's case is keyed by its sequence uid, and a finding naming a
workload of an open case joins that case (a `case.joined` event), once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from eksir.findings import read_findings
from eksir.models.case import CaseStatus
from eksir.models.finding import Finding
from eksir.store import CaseStore
from tests.new_findings import TWO_PODS, Pod, Sequence, runtime_finding, sequence_finding


def _read(wire: dict[str, object]) -> tuple[Finding, bytes]:
    raw = json.dumps(wire).encode()
    [finding] = read_findings(raw)
    return finding, raw


def test_a_runtime_finding_on_a_sequence_workload_joins_the_sequence_case(tmp_path: Path) -> None:
    store = CaseStore(tmp_path, actor="t@lab")
    sequence, raw = _read(sequence_finding("eks", Sequence(TWO_PODS), finding_id="a" * 32))
    case, created = store.open_for_finding(sequence, raw, "seq.json")
    assert created
    shell, shell_raw = _read(runtime_finding("reverse-shell", TWO_PODS[1], finding_id="b" * 32))
    joined, created = store.open_for_finding(shell, shell_raw, "shell.json")
    assert not created
    assert joined.path == case.path
    events = [e for e in case.log.events() if e.type == "case.joined"]
    assert len(events) == 1
    assert events[0].data["finding_id"] == "b" * 32
    assert events[0].data["workloads"] == [f"111122223333/prod-payments/payments/{TWO_PODS[1].name}"]
    assert any(item.name == f"finding-joined-{'b' * 32}.json" for item in case.load().evidence)
    again, _ = store.open_for_finding(shell, shell_raw, "shell.json")
    assert again.path == case.path
    assert [e.type for e in case.log.events()].count("case.joined") == 1
    assert [e.type for e in case.log.events()][-1] == "finding.received-again"


def test_an_updated_sequence_lands_in_the_same_case(tmp_path: Path) -> None:
    store = CaseStore(tmp_path, actor="t@lab")
    first, raw = _read(sequence_finding("eks", Sequence(TWO_PODS), finding_id="a" * 32))
    case, _ = store.open_for_finding(first, raw, "seq.json")
    update, raw2 = _read(sequence_finding("eks", Sequence(TWO_PODS[:1]), finding_id="a" * 32))
    again, created = store.open_for_finding(update, raw2, "seq2.json")
    assert (again.path, created) == (case.path, False)


def test_a_finding_on_another_workload_opens_its_own_case(tmp_path: Path) -> None:
    store = CaseStore(tmp_path, actor="t@lab")
    sequence, raw = _read(sequence_finding("eks", Sequence(TWO_PODS), finding_id="a" * 32))
    case, _ = store.open_for_finding(sequence, raw, "seq.json")
    other, other_raw = _read(runtime_finding("reverse-shell", Pod(name="elsewhere"), finding_id="c" * 32))
    separate, created = store.open_for_finding(other, other_raw, "other.json")
    assert created
    assert separate.path != case.path


def test_a_closed_case_is_not_joined(tmp_path: Path) -> None:
    store = CaseStore(tmp_path, actor="t@lab")
    sequence, raw = _read(sequence_finding("eks", Sequence(TWO_PODS), finding_id="a" * 32))
    case, _ = store.open_for_finding(sequence, raw, "seq.json")
    with case.writer("test"):
        case.save(case.load().model_copy(update={"status": CaseStatus.CLOSED}), "closed for the test")
    shell, shell_raw = _read(runtime_finding("reverse-shell", TWO_PODS[0], finding_id="b" * 32))
    fresh, created = store.open_for_finding(shell, shell_raw, "shell.json")
    assert created
    assert fresh.path != case.path


def _race(root: Path, findings: list[tuple[Finding, bytes]]) -> list[tuple[Path, bool]]:
    """Each finding opened by its own writer (thread, own CaseStore), all released at the same moment."""
    start = threading.Barrier(len(findings))
    opened: list[tuple[Path, bool]] = []

    def open_one(finding: Finding, raw: bytes) -> None:
        store = CaseStore(root, actor="worker@lab")
        start.wait()
        case, created = store.open_for_finding(finding, raw, "sqs")
        opened.append((case.path, created))

    threads = [threading.Thread(target=open_one, args=pair) for pair in findings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return opened


def test_two_findings_about_one_pod_opened_at_once_by_two_writers_give_one_case(tmp_path: Path) -> None:
    """Two workers receive two findings about the same pod at the same moment: the workload is claimed
    before a case is created, so the second waits for the first's case and joins it (before, both looked,
    found no case, and both created one)."""
    for n in range(8):
        root = tmp_path / f"round-{n}"
        pod = Pod(name=f"racer-{n}")
        opened = _race(root, [_read(runtime_finding("reverse-shell", pod, finding_id=c * 32)) for c in "de"])
        cases = sorted(p.name for p in root.iterdir() if p.name.startswith("eksir-"))
        assert len(cases) == 1, f"round {n}: {cases}"
        assert sorted(created for _, created in opened) == [False, True]
        joined = [e for e in CaseStore(root).get(cases[0]).log.events() if e.type == "case.joined"]
        assert len(joined) == 1

"""Crash safety: a process killed between writing a file and logging it (or mid-append) leaves a case that
`eksir case repair` brings back to a verifiable state, recording every repair as an event."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from eksir.store import CaseHandle, CaseStore, verify_case
from eksir.store.atomic import sha256_bytes, sha256_file
from tests.cli.helpers import REPO, run_eksir
from tests.factories import make_finding

RAW = b'{"detail-type": "GuardDuty Finding", "detail": {}}\n'
VOLATILE = b"volatile memory capture"

KILLED_BEFORE_LOG = """
import os, sys
from pathlib import Path
import eksir.store.case_store as store
real = store.CaseHandle.append
def append(self, event_type, data=None):
    if event_type == "evidence.collected":
        os._exit(9)  # the machine dies after the file is written, before its custody line
    return real(self, event_type, data)
store.CaseHandle.append = append
store.CaseHandle(Path(sys.argv[1]), "crasher").add_evidence("memory.bin", sys.argv[2].encode(), "test")
"""

KILLED_BEFORE_RENAME = """
import os, sys
from pathlib import Path
import eksir.store.case_store as store
def commit(pending, path, *, exclusive=False):
    if exclusive:
        os._exit(9)  # the custody line is written, the file is not in place yet
    os.replace(pending, path)
store.commit = commit
store.CaseHandle(Path(sys.argv[1]), "crasher").add_evidence("memory.bin", sys.argv[2].encode(), "test")
"""

KILLED_BEFORE_LISTED = """
import os, sys
from pathlib import Path
import eksir.store.case_store as store
real = store.CaseHandle.save
def save(self, case, message):
    if message.startswith("evidence"):
        os._exit(9)  # logged and in place, not yet listed in case.json
    return real(self, case, message)
store.CaseHandle.save = save
store.CaseHandle(Path(sys.argv[1]), "crasher").add_evidence("memory.bin", sys.argv[2].encode(), "test")
"""


def _case(tmp_path: Path) -> CaseHandle:
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(make_finding(), RAW, "finding.json")
    return handle


def _crash(code: str, handle: CaseHandle) -> None:
    child = subprocess.run(
        [sys.executable, "-c", code, str(handle.path), VOLATILE.decode()],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr


def _types(handle: CaseHandle) -> list[str]:
    return [e.type for e in handle.log.events()]


def test_a_collection_killed_before_its_custody_line_leaves_a_verifiable_case_and_no_reused_number(
    tmp_path: Path,
) -> None:
    handle = _case(tmp_path)
    _crash(KILLED_BEFORE_LOG, handle)

    assert verify_case(handle).ok, verify_case(handle).problems
    later = handle.add_evidence("later.txt", b"collected after the crash", "test")
    assert later.number == 3  # number 2 was taken by the interrupted write
    result = run_eksir("case", "repair", str(handle.path))

    assert result.returncode == 0, result.stderr
    orphan = next(e for e in handle.log.events() if e.type == "repair.orphan-recorded")
    assert orphan.data["sha256"] == sha256_bytes(VOLATILE)
    assert (handle.path / str(orphan.data["path"])).read_bytes() == VOLATILE
    assert verify_case(handle).ok


def test_a_collection_killed_between_its_custody_line_and_the_rename_is_finished_by_repair(
    tmp_path: Path,
) -> None:
    handle = _case(tmp_path)
    _crash(KILLED_BEFORE_RENAME, handle)
    before = verify_case(handle)

    result = run_eksir("case", "repair", str(handle.path))

    assert not before.ok
    assert any("missing" in p and "eksir case repair" in p for p in before.problems)
    assert result.returncode == 0, result.stderr
    assert "repair.write-completed" in _types(handle)
    item = next(i for i in handle.load().evidence if i.number == 2)
    assert sha256_file(handle.path / item.path) == sha256_bytes(VOLATILE)
    assert verify_case(handle).ok


def test_a_torn_last_log_line_is_cut_kept_in_a_repair_event_and_work_goes_on(tmp_path: Path) -> None:
    handle = _case(tmp_path)
    torn = b'{"seq": 9, "at": "2026-12-07T10:00'
    with (handle.path / "events.jsonl").open("ab") as log:
        log.write(torn)
    blocked = run_eksir("case", "close", str(handle.path))

    repaired = run_eksir("case", "repair", str(handle.path))
    handle.append("note", {"text": "work goes on"})

    assert blocked.returncode == 6
    assert "eksir case repair" in blocked.stderr
    assert "line -1" not in blocked.stderr
    assert repaired.returncode == 0, repaired.stderr
    event = next(e for e in handle.log.events() if e.type == "repair.torn-tail")
    assert base64.b64decode(str(event.data["bytes_b64"])) == torn
    assert verify_case(handle).ok


def test_a_file_an_earlier_version_wrote_but_never_logged_is_not_overwritten_and_repair_records_it(
    tmp_path: Path,
) -> None:
    handle = _case(tmp_path)
    orphan = handle.path / "evidence" / "002-memory.bin"
    orphan.write_bytes(VOLATILE)  # what the old write-then-log order left after a crash
    assert not verify_case(handle).ok

    later = handle.add_evidence("memory.bin", b"a second capture", "test")
    result = run_eksir("case", "repair", str(handle.path), "--output", "json")

    assert later.number == 3
    assert orphan.read_bytes() == VOLATILE
    assert result.returncode == 0, result.stderr
    assert "evidence/002-memory.bin" in result.stdout
    assert verify_case(handle).ok


def test_evidence_logged_but_not_listed_by_a_killed_writer_is_listed_by_the_next_collection(
    tmp_path: Path,
) -> None:
    """In fleet mode the next writer is another worker resuming the case: no one runs `case repair` there."""
    handle = _case(tmp_path)
    _crash(KILLED_BEFORE_LISTED, handle)
    assert not verify_case(handle).ok

    later = handle.add_evidence("later.txt", b"collected after the crash", "test")

    assert later.number == 3
    assert [i.number for i in handle.load().evidence] == [1, 2, 3]
    listed = next(e for e in handle.log.events() if e.type == "repair.evidence-listed")
    assert listed.data == {"number": 2, "path": "evidence/002-memory.bin"}
    assert verify_case(handle).ok, verify_case(handle).problems

"""One writer per case across processes: real processes collecting evidence, and real `eksir` commands refused
while another process holds the case (exit 12 naming it) or queued behind it with --wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from eksir.store import CaseHandle, CaseStore, verify_case
from eksir.store.atomic import sha256_file
from tests.cli.helpers import REPO, run_eksir
from tests.factories import make_finding

RAW = b'{"detail-type": "GuardDuty Finding", "detail": {}}\n'

COLLECTOR = """
import sys, time
from pathlib import Path
from eksir.store import CaseHandle
case, who, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
handle = CaseHandle(case, who)
for i in range(15):
    handle.add_evidence("artefact.txt", f"{who} artefact {i}".encode(), "test")
"""

HOLDER = """
import sys, time
from pathlib import Path
from eksir.store.lock import case_lease
case, held, release = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
with case_lease(case, "eksir test-holder"):
    held.write_text("held")
    while not release.exists():
        time.sleep(0.02)
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _case(tmp_path: Path) -> CaseHandle:
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(make_finding(), RAW, "finding.json")
    return handle


def _wait_for(path: Path, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never got there"
        time.sleep(0.02)


def test_two_processes_collecting_evidence_number_every_item_once_and_overwrite_nothing(
    tmp_path: Path,
) -> None:
    handle = _case(tmp_path)
    go = tmp_path / "go"
    children = [_python(COLLECTOR, str(handle.path), who, str(go)) for who in ("alice", "bob")]
    go.write_text("go")
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err

    items = handle.load().evidence
    collected = [e for e in handle.log.events() if e.type == "evidence.collected"]
    assert sorted(i.number for i in items) == list(range(1, 32))
    assert len(collected) == 31
    assert len({e.data["path"] for e in collected}) == 31
    assert all(sha256_file(handle.path / i.path) == i.sha256 for i in items)
    assert verify_case(handle).ok


def test_a_command_on_a_case_another_process_writes_exits_12_naming_the_holder(tmp_path: Path) -> None:
    handle = _case(tmp_path)
    held, release = tmp_path / "held", tmp_path / "release"
    holder = _python(HOLDER, str(handle.path), str(held), str(release))
    try:
        _wait_for(held, holder)
        result = run_eksir("case", "close", str(handle.path), "--cases-dir", str(tmp_path / "cases"))
    finally:
        release.write_text("go")
        holder.communicate(timeout=30)

    assert result.returncode == 12
    assert result.stderr.startswith("eksir: error: case ")
    assert f"pid {holder.pid} on " in result.stderr
    assert "eksir test-holder" in result.stderr
    assert "--wait" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "case.closed" not in [e.type for e in handle.log.events()]


def test_with_wait_a_command_queues_until_the_holder_releases_the_case(tmp_path: Path) -> None:
    handle = _case(tmp_path)
    held, release = tmp_path / "held", tmp_path / "release"
    holder = _python(HOLDER, str(handle.path), str(held), str(release))
    _wait_for(held, holder)
    archive = tmp_path / "case.tar.gz"
    _make_key(tmp_path / "key")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "eksir", "case", "export", str(handle.path), "--wait", "--out", str(archive),
         "--key", str(tmp_path / "key")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )  # fmt: skip
    time.sleep(2.0)
    still_waiting = waiting.poll() is None and not archive.exists()
    release.write_text("go")
    holder.communicate(timeout=30)
    _, err = waiting.communicate(timeout=120)

    assert still_waiting, "the --wait command ran while another process held the case"
    assert waiting.returncode == 0, err
    assert archive.is_file()


def _make_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)


def test_verify_flags_an_evidence_path_collected_twice(tmp_path: Path) -> None:
    handle = _case(tmp_path)
    item = handle.add_evidence("memory.bin", b"first capture", "test")
    (handle.path / item.path).write_bytes(b"second capture, same number")
    handle.append(
        "evidence.collected", {**item.model_dump(mode="json"), "sha256": sha256_file(handle.path / item.path)}
    )

    problems = verify_case(handle).problems

    assert (
        f"{item.path}: collected 2 times (evidence is written once; one write replaced another)" in problems
    )


def test_verify_cross_checks_case_json_evidence_list_against_the_log(tmp_path: Path) -> None:
    handle = _case(tmp_path)
    item = handle.add_evidence("memory.bin", b"a capture", "test")
    case = handle.load()
    handle.save(case.model_copy(update={"evidence": case.evidence[:1]}), "an item dropped from the list")

    problems = verify_case(handle).problems

    assert any(p.startswith(f"{item.path}: logged as collected but missing from case.json") for p in problems)

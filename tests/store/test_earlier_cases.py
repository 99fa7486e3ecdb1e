"""Cases and exports written by eksir before write-ahead, leases and anchoring (made with commit 03ec08c and
kept in tests/data) still verify, read, and need no repair."""

from __future__ import annotations

import shutil
from pathlib import Path

from eksir.store import CaseStore, verify_case
from tests.cli.helpers import REPO, run_eksir

EARLIER = REPO / "tests" / "data" / "cases" / "pre-custody"
CASE_ID = "eksir-20261120-ade95b1665"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "cases" / CASE_ID
    shutil.copytree(EARLIER / CASE_ID, target)
    return target


def test_a_case_written_before_this_change_verifies_and_is_reported_not_anchored(tmp_path: Path) -> None:
    path = _copy(tmp_path)

    report = verify_case(CaseStore(tmp_path / "cases").get(CASE_ID))
    shown = run_eksir("case", "show", str(path), "--output", "json")

    assert report.ok, report.problems
    assert report.anchoring.startswith("not anchored")
    assert shown.returncode == 0, shown.stderr


def test_a_case_written_before_this_change_needs_no_repair_and_stays_unchanged(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    before = (path / "events.jsonl").read_bytes()

    result = run_eksir("case", "repair", str(path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nothing to repair"
    assert (path / "events.jsonl").read_bytes() == before


def test_an_export_made_before_this_change_is_trusted_only_with_its_pinned_key(
    tmp_path: Path,
) -> None:
    fingerprint = (EARLIER / "fingerprint.txt").read_text().strip()
    archive = EARLIER / "pre-custody.tar.gz"

    pinned = run_eksir("case", "verify", str(archive), "--trusted-key", fingerprint)
    (tmp_path / "keys").write_text("# nobody pinned yet\n")
    unpinned = run_eksir("case", "verify", str(archive), "--trusted-keys", str(tmp_path / "keys"))

    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert unpinned.returncode == 6
    assert f"valid signature, untrusted key {fingerprint}" in unpinned.stdout

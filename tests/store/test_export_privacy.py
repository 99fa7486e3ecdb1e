"""Issue 12 items 13/14: an export is streamed (never held in memory), its members are readable by their
owner only, evidence that holds secrets is marked in the manifest and the report, and the archive can be
encrypted to its receiver with age."""

from __future__ import annotations

import os
import tarfile
import tracemalloc
from pathlib import Path

import orjson
import pytest
from pyrage import x25519

from eksir.errors import BadInputError, ExitCode
from eksir.report import generate_report
from eksir.safetext import md_escape
from eksir.store import CaseHandle
from eksir.store.export import MANIFEST_NAME, export_case, verify_archive
from eksir.store.keys import default_key_path, fingerprint, load_or_create_key
from eksir.store.sensitivity import NODE_CAPTURE, VOLATILE_DESCRIPTION
from tests.cli.helpers import run_eksir
from tests.report.case_builder import build_case

CAPTURE_SOURCE = "s3://evidence/eksir/case/node-capture.tar.gz"


@pytest.fixture
def case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CaseHandle:
    """A case holding a node capture recorded the way the volatile-capture step records it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    handle = build_case(tmp_path / "cases")
    handle.add_evidence(
        "node-capture.tar.gz",
        b"proc/1234/environ: AWS_SECRET_ACCESS_KEY=...",
        source=CAPTURE_SOURCE,
        description=f"{VOLATILE_DESCRIPTION}, as uploaded to {CAPTURE_SOURCE}",
        media_type="application/octet-stream",
    )
    return handle


def _manifest(archive: Path) -> dict[str, object]:
    with tarfile.open(archive, "r:gz") as tar:
        return dict(orjson.loads(tar.extractfile(MANIFEST_NAME).read()))  # type: ignore[union-attr]


def test_every_archive_member_is_readable_by_its_owner_only(case: CaseHandle, tmp_path: Path) -> None:
    archive = export_case(case, tmp_path / "out.tar.gz").archive
    with tarfile.open(archive, "r:gz") as tar:
        modes = {m.name: m.mode for m in tar.getmembers() if m.isfile()}
    assert set(modes.values()) == {0o600}, modes
    assert os.stat(archive).st_mode & 0o077 == 0


def test_a_node_capture_is_marked_sensitive_in_the_signed_manifest_and_the_export_event(
    case: CaseHandle, tmp_path: Path
) -> None:
    result = export_case(case, tmp_path / "out.tar.gz")
    files = {f["path"]: f for f in _manifest(result.archive)["files"]}  # type: ignore[attr-defined]
    marked = {path: f["sensitive"] for path, f in files.items() if "sensitive" in f}
    assert marked == {f"{case.load().id}/evidence/002-node-capture.tar.gz": NODE_CAPTURE}
    assert result.sensitive == list(marked)
    exported = [e for e in case.log.events() if e.type == "case.exported"][-1]
    assert exported.data["sensitive_files"] == list(marked)
    assert verify_archive(result.archive, trusted={result.fingerprint}).ok


def test_the_report_marks_the_node_capture_sensitive(case: CaseHandle) -> None:
    report, _ = generate_report(case, ["md", "json"])
    assert [e.name for e in report.evidence if e.sensitive] == ["node-capture.tar.gz"]
    markdown = (case.path / "report.md").read_text()
    assert "**1 item(s) hold secrets**" in markdown
    assert md_escape(f"SENSITIVE: {NODE_CAPTURE}") in markdown


def test_an_export_encrypted_to_a_recipient_verifies_only_with_its_identity(
    case: CaseHandle, tmp_path: Path
) -> None:
    identity = x25519.Identity.generate()
    key_file = tmp_path / "receiver.key"
    key_file.write_text(f"# receiver\n{identity}\n")
    result = export_case(case, tmp_path / "out.tar.gz.age", recipients=[str(identity.to_public())])
    archive = result.archive
    assert archive.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert verify_archive(archive, trusted={result.fingerprint}, identity=key_file).ok
    with pytest.raises(BadInputError, match="encrypted with age"):
        verify_archive(archive)
    stranger = tmp_path / "stranger.key"
    stranger.write_text(f"{x25519.Identity.generate()}\n")
    with pytest.raises(BadInputError, match="cannot decrypt"):
        verify_archive(archive, identity=stranger)


def test_the_cli_encrypts_with_recipient_and_verifies_with_identity(case: CaseHandle, tmp_path: Path) -> None:
    identity = x25519.Identity.generate()
    key_file = tmp_path / "receiver.key"
    key_file.write_text(f"{identity}\n")
    archive = tmp_path / "out.tar.gz.age"
    done = run_eksir("case", "export", str(case.path), "--out", str(archive), "-r", str(identity.to_public()))
    assert done.returncode == 0, done.stderr
    assert "encrypted to 1 age recipient(s)" in done.stdout
    assert "sensitive" in done.stdout
    signer, _, _ = load_or_create_key(default_key_path())  # the key export created on first use
    pinned = ["--trusted-key", fingerprint(signer.public_key())]
    assert run_eksir("case", "verify", str(archive), "--identity", str(key_file), *pinned).returncode == 0
    refused = run_eksir("case", "verify", str(archive))
    assert refused.returncode == ExitCode.BAD_INPUT
    assert refused.stderr.strip().endswith("give the key with --identity FILE")


def test_a_malformed_recipient_is_bad_input_and_writes_nothing(case: CaseHandle, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not an age X25519 public key"):
        export_case(case, tmp_path / "out.tar.gz", recipients=["age1notakey"])
    assert list(tmp_path.glob("out.tar.gz*")) == []


def test_export_streams_the_archive_instead_of_holding_it_in_memory(case: CaseHandle, tmp_path: Path) -> None:
    size = 48 << 20
    case.add_evidence("disk.bin", os.urandom(size), source="test", description="incompressible")
    tracemalloc.start()
    try:
        export_case(case, tmp_path / "big.tar.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "big.tar.gz").stat().st_size > size
    assert peak < size // 4, f"peak {peak:,} bytes while exporting {size:,} bytes"

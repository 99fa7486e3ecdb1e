"""Signed export of a case and verification of the archive on another machine."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eksir.errors import BadInputError, CaseInvalidError
from eksir.store.export import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    export_case,
    fingerprint,
    is_archive,
    verify_archive,
)
from tests.report.case_builder import build_case


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    handle = build_case(tmp_path / "cases")
    result = export_case(handle, tmp_path / "out" / "case.tar.gz")
    return result.archive, result.fingerprint


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _repack(archive: Path, members: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(buffer.getvalue())


def test_export_creates_the_key_on_first_use_with_owner_only_permissions(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    handle = build_case(tmp_path / "cases")
    first = export_case(handle, tmp_path / "a.tar.gz")
    second = export_case(handle, tmp_path / "b.tar.gz")
    assert first.key_created
    assert not second.key_created
    assert first.key_path == tmp_path / "config" / "eksir" / "signing-key"
    assert first.key_path.stat().st_mode & 0o077 == 0
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint.startswith("SHA256:")


def test_a_fresh_export_verifies_with_signature_hashes_and_event_chain(exported):
    archive, expected = exported
    result = verify_archive(archive, expect_fingerprint=expected)
    assert result.ok, result.problems
    assert result.fingerprint == expected
    assert result.files_checked >= 6
    assert result.events_checked > 5
    assert is_archive(archive)


def test_flipping_one_byte_of_a_member_fails_verification(exported):
    archive, _ = exported
    members = _members(archive)
    name = next(n for n in members if n.endswith("/triage.json"))
    data = bytearray(members[name])
    data[10] ^= 0x01
    members[name] = bytes(data)
    _repack(archive, members)
    result = verify_archive(archive)
    assert not result.ok
    assert any(name in p and "altered" in p for p in result.problems)


def test_editing_the_manifest_to_match_a_changed_file_breaks_the_signature(exported):
    archive, _ = exported
    members = _members(archive)
    name = next(n for n in members if n.endswith("/summary.md"))
    members[name] = members[name] + b"forged line\n"
    manifest = orjson.loads(members[MANIFEST_NAME])

    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = hashlib.sha256(members[name]).hexdigest()
    members[MANIFEST_NAME] = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    _repack(archive, members)
    result = verify_archive(archive)
    assert any("signature is invalid" in p for p in result.problems)


def test_resigning_with_another_key_is_caught_by_the_expected_fingerprint_and_the_case_chain(exported):
    archive, original = exported
    members = _members(archive)
    name = next(n for n in members if n.endswith("/events.jsonl"))
    members[name] = members[name].replace(b"responder@host", b"someone@else", 1)
    manifest = orjson.loads(members[MANIFEST_NAME])

    forger = Ed25519PrivateKey.generate()
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = hashlib.sha256(members[name]).hexdigest()
    raw = forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    manifest["public_key"] = base64.b64encode(raw).decode()
    body = orjson.dumps(manifest)
    members[MANIFEST_NAME] = body
    members[SIGNATURE_NAME] = base64.b64encode(forger.sign(body))
    _repack(archive, members)
    result = verify_archive(archive, expect_fingerprint=original)
    assert result.fingerprint == fingerprint(forger.public_key())
    assert any("not the expected" in p for p in result.problems)
    assert any(p.startswith("case record: events.jsonl") for p in result.problems)


def test_an_unlisted_extra_member_is_reported(exported):
    archive, _ = exported
    members = _members(archive)
    case_dir = next(n for n in members if n.endswith("/case.json")).split("/")[0]
    members[f"{case_dir}/evidence/999-planted.bin"] = b"planted"
    _repack(archive, members)
    result = verify_archive(archive)
    assert any("999-planted.bin" in p and "not listed" in p for p in result.problems)


def test_a_member_escaping_the_directory_is_refused_as_bad_input(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    _repack(archive, {"../escape.txt": b"x", MANIFEST_NAME: b"{}"})
    with pytest.raises(BadInputError):
        verify_archive(archive)
    assert not (tmp_path / "escape.txt").exists()


def test_a_file_that_is_not_an_archive_is_bad_input(tmp_path):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(BadInputError):
        verify_archive(path)


def test_export_refuses_a_case_that_fails_verification(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    handle = build_case(tmp_path / "cases")
    (handle.path / "triage.json").write_bytes(b"{}")
    with pytest.raises(CaseInvalidError, match="refusing to sign"):
        export_case(handle, tmp_path / "x.tar.gz")


def test_an_explicit_key_that_does_not_exist_is_bad_input(tmp_path):
    handle = build_case(tmp_path / "cases")
    with pytest.raises(BadInputError, match="does not exist"):
        export_case(handle, tmp_path / "x.tar.gz", tmp_path / "missing-key")

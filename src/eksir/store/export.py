"""Hand a case to someone else: one signed tar.gz that can be verified on another machine.

Why a signed manifest and not just the case's own hashes: the event chain proves the record was not edited
*inside* the case, but anyone who can rewrite the whole bundle can rebuild a consistent chain. The
manifest lists the sha256 of every file and is signed with an Ed25519 key that stays with the exporting
responder; the public key and its fingerprint travel in the archive, and the fingerprint is printed so the
receiver can compare it over another channel (or pin it with `--expect-fingerprint`). Without that
comparison a valid signature only proves the archive is internally consistent, so verification says which
key signed.

Archive layout: `<case-id>/...` (every file of the case directory), `eksir-manifest.json` and
`eksir-manifest.sig` (base64 signature over the manifest's exact bytes). Members are written in sorted
order with fixed ownership so two exports of the same case differ only in the manifest's export time.
"""

from __future__ import annotations

import base64
import io
import os
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eksir.errors import BadInputError, CaseInvalidError
from eksir.models.case import EvidenceItem
from eksir.store.anchor import chain_head
from eksir.store.atomic import sha256_bytes, sha256_file
from eksir.store.case_store import CaseHandle
from eksir.store.encryption import decrypt_file, encrypt_file, is_encrypted, parse_recipients
from eksir.store.keys import fingerprint, load_or_create_key
from eksir.store.sensitivity import sensitive_reason
from eksir.store.tar_reader import (
    archive_members,
    check_member,
    copy_member,
    open_tar,
    private_file,
    reading,
)
from eksir.store.verify import verify_case

EXPORT_SCHEMA = "eksir.export/v1"
MANIFEST_NAME = "eksir-manifest.json"
SIGNATURE_NAME = "eksir-manifest.sig"
_MAX_MANIFEST_BYTES = 16 << 20
MEMBER_MODE = 0o600


@dataclass(frozen=True)
class ExportResult:
    archive: Path
    case_id: str
    files: int
    fingerprint: str
    key_path: Path
    key_created: bool
    sensitive: list[str] = field(default_factory=list)


@dataclass
class ArchiveVerification:
    archive: Path
    case_id: str | None = None
    fingerprint: str | None = None
    files_checked: int = 0
    events_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def case_files(root: Path) -> list[Path]:
    """Every regular file of the case, sorted; hidden files (temporary writes) are not part of the record."""
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink():
            raise CaseInvalidError(f"{relative}: symbolic links are not allowed in a case")
        if path.is_file():
            files.append(path)
    return files


def export_case(
    handle: CaseHandle, out: Path, key_path: Path | None = None, recipients: Sequence[str] = ()
) -> ExportResult:
    """Verify the case, then write it as a signed tar.gz; raises CaseInvalidError if the case fails verify.

    Refusing to export a case that fails verification matters: signing it would vouch for altered evidence.
    The archive is streamed to a private temporary file beside `out` and renamed into place (never held in
    memory, never half-written); members are 0600; with `recipients` (age public keys) it is encrypted.
    """
    report = verify_case(handle)
    if not report.ok:
        raise CaseInvalidError(
            f"case {handle.path} fails verification ({report.problems[0]}); refusing to sign it"
        )
    age_recipients = parse_recipients(recipients)
    case = handle.load()
    seq, head = chain_head(handle)
    key, used_key_path, created = load_or_create_key(key_path)
    files = case_files(handle.path)
    entries = _manifest_entries(handle.path, case.id, files, case.evidence)
    manifest = _manifest(handle, case.id, key, entries, (seq, head))
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    signature = base64.b64encode(key.sign(manifest_bytes)) + b"\n"
    _write_archive(out, manifest_bytes, signature, list(zip(files, entries, strict=True)), age_recipients)
    sensitive = [str(e["path"]) for e in entries if e.get("sensitive")]
    handle.append(
        "case.exported",
        {
            "archive": out.name,
            "files": len(entries),
            "key_fingerprint": manifest["key_fingerprint"],
            "manifest_sha256": sha256_bytes(manifest_bytes),
            "chain_head": {"seq": seq, "hash": head},
            "sensitive_files": sensitive,
            "encrypted_to": list(recipients),
        },
    )
    return ExportResult(
        out, case.id, len(entries), str(manifest["key_fingerprint"]), used_key_path, created, sensitive
    )


def _manifest_entries(
    root: Path, case_id: str, files: list[Path], evidence: Sequence[EvidenceItem]
) -> list[dict[str, Any]]:
    """One entry per file: path in the archive, sha256, size, and why it is sensitive when it is."""
    reasons = {item.path: sensitive_reason(item, root) for item in evidence}
    entries: list[dict[str, Any]] = []
    for path in files:
        relative = path.relative_to(root).as_posix()
        entry: dict[str, Any] = {
            "path": f"{case_id}/{relative}",
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
        }
        if reasons.get(relative):
            entry["sensitive"] = reasons[relative]
        entries.append(entry)
    return entries


def _write_archive(
    out: Path,
    manifest: bytes,
    signature: bytes,
    members: list[tuple[Path, dict[str, Any]]],
    recipients: Sequence[Any],
) -> None:
    """Stream the tar.gz (and its age encryption) to private temporary files, then rename into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        plain = Path(tmp) / "archive.tar.gz"
        with private_file(plain) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST_NAME, manifest)
            _add_bytes(tar, SIGNATURE_NAME, signature)
            for path, entry in members:
                info = tar.gettarinfo(str(path), arcname=str(entry["path"]))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = MEMBER_MODE
                with path.open("rb") as data:
                    tar.addfile(info, data)
        final = plain
        if recipients:
            final = Path(tmp) / "archive.tar.gz.age"
            encrypt_file(plain, final, recipients)
        with final.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(final, out)


def _manifest(
    handle: CaseHandle,
    case_id: str,
    key: Ed25519PrivateKey,
    entries: list[dict[str, Any]],
    head: tuple[int, str],
) -> dict[str, Any]:
    """What the signature covers: every file's hash, the signing key, and the chain head exported."""
    public = key.public_key()
    return {
        "schema": EXPORT_SCHEMA,
        "case_id": case_id,
        "exported_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "exported_by": handle.actor,
        "algorithm": "ed25519",
        "public_key": base64.b64encode(
            public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ).decode(),
        "key_fingerprint": fingerprint(public),
        "chain_head": {"seq": head[0], "hash": head[1]},
        "files": entries,
    }


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = MEMBER_MODE
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def is_archive(path: Path) -> bool:
    """True for a file that looks like a gzip'd export (magic bytes, not the name)."""
    try:
        with path.open("rb") as handle:
            return path.is_file() and handle.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def verify_archive(
    archive: Path,
    expect_fingerprint: str | None = None,
    trusted: set[str] | None = None,
    identity: Path | None = None,
) -> ArchiveVerification:
    """Check signature, every listed hash, that nothing unlisted is present, and the case's own event chain.

    The archive is hostile until proven otherwise, so the order matters (issue 12): every member's name,
    type, the member count and the total size are checked from the headers before anything is written or
    hashed (`archive_members`); the manifest and its signature must come first and are checked next; a bad
    signature stops there, and a valid one from a key not in `trusted` (or `expect_fingerprint`) is
    reported as untrusted; only then are members hashed while they stream into a private temporary
    directory, where the case's own chain is verified and must end at the signed chain head. An
    age-encrypted archive is decrypted first with `identity`. Raises BadInputError for a file that is not a
    readable, well-formed export; every integrity
    failure is reported, not raised.
    """
    with tempfile.TemporaryDirectory(prefix="eksir-verify-") as tmp:
        unpacked = Path(tmp) / "unpacked"
        tar_path = archive
        if is_encrypted(archive):
            if identity is None:
                raise BadInputError(f"{archive} is encrypted with age: give the key with --identity FILE")
            tar_path = Path(tmp) / "archive.tar.gz"
            decrypt_file(archive, tar_path, identity)
        with reading(str(archive)), tar_path.open("rb") as stream:
            return _verify_stream(archive, stream, unpacked, expect_fingerprint, trusted or set())


def _verify_stream(
    archive: Path, stream: BinaryIO, root: Path, expect: str | None, trusted: set[str]
) -> ArchiveVerification:
    """Both passes read one open file, so the archive checked from its headers is the one unpacked."""
    result = ArchiveVerification(archive)
    members = archive_members(stream, str(archive))
    stream.seek(0)
    root.mkdir(mode=0o700)
    with open_tar(stream, str(archive), "r|gz") as tar, reading(str(archive)):
        manifest = _read_head(tar, root, result)
        if manifest is None:
            return result
        _check_signature(root, manifest, result, expect)
        if result.fingerprint is None:
            return result  # a bad signature: nothing in the archive can be trusted, so nothing is checked
        _check_trust(result, expect, trusted)
        hashes = _stream_members(tar, root, str(archive))
    _check_files(manifest, set(members), hashes, result)
    case_dir = root / str(result.case_id)
    if result.case_id and (case_dir / "case.json").is_file():
        chain = verify_case(CaseHandle(case_dir, "verifier"))
        result.events_checked = chain.events_checked
        result.problems.extend(f"case record: {p}" for p in chain.problems)
        result.problems.extend(_check_head(manifest, case_dir))
    else:
        result.problems.append("the archive holds no case directory with case.json")
    return result


def _read_head(tar: tarfile.TarFile, root: Path, result: ArchiveVerification) -> dict[str, Any] | None:
    """The manifest and its signature, which an export writes first; None (with the problem) otherwise."""
    for expected in (MANIFEST_NAME, SIGNATURE_NAME):
        member = tar.next()
        if member is None or member.name != expected or not member.isfile():
            result.problems.append(
                f"the archive does not start with {MANIFEST_NAME} and {SIGNATURE_NAME}: "
                "not a signed eksir export"
            )
            return None
        if member.size > _MAX_MANIFEST_BYTES:
            result.problems.append(f"{expected} is implausibly large")
            return None
        copy_member(tar, member, root / expected)
    return _read_manifest(root, {MANIFEST_NAME, SIGNATURE_NAME}, result)


def _stream_members(tar: tarfile.TarFile, root: Path, archive: str) -> dict[str, str]:
    """Write each remaining file under `root` (0600), hashing it as it streams; returns name -> sha256."""
    hashes: dict[str, str] = {}
    seen: set[str] = {MANIFEST_NAME, SIGNATURE_NAME}
    while (member := tar.next()) is not None:
        check_member(member, archive, seen)
        if member.isfile():
            hashes[member.name] = copy_member(tar, member, root / member.name)
    return hashes


def _read_manifest(root: Path, members: set[str], result: ArchiveVerification) -> dict[str, Any] | None:
    path = root / MANIFEST_NAME
    if MANIFEST_NAME not in members or SIGNATURE_NAME not in members:
        result.problems.append(f"{MANIFEST_NAME} or {SIGNATURE_NAME} is missing: not a signed eksir export")
        return None
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        result.problems.append(f"{MANIFEST_NAME} is implausibly large")
        return None
    try:
        manifest = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        result.problems.append(f"{MANIFEST_NAME} is not valid JSON")
        return None
    if not isinstance(manifest, dict) or manifest.get("schema") != EXPORT_SCHEMA:
        result.problems.append(f"{MANIFEST_NAME} is not an {EXPORT_SCHEMA} manifest")
        return None
    result.case_id = str(manifest.get("case_id") or "") or None
    if result.case_id and ("/" in result.case_id or result.case_id.startswith(".")):
        result.problems.append(f"{MANIFEST_NAME} names an invalid case id")
        result.case_id = None
    return manifest


def _check_signature(
    root: Path, manifest: dict[str, Any], result: ArchiveVerification, expect: str | None
) -> None:
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(manifest.get("public_key", ""))))
        signature = base64.b64decode((root / SIGNATURE_NAME).read_bytes().strip(), validate=True)
        public.verify(signature, (root / MANIFEST_NAME).read_bytes())
    except (ValueError, InvalidSignature):
        result.problems.append("manifest signature is invalid (the manifest or signature was changed)")
        return
    result.fingerprint = fingerprint(public)
    if expect is not None and expect.strip() != result.fingerprint:
        result.problems.append(f"signed by key {result.fingerprint}, not the expected {expect.strip()}")


def _check_trust(result: ArchiveVerification, expect: str | None, trusted: set[str]) -> None:
    """A valid signature proves only that some key signed: trust it only from a key pinned beforehand."""
    if result.fingerprint is None or (expect is not None and expect.strip() != result.fingerprint):
        return  # no valid signature, or already reported as not the expected key
    if result.fingerprint not in trusted | ({expect.strip()} if expect else set()):
        result.problems.append(
            f"valid signature, untrusted key {result.fingerprint}: compare it with the sender, then pin it "
            "with --trusted-key or in the trusted-keys file"
        )


def _check_head(manifest: dict[str, Any], case_dir: Path) -> list[str]:
    """The signed manifest names the chain head it exported: the case inside must end exactly there."""
    signed = manifest.get("chain_head")
    if not isinstance(signed, dict):
        return []  # an export from before chain heads were signed
    try:
        seq, head = chain_head(CaseHandle(case_dir, "verifier"))
    except CaseInvalidError:
        return ["case record: no readable event chain to compare with the signed chain head"]
    if (seq, head) != (signed.get("seq"), signed.get("hash")):
        return [
            f"case record: the chain ends at event {seq}, not at the signed head (event {signed.get('seq')})"
        ]
    return []


def _check_files(
    manifest: dict[str, Any], members: set[str], hashes: dict[str, str], result: ArchiveVerification
) -> None:
    listed: set[str] = set()
    entries = manifest.get("files")
    for entry in entries if isinstance(entries, list) else []:
        name = str(entry.get("path", "")) if isinstance(entry, dict) else ""
        listed.add(name)
        result.files_checked += 1
        if name not in members:
            result.problems.append(f"{name}: listed in the manifest but missing from the archive")
        elif hashes.get(name) != entry.get("sha256"):
            result.problems.append(f"{name}: altered (sha256 differs from the signed manifest)")
    for name in sorted(members - listed - {MANIFEST_NAME, SIGNATURE_NAME}):
        result.problems.append(f"{name}: present in the archive but not listed in the signed manifest")

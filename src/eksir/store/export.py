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
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eksir.errors import BadInputError, CaseInvalidError
from eksir.store.anchor import chain_head
from eksir.store.atomic import sha256_bytes, sha256_file, write_atomic
from eksir.store.case_store import CaseHandle
from eksir.store.keys import fingerprint, load_or_create_key
from eksir.store.verify import verify_case

EXPORT_SCHEMA = "eksir.export/v1"
MANIFEST_NAME = "eksir-manifest.json"
SIGNATURE_NAME = "eksir-manifest.sig"
_MAX_MANIFEST_BYTES = 16 << 20


@dataclass(frozen=True)
class ExportResult:
    archive: Path
    case_id: str
    files: int
    fingerprint: str
    key_path: Path
    key_created: bool


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


def export_case(handle: CaseHandle, out: Path, key_path: Path | None = None) -> ExportResult:
    """Verify the case, then write it as a signed tar.gz; raises CaseInvalidError if the case fails verify.

    Refusing to export a case that fails verification matters: signing it would vouch for altered evidence.
    """
    report = verify_case(handle)
    if not report.ok:
        raise CaseInvalidError(
            f"case {handle.path} fails verification ({report.problems[0]}); refusing to sign it"
        )
    case_id = handle.load().id
    seq, head = chain_head(handle)
    key, used_key_path, created = load_or_create_key(key_path)
    files = case_files(handle.path)
    entries = [
        {
            "path": f"{case_id}/{p.relative_to(handle.path).as_posix()}",
            "sha256": sha256_file(p),
            "size": p.stat().st_size,
        }
        for p in files
    ]
    manifest = _manifest(handle, case_id, key, entries, (seq, head))
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    signature = base64.b64encode(key.sign(manifest_bytes)) + b"\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        _add_bytes(tar, MANIFEST_NAME, manifest_bytes)
        _add_bytes(tar, SIGNATURE_NAME, signature)
        for path, entry in zip(files, entries, strict=True):
            info = tar.gettarinfo(str(path), arcname=str(entry["path"]))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with path.open("rb") as data:
                tar.addfile(info, data)
    write_atomic(out, buffer.getvalue())
    handle.append(
        "case.exported",
        {
            "archive": out.name,
            "files": len(entries),
            "key_fingerprint": manifest["key_fingerprint"],
            "manifest_sha256": sha256_bytes(manifest_bytes),
            "chain_head": {"seq": seq, "hash": head},
        },
    )
    return ExportResult(out, case_id, len(entries), str(manifest["key_fingerprint"]), used_key_path, created)


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
    info.mode = 0o644
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
    archive: Path, expect_fingerprint: str | None = None, trusted: set[str] | None = None
) -> ArchiveVerification:
    """Check signature, every listed hash, that nothing unlisted is present, and the case's own event chain.

    Extraction goes to a private temporary directory with tarfile's `data` filter (no absolute paths, `..`,
    links or device files), so a hostile archive cannot write outside it. Raises BadInputError for a file that
    is not a readable export at all; every integrity failure is reported, not raised.
    """
    result = ArchiveVerification(archive)
    with tempfile.TemporaryDirectory(prefix="eksir-verify-") as tmp:
        root = Path(tmp)
        members = _extract(archive, root)
        manifest = _read_manifest(root, members, result)
        if manifest is None:
            return result
        _check_signature(root, manifest, result, expect_fingerprint)
        _check_trust(result, expect_fingerprint, trusted or set())
        _check_files(root, manifest, members, result)
        case_dir = root / str(result.case_id)
        if result.case_id and (case_dir / "case.json").is_file():
            chain = verify_case(CaseHandle(case_dir, "verifier"))
            result.events_checked = chain.events_checked
            result.problems.extend(f"case record: {p}" for p in chain.problems)
            result.problems.extend(_check_head(manifest, case_dir))
        else:
            result.problems.append("the archive holds no case directory with case.json")
    return result


def _extract(archive: Path, root: Path) -> set[str]:
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise BadInputError(f"{archive}: member {member.name!r} is not a regular file")
            tar.extractall(root, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BadInputError(f"{archive} is not a readable eksir export ({exc.__class__.__name__})") from exc
    return {m.name for m in members if m.isfile()}


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
    root: Path, manifest: dict[str, Any], members: set[str], result: ArchiveVerification
) -> None:
    listed: set[str] = set()
    entries = manifest.get("files")
    for entry in entries if isinstance(entries, list) else []:
        name = str(entry.get("path", "")) if isinstance(entry, dict) else ""
        listed.add(name)
        result.files_checked += 1
        if name not in members:
            result.problems.append(f"{name}: listed in the manifest but missing from the archive")
        elif sha256_file(root / name) != entry.get("sha256"):
            result.problems.append(f"{name}: altered (sha256 differs from the signed manifest)")
    for name in sorted(members - listed - {MANIFEST_NAME, SIGNATURE_NAME}):
        result.problems.append(f"{name}: present in the archive but not listed in the signed manifest")

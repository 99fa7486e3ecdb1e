"""The responder's Ed25519 keys: the signing key (exports, chain anchors) and the keys a verifier trusts.

Why a pinned list of trusted keys: a signature only proves that *some* key signed. Anyone who can rewrite an
export can re-sign it with a fresh key, so a verifier trusts a signature only from a key it was told about
beforehand over another channel (`--trusted-key`, or one fingerprint a line in the trusted-keys file).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eksir.errors import BadInputError

_MAX_KEYS_FILE = 1 << 20


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/eksir`, else `~/.config/eksir`."""
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "eksir"


def default_key_path() -> Path:
    """`$XDG_CONFIG_HOME/eksir/signing-key`, else `~/.config/eksir/signing-key`."""
    return config_dir() / "signing-key"


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SSH-style fingerprint of the raw public key: short enough to read out over the phone."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def load_or_create_key(path: Path | None) -> tuple[Ed25519PrivateKey, Path, bool]:
    """Load the signing key; create the default one (mode 0600) on first use. Returns (key, path, created).

    An explicitly given key must exist: silently generating a new key where the user named one would sign with
    a key nobody expects. Raises BadInputError for a missing explicit key or an unreadable/non-Ed25519 file.
    """
    explicit = path is not None
    key_path = path or default_key_path()
    if not key_path.exists():
        if explicit:
            raise BadInputError(f"signing key {key_path} does not exist")
        try:
            return _create_key(key_path), key_path, True
        except FileExistsError:
            pass  # another eksir process created it a moment ago: use that one
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BadInputError(f"cannot load signing key {key_path}: {exc.__class__.__name__}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInputError(f"signing key {key_path} is not an Ed25519 private key")
    return key, key_path, False


def _create_key(key_path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def trusted_keys_path() -> Path:
    """`$XDG_CONFIG_HOME/eksir/trusted-keys`: one fingerprint (SHA256:...) a line, `#` starts a comment."""
    return config_dir() / "trusted-keys"


def trusted_fingerprints(values: list[str], keys_file: Path | None = None) -> set[str]:
    """Fingerprints to trust: each value is a fingerprint or a public key file (PEM); plus the keys file's.

    Raises BadInputError for a value that is neither, or an explicitly named keys file that cannot be read.
    """
    trusted = {_fingerprint_of(value) for value in values}
    path = keys_file or trusted_keys_path()
    if keys_file is None and not path.is_file():
        return trusted
    try:
        text = path.read_bytes()[:_MAX_KEYS_FILE].decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInputError(f"cannot read the trusted keys file {path}: {exc.strerror}") from exc
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            trusted.add(entry)
    return trusted


def _fingerprint_of(value: str) -> str:
    if value.startswith("SHA256:"):
        return value.strip()
    try:
        key = serialization.load_pem_public_key(Path(value).read_bytes())
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"--trusted-key {value!r} is neither a SHA256: fingerprint nor a public key file"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadInputError(f"--trusted-key {value!r} is not an Ed25519 public key")
    return fingerprint(key)

"""Encrypt an exported archive to its receiver with age (X25519 recipients, via `pyrage`).

Why age: a case export carries node captures with process environments and container configs (often
credentials), and it travels by e-mail, tickets and shared drives. age needs no key server and no cloud
account on either side: the receiver runs `age-keygen`, sends the `age1...` public key, and decrypts with
`age -d -i key.txt` (or `eksir case verify --identity key.txt`). The Ed25519 signature inside stays the
proof of origin; encryption only keeps the content private in transit and at rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519

from eksir.errors import BadInputError
from eksir.store.tar_reader import private_file

AGE_MAGIC = b"age-encryption.org/v1\n"


def parse_recipients(values: Sequence[str]) -> list[Any]:
    """age X25519 recipients (`age1...`); raises BadInputError naming a malformed one."""
    recipients = []
    for value in values:
        try:
            recipients.append(x25519.Recipient.from_str(value.strip()))
        except pyrage.RecipientError as exc:
            raise BadInputError(f"--recipient {value!r} is not an age X25519 public key ({exc})") from None
    return recipients


def encrypt_file(source: Path, target: Path, recipients: Sequence[Any]) -> None:
    """Stream `source` into `target` (created 0600) encrypted to every recipient."""
    with source.open("rb") as plain, private_file(target) as sealed:
        pyrage.encrypt_io(plain, sealed, list(recipients))


def decrypt_file(source: Path, target: Path, identity_file: Path) -> None:
    """Stream the age file `source` into `target` (0600) with the identities in `identity_file`.

    Raises BadInputError for an unreadable identity file or a file none of its keys can open.
    """
    try:
        lines = identity_file.read_text().splitlines()
        identities = [
            x25519.Identity.from_str(line.strip()) for line in lines if line.startswith("AGE-SECRET")
        ]
    except (OSError, UnicodeDecodeError, pyrage.IdentityError) as exc:
        raise BadInputError(f"cannot read age identity {identity_file}: {exc}") from None
    if not identities:
        raise BadInputError(f"{identity_file} holds no age identity (AGE-SECRET-KEY-1...)")
    try:
        with source.open("rb") as sealed, private_file(target) as plain:
            pyrage.decrypt_io(sealed, plain, identities)
    except pyrage.DecryptError as exc:
        raise BadInputError(f"{source}: cannot decrypt with {identity_file} ({exc})") from None


def is_encrypted(path: Path) -> bool:
    """True for an age file (its header line, not its name)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(AGE_MAGIC)) == AGE_MAGIC
    except OSError:
        return False

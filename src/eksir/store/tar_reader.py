"""Reading a tar.gz that may be hostile: header checks and caps first, then members copied and hashed as
they stream.

Why not `extractall` (even with the `data` filter): it writes everything before anything is checked, so a
300 KB archive filled the temporary folder with 300 MB before verification said "not a signed export", and
names such as `/nonexistent/evil` still reached code that joined them to a path. Here a member name must be
a plain relative POSIX path in normal form, members must be regular files or folders, none may appear
twice, and the member count and total size are capped, all from the headers before a byte is written.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from eksir.errors import BadInputError

MAX_ARCHIVE_MEMBERS = 100_000
MAX_ARCHIVE_BYTES = 16 << 30
_COPY_CHUNK = 1 << 20


@contextmanager
def reading(name: str) -> Iterator[None]:
    """Turn any tar, gzip or I/O failure while reading `name` into one BadInputError line."""
    try:
        yield
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise BadInputError(f"{name} is not a readable eksir export ({exc.__class__.__name__})") from exc


def open_tar(stream: BinaryIO, name: str, mode: str) -> tarfile.TarFile:
    """`tarfile.open` on an open file (`r:gz` to seek through headers, `r|gz` to stream)."""
    with reading(name):
        return tarfile.open(fileobj=stream, mode=mode)  # type: ignore[call-overload, no-any-return]


def archive_members(stream: BinaryIO, name: str) -> dict[str, int]:
    """Every regular file's name and size, from the headers alone; raises BadInputError for an unsafe or
    duplicate name, a member that is neither a file nor a folder, more than MAX_ARCHIVE_MEMBERS members or
    more than MAX_ARCHIVE_BYTES of content."""
    members: dict[str, int] = {}
    seen: set[str] = set()
    total = 0
    with open_tar(stream, name, "r:gz") as tar, reading(name):
        while (member := tar.next()) is not None:
            check_member(member, name, seen)
            total += member.size
            if len(seen) > MAX_ARCHIVE_MEMBERS or total > MAX_ARCHIVE_BYTES:
                raise BadInputError(
                    f"{name}: more than {MAX_ARCHIVE_MEMBERS:,} members or {MAX_ARCHIVE_BYTES:,} bytes: "
                    "not an eksir export this tool will unpack"
                )
            if member.isfile():
                members[member.name] = member.size
    return members


def check_member(member: tarfile.TarInfo, archive: str, seen: set[str]) -> None:
    """Raise BadInputError unless `member` has a safe, new name and is a regular file or a folder."""
    if not is_safe_member_name(member.name):
        raise BadInputError(
            f"{archive}: member {member.name!r} is not a plain relative path; refusing the archive"
        )
    if not (member.isfile() or member.isdir()):
        raise BadInputError(f"{archive}: member {member.name!r} is not a regular file")
    if member.name in seen:
        raise BadInputError(f"{archive}: member {member.name!r} appears twice; refusing the archive")
    seen.add(member.name)


def is_safe_member_name(name: str) -> bool:
    """A relative POSIX path already in normal form: no leading `/`, no `..`, `.` or empty part."""
    if not name or name.startswith("/") or "\\" in name or not name.isprintable():
        return False
    parts = name.split("/")
    return all(part not in ("", ".", "..") for part in parts) and posixpath.normpath(name) == name


def copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    """Stream the member into a new private file `target` (0600), hashing on the way; returns the sha256."""
    source = tar.extractfile(member)
    if source is None:
        raise BadInputError(f"member {member.name!r} cannot be read")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    with source, private_file(target) as out:
        while chunk := source.read(_COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def private_file(path: Path) -> BinaryIO:
    """A new file only its owner can read (never an existing one: O_EXCL)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

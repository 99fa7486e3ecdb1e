"""Issue 12 item 10: `case verify ARCHIVE` treats the archive as hostile. Unsafe names are refused before
anything is written or hashed, the manifest and signature are read first, a bad signature stops the check,
the member count and size are capped, and members are hashed while they stream."""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import orjson
import pytest

from eksir.errors import BadInputError, ExitCode
from eksir.store import tar_reader
from eksir.store.export import MANIFEST_NAME, SIGNATURE_NAME, export_case, verify_archive
from tests.report.case_builder import build_case


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


def _eksir(*args: str, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit,
    )


def _forged_manifest(paths: list[str]) -> bytes:
    files = [{"path": p, "sha256": "0" * 64, "size": 1} for p in paths]
    return orjson.dumps({"schema": "eksir.export/v1", "case_id": "c", "public_key": "AAAA", "files": files})


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return export_case(build_case(tmp_path / "cases"), tmp_path / "case.tar.gz").archive


def test_an_absolute_member_path_is_refused_in_one_line_without_touching_the_host(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "evil.tar.gz",
        [
            (MANIFEST_NAME, _forged_manifest(["/nonexistent/evil"])),
            (SIGNATURE_NAME, b"AAAA\n"),
            ("/nonexistent/evil", b"x"),
        ],
    )
    done = _eksir("case", "verify", str(archive))
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert done.stderr.count("\n") == 1
    assert "'/nonexistent/evil' is not a plain relative path" in done.stderr


@pytest.mark.parametrize("name", ["c/../x", "c/./x", "c//x", "./c/x", "c/x/", "c/x\\..\\y"])
def test_a_member_name_that_is_not_normalised_is_refused(tmp_path: Path, name: str) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", [(MANIFEST_NAME, b"{}"), (SIGNATURE_NAME, b""), (name, b"x")])
    with pytest.raises(BadInputError, match="not a plain relative path"):
        verify_archive(archive)


def test_a_member_that_appears_twice_is_refused(exported: Path, tmp_path: Path) -> None:
    with tarfile.open(exported, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    case_json = next(m for m in members if m[0].endswith("/case.json"))
    archive = _tar(tmp_path / "twice.tar.gz", [*members, (case_json[0], b'{"verdict": "benign"}')])
    with pytest.raises(BadInputError, match="appears twice"):
        verify_archive(archive)


def test_an_archive_without_a_manifest_first_writes_nothing_before_saying_so(tmp_path: Path) -> None:
    # 64 MiB of zeros is about 64 KB compressed; with a 16 MiB limit on file size, unpacking it would fail
    # with EFBIG (Python ignores SIGXFSZ), so the manifest answer proves nothing was unpacked before it.
    archive = _tar(tmp_path / "bomb.tar.gz", [("c/big.bin", bytes(64 << 20)), (MANIFEST_NAME, b"{}")])
    done = _eksir("case", "verify", str(archive), max_file_bytes=16 << 20)
    assert done.returncode == ExitCode.CASE_INVALID, (done.returncode, done.stderr)
    assert "not a signed eksir export" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_bad_signature_stops_the_check_before_any_member_is_hashed(exported: Path, tmp_path: Path) -> None:
    with tarfile.open(exported, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    forged = [
        (n, b"AAAA\n" if n == SIGNATURE_NAME else d + b"!" if n.endswith("/case.json") else d)
        for n, d in members
    ]
    result = verify_archive(_tar(tmp_path / "forged.tar.gz", forged))
    assert result.problems == ["manifest signature is invalid (the manifest or signature was changed)"]
    assert result.files_checked == 0


def test_more_members_than_the_cap_is_bad_input(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tar_reader, "MAX_ARCHIVE_MEMBERS", 3)
    with pytest.raises(BadInputError, match="more than 3 members"):
        verify_archive(exported)


def test_more_content_than_the_size_cap_is_bad_input(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tar_reader, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(BadInputError, match="1,000 bytes"):
        verify_archive(exported)


def test_an_archive_written_like_earlier_versions_with_0644_members_still_verifies(
    exported: Path, tmp_path: Path
) -> None:
    with tarfile.open(exported, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    signer = orjson.loads(dict(members)[MANIFEST_NAME])["key_fingerprint"]
    old = _tar(tmp_path / "old.tar.gz", members)  # TarInfo's default mode is 0644
    result = verify_archive(old, trusted={signer})
    assert result.ok, result.problems
    assert result.files_checked == len(members) - 2

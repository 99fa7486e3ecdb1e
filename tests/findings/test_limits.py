"""Issue 12 item 11: finding input is read and inflated only up to a cap, so a gzip bomb is bad input (exit 3)
with one line on stderr, never a MemoryError traceback."""

from __future__ import annotations

import gzip
import io
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from eksir.errors import BadInputError, ExitCode
from eksir.findings import read_findings
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES, inflate_bounded, read_bounded
from tests.cli.helpers import REPO

EXAMPLE = REPO / "examples" / "finding-eventbridge.json"
MEMBER_BYTES = 64 << 20


@pytest.fixture(scope="module")
def zero_member() -> bytes:
    """One gzip member of 64 MiB of zeros (about 64 KB compressed): repeated, it builds a bomb cheaply."""
    return gzip.compress(bytes(MEMBER_BYTES), compresslevel=9, mtime=0)


def _limited_eksir(*args: str, address_space: int) -> subprocess.CompletedProcess[str]:
    """The real CLI in a process that cannot map more than `address_space` bytes (as a small VM could)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=limit,
    )


def test_a_3_gib_gzip_bomb_is_bad_input_under_the_default_cap_not_a_memory_error(
    tmp_path: Path, zero_member: bytes
) -> None:
    bomb = tmp_path / "findings.json.gz"
    bomb.write_bytes(zero_member * 48)  # 3 GiB once inflated, about 3 MB on disk
    done = _limited_eksir("triage", str(bomb), "--no-case", address_space=3 << 30)
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("eksir: error: ")
    assert f"inflates to more than {DEFAULT_MAX_INPUT_BYTES:,} bytes" in done.stderr
    assert "Traceback" not in done.stderr


def test_max_input_bytes_lowers_the_cap_for_compressed_and_plain_input(tmp_path: Path) -> None:
    raw = EXAMPLE.read_bytes()
    plain, packed = tmp_path / "f.json", tmp_path / "f.json.gz"
    plain.write_bytes(raw)
    packed.write_bytes(gzip.compress(raw, mtime=0))
    for path in (plain, packed):
        done = _limited_eksir(
            "triage", str(path), "--no-case", "--max-input-bytes", "1000", address_space=3 << 30
        )
        assert done.returncode == ExitCode.BAD_INPUT, done.stderr
        assert "1,000 bytes, the input limit" in done.stderr
        ok = _limited_eksir(
            "triage", str(path), "--no-case", "--max-input-bytes", str(len(raw)), address_space=3 << 30
        )
        assert ok.returncode == 0, ok.stderr


def test_inflating_stops_at_the_first_chunk_past_the_cap(zero_member: bytes) -> None:
    with pytest.raises(BadInputError, match=r"x\.gz: inflates to more than 100 bytes"):
        inflate_bounded(zero_member * 3, "x.gz", 100)


def test_several_members_and_zero_padding_inflate_to_their_concatenation() -> None:
    data = gzip.compress(b"[1,", mtime=0) + gzip.compress(b"2]", mtime=0) + bytes(512)
    assert inflate_bounded(data, "x.gz", 5) == b"[1,2]"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(b'{"a": 1}', mtime=0)[:-6], "corrupt or truncated gzip"),
        (gzip.compress(b"{}", mtime=0) + b"garbage", "trailing data after the last member"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt or truncated gzip"),
    ],
)
def test_corrupt_gzip_is_bad_input_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        inflate_bounded(data, "x.gz", DEFAULT_MAX_INPUT_BYTES)


def test_a_stream_longer_than_the_cap_is_refused_without_reading_it_all() -> None:
    stream = io.BytesIO(bytes(10_000))
    with pytest.raises(BadInputError, match="<stdin>: is larger than 1,000 bytes"):
        read_bounded(stream, "<stdin>", 1000)
    assert stream.tell() <= 1001


def test_read_findings_applies_the_cap_to_a_path(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(EXAMPLE.read_bytes())
    with pytest.raises(BadInputError, match="is larger than 10 bytes"):
        read_findings(path, max_bytes=10)
    assert len(read_findings(path)) == 1


def test_the_default_cap_is_one_gib() -> None:
    assert DEFAULT_MAX_INPUT_BYTES == 1 << 30

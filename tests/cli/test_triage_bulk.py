"""Bulk triage (`--no-case -o json`): streamed as JSON Lines, judged on every core, in bounded memory."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import orjson
import pytest

from eksir.cli import triage_parallel
from eksir.cli.triage_parallel import first_line, judged_stream, read_block
from eksir.errors import BadInputError, ExitCode
from eksir.triage import load_triage_config
from tests.cli.helpers import FIXTURES, run_eksir

WIRE = orjson.loads((FIXTURES / "iam-user.wire.json").read_bytes())
OTHER_TYPE = "Discovery:Kubernetes/MaliciousIPCaller"


def _export(count: int, *, unhandled: frozenset[int] = frozenset()) -> bytes:
    """An S3 export (JSON Lines) of `count` findings, distinct ids; the `unhandled` ones of another type."""
    lines = []
    for number in range(count):
        finding = dict(WIRE, id=f"{number:032x}")
        if number in unhandled:
            finding["type"] = OTHER_TYPE
        lines.append(orjson.dumps(finding))
    return b"\n".join(lines) + b"\n"


def _ids(stdout: str) -> list[str]:
    return [json.loads(line)["finding"]["id"] for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """More than one block (4 MB) of plain JSON Lines, and the same export gzip-compressed."""
    folder = tmp_path_factory.mktemp("bulk")
    data = _export(2_000, unhandled=frozenset({5, 1_999}))
    assert len(data) > triage_parallel.BLOCK_BYTES
    (folder / "export.jsonl").write_bytes(data)
    (folder / "export.jsonl.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    return folder / "export.jsonl", folder / "export.jsonl.gz"


def test_a_large_export_prints_one_json_line_per_handled_finding_in_input_order(
    large: tuple[Path, Path],
) -> None:
    plain, _gz = large
    result = run_eksir("triage", str(plain), "--no-case", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert _ids(result.stdout) == [f"{n:032x}" for n in range(2_000) if n not in {5, 1_999}]
    assert result.stderr.count("eksir: skipped:") == 2


def test_the_parallel_path_prints_exactly_what_one_process_prints(large: tuple[Path, Path]) -> None:
    plain, gz = large  # gzip input is read whole and judged in one process
    parallel = run_eksir("triage", str(plain), "--no-case", "-o", "json")
    single = run_eksir("triage", str(gz), "--no-case", "-o", "json")
    assert (parallel.returncode, parallel.stdout, parallel.stderr) == (0, single.stdout, single.stderr)


def test_a_bad_line_deep_in_a_large_export_is_named_by_its_line_after_the_findings_before_it(
    tmp_path: Path,
) -> None:
    lines = _export(2_000).splitlines()
    lines[1_799] = lines[1_799][:100]
    data = b"\n".join(lines) + b"\n"
    (tmp_path / "bad.jsonl").write_bytes(data)
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    parallel = run_eksir("triage", str(tmp_path / "bad.jsonl"), "--no-case", "-o", "json")
    single = run_eksir("triage", str(tmp_path / "bad.jsonl.gz"), "--no-case", "-o", "json")
    assert parallel.returncode == ExitCode.BAD_INPUT
    assert "invalid JSON at line 1800 column" in parallel.stderr
    assert parallel.stderr == single.stderr
    assert len(parallel.stdout.splitlines()) == 1_799
    assert parallel.stdout == single.stdout


def test_an_input_of_only_unhandled_findings_fails_with_the_first_ones_error_and_prints_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "other.jsonl").write_bytes(_export(3, unhandled=frozenset({0, 1, 2})))
    result = run_eksir("triage", str(tmp_path / "other.jsonl"), "--no-case", "-o", "json")
    assert result.returncode == ExitCode.NOT_HANDLED
    assert result.stdout == ""
    assert result.stderr.startswith("eksir: error: ")
    assert OTHER_TYPE in result.stderr


def test_one_finding_still_prints_the_indented_object() -> None:
    result = run_eksir("triage", str(FIXTURES / "iam-user.wire.json"), "--no-case", "-o", "json")
    assert result.stdout.startswith('{\n  "schema": "eksir.triage/v1",')
    assert json.loads(result.stdout)["finding"]["id"] == WIRE["id"]


def test_bulk_triage_reads_only_a_few_blocks_ahead_of_what_it_has_handed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(triage_parallel, "BLOCK_BYTES", 32 * 1024)
    monkeypatch.setattr(triage_parallel, "MAX_WORKERS", 2)
    monkeypatch.setattr(triage_parallel.os, "cpu_count", lambda: 2)
    data = _export(600)
    stream = io.BytesIO(data)
    batches = judged_stream(stream, load_triage_config(None))
    first = next(iter(batches))
    assert first.lines
    # two blocks per worker in flight, two read ahead (see triage_parallel._blocks), one handed out
    window = (2 * 2 + 3) * (32 * 1024 + len(data.splitlines()[0]) + 1)
    assert stream.tell() <= window < len(data)
    rest = [line for batch in batches for line in batch.lines]
    assert len(first.lines) + len(rest) == 600


def test_blocks_end_at_line_ends() -> None:
    stream = io.BytesIO(b"a" * 10 + b"\n" + b"b" * 5 + b"\n" + b"c")
    original = triage_parallel.BLOCK_BYTES
    try:
        triage_parallel.BLOCK_BYTES = 4
        assert [read_block(stream) for _ in range(4)] == [b"a" * 10 + b"\n", b"b" * 5 + b"\n", b"c", b""]
    finally:
        triage_parallel.BLOCK_BYTES = original


@pytest.mark.parametrize(
    ("block", "json_lines"),
    [
        (b'{"a": 1}\n{"a": 2}\n', True),
        (b'\n\n{"a": 1}\n{"a": 2}\n', True),
        (b'[\n  {"a": 1}\n]\n', False),
        (gzip.compress(b'{"a": 1}\n{"a": 2}\n', mtime=0), False),
        (b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', False),
        (b'{"a": 1}', False),
    ],
)
def test_only_plain_json_lines_are_cut_into_blocks(block: bytes, json_lines: bool) -> None:
    assert (first_line(block) is not None) is json_lines


def test_an_unreadable_stream_is_bad_input() -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(BadInputError, match="cannot read the input: Input/output error"):
        read_block(Broken())


def _health_events(count: int) -> bytes:
    """EventBridge events that are not findings (skipped when findings come with them)."""
    event = {"detail-type": "GuardDuty Runtime Protection Unhealthy", "source": "aws.guardduty", "detail": {}}
    return (orjson.dumps(event) + b"\n") * count


def test_a_stretch_of_other_events_longer_than_a_block_is_skipped_as_in_one_process(tmp_path: Path) -> None:
    data = _health_events(60_000) + _export(300)
    assert len(_health_events(60_000)) > triage_parallel.BLOCK_BYTES
    (tmp_path / "mixed.jsonl").write_bytes(data)
    (tmp_path / "mixed.jsonl.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    parallel = run_eksir("triage", str(tmp_path / "mixed.jsonl"), "--no-case", "-o", "json")
    single = run_eksir("triage", str(tmp_path / "mixed.jsonl.gz"), "--no-case", "-o", "json")
    assert parallel.returncode == 0, parallel.stderr
    assert len(_ids(parallel.stdout)) == 300
    assert (parallel.stdout, parallel.stderr) == (single.stdout, single.stderr)


def test_a_large_input_with_no_finding_at_all_is_not_a_finding(tmp_path: Path) -> None:
    (tmp_path / "health.jsonl").write_bytes(_health_events(60_000))
    result = run_eksir("triage", str(tmp_path / "health.jsonl"), "--no-case", "-o", "json")
    assert result.returncode == ExitCode.NOT_A_FINDING
    assert result.stdout == ""
    assert result.stderr.startswith("eksir: error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_last_block_of_one_line_is_still_read_as_a_line_of_the_export(tmp_path: Path) -> None:
    line_size = len(_export(1))
    per_block = -(-triage_parallel.BLOCK_BYTES // line_size)  # read_block ends a block at a line's end
    data = _export(2 * per_block + 1)
    (tmp_path / "tail.jsonl").write_bytes(data)
    (tmp_path / "tail.jsonl.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    parallel = run_eksir("triage", str(tmp_path / "tail.jsonl"), "--no-case", "-o", "json")
    single = run_eksir("triage", str(tmp_path / "tail.jsonl.gz"), "--no-case", "-o", "json")
    formats = {json.loads(line)["finding"]["source_format"] for line in parallel.stdout.splitlines()}
    assert formats == {"s3-export"}
    assert parallel.stdout == single.stdout

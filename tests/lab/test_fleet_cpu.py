"""The fleet bench's CPU accounting: what each lab server used, read from /proc by its recorded pid."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksir.lab import processes
from eksir.lab.fleet_run import cpu_seconds_of, lab_cpu_seconds

BUSY_FOR_HALF_A_SECOND = (
    "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\ntime.sleep(60)"
)


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    """A lab folder with one recorded server, 'moto', that burns half a CPU second and then idles."""
    aws = tmp_path / "aws"
    processes.start_process(
        aws, "moto", [sys.executable, "-c", BUSY_FOR_HALF_A_SECOND], port=0, log_path=aws / "moto.log"
    )
    yield tmp_path
    processes.stop_all(aws, timeout=5)


def test_each_recorded_server_reports_the_cpu_it_used(lab_dir: Path) -> None:
    deadline = time.monotonic() + 30
    used: dict[str, float] = {}
    while time.monotonic() < deadline:
        used = lab_cpu_seconds(lab_dir)
        if used.get("moto", 0.0) >= 0.5:
            break
        time.sleep(0.1)

    assert set(used) == {"moto"}, "k8s/ has no servers recorded here"
    assert 0.5 <= used["moto"] < 5


def test_a_process_that_is_gone_reports_none(lab_dir: Path) -> None:
    (record,) = processes.read_records(lab_dir / "aws")
    processes.stop_all(lab_dir / "aws", timeout=5)

    assert cpu_seconds_of(record.pid) is None
    assert lab_cpu_seconds(lab_dir) == {}

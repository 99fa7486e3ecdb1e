"""The scan processes: every chunk is folded exactly once, even when a worker dies mid-hunt."""

from __future__ import annotations

import gzip
import multiprocessing
import os
import time
from pathlib import Path

import orjson
import pytest

from eksir.hunt import workers
from eksir.hunt.filescan import FileOutcome
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.sources.files import FileRef
from eksir.hunt.window import TimeWindow
from eksir.hunt.workers import Planned, ScanSettings, run_chunks

KEY = "AKIAATTACKER00000001"
CHAINED = "ASIACHAINED000000001"


def _trail(folder: Path, name: str, records: list[dict[str, object]]) -> FileRef:
    path = folder / f"{name}.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps({"Records": records}), mtime=0))
    return FileRef(str(path), path.stat().st_size)


def _call(key: str, number: int, **extra: object) -> dict[str, object]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accessKeyId": key},
        "eventTime": "2024-08-02T10:00:00Z",
        "eventName": "ListBuckets",
        "eventID": f"{key}-{number}",
        **extra,
    }


@pytest.fixture
def plan(tmp_path: Path) -> list[Planned]:
    """Ten chunks; the attacker's AssumeRole is in chunk 0, the chained key's call in chunk 9."""
    assume = _call(KEY, 0, eventName="AssumeRole", responseElements={"credentials": {"accessKeyId": CHAINED}})
    refs = [_trail(tmp_path, f"f{n}", [_call("AKIAOTHER00000000001", n)]) for n in range(10)]
    refs[0] = _trail(tmp_path, "f0", [assume])
    refs[9] = _trail(tmp_path, "f9", [_call(CHAINED, 9)])
    return [Planned((ref,)) for ref in refs]


def _settings() -> ScanSettings:
    return ScanSettings(TimeWindow.parse("2024-08-01", "2024-08-04"), None, "auto", count_events=True)


def test_every_chunk_is_folded_once_and_the_chain_reaches_later_chunks(
    plan: list[Planned], monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = workers.scan_planned

    def slow_scan(chunk: Planned, *args: object) -> list[FileOutcome]:
        if not chunk.files[0].location.endswith("f0.json.gz"):
            time.sleep(0.05)  # the chunks between take a while, as real ones do
        return scan(chunk, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(workers, "scan_planned", slow_scan)
    monkeypatch.setattr(workers, "start_context", lambda: multiprocessing.get_context("fork"))
    seen: list[str] = []
    matched: list[str] = []
    principals = PrincipalSet.from_values([KEY])

    def fold(outcomes: list[FileOutcome], used: PrincipalSet) -> PrincipalSet:
        nonlocal principals
        for outcome in outcomes:
            seen.append(Path(outcome.location).stem)
            matched.extend(str(record["eventID"]) for record in outcome.matched)
            for record in outcome.matched:
                issued = principals.issued_by(record)
                if issued is not None:
                    principals = principals.union(issued)
        return principals

    run_chunks(plan, workers=2, initial=principals, settings=_settings(), fold=fold)
    assert sorted(seen) == sorted(f"f{n}.json" for n in range(10))
    assert f"{KEY}-0" in matched
    # Chunk 9 is taken long after chunk 0 was folded, so it is checked with the published, grown set
    # (checked with the old set, it would have needed a rescan to give this).
    assert f"{CHAINED}-9" in matched


def test_a_worker_that_dies_leaves_its_chunk_to_the_coordinator(
    plan: list[Planned], monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = os.getpid()
    scan = workers.scan_planned

    def dying_scan(chunk: Planned, *args: object) -> list[FileOutcome]:
        if os.getpid() != coordinator and chunk.files[0].location.endswith("f4.json.gz"):
            os._exit(9)  # as if killed by the OOM killer mid-chunk
        return scan(chunk, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(workers, "scan_planned", dying_scan)
    monkeypatch.setattr(workers, "start_context", lambda: multiprocessing.get_context("fork"))
    seen: list[str] = []

    def fold(outcomes: list[FileOutcome], used: PrincipalSet) -> PrincipalSet:
        seen.extend(Path(outcome.location).stem for outcome in outcomes)
        return used

    run_chunks(plan, workers=2, initial=PrincipalSet.from_values([KEY]), settings=_settings(), fold=fold)
    assert sorted(seen) == sorted(f"f{n}.json" for n in range(10))

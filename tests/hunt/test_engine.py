"""The local engine against the generated tree (ground truth) and against bad input."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.scan import Scanner
from eksir.hunt.sources.files import list_local
from eksir.hunt.window import TimeWindow


def _window(truth: dict[str, Any]) -> TimeWindow:
    return TimeWindow.parse(truth["since"], truth["until"])


@pytest.mark.parametrize(("workers", "engine"), [(1, "stringzilla"), (2, "auto"), (2, "hyperscan")])
def test_tree_hunt_finds_exactly_the_ground_truth_including_chained_sessions(
    tree: Path, truth: dict[str, Any], workers: int, engine: str
) -> None:
    if engine == "hyperscan":
        pytest.importorskip("hyperscan", reason="the optional `fast` extra is not installed")
    scanner = Scanner(_window(truth), workers=workers, inline_below_bytes=0, engine=engine)
    files = list(list_local(tree, _window(truth)))
    report = scanner.run(files, PrincipalSet.from_values([truth["principal"]]))
    found = {record["eventID"] for record, _ in report.records}
    assert found == set(truth["event_ids"])  # recall and precision both 100%
    assert set(truth["chained"]) <= report.principals.access_key_ids


def test_tree_listing_never_enters_date_folders_outside_the_window(tree: Path, truth: dict[str, Any]) -> None:
    listed = [ref.location for ref in list_local(tree, _window(truth))]
    assert listed
    assert not any("/2024/07/20/" in location for location in listed)


def test_chained_calls_are_found_whatever_the_file_order(tmp_path: Path, truth: dict[str, Any]) -> None:
    """Files without a delivery stamp: the session's calls sort before the AssumeRole that issued it."""
    records: list[dict[str, Any]] = []
    for path in sorted((Path(__file__).parents[1] / "data" / "hunt" / "tree").rglob("*.json.gz")):
        records.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    chained = [
        r for r in records if r["userIdentity"].get("accessKeyId", "").startswith(("ASIACH", "ASIADO"))
    ]
    rest = [r for r in records if r not in chained]
    (tmp_path / "a-session-calls.json").write_text(json.dumps(chained))
    (tmp_path / "b-everything-else.json").write_text(json.dumps(rest))
    report = Scanner(_window(truth), workers=1).run(
        list(list_local(tmp_path, _window(truth))), PrincipalSet.from_values([truth["principal"]])
    )
    assert {r["eventID"] for r, _ in report.records} == set(truth["event_ids"])


def test_bad_files_are_reported_by_name_and_the_scan_goes_on(
    tmp_path: Path, tree: Path, truth: dict[str, Any]
) -> None:
    shutil.copytree(tree, tmp_path / "tree")
    good = next((tmp_path / "tree").rglob("*20240801T0005Z*.json.gz"))
    (good.parent / "corrupt.json.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate")
    (good.parent / "truncated.json.gz").write_bytes(
        gzip.compress(b'{"Records": [{"eventVersion": "1.09", "us', mtime=0)
    )
    (good.parent / "cut-gzip.json.gz").write_bytes(gzip.compress(b'{"Records": []}' * 50, mtime=0)[:30])
    result = run_hunt(
        PrincipalSet.from_values([truth["principal"]]),
        [str(tmp_path / "tree")],
        _window(truth),
        options=HuntOptions(workers=1),
    )
    reasons = {Path(s.name).name: s.reason for s in result.skipped}
    assert set(reasons) == {"corrupt.json.gz", "truncated.json.gz", "cut-gzip.json.gz"}
    assert "gzip" in reasons["corrupt.json.gz"]
    assert "JSON" in reasons["truncated.json.gz"]
    assert {e.event_id for e in result.events} == set(truth["event_ids"])


def test_failed_calls_are_kept_and_marked(tree: Path, truth: dict[str, Any]) -> None:
    result = run_hunt(PrincipalSet.from_values([truth["principal"]]), [str(tree)], _window(truth))
    failed = [e for e in result.events if e.failed]
    assert [(e.action, e.error_code) for e in failed] == [("ListUsers", "AccessDenied")]


def test_a_call_naming_the_key_in_its_parameters_is_not_the_attackers(
    tree: Path, truth: dict[str, Any]
) -> None:
    result = run_hunt(PrincipalSet.from_values([truth["principal"]]), [str(tree)], _window(truth))
    assert "UpdateAccessKey" not in {e.action for e in result.events}


def test_hunt_result_round_trips_through_json(tree: Path, truth: dict[str, Any]) -> None:
    result = run_hunt(PrincipalSet.from_values([truth["principal"]]), [str(tree)], _window(truth))
    document = json.loads(result.to_json())
    assert len(document["events"]) == len(truth["event_ids"])
    assert document["sources"][0]["events_scanned"] is None  # not counted unless asked
    assert document["sources"][0]["events_matched"] == len(truth["event_ids"])  # chained ones included, once
    assert document["sources"][0]["bytes_scanned"] > document["sources"][0]["bytes_read"] > 0
    assert {q["kind"] for q in document["queries"]} == {
        "athena-ddl",
        "athena",
        "cloudtrail-lake",
        "security-lake",
        "logs-insights",
    }
    assert set(truth["chained"]) <= set(document["chained_principals"])


def test_json_lines_with_one_bad_line_keep_the_good_lines(tmp_path: Path) -> None:
    good = {
        "eventVersion": "1.08",
        "eventTime": "2024-08-01T10:00:00Z",
        "eventName": "ListBuckets",
        "eventSource": "s3.amazonaws.com",
        "eventID": "e1",
        "userIdentity": {"accessKeyId": "AKIAJSONLINES0000001"},
    }
    (tmp_path / "export.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    result = run_hunt(
        PrincipalSet.from_values(["AKIAJSONLINES0000001"]),
        [str(tmp_path)],
        TimeWindow.parse("2024-08-01", "2024-08-02"),
    )
    assert [e.event_id for e in result.events] == ["e1"]
    assert "line 2" in result.skipped[0].reason


def test_count_events_counts_every_record_in_the_window(tree: Path, truth: dict[str, Any]) -> None:
    """With --count-events the total equals the records of every file the window selects (parsed here)."""
    window = _window(truth)
    files = [Path(ref.location) for ref in list_local(tree, window)]
    expected = sum(len(json.loads(gzip.decompress(path.read_bytes()))["Records"]) for path in files)
    result = run_hunt(
        PrincipalSet.from_values([truth["principal"]]),
        [str(tree)],
        window,
        options=HuntOptions(count_events=True),
    )
    assert result.sources[0].events_scanned == expected > result.sources[0].events_matched > 0


def test_a_missing_optional_engine_fails_before_any_worker_starts(
    tree: Path, truth: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from eksir.hunt import prefilter, workers

    monkeypatch.setattr(prefilter, "hyperscan", None)
    started: list[object] = []
    monkeypatch.setattr(workers, "start_context", lambda: started.append(1))
    scanner = Scanner(_window(truth), workers=2, inline_below_bytes=0, engine="hyperscan")
    with pytest.raises(ImportError, match="fast"):
        scanner.run(list(list_local(tree, _window(truth))), PrincipalSet.from_values([truth["principal"]]))
    assert started == []

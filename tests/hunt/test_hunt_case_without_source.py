"""Issue #18 ("Closed is not final"): `eksir hunt CASE` with no source replaced the stored hunt (14 calls)
with an empty one. A hunt with no source now refuses as a usage error (exit 2), names the sources it can
read, and leaves the case's stored hunt exactly as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eksir.errors import ExitCode
from eksir.models.finding import Actor, ActorKind
from eksir.store import CaseStore
from eksir.store.verify import verify_case
from tests.factories import make_finding


def _eksir(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "eksir", *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)


def test_a_hunt_of_a_case_with_no_source_refuses_naming_the_sources_and_keeps_the_stored_hunt(
    tmp_path: Path, tree: Path, truth: dict[str, Any]
) -> None:
    finding = make_finding(
        event_first_seen=datetime(2024, 8, 3, 23, 0, tzinfo=UTC),
        actor=Actor(kind=ActorKind.IAM_USER, username="kubernetes-admin", access_key_id=truth["principal"]),
    )
    handle, _ = CaseStore(tmp_path / "cases").open_for_finding(finding, b"{}", "test")
    handle.write_document("finding.json", finding.model_dump_json().encode(), "normalised-finding")
    first = _eksir("hunt", str(handle.path), "--until", truth["until"], "-s", str(tree), "-o", "json")
    assert first.returncode == 0, first.stderr
    stored = [item for item in handle.load().evidence if item.name == "hunt.json"]
    found = {e["event_id"] for e in json.loads((handle.path / stored[0].path).read_bytes())["events"]}
    assert set(truth["event_ids"]) <= found

    done = _eksir("hunt", str(handle.path), "--until", truth["until"], "-o", "json")

    assert done.returncode == ExitCode.USAGE
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    for source in ("--source", "--lookup-events", "--athena-workgroup", "--audit-log", "--cluster"):
        assert source in done.stderr
    assert [item.name for item in handle.load().evidence if item.name == "hunt.json"] == ["hunt.json"]
    again = json.loads((handle.path / stored[0].path).read_bytes())
    assert {e["event_id"] for e in again["events"]} == found
    assert verify_case(handle).ok

"""The shared case store on moto server: `--cases-dir s3://bucket/prefix` with one DynamoDB lease per case.

What is proven against moto's S3 and DynamoDB over HTTP: a case written to S3 is read back by other processes
from an empty cache; two writers never fork the chain (event N is written once, If-None-Match); a stale lease
holder's write is refused after another took the expired lease over (fencing); verification reads S3, not the
local copy, and names a tampered event or file; bad store addresses are one-line errors with their exit code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from eksir.engine import StateStore
from eksir.errors import BadInputError, NotFoundError, RefusedError
from eksir.store import CaseHandle, CaseStore, case_id_for, verify_case
from eksir.store.atomic import sha256_bytes
from eksir.store.dynamo_lease import DynamoCaseLock
from eksir.store.event_log import canonical_event_bytes, event_line
from eksir.store.lock import case_lease
from tests.cli.helpers import REPO, run_eksir
from tests.engine.conftest import make_plan, mark_step
from tests.factories import make_finding
from tests.store.s3_fixtures import SharedStore

RAW = b'{"detail-type": "GuardDuty Finding", "detail": {}}\n'
EXAMPLE = REPO / "examples" / "finding-eventbridge.json"


def _open(store: SharedStore) -> CaseHandle:
    handle, created = CaseStore(store.url, actor="tester@a").open_for_finding(
        make_finding(id=uuid.uuid4().hex), RAW, "finding.json"
    )
    assert created
    return handle


def _drop_cache(store: SharedStore) -> None:
    shutil.rmtree(store.env["EKSIR_S3_CACHE"], ignore_errors=True)


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_new_case_is_written_to_s3_one_object_per_event_and_its_files_by_hash(
    shared_store: SharedStore,
) -> None:
    handle = _open(shared_store)
    case_id = handle.case_id
    events = shared_store.keys(case_id, "events")
    assert events == [shared_store.event_key(case_id, n) for n in range(1, len(events) + 1)]
    assert len(events) == len(list(handle.log.events())) >= 3
    blobs = {key.rsplit("/", 1)[1] for key in shared_store.keys(case_id, "blobs")}
    item = handle.load().evidence[0]
    assert item.sha256 in blobs
    first = orjson.loads(shared_store.s3.get_object(Bucket=shared_store.bucket, Key=events[0])["Body"].read())
    assert first["type"] == "case.opened"
    assert verify_case(handle).ok


def test_another_process_with_an_empty_cache_reads_and_verifies_the_case_from_s3(
    shared_store: SharedStore,
) -> None:
    handle = _open(shared_store)
    _drop_cache(shared_store)

    by_store = run_eksir("case", "verify", "--cases-dir", shared_store.url, handle.case_id)
    by_url = run_eksir("case", "verify", f"{shared_store.url}/{handle.case_id}", "-o", "json")
    shown = run_eksir("case", "show", handle.case_id, "--cases-dir", shared_store.url, "-o", "json")

    assert by_store.returncode == 0, by_store.stderr
    assert by_url.returncode == 0, by_url.stderr
    assert orjson.loads(by_url.stdout)["case"] == f"{shared_store.url}/{handle.case_id}"
    assert shown.returncode == 0, shown.stderr
    assert handle.case_id in shown.stdout


def test_report_on_an_s3_case_is_recorded_in_s3_under_the_lease_and_still_verifies(
    shared_store: SharedStore,
) -> None:
    handle = _open(shared_store)
    before = len(shared_store.keys(handle.case_id, "events"))
    _drop_cache(shared_store)

    report = run_eksir("report", handle.case_id, "--cases-dir", shared_store.url, "-o", "json")

    assert report.returncode == 0, report.stderr
    after = [
        orjson.loads(shared_store.s3.get_object(Bucket=shared_store.bucket, Key=key)["Body"].read())
        for key in shared_store.keys(handle.case_id, "events")[before:]
    ]
    written = [e for e in after if e["type"] == "document.written"]
    assert written, "the report's documents are logged in S3"
    assert {e.get("fence") for e in after} == {2}, "the opening held token 1; the report's every event has 2"
    assert run_eksir("case", "verify", f"{shared_store.url}/{handle.case_id}").returncode == 0


def test_an_append_from_a_stale_copy_never_overwrites_an_event_and_lands_after_it(
    shared_store: SharedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = _open(shared_store)
    monkeypatch.setenv("EKSIR_S3_CACHE", str(tmp_path / "other-machine"))
    other = CaseStore(shared_store.url, actor="tester@b").get(handle.case_id)
    theirs = other.append("note", {"by": "b"})

    mine = handle.append("note", {"by": "a"})  # this copy is one event behind

    assert mine.seq == theirs.seq + 1
    assert mine.prev_hash == theirs.hash
    key = shared_store.event_key(handle.case_id, theirs.seq)
    body = orjson.loads(shared_store.s3.get_object(Bucket=shared_store.bucket, Key=key)["Body"].read())
    assert body["data"] == {"by": "b"}
    assert verify_case(handle).ok


@pytest.mark.parametrize("behind", [2, 4, 9], ids=["read-by-key", "probe-exactly", "past-the-probe-listed"])
def test_a_copy_several_events_behind_takes_them_all_in_before_its_own_lands(
    shared_store: SharedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behind: int
) -> None:
    """The refused append reads what it missed by key (a few) or by listing (many): never one skipped."""
    handle = _open(shared_store)
    monkeypatch.setenv("EKSIR_S3_CACHE", str(tmp_path / "other-machine"))
    other = CaseStore(shared_store.url, actor="tester@b").get(handle.case_id)
    theirs = [other.append("note", {"by": "b", "i": i}) for i in range(behind)]

    mine = handle.append("note", {"by": "a"})

    assert mine.seq == theirs[-1].seq + 1
    assert mine.prev_hash == theirs[-1].hash
    local = [orjson.loads(line) for line in (handle.path / "events.jsonl").read_bytes().splitlines()]
    assert [e["data"].get("i") for e in local if e["type"] == "note"] == [*range(behind), None]
    assert verify_case(handle).ok


@pytest.mark.parametrize("damage", ["torn-last-line", "garbage"])
def test_a_local_copy_torn_by_a_crash_is_rebuilt_from_s3_when_the_case_is_opened(
    shared_store: SharedStore, damage: str
) -> None:
    """A shared case's local log is not synced line by line (S3 is the record): a copy left torn by a crash
    is rebuilt whole, never appended to."""
    handle = _open(shared_store)
    for i in range(3):
        handle.append("note", {"i": i})
    log = handle.path / "events.jsonl"
    whole = log.read_bytes()
    log.write_bytes(whole[:-25] if damage == "torn-last-line" else b"not an event\n")

    again = CaseStore(shared_store.url, actor="tester@a").get(handle.case_id)

    assert (again.path / "events.jsonl").read_bytes() == whole
    assert verify_case(again).ok


APPENDER = """
import sys, time
from pathlib import Path
from eksir.store import CaseStore
url, case_id, who, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
handle = CaseStore(url, actor=who).get(case_id)
while not go.exists():
    time.sleep(0.005)
for i in range(12):
    handle.append("note", {"by": who, "i": i})
"""


def test_two_processes_appending_at_once_leave_one_linear_chain_with_every_event(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    handle = _open(shared_store)
    go = tmp_path / "go"
    children = []
    for who in ("a", "b"):
        env_cache = tmp_path / f"cache-{who}"  # two machines: two copies
        code = f"import os; os.environ['EKSIR_S3_CACHE'] = {str(env_cache)!r}\n" + APPENDER
        children.append(_python(code, shared_store.url, handle.case_id, who, str(go)))
    time.sleep(1.0)
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err

    report = verify_case(handle)
    assert report.ok, report.problems
    notes = [e.data for e in CaseStore(shared_store.url).get(handle.case_id).log.events() if e.type == "note"]
    assert sorted((n["by"], n["i"]) for n in notes) == sorted((w, i) for w in "ab" for i in range(12))


HOLDER = """
import sys, time
from pathlib import Path
from eksir.store import CaseStore
url, case_id, held, release = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
handle = CaseStore(url, actor="holder@x").get(case_id)
with handle.writer("eksir test-holder"):
    handle.append("note", {"by": "holder"})
    held.write_text("held")
    while not release.exists():
        time.sleep(0.05)
"""


def _wait_for(path: Path, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_command_writing_a_held_s3_case_is_refused_naming_the_holder_and_queues_with_wait(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    handle = _open(shared_store)
    held, release = tmp_path / "held", tmp_path / "release"
    holder = _python(HOLDER, shared_store.url, handle.case_id, str(held), str(release))
    _wait_for(held, holder)

    refused = run_eksir("report", handle.case_id, "--cases-dir", shared_store.url)
    queued = subprocess.Popen(
        [sys.executable, "-m", "eksir", "report", handle.case_id, "--cases-dir", shared_store.url, "--wait"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(2.0)
    still_waiting = queued.poll() is None
    release.touch()
    holder.communicate(timeout=60)
    _, queued_err = queued.communicate(timeout=120)

    assert refused.returncode == 12, refused.stderr
    assert f"pid {holder.pid} on " in refused.stderr
    assert "eksir test-holder" in refused.stderr
    assert still_waiting
    assert queued.returncode == 0, queued_err
    fences = [e.fence for e in CaseStore(shared_store.url).get(handle.case_id).log.events() if e.fence]
    assert fences == sorted(fences)
    assert fences[0] < fences[-1], "the queued writer's token is higher"
    assert verify_case(handle).ok


TAKEOVER = """
import sys
from eksir.store import CaseStore
handle = CaseStore(sys.argv[1], actor="taker@y").get(sys.argv[2])
with handle.writer("eksir take-over"):
    handle.append("note", {"by": "taker"})
"""


def test_a_holder_whose_lease_expired_and_was_taken_over_is_refused_its_next_write(
    shared_store: SharedStore,
) -> None:
    handle = _open(shared_store)
    assert handle.remote is not None
    paused = DynamoCaseLock(
        handle.remote.dynamo, shared_store.table, handle.remote.lease_key, ttl=1.0, heartbeat=False
    )
    with case_lease(handle.path, "eksir paused", lock=paused, key=handle.remote.lease_key):
        handle.append("note", {"by": "paused", "before": "pause"})
        time.sleep(1.5)  # a paused process: no heartbeat, the lease expires
        taker = _python(TAKEOVER, shared_store.url, handle.case_id)
        _, err = taker.communicate(timeout=60)
        assert taker.returncode == 0, err
        events_before = shared_store.keys(handle.case_id, "events")
        with pytest.raises(RefusedError, match="took it over") as refused:
            handle.append("note", {"by": "paused", "after": "pause"})

    assert int(refused.value.exit_code) == 12
    assert shared_store.keys(handle.case_id, "events") == events_before
    events = list(CaseStore(shared_store.url).get(handle.case_id).log.events())
    assert [e.data.get("by") for e in events if e.type == "note"] == ["paused", "taker"]
    assert [e.fence for e in events if e.type == "note"] == [2, 3]  # token 1 opened the case
    assert verify_case(handle).ok


def test_verify_reads_s3_and_names_a_tampered_event_object_even_with_an_intact_copy(
    shared_store: SharedStore,
) -> None:
    handle = _open(shared_store)
    key = shared_store.event_key(handle.case_id, 2)
    body = orjson.loads(shared_store.s3.get_object(Bucket=shared_store.bucket, Key=key)["Body"].read())
    body["actor"] = "someone-else@host"
    shared_store.s3.put_object(Bucket=shared_store.bucket, Key=key, Body=orjson.dumps(body))

    report = verify_case(handle)
    cli = run_eksir("case", "verify", "--cases-dir", shared_store.url, handle.case_id)

    assert not report.ok
    assert any("line 2" in p and "altered" in p for p in report.problems), report.problems
    assert cli.returncode != 0
    assert "event 2" in cli.stdout + cli.stderr


def test_verify_names_a_replaced_file_version_and_a_deleted_event(shared_store: SharedStore) -> None:
    handle = _open(shared_store)
    item = handle.load().evidence[0]
    blob = f"{shared_store.prefix}/{handle.case_id}/blobs/{item.sha256}"
    shared_store.s3.put_object(Bucket=shared_store.bucket, Key=blob, Body=b"not the finding")
    assert any(f"{item.path}: altered" in p for p in verify_case(handle).problems)

    shared_store.s3.delete_object(Bucket=shared_store.bucket, Key=shared_store.event_key(handle.case_id, 2))
    problems = verify_case(handle).problems
    assert any("sequence 3 where 2 expected" in p for p in problems), problems


def test_an_event_written_by_a_stale_token_after_a_newer_one_is_named_by_verify(
    shared_store: SharedStore,
) -> None:
    handle = _open(shared_store)
    assert handle.remote is not None
    with handle.writer("first"):
        handle.append("note", {"n": 1})
    with handle.writer("second"):
        handle.append("note", {"n": 2})
    last = max(e.seq for e in handle.log.events())
    forged = handle.log._next("note", "stale@z", {"n": 3})  # as a stale holder computed it: token 1
    line = forged.model_copy(update={"fence": 1})
    fields = line.model_dump()
    line = line.model_copy(update={"hash": sha256_bytes(canonical_event_bytes(fields))})
    assert handle.remote.put_event(last + 1, event_line(line))

    problems = verify_case(handle).problems
    assert problems == [f"event {last + 1} was written under lease token 1 after token 3"]


def test_bad_store_addresses_are_one_line_errors_with_their_exit_codes(shared_store: SharedStore) -> None:
    with pytest.raises(BadInputError):
        CaseStore("s3://Not_A_Bucket/x")
    with pytest.raises(BadInputError):
        CaseStore("s3://bucket/../etc")
    with pytest.raises(NotFoundError, match="no bucket"):
        CaseStore("s3://eksir-no-such-bucket/cases").get("eksir-20240101-0123456789")
    with pytest.raises(NotFoundError, match="no case"):
        CaseStore(shared_store.url).get("eksir-20240101-0123456789")

    bad = run_eksir("case", "verify", "--cases-dir", "s3://Bad_Bucket/p", "eksir-20240101-0123456789")
    missing = run_eksir("case", "verify", "--cases-dir", "s3://eksir-no-such-bucket", "eksir-20240101-01")
    assert (bad.returncode, missing.returncode) == (3, 10)
    for result in (bad, missing):
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_a_missing_lease_table_is_named_with_exit_10(shared_store: SharedStore) -> None:
    handle = _open(shared_store)
    result = run_eksir(
        "--lock-table", "eksir-no-such-table", "report", handle.case_id, "--cases-dir", shared_store.url
    )
    assert result.returncode == 10, result.stderr
    assert "lease table 'eksir-no-such-table' does not exist" in result.stderr


def test_a_bucket_with_object_lock_keeps_every_record_object_under_retention(
    shared_store: SharedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"eksir-locked-{uuid.uuid4().hex[:8]}"
    shared_store.s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    handle, _ = CaseStore(f"s3://{bucket}/cases").open_for_finding(
        make_finding(id=uuid.uuid4().hex), RAW, "finding.json"
    )
    listed = shared_store.s3.list_objects_v2(Bucket=bucket, Prefix=f"cases/{handle.case_id}/")["Contents"]
    modes = {shared_store.s3.head_object(Bucket=bucket, Key=o["Key"]).get("ObjectLockMode") for o in listed}
    assert modes == {"GOVERNANCE"}


OPENER = """
import sys, time
from pathlib import Path
from eksir.store import CaseStore
from tests.factories import make_finding
url, finding_id, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = CaseStore(url, actor="opener@x")
while not go.exists():
    time.sleep(0.005)
handle, created = store.open_for_finding(make_finding(id=finding_id), b"{}", "finding.json")
print(handle.case_id, created)
"""


def test_two_workers_opening_the_same_new_finding_at_once_make_one_whole_case(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    finding_id, go = uuid.uuid4().hex, tmp_path / "go"
    children = []
    for who in ("a", "b"):
        code = f"import os; os.environ['EKSIR_S3_CACHE'] = {str(tmp_path / who)!r}\n" + OPENER
        children.append(_python(code, shared_store.url, finding_id, str(go)))
    time.sleep(1.0)
    go.touch()
    answers = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        answers.append(out.split())

    assert len({case_id for case_id, _ in answers}) == 1
    assert sorted(created for _, created in answers) == ["False", "True"]
    handle = CaseStore(shared_store.url).get(answers[0][0])
    types = [e.type for e in handle.log.events()]
    assert types.count("case.opened") == 1
    assert types.count("finding.received-again") == 1
    assert len(handle.load().evidence) == 1
    assert verify_case(handle).ok


def test_a_case_whose_opener_died_after_its_first_event_is_completed_by_the_next_opener(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    finding = make_finding(id=uuid.uuid4().hex)
    store = CaseStore(shared_store.url, actor="dead@x")
    assert store.backend is not None
    case_id = case_id_for(finding)
    half = CaseHandle(tmp_path / "half", "dead@x", store.backend.remote(case_id, tmp_path / "half"))
    half.append("case.opened", {"case_id": case_id, "finding_id": finding.id})  # then the opener died

    handle, created = CaseStore(shared_store.url, actor="next@y").open_for_finding(finding, RAW, "again.json")

    assert not created
    assert handle.load().id == case_id
    assert [item.name for item in handle.load().evidence] == ["finding-as-received.json"]
    assert verify_case(handle).ok


def test_status_reads_a_plan_recorded_on_another_machine_from_s3(shared_store: SharedStore) -> None:
    handle = _open(shared_store)
    with handle.writer("record plan"):
        StateStore(handle).record_plan(make_plan(mark_step("s1", ("ns", "cm"), "a")), handle.case_id)
    _drop_cache(shared_store)

    status = run_eksir("status", handle.case_id, "--cases-dir", shared_store.url, "-o", "json")

    assert status.returncode == 0, status.stderr
    document = orjson.loads(status.stdout)
    assert document["case_id"] == handle.case_id
    assert "s1" in status.stdout


def test_triage_opens_its_case_in_s3_and_a_repeat_lands_in_the_same_case(shared_store: SharedStore) -> None:
    first = run_eksir("triage", str(EXAMPLE), "--cases-dir", shared_store.url, "-o", "json")
    again = run_eksir("triage", str(EXAMPLE), "--cases-dir", shared_store.url, "-o", "json")

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    case_id = orjson.loads(first.stdout)["case"]["id"]
    assert orjson.loads(again.stdout)["case"]["id"] == case_id
    handle = CaseStore(shared_store.url).get(case_id)
    types = [e.type for e in handle.log.events()]
    assert types.count("case.opened") == 1
    assert "finding.received-again" in types
    assert verify_case(handle).ok

"""Anchoring the chain outside the case: a rewritten or truncated record is caught against a published head,
an export re-signed with a fresh key is not trusted, and a case nobody anchored is said to be so."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eksir.lab.moto_server import AwsEndpoint, InProcessMoto
from eksir.store import CaseHandle, CaseStore, verify_case
from eksir.store.event_log import GENESIS_HASH, canonical_event_bytes
from eksir.store.export import fingerprint
from tests.cli.helpers import run_eksir
from tests.factories import make_finding

RAW = b'{"detail-type": "GuardDuty Finding", "detail": {}}\n'


@pytest.fixture
def case(tmp_path: Path) -> CaseHandle:
    handle, _ = CaseStore(tmp_path / "cases", actor="responder@host").open_for_finding(
        make_finding(), RAW, "finding.json"
    )
    handle.add_evidence("memory.bin", b"the real capture", "test")
    return handle


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "signing-key"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _private(path: Path) -> Ed25519PrivateKey:
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return loaded


def anchor_case(*args: Any) -> Any:
    """Imported on use, so the tests that need no new API also run (and fail) against the code before it."""
    from eksir.store.anchor import anchor_case as anchor

    return anchor(*args)


def anchor_valid(data: dict[str, Any]) -> bool:
    from eksir.store.anchor import anchor_valid as valid

    return valid(data)


def _publish_to(folder: Path) -> tuple[str, Any]:
    """A publisher outside the case (what the war room or the bucket keeps), as a file."""

    def publish(anchor: Any) -> str:
        target = folder / f"anchor-{anchor.seq}.json"
        target.write_bytes(orjson.dumps(anchor.document()))
        return str(target)

    folder.mkdir(exist_ok=True)
    return "outside", publish


def _rewrite_chain(handle: CaseHandle, events: list[dict[str, Any]]) -> None:
    """What an attacker with write access does: renumber and recompute every hash from the first event on."""
    prev, lines = GENESIS_HASH, []
    for seq, event in enumerate(events, start=1):
        event.update(seq=seq, prev_hash=prev)
        event["hash"] = hashlib.sha256(canonical_event_bytes(event)).hexdigest()
        prev = event["hash"]
        lines.append(orjson.dumps(event))
    (handle.path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def _events(handle: CaseHandle) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (handle.path / "events.jsonl").read_bytes().splitlines()]


def test_an_evidence_file_rewritten_with_every_hash_recomputed_fails_against_the_published_head(
    case: CaseHandle, key: Path, tmp_path: Path
) -> None:
    anchored = anchor_case(case, "respond", _private(key), [_publish_to(tmp_path / "war-room")])
    forged = b"an innocent capture"
    item = next(i for i in case.load().evidence if i.name == "memory.bin")
    (case.path / item.path).write_bytes(forged)
    header = orjson.loads((case.path / "case.json").read_bytes())
    for listed in header["evidence"]:
        if listed["path"] == item.path:
            listed.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    case_json = orjson.dumps(header, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    (case.path / "case.json").write_bytes(case_json)
    events = [e for e in _events(case) if e["type"] != "chain.anchored"]
    for event in events:
        if event["type"] == "evidence.collected" and event["data"]["path"] == item.path:
            event["data"].update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    next(e for e in reversed(events) if e["type"] == "case.written")["data"]["sha256"] = hashlib.sha256(
        case_json
    ).hexdigest()
    _rewrite_chain(case, events)
    alone = verify_case(case)

    result = run_eksir("case", "verify", str(case.path), "--anchor", anchored.published_to[0])

    assert alone.ok  # the forgery is consistent with itself
    assert alone.anchoring.startswith("not anchored")
    assert result.returncode == 6
    assert f"event {anchored.anchor.seq} differs from the published anchor" in result.stdout


def test_deleting_the_last_event_a_waiver_is_caught_against_the_published_head(
    case: CaseHandle, key: Path
) -> None:
    case.append("step.waived", {"step_id": "isolate-pod", "approver": "alice", "reason": "accepted risk"})
    anchored = anchor_case(case, "case close", _private(key), [])
    lines = (case.path / "events.jsonl").read_bytes().splitlines(keepends=True)
    (case.path / "events.jsonl").write_bytes(b"".join(lines[:-2]))  # the waiver and its anchoring
    head = f"{anchored.anchor.seq}:{anchored.anchor.head}"

    alone = verify_case(case)
    result = run_eksir("case", "verify", str(case.path), "--anchor", head)

    assert alone.ok
    assert result.returncode == 6
    assert f"shorter than the published anchor at event {anchored.anchor.seq}" in result.stdout


def test_the_case_records_each_anchor_and_verify_checks_its_signature(case: CaseHandle, key: Path) -> None:
    anchored = anchor_case(case, "hunt", _private(key), [])
    recorded = next(e for e in case.log.events() if e.type == "chain.anchored")
    report = verify_case(case)

    assert anchor_valid(recorded.data)
    assert recorded.data["head"] == anchored.anchor.head
    assert recorded.data["key_fingerprint"] == fingerprint(_private(key).public_key())
    assert report.ok
    assert report.anchoring.startswith("not anchored")  # recorded, but published nowhere outside


def _export(case: CaseHandle, key: Path, tmp_path: Path) -> tuple[Path, str]:
    archive = tmp_path / "case.tar.gz"
    result = run_eksir(
        "case", "export", str(case.path), "--out", str(archive), "--key", str(key), "--output", "json"
    )
    assert result.returncode == 0, result.stderr
    return archive, str(orjson.loads(result.stdout)["fingerprint"])


def _resign_with_a_fresh_key(archive: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = orjson.loads(members["eksir-manifest.json"])
    forger = Ed25519PrivateKey.generate()
    raw = forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    manifest.update(
        public_key=base64.b64encode(raw).decode(), key_fingerprint=fingerprint(forger.public_key())
    )
    body = orjson.dumps(manifest)
    members["eksir-manifest.json"] = body
    members["eksir-manifest.sig"] = base64.b64encode(forger.sign(body))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(buffer.getvalue())


def test_an_export_resigned_with_a_fresh_key_is_a_valid_signature_from_an_untrusted_key(
    case: CaseHandle, key: Path, tmp_path: Path
) -> None:
    archive, original = _export(case, key, tmp_path)
    trusted = run_eksir("case", "verify", str(archive), "--trusted-key", original)
    _resign_with_a_fresh_key(archive)

    unpinned = run_eksir("case", "verify", str(archive))
    pinned = run_eksir("case", "verify", str(archive), "--trusted-key", original)

    assert unpinned.returncode == 6, unpinned.stdout
    assert "valid signature, untrusted key" in unpinned.stdout
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert pinned.returncode == 6
    assert "valid signature, untrusted key" in pinned.stdout


def test_the_export_event_records_the_manifest_digest_and_the_chain_head(
    case: CaseHandle, key: Path, tmp_path: Path
) -> None:
    *_, last = case.log.events()
    archive, _ = _export(case, key, tmp_path)
    with tarfile.open(archive, "r:gz") as tar:
        manifest = tar.extractfile("eksir-manifest.json").read()  # type: ignore[union-attr]

    exported = next(e for e in case.log.events() if e.type == "case.exported")

    assert exported.data["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert exported.data["chain_head"] == {"seq": last.seq, "hash": last.hash}
    assert orjson.loads(manifest)["chain_head"] == {"seq": last.seq, "hash": last.hash}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsEndpoint]:
    with InProcessMoto(tmp_path_factory.mktemp("moto")) as server:
        yield server.endpoint


def test_the_head_is_published_as_an_object_in_the_object_lock_evidence_bucket(
    case: CaseHandle, key: Path, moto: AwsEndpoint
) -> None:
    from eksir.cli.anchoring import bucket_publisher

    s3 = moto.client("s3")
    s3.create_bucket(Bucket="evidence-anchors", ObjectLockEnabledForBucket=True)

    result = anchor_case(case, "respond", _private(key), [bucket_publisher(s3, "evidence-anchors")])

    object_key = f"eksir-anchors/{result.anchor.case_id}/{result.anchor.seq:08d}.json"
    assert result.published_to == (f"s3://evidence-anchors/{object_key}",)
    stored = orjson.loads(s3.get_object(Bucket="evidence-anchors", Key=object_key)["Body"].read())
    assert anchor_valid(stored)
    assert stored["head"] == result.anchor.head
    assert (
        verify_case(case).anchoring == f"anchored at event {result.anchor.seq} (published outside the case)"
    )


def test_a_phase_with_nothing_configured_prints_the_head_and_verify_says_not_anchored(
    tmp_path: Path, key: Path
) -> None:
    from tests.report.case_builder import build_case

    handle = build_case(tmp_path / "cases")
    env_key = {"EKSIR_SIGNING_KEY": str(key)}
    report = run_eksir_env(env_key, "report", str(handle.path), "--format", "json")
    verified = run_eksir("case", "verify", str(handle.path))

    *_, anchored = (e for e in handle.log.events() if e.type == "chain.anchored")
    assert report.returncode == 0, report.stderr
    assert (
        f"chain head {handle.load().id} seq {anchored.data['seq']} sha256 {anchored.data['head']}"
        in report.stderr
    )
    assert "the case is not anchored" in report.stderr
    assert verified.returncode == 0
    assert "not anchored" in verified.stdout


def run_eksir_env(env: dict[str, str], *args: str) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
    )  # fmt: skip


def test_the_head_is_published_to_the_war_room_through_the_notify_observer(
    case: CaseHandle, key: Path, moto: AwsEndpoint
) -> None:
    from eksir.cli.anchoring import war_room_publishers
    from eksir.notify import SnsChannel, WarRoom

    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name="eksir-anchor-room")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="anchor-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    result = anchor_case(
        case, "respond", _private(key), war_room_publishers(WarRoom(case, [SnsChannel(sns, topic)]))
    )

    body = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"][0]["Body"]
    assert result.published_to == ("war room: sns",)
    assert result.failed == ()
    assert result.anchor.head in body
    assert f"seq {result.anchor.seq}" in body


def test_a_war_room_channel_that_fails_is_named_in_the_anchoring_not_counted_as_published(
    case: CaseHandle, key: Path, moto: AwsEndpoint
) -> None:
    from eksir.cli.anchoring import war_room_publishers
    from eksir.notify import SnsChannel, WarRoom

    missing = SnsChannel(moto.client("sns"), "arn:aws:sns:us-east-1:123456789012:no-such-topic")

    result = anchor_case(case, "respond", _private(key), war_room_publishers(WarRoom(case, [missing])))

    recorded = next(e for e in case.log.events() if e.type == "chain.anchored")
    assert result.published_to == ()
    assert recorded.data["published_to"] == []
    assert recorded.data["failed"][0].startswith("war room sns: ")
    assert verify_case(case).anchoring.startswith("not anchored")

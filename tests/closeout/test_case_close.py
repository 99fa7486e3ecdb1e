"""`eksir case close` refuses an unfinished case; `export` and `verify` work end to end from the CLI."""

from __future__ import annotations

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eksir.errors import RefusedError
from eksir.models.case import CaseStatus
from eksir.phases.closeout import close_case, waive_step
from eksir.report import generate_report
from tests.cli.helpers import run_eksir
from tests.report.case_builder import add_step, build_case


def test_close_is_refused_without_a_report(tmp_path):
    handle = build_case(tmp_path)
    with pytest.raises(RefusedError, match="no report"):
        close_case(handle)


def test_close_is_refused_while_a_step_failed_and_names_it(tmp_path):
    handle = build_case(tmp_path)
    add_step(handle, "cordon-node", "k8s.cordon_node", "containment", "failed")
    generate_report(handle)
    with pytest.raises(RefusedError, match=r"cordon-node \(failed\)"):
        close_case(handle)
    assert handle.load().status is CaseStatus.OPEN


def test_close_reads_pending_steps_from_the_engines_plan_state(tmp_path):
    handle = build_case(tmp_path)
    state = {"steps": {"isolate-pod": {"status": "verified"}, "snapshot-volumes": {"status": "pending"}}}
    handle.write_document("plan-state.json", orjson.dumps(state), "plan-state")
    generate_report(handle)
    with pytest.raises(RefusedError, match=r"snapshot-volumes \(pending\)"):
        close_case(handle)


def _last_seq(handle) -> int:
    return max(event.seq for event in handle.log.events())


def test_close_follows_transitions_logged_after_the_state_file(tmp_path):
    """A shared case writes its state file at a run's end: the log may be ahead of it."""
    handle = build_case(tmp_path)
    state = {"steps": {"snapshot-volumes": {"status": "pending"}}, "last_seq": _last_seq(handle)}
    handle.write_document("plan-state.json", orjson.dumps(state), "plan-state")
    add_step(handle, "snapshot-volumes", "ec2.snapshot_volumes", "evidence", "verified")
    generate_report(handle)
    assert not close_case(handle).already_closed


def test_close_still_reads_the_state_file_where_nothing_was_logged_after_it(tmp_path):
    handle = build_case(tmp_path)
    add_step(handle, "snapshot-volumes", "ec2.snapshot_volumes", "evidence", "verified")
    state = {"steps": {"snapshot-volumes": {"status": "failed"}}, "last_seq": _last_seq(handle)}
    handle.write_document("plan-state.json", orjson.dumps(state), "plan-state")
    generate_report(handle)
    with pytest.raises(RefusedError, match=r"snapshot-volumes \(failed\)"):
        close_case(handle)


def test_close_is_refused_when_the_report_predates_the_last_step(tmp_path):
    handle = build_case(tmp_path)
    generate_report(handle)
    add_step(handle, "late-step", "k8s.isolate_pod", "containment", "verified")
    with pytest.raises(RefusedError, match="predates"):
        close_case(handle)


def test_a_waived_step_with_a_reason_lets_the_case_close(tmp_path):
    handle = build_case(tmp_path)
    add_step(handle, "cordon-node", "k8s.cordon_node", "containment", "failed")
    waive_step(handle, "cordon-node", "node already terminated by the ASG")
    generate_report(handle)
    result = close_case(handle)
    assert not result.already_closed
    assert handle.load().status is CaseStatus.CLOSED
    assert close_case(handle).already_closed


def test_a_waiver_without_a_reason_is_refused(tmp_path):
    handle = build_case(tmp_path)
    with pytest.raises(RefusedError, match="reason"):
        waive_step(handle, "x", "  ")


def test_cli_close_refusal_is_one_line_with_exit_code_12(tmp_path):
    handle = build_case(tmp_path)
    result = run_eksir("case", "close", handle.path.name, "--cases-dir", str(tmp_path))
    assert result.returncode == 12
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_cli_export_then_verify_archive_round_trip_and_tamper(tmp_path):
    handle = build_case(tmp_path / "cases")
    generate_report(handle)
    archive = tmp_path / "out.tar.gz"
    key = tmp_path / "home" / "key.pem"

    exported = run_eksir(
        "case",
        "export",
        handle.path.name,
        "--cases-dir",
        str(tmp_path / "cases"),
        "--out",
        str(archive),
        "--output",
        "json",
        "--key",
        str(_make_key(key)),
    )
    assert exported.returncode == 0, exported.stderr
    fingerprint = orjson.loads(exported.stdout)["fingerprint"]
    ok = run_eksir("case", "verify", str(archive), "--expect-fingerprint", fingerprint)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert fingerprint in ok.stdout
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    bad = run_eksir("case", "verify", str(archive))
    assert bad.returncode in (3, 6)
    assert "Traceback" not in bad.stderr


def _make_key(path):

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path

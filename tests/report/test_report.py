"""The report is built only from the case record and written back into it, hashed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from eksir.errors import CaseInvalidError
from eksir.models.finding import Actor, ActorKind, Workload
from eksir.report import generate_report
from eksir.store import verify_case
from tests.cli.helpers import run_eksir
from tests.factories import FIRST_SEEN
from tests.report.case_builder import add_step, build_case

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_every_format_is_written_into_the_case_and_the_case_still_verifies(tmp_path):
    handle = build_case(tmp_path)
    _, written = generate_report(handle, now=NOW)
    assert [w.path for w in written] == ["report.md", "report.html", "report.json"]
    assert verify_case(handle).ok
    logged = [e.data["path"] for e in handle.log.events() if e.type == "document.written"]
    assert {"report.md", "report.html", "report.json"} <= set(logged)


def test_the_timeline_merges_attacker_detection_and_response_in_time_order(tmp_path):
    handle = build_case(tmp_path)
    report, _ = generate_report(handle, ["json"], now=NOW)
    lanes = [e.lane.value for e in report.timeline]
    assert lanes[:3] == ["attacker", "attacker", "attacker"]  # hunt calls precede the finding's first-seen
    assert "detection" in lanes
    assert [e.at for e in report.timeline] == sorted(e.at for e in report.timeline)
    [step] = [e for e in report.timeline if e.title.startswith("Step isolate-pod")]
    assert step.title == "Step isolate-pod (k8s.isolate_pod): verified"
    assert step.detail == "approved by lead@soc"
    assert [h.split()[-1] for h in step.history] == ["approved", "applied", "verified"]


def test_the_timeline_has_one_row_per_step_not_one_per_engine_transition(tmp_path):
    handle = build_case(tmp_path)
    report, _ = generate_report(handle, ["json"], now=NOW)
    step_rows = [e.title for e in report.timeline if e.title.startswith(("Step ", "step."))]
    assert step_rows == [
        "Step isolate-pod (k8s.isolate_pod): verified",
        "Step restore-service (k8s.scale_owner): verified",
    ]


def test_containment_rows_carry_approver_before_and_after_from_engine_records(tmp_path):
    handle = build_case(tmp_path)
    report, _ = generate_report(handle, ["json"], now=NOW)
    [row] = report.steps_in("containment")
    assert (row.step_id, row.status, row.approver) == ("isolate-pod", "verified", "lead@soc")
    assert row.before == {"labels": {}}
    assert row.after == {"labels": {"eksir.io/quarantine": "true"}}


def test_metrics_measure_from_the_first_hunt_event_and_say_na_when_unknown(tmp_path):
    handle = build_case(tmp_path, steps=False)
    add_step(handle, "isolate-pod", "k8s.isolate_pod", "containment", "failed")
    report, _ = generate_report(handle, ["json"], now=NOW)
    by_name = {m.name: m for m in report.metrics}
    detect = by_name["first attacker event -> finding"]
    first_hunt = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    assert detect.seconds == (FIRST_SEEN - first_hunt).total_seconds() == 1500
    assert detect.text == "25m 0s"
    assert by_name["first attacker event -> containment"].text == "unknown"
    assert "not verified: isolate-pod" in by_name["first attacker event -> containment"].basis
    assert by_name["first attacker event -> recovery"].text == "unknown"
    assert by_name["finding created -> containment"].text == "unknown"


def test_a_finding_first_seen_at_its_creation_time_measures_unknown_never_0m_0s(tmp_path):
    handle = build_case(tmp_path, hunt=False, created_at=FIRST_SEEN)
    report, _ = generate_report(handle, ["md"], now=NOW)
    detect = report.metrics[0]
    assert (detect.text, detect.seconds) == ("unknown", None)
    assert "same time" in detect.basis
    assert "0m 0s" not in (handle.path / "report.md").read_text()


def test_hunt_categories_and_owners_come_from_the_hunt_document(tmp_path):
    handle = build_case(tmp_path)
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert {c.category: c.count for c in report.hunt_categories} == {"data-access": 1, "secret-access": 1}
    assert [(o.owner, o.notified) for o in report.owners] == [("payroll-team", False)]


def test_owners_recorded_as_notified_are_shown_as_notified(tmp_path):
    handle = build_case(tmp_path)
    handle.append("owners.notified", {"owners": ["payroll-team"]})
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert report.owners[0].notified


def test_evidence_manifest_lists_hashes_and_custody(tmp_path):
    handle = build_case(tmp_path)
    report, _ = generate_report(handle, ["md"], now=NOW)
    item = report.evidence[0]
    assert item.sha256 == handle.load().evidence[0].sha256
    assert "collected by responder@host" in item.custody[0]
    assert item.sha256 in (handle.path / "report.md").read_text()


def test_lessons_say_what_the_case_does_not_record_instead_of_guessing(tmp_path):
    handle = build_case(tmp_path)
    report, _ = generate_report(handle, ["json"], now=NOW)
    topics = {lesson.topic: lesson for lesson in report.lessons}
    assert "does not record the Pod Security" in topics["Admission"].finding
    assert "service-account" in topics["Credentials"].finding
    assert "not applied" in topics["Prevention"].finding


def test_a_case_without_hunt_or_steps_still_reports_with_na_metrics(tmp_path):
    handle = build_case(tmp_path, hunt=False, steps=False)
    report, _ = generate_report(handle, now=NOW)
    assert report.hunt_total is None
    assert [m.text for m in report.metrics][1:] == ["unknown"] * 4
    assert "No hunt result in the case." in (handle.path / "report.md").read_text()


def test_json_report_is_stable_contract_with_schema_and_utc_times(tmp_path):
    handle = build_case(tmp_path)
    generate_report(handle, ["json"], now=NOW)
    data = orjson.loads((handle.path / "report.json").read_bytes())
    assert data["schema"] == "eksir.report/v1"
    assert data["generated_at"] == "2026-11-21T09:00:00Z"
    assert data["timeline"][0]["at"].endswith("Z")


def test_a_tampered_hunt_document_makes_the_report_refuse(tmp_path):
    handle = build_case(tmp_path)
    (handle.path / "hunt.json").write_bytes(b'{"events": []}')
    with pytest.raises(CaseInvalidError, match=r"hunt\.json was altered"):
        generate_report(handle, now=NOW)


def test_hostile_values_cannot_break_markdown_tables_or_inject_html(tmp_path):

    evil = "<script>alert(1)</script>|x`y"
    handle = build_case(tmp_path, workload=Workload(namespace="default", name=evil))
    generate_report(handle, ["md", "html"], now=NOW)
    html = (handle.path / "report.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    markdown = (handle.path / "report.md").read_text()
    assert "\\|x\\`y" in markdown


def test_html_and_links_in_finding_fields_reach_report_md_only_as_escaped_text(tmp_path):
    evil = "<img src=x onerror=alert(1)>[login](https://evil.example)"
    actor = Actor(kind=ActorKind.IAM_USER, username=f"mallory{evil}", groups=())
    handle = build_case(tmp_path, workload=Workload(namespace="default", name=f"pod{evil}"), actor=actor)
    generate_report(handle, ["md"], now=NOW)
    markdown = (handle.path / "report.md").read_text()
    summary = markdown.split("## Executive summary")[1].split("## Timeline")[0]
    credentials = next(line for line in markdown.splitlines() if line.startswith("- **Credentials**"))
    for part in (summary, credentials):
        assert "<img" not in part
        assert "[login](https" not in part
        assert "&lt;img src=x onerror=alert(1)&gt;\\[login\\](https://evil.example)" in part


def test_report_cli_writes_all_formats_and_prints_paths(tmp_path):
    handle = build_case(tmp_path)
    result = run_eksir("report", handle.path.name, "--cases-dir", str(tmp_path), "--output", "json")
    assert result.returncode == 0, result.stderr
    written = orjson.loads(result.stdout)["written"]
    assert [Path(w["path"]).name for w in written] == ["report.md", "report.html", "report.json"]


def test_report_cli_on_an_unknown_case_prints_one_line_and_exits_not_found(tmp_path):
    result = run_eksir("report", "no-such-case", "--cases-dir", str(tmp_path))
    assert result.returncode == 10
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_a_hand_edited_verdict_in_case_json_makes_the_report_refuse_in_one_line(tmp_path):
    handle = build_case(tmp_path)
    header = orjson.loads((handle.path / "case.json").read_bytes())
    header["verdict"] = "authorized-change"
    (handle.path / "case.json").write_bytes(orjson.dumps(header, option=orjson.OPT_INDENT_2))
    with pytest.raises(CaseInvalidError, match=r"case\.json was altered after it was logged"):
        generate_report(handle, now=NOW)
    result = run_eksir("report", handle.path.name, "--cases-dir", str(tmp_path))
    assert result.returncode == 6
    assert result.stderr.startswith("eksir: error: case.json was altered")
    assert result.stderr.count("\n") == 1
    assert not (handle.path / "report.md").exists()

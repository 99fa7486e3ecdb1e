"""Page 1 of the report (for the CISO) and page 2 (for legal), as facts every format carries alike."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eksir.report import generate_report
from eksir.report.status import STATUS_TONES, status_tone
from eksir.store.anchor import anchor_case
from tests.report.case_builder import (
    BACKDOOR_USER,
    DATA_OBJECT,
    INCIDENT_HUNT,
    add_declined_step,
    add_recovery,
    add_step,
    build_case,
)

TRAIL = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _page_one_json(tmp_path, final="verified"):
    handle = build_case(tmp_path, hunt_doc=INCIDENT_HUNT)
    add_recovery(handle, final)
    generate_report(handle, now=NOW)
    return handle, orjson.loads((handle.path / "report.json").read_bytes())["briefing"]


def test_json_names_the_data_read_the_backdoor_user_and_the_deleted_trail(tmp_path):
    _, brief = _page_one_json(tmp_path)
    assert [(i["call"], i["target"]) for i in brief["data_read"]] == [("s3 GetObject", DATA_OBJECT)]
    user = f"arn:aws:iam::123456789012:user/{BACKDOOR_USER}"
    assert [(i["call"], i["target"]) for i in brief["persistence"]] == [
        ("iam CreateUser", user),
        ("iam CreateAccessKey", user),
        ("iam AttachUserPolicy", f"{user}, arn:aws:iam::aws:policy/AdministratorAccess"),
    ]
    assert brief["persistence"][0]["outcome"] == "removed by step delete-user"
    assert [(i["call"], i["target"]) for i in brief["logging_tampered"]] == [
        ("cloudtrail DeleteTrail", TRAIL)
    ]


def test_markdown_summary_and_page_one_sections_carry_the_same_facts(tmp_path):
    handle, _ = _page_one_json(tmp_path)
    markdown = (handle.path / "report.md").read_text()
    summary = markdown.split("## Executive summary")[1].split("## Impact")[0]
    assert "Data read: s3 GetObject arn:aws:s3:::lab-payments-data/exports/customers-2024-q3.csv" in summary
    user = f"arn:aws:iam::123456789012:user/{BACKDOOR_USER}"
    assert f"Persistence created: iam CreateUser {user} (removed by step delete-user)" in summary
    assert f"Logging tampered with: cloudtrail DeleteTrail {TRAIL}." in summary
    page_one = markdown.split("## Chain of custody")[0]
    for heading in (
        "### Data read",
        "## Containment now",
        "## Open risks and worklist",
        "## Who approved what",
    ):
        assert heading in page_one
    assert "Worklist: AWS::CloudTrail::Trail org-trail: recreate the trail" in page_one
    assert "lead@soc approved 3 step(s): isolate-pod, restore-service, delete-user" in page_one


def test_persistence_whose_removal_failed_is_an_open_risk_not_removed(tmp_path):
    _, brief = _page_one_json(tmp_path, final="failed")
    assert brief["persistence"][0]["outcome"] == "removal failed by step delete-user"
    assert "delete-user (iam.delete_user) failed" in brief["open_risks"]


def test_persistence_no_step_removes_is_named_as_still_present(tmp_path):
    handle = build_case(tmp_path, hunt_doc=INCIDENT_HUNT)
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert report.briefing.persistence[0].outcome == "not removed by eksir: open"
    assert (
        f"Persistence still present: iam CreateUser arn:aws:iam::123456789012:user/{BACKDOOR_USER}"
        in report.briefing.open_risks
    )


def test_a_failed_read_is_reported_as_attempted_not_as_data_taken(tmp_path):
    denied = {**INCIDENT_HUNT["events"][1], "failed": True, "error_code": "AccessDenied"}
    handle = build_case(tmp_path, hunt_doc={**INCIDENT_HUNT, "events": [denied]})
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert report.briefing.data_read[0].outcome == "attempted, failed (AccessDenied)"


def test_a_case_without_a_hunt_says_the_impact_is_unknown(tmp_path):
    handle = build_case(tmp_path, hunt=False)
    report, _ = generate_report(handle, ["md"], now=NOW)
    assert (
        "No hunt in the case: what the attacker did beyond the finding is unknown."
        in report.briefing.open_risks
    )
    assert "Unknown: no hunt in the case." in (handle.path / "report.md").read_text()


def test_containment_not_in_effect_is_named_with_its_status(tmp_path):
    handle = build_case(tmp_path, steps=False)
    add_step(handle, "isolate-pod", "k8s.isolate_pod", "containment", "not-effective")
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert report.briefing.containment == [
        "0 of 1 containment step(s) in effect and verified.",
        "isolate-pod (k8s.isolate_pod): not-effective",
    ]
    assert "isolate-pod (k8s.isolate_pod) not-effective" in report.briefing.open_risks


def test_only_verified_reads_as_success_and_an_unlisted_status_never_does():
    assert [s for s, tone in STATUS_TONES.items() if tone == "ok"] == ["verified"]
    assert status_tone("not-effective") == "bad"
    assert status_tone("some-future-status") == "neutral"


def test_hostile_hunt_text_is_bounded_and_escaped_on_page_one(tmp_path):
    evil = "<script>alert(1)</script>|" + "A" * 5000
    event = {**INCIDENT_HUNT["events"][1], "resources": [{"arn": f"arn:aws:s3:::b/{evil}"}]}
    handle = build_case(tmp_path, hunt_doc={**INCIDENT_HUNT, "events": [event]})
    report, _ = generate_report(handle, ["md", "html"], now=NOW)
    assert len(report.briefing.data_read[0].target) <= 240
    html = (handle.path / "report.html").read_text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = (handle.path / "report.md").read_text()
    assert "<script>" not in markdown
    assert "\\|AAAA" in markdown


def test_page_two_names_the_chain_head_and_every_signed_head(tmp_path):
    handle = build_case(tmp_path)
    handle.append(
        "chain.anchored",
        {
            "seq": 3,
            "head": "ab" * 32,
            "phase": "respond",
            "key_fingerprint": "SHA256:k",
            "signature": "x",
            "published_to": ["war room #ir-42"],
            "failed": [],
        },
    )
    report, _ = generate_report(handle, ["md"], now=NOW)
    [signed] = report.custody.signed_heads
    assert (signed.seq, signed.published_to, signed.signature_valid) == (3, ("war room #ir-42",), False)
    last = list(handle.log.events())[-1]
    assert report.custody.head_seq is not None
    assert report.custody.head_seq < last.seq
    markdown = (handle.path / "report.md").read_text()
    assert "| respond | 3 | " + "ab" * 32 in markdown
    assert "INVALID" in markdown
    assert "war room #ir-42" in markdown


def test_a_cluster_token_lookup_is_not_counted_as_data_read(tmp_path):
    token = {**INCIDENT_HUNT["events"][1], "action": "DescribeCluster", "rule_id": "ct.data-access.eks-token"}
    token["event_id"] = "token-lookup"
    handle = build_case(tmp_path, hunt_doc={**INCIDENT_HUNT, "events": [token, INCIDENT_HUNT["events"][1]]})
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert [i.call for i in report.briefing.data_read] == ["s3 GetObject"]


def test_a_blocked_steps_reason_does_not_repeat_its_status(tmp_path):
    handle = build_case(tmp_path, steps=False)
    add_step(handle, "isolate-node", "ec2.isolate_instance", "containment", "blocked")
    handle.append("step.blocked", {"step_id": "isolate-node", "detail": "blocked: pause-container is failed"})
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert (
        report.briefing.containment[1]
        == "isolate-node (ec2.isolate_instance): blocked: pause-container is failed"
    )


def test_a_declined_step_is_named_as_declined_never_as_approved(tmp_path):
    handle = build_case(tmp_path)
    add_declined_step(handle, "cordon-node", "k8s.cordon_node", "containment")
    report, _ = generate_report(handle, ["json"], now=NOW)
    [row] = [s for s in report.steps if s.step_id == "cordon-node"]
    assert (row.status, row.approver, row.declined_by) == ("skipped", None, "lead@soc")
    assert report.briefing.approvals == [
        "lead@soc approved 2 step(s): isolate-pod, restore-service",
        "lead@soc declined cordon-node: not applied",
    ]
    assert "cordon-node (k8s.cordon_node) declined at approval" in report.briefing.open_risks


def test_a_long_worklist_is_counted_so_page_one_stays_one_page(tmp_path):
    handle = build_case(tmp_path, hunt_doc=INCIDENT_HUNT)
    worklist = {"worklist": [{"resource": f"AWS::IAM::Role r{n}", "todo": "review"} for n in range(40)]}
    handle.write_document("recovery/worklist.json", orjson.dumps(worklist), "recovery-worklist")
    report, _ = generate_report(handle, ["json"], now=NOW)
    risks = report.briefing.open_risks
    assert len(risks) == 15
    assert risks[0].startswith("Persistence still present: iam CreateUser")
    # 5 risks before the worklist (3 persistence items, logging, prevention), then 9 of 40 items and a count
    assert risks[5] == "Worklist: AWS::IAM::Role r0: review"
    assert risks[-1] == "Worklist: 31 more item(s) in recovery/worklist.json"


def test_a_huge_step_detail_is_bounded_in_every_format(tmp_path):
    handle = build_case(tmp_path, steps=False)
    add_step(handle, "isolate-pod", "k8s.isolate_pod", "containment", "applied")
    handle.append("step.failed", {"step_id": "isolate-pod", "detail": "E" * 50_000})
    report, _ = generate_report(handle, now=NOW)
    assert len(report.steps[0].detail) == 1000
    assert "E" * 1001 not in (handle.path / "report.html").read_text()
    assert "E" * 1001 not in (handle.path / "report.md").read_text()


def test_a_recovery_step_for_another_user_does_not_count_as_removing_the_backdoor(tmp_path):
    handle = build_case(tmp_path, hunt_doc=INCIDENT_HUNT)
    step = {"id": "delete-user", "action_id": "iam.delete_user", "params": {"user_name": "alice"}}
    plan = {"steps": [step]}
    handle.write_document("recovery-plan.json", orjson.dumps(plan), "recovery-plan")
    add_step(handle, "delete-user", "iam.delete_user", "recovery", "verified")
    report, _ = generate_report(handle, ["json"], now=NOW)
    assert {p.outcome for p in report.briefing.persistence} == {"not removed by eksir: open"}


def test_page_two_shows_a_real_signed_head_as_valid_and_where_it_was_published(tmp_path):
    handle = build_case(tmp_path)
    result = anchor_case(handle, "respond", Ed25519PrivateKey.generate(), [("war room", lambda a: "#ir-42")])
    report, _ = generate_report(handle, ["json"], now=NOW)
    [signed] = report.custody.signed_heads
    assert (signed.seq, signed.head) == (result.anchor.seq, result.anchor.head)
    assert signed.signature_valid
    assert signed.published_to == ("#ir-42",)
    assert signed.key_fingerprint == result.anchor.key_fingerprint


def test_a_not_effective_step_is_spelled_out_in_red_with_its_reason_beside_it(tmp_path):
    handle = build_case(tmp_path, steps=False)
    add_step(handle, "isolate-pod", "k8s.isolate_pod", "containment", "applied")
    handle.append(
        "step.not-effective", {"step_id": "isolate-pod", "detail": "standalone pod: the VPC CNI skips it"}
    )
    generate_report(handle, ["html"], now=NOW)
    html = (handle.path / "report.html").read_text()
    assert '<td class="status tone-bad">NOT EFFECTIVE</td>' in html
    assert "<td>standalone pod: the VPC CNI skips it</td>" in html

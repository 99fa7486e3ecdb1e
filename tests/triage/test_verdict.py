"""Triage verdicts: authorised change, suspicious, unauthorised, and the not-configured rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from eksir.errors import BadInputError
from eksir.models.finding import Actor, ActorKind, ApiCall
from eksir.triage import CheckStatus, Decision, TriageConfig, load_triage_config, triage_finding
from tests.factories import make_finding

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "triage-config.yaml"


def config_with_change(**change: object) -> TriageConfig:
    record = {
        "id": "CHG-1",
        "principals": ["system:serviceaccount:argocd:argocd-application-controller"],
        "namespaces": ["kube-system"],
        "image_prefixes": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/platform/"],
        "window_start": datetime(2026, 11, 20, 8, tzinfo=UTC),
        "window_end": datetime(2026, 11, 20, 18, tzinfo=UTC),
    }
    record.update(change)
    return TriageConfig.model_validate(
        {
            "enterprise_cidrs": ["10.0.0.0/8"],
            "known_organizations": [{"asn": "16509"}],
            "allowed_countries": ["US"],
            "expected_user_agents": ["argocd-application-controller/*"],
            "change_records": [record],
        }
    )


def test_without_config_every_check_is_not_configured_and_the_verdict_is_suspicious() -> None:
    verdict = triage_finding(make_finding(), TriageConfig())
    assert {c.status for c in verdict.checks} == {CheckStatus.NOT_CONFIGURED}
    assert verdict.decision is Decision.SUSPICIOUS


def test_a_covering_change_record_from_inside_makes_an_authorized_change_with_a_suppression_filter() -> None:
    verdict = triage_finding(make_finding(), config_with_change())
    assert verdict.decision is Decision.AUTHORIZED_CHANGE
    assert verdict.change_record is not None
    assert verdict.change_record.id == "CHG-1"
    criterion = verdict.suppression_filter["FindingCriteria"]["Criterion"]  # type: ignore[index]
    assert criterion["type"] == {"Equals": [make_finding().type]}
    assert criterion["resource.kubernetesDetails.kubernetesUserDetails.username"]["Equals"] == [
        "system:serviceaccount:argocd:argocd-application-controller"
    ]
    assert verdict.suppression_filter["Action"] == "ARCHIVE"  # type: ignore[index]
    assert verdict.follow_ups


@pytest.mark.parametrize(
    ("change", "gap"),
    [
        ({"namespaces": ["monitoring"]}, "namespace kube-system not covered"),
        ({"image_prefixes": ["public.ecr.aws/"]}, "image not under an approved prefix"),
        ({"principals": ["alice"]}, "principal differs"),
        (
            {
                "window_start": datetime(2026, 11, 21, tzinfo=UTC),
                "window_end": datetime(2026, 11, 22, tzinfo=UTC),
            },
            "outside the approved time window",
        ),
    ],
)
def test_a_change_record_that_does_not_cover_the_finding_says_why(
    change: dict[str, object], gap: str
) -> None:
    verdict = triage_finding(make_finding(), config_with_change(**change))
    assert verdict.decision is Decision.SUSPICIOUS
    change_check = next(c for c in verdict.checks if c.name == "change-record")
    assert change_check.status is CheckStatus.FAIL
    assert gap in change_check.detail


def test_a_call_from_outside_without_an_approved_change_is_unauthorized() -> None:
    outside = ApiCall(
        verb="create", source_ips=("203.0.113.9",), asn="14061", asn_org="DIGITALOCEAN", country_code="RO"
    )
    verdict = triage_finding(make_finding(api_call=outside), config_with_change(principals=["bob"]))
    assert verdict.decision is Decision.UNAUTHORIZED
    assert any("203.0.113.9 outside the enterprise CIDRs" in r for r in verdict.reasons)
    assert any("country RO" in r for r in verdict.reasons)


def test_an_approved_change_made_from_an_unexpected_country_is_only_suspicious() -> None:
    call = ApiCall(
        verb="create",
        source_ips=("10.1.2.3",),
        asn="16509",
        country_code="KP",
        user_agent="argocd-application-controller/v2",
    )
    verdict = triage_finding(make_finding(api_call=call), config_with_change())
    assert verdict.decision is Decision.SUSPICIOUS
    assert "unexpected origin" in verdict.reasons[0]


def test_an_anonymous_actor_is_always_unauthorized() -> None:
    anonymous = Actor(kind=ActorKind.ANONYMOUS, username="system:anonymous")
    verdict = triage_finding(make_finding(actor=anonymous), TriageConfig())
    assert verdict.decision is Decision.UNAUTHORIZED


def test_a_finding_without_source_ip_reports_no_data_and_the_verdict_says_origin_is_unconfirmed() -> None:
    verdict = triage_finding(make_finding(api_call=ApiCall(verb="create")), config_with_change())
    source = next(c for c in verdict.checks if c.name == "source-ip")
    assert source.status is CheckStatus.NO_DATA
    assert verdict.decision is Decision.AUTHORIZED_CHANGE
    assert any("origin not confirmed (source-ip, asn, country, user-agent" in r for r in verdict.reasons)


def test_missing_origin_data_without_a_change_record_is_suspicious_not_authorized() -> None:
    verdict = triage_finding(
        make_finding(api_call=ApiCall(verb="create")), config_with_change(principals=["x"])
    )
    assert verdict.decision is Decision.SUSPICIOUS


def test_the_shipped_example_config_loads() -> None:
    config = load_triage_config(EXAMPLE_CONFIG)
    assert config.change_records
    assert config.change_records[0].id == "CHG-2041"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("enterprise_cidrs: [not-a-cidr]\n", "enterprise_cidrs.0"),
        ("allowed_countries: [US]\nsurprise: 1\n", "surprise"),
        (
            "change_records:\n  - id: C\n    principals: [a]\n    window_start: 2026-01-02T00:00:00Z\n"
            "    window_end: 2026-01-01T00:00:00Z\n",
            "window_end must be after window_start",
        ),
        (
            "change_records:\n  - id: C\n    principals: [a]\n    window_start: 2026-01-01T00:00:00\n"
            "    window_end: 2026-01-02T00:00:00Z\n",
            "time zone",
        ),
        ("[1, 2\n", "not valid YAML"),
        ("- a list\n", "mapping at the top level"),
    ],
)
def test_a_bad_config_is_one_clear_bad_input_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_triage_config(path)

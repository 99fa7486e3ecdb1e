"""Real, third-party GuardDuty data parses to what a responder would read off it by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from eksir.errors import NotAFindingError, NotHandledError
from eksir.findings import read_findings, require_handled
from eksir.models.finding import ActorKind, FindingFamily, SourceFormat

from .conftest import FIXTURES

REAL = FIXTURES / "real"


def test_cdk_blueprint_finding_is_a_handled_service_account_privileged_pod() -> None:
    [finding] = read_findings(REAL / "cdk-eks-blueprints_get-findings_PrivilegedContainer.json")
    assert finding.family is FindingFamily.PRIVILEGED_CONTAINER
    assert finding.source_format is SourceFormat.BOTO3
    assert finding.id == "f2c3859c6ca25b3057d13470a992bbd7"
    assert finding.actor is not None
    assert finding.actor.kind is ActorKind.SERVICE_ACCOUNT
    assert finding.actor.username == "system:serviceaccount:argocd:argocd-application-controller"
    assert finding.workload is not None
    assert (finding.workload.namespace, finding.workload.name) == ("argocd", "privileged-pod")
    [container] = finding.workload.containers
    assert (container.image, container.privileged) == ("centos", True)
    assert finding.created_at == datetime(2023, 3, 22, 21, 28, 7, 748000, tzinfo=UTC)
    assert finding.cluster is not None
    assert finding.cluster.created_at == datetime(2023, 3, 22, 20, 48, 25, 752000, tzinfo=UTC)
    assert finding.api_call is not None
    assert (finding.api_call.verb, finding.api_call.status_code) == ("create", 201)
    assert require_handled([finding]) == [finding]


def test_malicious_ip_caller_is_other_kubernetes_by_an_anonymous_caller() -> None:
    [finding] = read_findings(REAL / "aws-to-slack_eventbridge_Discovery-Kubernetes-MaliciousIPCaller.json")
    assert finding.family is FindingFamily.OTHER_KUBERNETES
    assert finding.source_format is SourceFormat.EVENTBRIDGE
    assert finding.actor is not None
    assert finding.actor.kind is ActorKind.ANONYMOUS
    assert finding.api_call is not None
    assert finding.api_call.asn == "398705"
    assert finding.api_call.source_ips == ("167.94.145.97",)
    assert finding.cluster is not None
    assert finding.cluster.created_at == datetime(2024, 5, 28, 0, 4, 16, 938000, tzinfo=UTC)
    assert finding.workload is None


def test_malicious_ip_caller_is_refused_as_not_handled_with_a_clear_message() -> None:
    findings = read_findings(REAL / "aws-to-slack_eventbridge_Discovery-Kubernetes-MaliciousIPCaller.json")
    with pytest.raises(
        NotHandledError, match=r"Discovery:Kubernetes/MaliciousIPCaller is a GuardDuty Kubernetes"
    ):
        require_handled(findings)


def test_runtime_protection_health_events_are_not_findings() -> None:
    with pytest.raises(NotAFindingError, match="GuardDuty Runtime Protection Unhealthy"):
        read_findings(REAL / "aws-to-slack_eventbridge_runtime-protection-health.jsonl")


def test_elastic_s3_export_holds_two_findings_and_the_tor_caller_is_an_iam_role(
    shared_guardduty: Path,
) -> None:
    findings = read_findings(shared_guardduty / "elastic-integrations_s3-export_k8s-sample-findings.jsonl")
    assert [f.type for f in findings] == [
        "Persistence:Kubernetes/SuccessfulAnonymousAccess",
        "Discovery:Kubernetes/TorIPCaller",
    ]
    assert all(f.source_format is SourceFormat.S3_EXPORT and f.sample for f in findings)
    anonymous, tor = findings
    assert anonymous.actor is not None
    assert anonymous.actor.kind is ActorKind.ANONYMOUS
    assert tor.actor is not None
    assert tor.actor.kind is ActorKind.IAM_ROLE
    assert tor.actor.user_type == "Role"


def test_asff_ssh_brute_force_is_a_guardduty_finding_but_not_kubernetes(shared_guardduty: Path) -> None:
    [finding] = read_findings(
        shared_guardduty / "aws-docs_securityhub-asff_typical-guardduty-finding_SSHBruteForce.json"
    )
    assert finding.source_format is SourceFormat.ASFF
    assert finding.type == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert finding.family is FindingFamily.NOT_KUBERNETES
    assert finding.id == "46ba0ac2845071e23ccdeb2ae03bfdea"
    assert (finding.severity, finding.count, finding.archived) == (2.0, 74, False)
    with pytest.raises(NotAFindingError, match="not a GuardDuty Kubernetes finding"):
        require_handled([finding])


@pytest.mark.parametrize(
    "name",
    [
        "cdk-eks-blueprints_get-findings_PrivilegedContainer.json",
        "aws-to-slack_eventbridge_Discovery-Kubernetes-MaliciousIPCaller.json",
    ],
)
def test_shipped_copies_match_the_shared_originals(name: str, shared_guardduty: Path) -> None:
    assert (REAL / name).read_bytes() == (shared_guardduty / name).read_bytes()

"""Small builders of normalised findings for tests that need a Finding without parsing one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eksir.models.finding import (
    Actor,
    ActorKind,
    ApiCall,
    Cluster,
    Container,
    Finding,
    FindingFamily,
    SourceFormat,
    Workload,
)

FIRST_SEEN = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def make_finding(**overrides: Any) -> Finding:
    """A handled privileged-container finding by an IAM user from a public IP; override any field."""
    fields: dict[str, Any] = {
        "id": "7ac6b1a0f3e04b5c9d2e8f1a2b3c4d5e",
        "arn": (
            "arn:aws:guardduty:us-east-1:123456789012:detector/d1/finding/7ac6b1a0f3e04b5c9d2e8f1a2b3c4d5e"
        ),
        "type": "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        "family": FindingFamily.PRIVILEGED_CONTAINER,
        "severity": 8.0,
        "account_id": "123456789012",
        "region": "us-east-1",
        "created_at": FIRST_SEEN,
        "event_first_seen": FIRST_SEEN,
        "detector_id": "d1",
        "source_format": SourceFormat.EVENTBRIDGE,
        "cluster": Cluster(name="prod-eks", arn="arn:aws:eks:us-east-1:123456789012:cluster/prod-eks"),
        "workload": Workload(
            namespace="kube-system",
            name="node-problem-detector-x1",
            uid="6f1d2c3b-aaaa-bbbb-cccc-123456789abc",
            service_account="default",
            containers=(
                Container(
                    name="npd",
                    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/platform/npd:1.2",
                    privileged=True,
                ),
            ),
        ),
        "actor": Actor(
            kind=ActorKind.SERVICE_ACCOUNT,
            username="system:serviceaccount:argocd:argocd-application-controller",
            groups=("system:serviceaccounts",),
        ),
        "api_call": ApiCall(
            verb="create",
            request_uri="/api/v1/namespaces/kube-system/pods",
            status_code=201,
            user_agent="argocd-application-controller/v2.9.0 (linux/amd64) kubernetes/$Format",
            source_ips=("10.0.12.7",),
            asn="16509",
            asn_org="AMAZON-02",
            country_code="US",
        ),
    }
    fields.update(overrides)
    return Finding(**fields)

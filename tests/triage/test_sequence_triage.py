"""An attack sequence is judged per workload and never authorized as a whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from eksir.findings import read_findings
from eksir.findings.scope import scope_of
from eksir.models.finding import ActorKind, Finding
from eksir.triage import Decision, TriageConfig, triage_finding
from eksir.triage.config import ChangeRecord
from tests.new_findings import TWO_PODS, Sequence, sequence_finding


def _sequence() -> Finding:
    [finding] = read_findings(
        json.dumps(sequence_finding("eks", Sequence(TWO_PODS), finding_id="a" * 32)).encode()
    )
    return finding


def test_the_scope_names_each_workload_node_and_credential() -> None:
    scope = scope_of(_sequence())
    assert [(w.workload.namespace, w.workload.name) for w in scope.workloads if w.workload] == [
        ("payments", "debug-tools-7d9c4"),
        ("payments", "checkout-api-6c8f9d7b5-x2k4q"),
    ]
    assert set(scope.nodes) == {"i-0a1b2c3d4e5f60718", "i-0fedcba9876543210"}
    assert "AKIAIOSFODNN7EXAMPLE" in scope.principals
    first = scope.workloads[0]
    assert first.sequence is None
    assert first.actor is not None
    assert first.actor.kind is ActorKind.IAM_USER
    assert first.actor.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    assert first.workload is not None
    assert first.workload.containers[0].image == "docker.io/library/ubuntu:24.04"


def test_a_change_record_covering_every_workload_does_not_authorize_the_sequence() -> None:
    record = ChangeRecord(
        id="CHG-1",
        principals=["AKIAIOSFODNN7EXAMPLE"],
        window_start=datetime(2026, 11, 20, tzinfo=UTC),
        window_end=datetime(2026, 11, 21, tzinfo=UTC),
    )
    verdict = triage_finding(_sequence(), TriageConfig(change_records=[record]))
    assert verdict.decision is Decision.SUSPICIOUS
    workloads = [entry for entry in verdict.scope if entry["kind"] == "workload"]
    assert [entry["decision"] for entry in workloads] == ["authorized-change", "authorized-change"]
    assert "never an approved change as a whole" in verdict.reasons[1]


def test_an_unexpected_origin_in_a_workload_makes_the_sequence_unauthorized() -> None:
    verdict = triage_finding(_sequence(), TriageConfig(enterprise_cidrs=["10.0.0.0/8"]))
    # The sequence's workloads carry no API call: origin has no data, so nothing failed.
    assert verdict.decision is Decision.SUSPICIOUS
    assert {entry["kind"] for entry in verdict.scope} == {
        "workload",
        "cluster",
        "node",
        "principal",
        "container",
    }


def test_the_hunt_searches_for_every_principal_of_the_sequence() -> None:
    from eksir.hunt.principals import PrincipalSet

    principals = PrincipalSet.from_finding(_sequence())
    assert "AKIAIOSFODNN7EXAMPLE" in principals.access_key_ids
    assert "dev-alice" in principals.user_names

"""The attack-sequence plan: each workload planned by the privileged-container playbook, merged into one plan
keyed per resource; shared steps once; the same ids every time; scope left uncovered said in notes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eksir.errors import BadInputError
from eksir.findings import read_findings
from eksir.findings.scope import scope_of
from eksir.models.finding import Finding
from eksir.models.resolution import ActorResolution, ClusterInfo, InstanceInfo, NodeInfo, PodInfo, Resolution
from eksir.playbooks.privileged_container import PlaybookOptions
from eksir.playbooks.sequence import build_sequence_plan
from tests.new_findings import TWO_PODS, Pod, Sequence, sequence_finding

AT = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def _sequence(pods: tuple[Pod, ...] = TWO_PODS) -> Finding:
    wire = sequence_finding("eks", Sequence(pods), finding_id="a" * 32)
    [finding] = read_findings(json.dumps(wire).encode())
    return finding


def _resolution(workload: Finding, node: str, instance: str) -> Resolution:
    pod = workload.workload
    assert pod is not None
    assert pod.namespace is not None
    assert pod.name is not None
    return Resolution(
        resolved_at=AT,
        cluster=ClusterInfo(name="prod-payments"),
        pod=PodInfo(namespace=pod.namespace, name=pod.name, uid=pod.uid or "", node_name=node),
        node=NodeInfo(name=node, instance_id=instance),
        instance=InstanceInfo(instance_id=instance),
        actor=ActorResolution(principal_type="iam-user", user_name="dev-alice"),
    )


def _parts(finding: Finding, same_node: bool = False) -> list[tuple[Finding, Resolution]]:
    workloads = scope_of(finding).workloads
    nodes = [("ip-10-0-1-23", "i-0a1b2c3d4e5f60718"), ("ip-10-0-2-34", "i-0fedcba9876543210")]
    if same_node:
        nodes = [nodes[0], nodes[0]]
    return [(w, _resolution(w, *node)) for w, node in zip(workloads, nodes, strict=True)]


def test_each_workload_gets_its_own_pod_and_node_steps_and_the_key_is_disabled_once() -> None:
    finding = _sequence()
    plan = build_sequence_plan(finding, _parts(finding), PlaybookOptions(case_id="eksir-20261120-0000000000"))
    ids = [step.id for step in plan.steps]
    assert f"pod/payments/{TWO_PODS[0].name}#s03-k8s.isolate_pod" in ids
    assert f"pod/payments/{TWO_PODS[1].name}#s03-k8s.isolate_pod" in ids
    isolations = [s.params["instance_id"] for s in plan.steps if s.action_id == "ec2.isolate_instance"]
    assert sorted(isolations) == ["i-0a1b2c3d4e5f60718", "i-0fedcba9876543210"]
    assert [s.id for s in plan.steps if s.action_id == "iam.deactivate_access_key"] == [
        "key/AKIAIOSFODNN7EXAMPLE#s09-iam.deactivate_access_key"
    ]
    for step in plan.steps:
        assert set(step.depends_on) <= set(ids)
    assert not [n for n in plan.notes if n.subject.startswith(("node ", "credential "))]


def test_two_workloads_on_one_node_share_its_steps_and_the_other_node_is_a_warning() -> None:
    finding = _sequence()
    plan = build_sequence_plan(finding, _parts(finding, same_node=True))
    cordons = [s for s in plan.steps if s.action_id == "ec2.isolate_instance"]
    assert [s.id for s in cordons] == ["node/i-0a1b2c3d4e5f60718#s16-ec2.isolate_instance"]
    assert [n.subject for n in plan.notes if n.subject.startswith("node ")] == ["node i-0fedcba9876543210"]


def test_planning_again_gives_the_same_plan() -> None:
    finding = _sequence()
    assert (
        build_sequence_plan(finding, _parts(finding)).digest()
        == build_sequence_plan(finding, _parts(finding)).digest()
    )


def test_a_sequence_without_a_workload_here_is_refused() -> None:
    with pytest.raises(BadInputError, match="names no Kubernetes workload"):
        build_sequence_plan(_sequence(), [])


def test_two_nodes_of_one_auto_scaling_group_suspend_its_processes_once_and_each_node_is_held() -> None:
    finding = _sequence()
    parts = [
        (
            w,
            r.model_copy(
                update={"instance": r.instance.model_copy(update={"autoscaling_group": "eks-ng-a1"})}
            ),
        )
        for w, r in _parts(finding)
        if r.instance is not None
    ]
    plan = build_sequence_plan(finding, parts)
    suspend = [s for s in plan.steps if s.action_id == "asg.suspend_processes"]
    assert [s.id for s in suspend] == ["asg/eks-ng-a1#s08-asg.suspend_processes"]
    held = sorted(s.params["node_name"] for s in plan.steps if s.action_id == "k8s.block_node_disruption")
    assert held == ["ip-10-0-1-23", "ip-10-0-2-34"]
    isolations = [s for s in plan.steps if s.action_id == "ec2.isolate_instance"]
    assert all(suspend[0].id in s.depends_on for s in isolations)


def test_each_node_isolation_offers_isolating_without_evidence_under_its_own_merged_ids() -> None:
    finding = _sequence()
    options = PlaybookOptions(case_id="eksir-20261120-0000000000", evidence_bucket="ir-evidence")
    plan = build_sequence_plan(finding, _parts(finding), options)
    ids = {step.id for step in plan.steps}
    isolations = [s for s in plan.steps if s.action_id == "ec2.isolate_instance"]
    assert len(isolations) == 2
    for step in isolations:
        assert step.fallback is not None
        assert step.fallback.approval_id == f"{step.id}:without-evidence"
        assert step.fallback.without
        assert set(step.fallback.without) <= set(step.depends_on) <= ids
        assert all("ssm.capture_volatile" in dep for dep in step.fallback.without)
        assert f"--approve-step {step.id}:without-evidence" in step.fallback.declined_risk


def test_a_workload_role_on_both_nodes_is_revoked_once() -> None:
    from eksir.models.resolution import IdentityMapping, MappingSource, NodeServiceAccount

    finding = _sequence()
    role = IdentityMapping(
        source=MappingSource.IRSA, principal_arn="arn:aws:iam::123456789012:role/shared-irsa"
    )
    parts = [
        (
            w,
            r.model_copy(
                update={
                    "node_service_accounts": (
                        NodeServiceAccount(
                            namespace="shop",
                            name=("storefront", "catalogue")[i],
                            pods=(f"web-{i}",),
                            roles=(role,),
                        ),
                    )
                }
            ),
        )
        for i, (w, r) in enumerate(_parts(finding))
    ]
    plan = build_sequence_plan(finding, parts, PlaybookOptions(case_id="eksir-20261120-0000000000"))
    revocations = [s for s in plan.steps if s.action_id == "iam.revoke_role_sessions"]
    assert [s.params["role_name"] for s in revocations] == ["shared-irsa"]  # used_by differs: one step

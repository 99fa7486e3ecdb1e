"""The plan per node kind, from hand-made resolutions (pure: no server). The lab tests
(tests/resolve/test_node_kinds_lab.py) resolve real node objects; these cover the checkpoint tier's place in
the plan and the corners the lab does not reach (a preflight that allows the checkpoint, a resolution recorded
before node kinds existed, Auto Mode without an evidence bucket)."""

from __future__ import annotations

from datetime import UTC, datetime

from eksir.models.resolution import (
    CheckpointPreflight,
    ClusterInfo,
    ContainerInfo,
    InstanceInfo,
    NodeCompute,
    NodeInfo,
    NodeKind,
    PodInfo,
    Resolution,
)
from eksir.playbooks import PlaybookOptions, build_plan
from tests.factories import make_finding

AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
UID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
IID = "i-0123456789abcdef0"


def _resolution(node: NodeInfo, instance: InstanceInfo | None = None) -> Resolution:
    containers = (
        ContainerInfo(name="miner", container_id="containerd://" + "a" * 64),
        ContainerInfo(name="sidecar", container_id="containerd://" + "b" * 64),
    )
    pod = PodInfo(namespace="shop", name="web-1", uid=UID, node_name=node.name, containers=containers)
    return Resolution(resolved_at=AT, cluster=ClusterInfo(name="prod"), pod=pod, node=node, instance=instance)


def test_an_available_checkpoint_is_planned_per_container_before_node_isolation() -> None:
    preflight = CheckpointPreflight(available=True, reasons=("kubelet v1.31.2: ContainerCheckpoint on",))
    node = NodeInfo(name="ip-10-0-1-5", instance_id=IID, kind=NodeKind(), checkpoint=preflight)
    options = PlaybookOptions(case_id="c1", evidence_bucket="ev", checkpoint=True)

    plan = build_plan(make_finding(), _resolution(node, InstanceInfo(instance_id=IID)), options)

    checkpoints = [s for s in plan.steps if s.action_id == "k8s.checkpoint_container"]
    assert [s.params["container_name"] for s in checkpoints] == ["miner", "sidecar"]
    assert all(s.requires_approval and s.phase == "evidence" for s in checkpoints)
    assert checkpoints[0].params == {
        "node_name": "ip-10-0-1-5",
        "namespace": "shop",
        "pod_name": "web-1",
        "pod_uid": UID,
        "container_name": "miner",
    }
    isolate = plan.step(next(s.id for s in plan.steps if s.action_id == "ec2.isolate_instance"))
    assert {s.id for s in checkpoints} <= set(isolate.depends_on)
    assert any(s.action_id == "ssm.capture_volatile" for s in plan.steps)  # the crictl/ctr capture stays


def test_without_the_flag_no_checkpoint_is_planned_whatever_the_preflight() -> None:
    node = NodeInfo(
        name="n", instance_id=IID, kind=NodeKind(), checkpoint=CheckpointPreflight(available=True)
    )

    plan = build_plan(make_finding(), _resolution(node, InstanceInfo(instance_id=IID)), PlaybookOptions())

    assert not [s for s in plan.steps if s.action_id == "k8s.checkpoint_container"]


def test_auto_mode_without_an_evidence_bucket_says_the_bundle_is_not_collected() -> None:
    node = NodeInfo(name="i-0abc.ec2.internal", instance_id=IID, kind=NodeKind(compute=NodeCompute.AUTO_MODE))

    plan = build_plan(make_finding(), _resolution(node, InstanceInfo(instance_id=IID)), PlaybookOptions())

    actions = [s.action_id for s in plan.steps]
    assert "k8s.collect_node_diagnostic" not in actions
    assert not [a for a in actions if a.startswith(("ec2.", "asg.", "ssm."))]
    assert any("NodeDiagnostic log bundle is NOT collected" in n.message for n in plan.notes)


def test_a_resolution_recorded_before_node_kinds_still_plans_fargate_as_pod_level_only() -> None:
    node = NodeInfo(name="fargate-ip-10-0-1-7.ec2.internal", fargate=True)

    plan = build_plan(make_finding(), _resolution(node), PlaybookOptions(evidence_bucket="ev"))

    actions = [s.action_id for s in plan.steps]
    assert "k8s.isolate_pod" in actions
    assert not [a for a in actions if a.startswith(("ec2.", "asg.", "ssm.")) or "node" in a]
    assert any("pod-level steps only" in n.message for n in plan.notes)

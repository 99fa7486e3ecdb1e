"""Nodes of every kind in the lab's real kube-apiserver: resolution detects the kind, the plan fits it.

Each test creates a node with the labels, providerID and osImage its kind carries (tests/resolve/nodes.py says
where each value comes from), a privileged pod on it, resolves the finding against the API server and moto,
and builds the plan. Limit: moto's DescribeCluster has no `computeConfig`, so for Auto Mode that one call is
answered by botocore's Stubber (the response is checked against the EKS service model); every other AWS call
reaches moto.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from eksir.models.resolution import NodeCompute, NodeOs, Resolution
from eksir.playbooks import Plan, PlaybookOptions, build_plan
from eksir.resolve import resolve
from tests.resolve.conftest import AwsClients, moto_client
from tests.resolve.nodes import (
    AL2_OS,
    AL2023_OS,
    AUTO_MODE_OS,
    BOTTLEROCKET_OS,
    ZONE,
    auto_mode_labels,
    create_node,
    managed_labels,
)
from tests.resolve.seed import Incident, create_pod, make_ready

pytestmark = pytest.mark.lab
OPTIONS = PlaybookOptions(case_id="case-kinds", evidence_bucket="eksir-evidence")
EC2_PREFIXES = ("ec2.", "asg.", "ssm.")


class AutoModeAws(AwsClients):
    """moto for everything, except DescribeCluster: moto's answer plus `computeConfig.enabled`, served by a
    Stubber on a real EKS client (moto has no computeConfig)."""

    def __init__(self, url: str, cluster: str) -> None:
        super().__init__(url)
        answer = moto_client(url, "eks").describe_cluster(name=cluster)
        answer.pop("ResponseMetadata", None)
        answer["cluster"]["computeConfig"] = {"enabled": True, "nodePools": ["general-purpose", "system"]}
        stubbed = moto_client(url, "eks")
        self.stubber = Stubber(stubbed)
        self.stubber.add_response("describe_cluster", answer, {"name": cluster})
        self.stubber.activate()
        self._stubbed = stubbed

    def __call__(self, service: str) -> Any:
        if service == "eks":
            return _DescribeOnly(self._stubbed, super().__call__("eks"))
        return super().__call__(service)


class _DescribeOnly:
    """DescribeCluster from the stubbed client, any other EKS call from moto."""

    def __init__(self, stubbed: Any, moto: Any) -> None:
        self._stubbed, self._moto = stubbed, moto

    def describe_cluster(self, **kwargs: Any) -> Any:
        return self._stubbed.describe_cluster(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)


def _pod_on(api: Any, incident: Incident, node: str, name: str) -> Any:
    from kubernetes import client

    pod = create_pod(api, incident.namespace, name, node, None, name, privileged=True)
    make_ready(client.CoreV1Api(api), incident.namespace, pod)
    return pod


def _resolve_and_plan(
    incident: Incident, aws: Any, k8s: Any, pod: Any, options: PlaybookOptions = OPTIONS
) -> tuple[Resolution, Plan]:
    finding = incident.finding(name=pod.metadata.name, uid=pod.metadata.uid)
    resolution = resolve(finding, aws, k8s)
    return resolution, build_plan(finding, resolution, options)


def _actions(plan: Plan) -> list[str]:
    return [step.action_id for step in plan.steps]


def _notes(plan: Plan) -> str:
    return "\n".join(f"{n.subject}: {n.message}" for n in plan.notes)


def test_an_auto_mode_node_gets_no_ssm_or_security_group_step_and_a_node_diagnostic_instead(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    node = f"{incident.namespace}-auto"
    auto = AutoModeAws(aws.url, incident.aws.cluster)
    with control_plane.api_client() as api:
        provider = f"aws:///{ZONE}/{incident.aws.on_demand_id}"
        create_node(api, node, auto_mode_labels(), provider, AUTO_MODE_OS)
        incident.created_nodes.append(node)
        pod = _pod_on(api, incident, node, "auto-victim")

    resolution, plan = _resolve_and_plan(incident, auto, k8s, pod)

    auto.stubber.assert_no_pending_responses()
    assert resolution.cluster.auto_mode is True
    assert resolution.node is not None
    assert resolution.node.kind is not None
    kind = resolution.node.kind
    assert kind.compute is NodeCompute.AUTO_MODE
    assert kind.provisioner == "auto-mode"
    assert any("compute-type=auto" in s for s in kind.signals)
    assert any("computeConfig: Auto Mode enabled" in s for s in kind.signals)
    actions = _actions(plan)
    assert not [a for a in actions if a.startswith(EC2_PREFIXES)], actions
    assert "ec2.isolate_instance" not in actions
    assert "ssm.capture_volatile" not in actions
    for expected in ("k8s.collect_node_diagnostic", "k8s.label_node", "k8s.cordon_node", "k8s.isolate_pod"):
        assert expected in actions
    diagnostic = next(s for s in plan.steps if s.action_id == "k8s.collect_node_diagnostic")
    assert diagnostic.params["node_name"] == node
    assert diagnostic.params["key"] == f"eksir/case-kinds/volatile/node-diagnostic/{node}.tar.gz"
    notes = _notes(plan)
    assert "no SSM capture" in notes
    assert "no security-group swap" in notes
    assert "NodeDiagnostic" in notes
    assert "Kubernetes-only isolation" in notes
    assert "node isolation is the primary control" not in notes  # there is none on Auto Mode


def test_a_fargate_pod_gets_pod_level_steps_only(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    node = f"fargate-ip-10-0-1-7.{incident.namespace}"
    labels = {"eks.amazonaws.com/compute-type": "fargate", "topology.kubernetes.io/zone": ZONE}
    with control_plane.api_client() as api:
        create_node(api, node, labels, f"aws:///{ZONE}/0f1e2d3c4b-5a6978/{node}", AL2_OS)
        incident.created_nodes.append(node)
        pod = _pod_on(api, incident, node, "fg-victim")

    resolution, plan = _resolve_and_plan(incident, aws, k8s, pod)

    assert resolution.node is not None
    assert resolution.node.kind is not None
    assert resolution.node.kind.compute is NodeCompute.FARGATE
    assert resolution.instance is None
    actions = _actions(plan)
    assert "k8s.isolate_pod" in actions
    node_level = [a for a in actions if a.startswith(EC2_PREFIXES) or "node" in a]
    assert node_level == [], actions
    assert "pod-level steps only" in _notes(plan)


def test_a_hybrid_node_gets_kubernetes_node_steps_and_no_ec2_step(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    node = "mi-0a1b2c3d4e5f60718"
    labels = {"eks.amazonaws.com/compute-type": "hybrid", "topology.kubernetes.io/zone": "onprem-dc1"}
    provider = f"eks-hybrid:///us-east-1/{incident.aws.cluster}/{node}"
    with control_plane.api_client() as api:
        create_node(api, node, labels, provider, "Ubuntu 22.04.5 LTS")
        incident.created_nodes.append(node)
        pod = _pod_on(api, incident, node, "hy-victim")

    resolution, plan = _resolve_and_plan(incident, aws, k8s, pod)

    assert resolution.node is not None
    assert resolution.node.kind is not None
    assert resolution.node.kind.compute is NodeCompute.HYBRID
    assert resolution.node.kind.os is NodeOs.OTHER
    assert resolution.node.instance_id is None
    assert resolution.instance is None
    assert not any("instance unknown" in w for w in resolution.warnings)
    actions = _actions(plan)
    assert not [a for a in actions if a.startswith(EC2_PREFIXES)], actions
    assert "k8s.label_node" in actions
    assert "k8s.cordon_node" in actions
    assert "no EC2 step" in _notes(plan)


@pytest.mark.parametrize(
    ("os_image", "expected"),
    [(BOTTLEROCKET_OS, NodeOs.BOTTLEROCKET), (AL2023_OS, NodeOs.AL2023), (AL2_OS, NodeOs.AL2)],
)
def test_an_ec2_node_keeps_the_ec2_plan_and_its_os_is_read_from_the_os_image(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any, os_image: str, expected: NodeOs
) -> None:
    node = f"{incident.namespace}-{expected.value}"
    provider = f"aws:///{ZONE}/{incident.aws.on_demand_id}"
    with control_plane.api_client() as api:
        create_node(api, node, managed_labels(), provider, os_image)
        incident.created_nodes.append(node)
        pod = _pod_on(api, incident, node, f"ec2-{expected.value}")

    resolution, plan = _resolve_and_plan(incident, aws, k8s, pod)

    assert resolution.node is not None
    assert resolution.node.kind is not None
    kind = resolution.node.kind
    assert (kind.compute, kind.os, kind.provisioner) == (NodeCompute.EC2, expected, "managed-node-group")
    assert kind.os_image == os_image
    actions = _actions(plan)
    for step in ("ssm.capture_volatile", "ec2.isolate_instance", "ec2.snapshot_volumes"):
        assert step in actions
    assert "k8s.collect_node_diagnostic" not in actions
    bottlerocket_note = "admin container" in _notes(plan)
    assert bottlerocket_note is (expected is NodeOs.BOTTLEROCKET)


def test_checkpoint_without_a_kubelet_falls_back_to_the_crictl_capture_and_says_why(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    """The lab runs no kubelet and its containerd is 1.6: the preflight says so and the plan keeps the
    crictl/ctr capture (the fallback), with no checkpoint step."""
    node = f"{incident.namespace}-cp"
    provider = f"aws:///{ZONE}/{incident.aws.on_demand_id}"
    with control_plane.api_client() as api:
        create_node(api, node, managed_labels(), provider, AL2023_OS, runtime="containerd://1.6.36")
        incident.created_nodes.append(node)
        pod = _pod_on(api, incident, node, "cp-victim")
    finding = incident.finding(name=pod.metadata.name, uid=pod.metadata.uid)

    resolution = resolve(finding, aws, k8s, checkpoint=True)
    plan = build_plan(finding, resolution, PlaybookOptions(case_id="c", evidence_bucket="b", checkpoint=True))

    assert resolution.node is not None
    assert resolution.node.checkpoint is not None
    preflight = resolution.node.checkpoint
    assert preflight.available is False
    reasons = " ".join(preflight.reasons)
    assert "containerd://1.6.36 does not implement the CRI checkpoint" in reasons
    assert "does not install CRIU" in reasons
    actions = _actions(plan)
    assert "k8s.checkpoint_container" not in actions
    assert "ssm.capture_volatile" in actions
    assert "crictl/ctr capture" in _notes(plan)

"""Node-kind detection from a node's JSON and DescribeCluster's computeConfig (no server needed).

The lab tests (test_node_kinds_lab.py) create these nodes in the real kube-apiserver and plan for them; this
module covers the rules' corners: which signal wins, what an absent signal means. DescribeCluster's
`computeConfig` is answered by botocore's Stubber because moto has no computeConfig; the Stubber checks the
request and the canned response against the EKS service model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from eksir.models.resolution import NodeCompute, NodeOs
from eksir.resolve.cluster import describe_cluster
from eksir.resolve.node import node_info
from eksir.resolve.node_kind import detect_node_kind


def _node(
    name: str, labels: dict[str, str], provider: str | None = None, os_image: str | None = None
) -> dict[str, Any]:
    raw: dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "spec": {}}
    if provider:
        raw["spec"]["providerID"] = provider
    if os_image:
        raw["status"] = {"nodeInfo": {"osImage": os_image}}
    return raw


def test_the_compute_type_label_decides_auto_mode_fargate_and_hybrid() -> None:
    for value, expected in (
        ("auto", NodeCompute.AUTO_MODE),
        ("fargate", NodeCompute.FARGATE),
        ("hybrid", NodeCompute.HYBRID),
    ):
        kind = detect_node_kind(_node("n1", {"eks.amazonaws.com/compute-type": value}))
        assert kind.compute is expected
        assert kind.signals == (f"label eks.amazonaws.com/compute-type={value}",)


def test_an_auto_mode_nodeclass_with_a_nodepool_is_auto_mode_and_a_karpenter_ec2nodeclass_is_not() -> None:
    auto = _node("n1", {"karpenter.sh/nodepool": "general-purpose", "eks.amazonaws.com/nodeclass": "default"})
    karpenter = _node(
        "n2",
        {"karpenter.sh/nodepool": "default", "karpenter.k8s.aws/ec2nodeclass": "default"},
        "aws:///eu-west-1a/i-0abc",
    )

    assert detect_node_kind(auto, cluster_auto_mode=True).compute is NodeCompute.AUTO_MODE
    karpenter_kind = detect_node_kind(karpenter, cluster_auto_mode=True)
    assert karpenter_kind.compute is NodeCompute.EC2
    assert karpenter_kind.provisioner == "karpenter"
    assert "DescribeCluster computeConfig: Auto Mode enabled on the cluster" in karpenter_kind.signals


def test_a_hybrid_provider_id_or_a_fargate_name_decides_without_labels() -> None:
    hybrid = detect_node_kind(_node("mi-0123", {}, "eks-hybrid:///us-west-2/prod/mi-0123"))
    fargate = detect_node_kind(_node("fargate-ip-10-0-1-7.us-west-2.compute.internal", {}))

    assert hybrid.compute is NodeCompute.HYBRID
    assert fargate.compute is NodeCompute.FARGATE


def test_the_os_comes_from_the_os_image() -> None:
    cases = {
        "Bottlerocket OS 1.20.3 (aws-k8s-1.30)": NodeOs.BOTTLEROCKET,
        "Amazon Linux 2023.6.20241212": NodeOs.AL2023,
        "Amazon Linux 2": NodeOs.AL2,
        "Windows Server 2022 Datacenter": NodeOs.WINDOWS,
        "Ubuntu 22.04.5 LTS": NodeOs.OTHER,
    }
    for image, expected in cases.items():
        assert detect_node_kind(_node("n", {}, os_image=image)).os is expected
    assert detect_node_kind(_node("n", {})).os is NodeOs.UNKNOWN


def test_a_hybrid_node_has_no_instance_id() -> None:
    raw = _node(
        "mi-0abc", {"eks.amazonaws.com/compute-type": "hybrid"}, "eks-hybrid:///us-west-2/prod/mi-0abc"
    )
    info = node_info(raw)

    assert info.instance_id is None
    assert info.kind is not None
    assert info.kind.compute is NodeCompute.HYBRID


def test_describe_cluster_reads_compute_config_enabled_for_auto_mode() -> None:
    eks = boto3.client("eks", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(eks)
    cluster = {
        "name": "prod",
        "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/prod",
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
        "version": "1.32",
        "computeConfig": {"enabled": True, "nodePools": ["general-purpose", "system"]},
    }
    stub.add_response("describe_cluster", {"cluster": cluster}, {"name": "prod"})
    stub.add_response("describe_cluster", {"cluster": {**cluster, "computeConfig": {}}}, {"name": "prod"})
    stub.add_response(
        "describe_cluster",
        {"cluster": {k: v for k, v in cluster.items() if k != "computeConfig"}},
        {"name": "prod"},
    )

    with stub:
        answers = [describe_cluster(eks, "prod").auto_mode for _ in range(3)]

    stub.assert_no_pending_responses()
    assert answers == [True, None, None]


def test_a_fargate_or_hybrid_label_on_an_ec2_instance_is_distrusted_and_planned_as_ec2() -> None:
    """A kubelet can set eks.amazonaws.com/* labels on its own node; the providerID cannot change."""
    for value in ("fargate", "hybrid"):
        raw = _node("ip-10-0-1-5", {"eks.amazonaws.com/compute-type": value}, "aws:///us-east-1a/i-0abc123")
        kind = detect_node_kind(raw)
        assert kind.compute is NodeCompute.EC2
        assert any(s.startswith(f"DISTRUSTED: {value} is claimed") for s in kind.signals)
        assert node_info(raw).instance_id == "i-0abc123"


def test_an_auto_mode_label_where_the_cluster_has_auto_mode_off_is_distrusted() -> None:
    raw = _node("ip-10-0-1-5", {"eks.amazonaws.com/compute-type": "auto"}, "aws:///us-east-1a/i-0abc123")

    assert detect_node_kind(raw, cluster_auto_mode=False).compute is NodeCompute.EC2
    assert detect_node_kind(raw, cluster_auto_mode=True).compute is NodeCompute.AUTO_MODE


def test_node_reported_text_is_bounded() -> None:
    kind = detect_node_kind(_node("n", {}, os_image="Bottlerocket " + "x" * 5000))

    assert kind.os is NodeOs.BOTTLEROCKET
    assert kind.os_image is not None
    assert len(kind.os_image) == 200


def _instance_answer(operator: dict[str, Any] | None) -> dict[str, Any]:
    instance: dict[str, Any] = {"InstanceId": "i-0abc123", "State": {"Name": "running", "Code": 16}}
    if operator is not None:
        instance["Operator"] = operator
    return {"Reservations": [{"Instances": [instance]}]}


def test_describe_instance_reads_the_operator_and_an_auto_mode_claim_is_checked_against_it() -> None:
    """moto's DescribeInstances has no Operator: the Stubber answers with the EC2 model's OperatorResponse."""
    from eksir.resolve.instance import describe_instance
    from eksir.resolve.node_kind import corroborate_auto_mode

    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1")
    ec2, autoscaling = session.client("ec2"), session.client("autoscaling")
    ec2_stub, asg_stub = Stubber(ec2), Stubber(autoscaling)
    operators = [{"Managed": True, "Principal": "eks.amazonaws.com"}, {"Managed": False}, None]
    for operator in operators:
        ec2_stub.add_response(
            "describe_instances", _instance_answer(operator), {"InstanceIds": ["i-0abc123"]}
        )
        asg_stub.add_response(
            "describe_auto_scaling_instances", {"AutoScalingInstances": []}, {"InstanceIds": ["i-0abc123"]}
        )
        ec2_stub.add_response(
            "describe_instance_attribute",
            {"DisableApiTermination": {"Value": False}},
            {"InstanceId": "i-0abc123", "Attribute": "disableApiTermination"},
        )
    with ec2_stub, asg_stub:
        managed = [describe_instance(ec2, autoscaling, "i-0abc123", []) for _ in operators]
    ec2_stub.assert_no_pending_responses()

    assert [m.managed_by if m else "?" for m in managed] == ["eks.amazonaws.com", "", None]
    claim = detect_node_kind(
        _node("n", {"eks.amazonaws.com/compute-type": "auto"}, "aws:///eu-west-1a/i-0abc123"), True
    )
    kept, refuted, unknown = (corroborate_auto_mode(claim, m.managed_by if m else None) for m in managed)
    assert kept.compute is NodeCompute.AUTO_MODE
    assert "EC2 Operator: managed by eks.amazonaws.com" in kept.signals
    assert refuted.compute is NodeCompute.EC2
    assert any("EC2 says the instance is not a managed instance" in s for s in refuted.signals)
    assert unknown == claim

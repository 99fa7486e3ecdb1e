"""A seeded lab is one consistent incident across kube-apiserver, moto, the files and the ground truth.

Each test runs once per scenario (the `lab` fixture is parametrised over all of them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from eksir.lab.aws_seed import ORG_TRAIL
from eksir.lab.cloudtrail_gen import KEY_PATTERN, read_records
from eksir.lab.k8s_seed import read_audit_log
from eksir.lab.lab import LabState

pytestmark = pytest.mark.lab


def _load(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _core(state: LabState) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=state.admin_kubeconfig))


def test_every_node_is_a_running_instance_of_the_node_group_with_matching_labels(lab: LabState) -> None:
    nodes = _core(lab).list_node().items
    ec2, asg = lab.endpoint.client("ec2"), lab.endpoint.client("autoscaling")
    grouped = {
        i["InstanceId"]
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        for i in g["Instances"]
    }
    assert len(nodes) == 3
    for node in nodes:
        zone, instance_id = node.spec.provider_id.removeprefix("aws:///").split("/")
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        labels = node.metadata.labels
        assert instance_id in grouped
        assert instance["Placement"]["AvailabilityZone"] == zone == labels["topology.kubernetes.io/zone"]
        assert instance["PrivateDnsName"] == node.metadata.name == labels["kubernetes.io/hostname"]
        spot = instance.get("InstanceLifecycle") == "spot"
        assert labels["eks.amazonaws.com/capacityType"] == ("SPOT" if spot else "ON_DEMAND")


def test_workload_status_is_what_the_controllers_would_write_for_the_ready_pods(lab: LabState) -> None:
    """No kube-controller-manager runs in the lab: the seeding writes Deployment, ReplicaSet, DaemonSet and
    PodDisruptionBudget status to match the Ready pods, so the outage check sees what a real cluster shows."""
    api = config.new_client_from_config(config_file=lab.admin_kubeconfig)
    apps, policy, core = client.AppsV1Api(api), client.PolicyV1Api(api), client.CoreV1Api(api)
    ready = {
        (p.metadata.namespace, p.metadata.owner_references[0].name)
        for p in core.list_pod_for_all_namespaces().items
        if p.metadata.owner_references
    }
    for deployment in apps.list_deployment_for_all_namespaces().items:
        assert deployment.status.ready_replicas == deployment.spec.replicas, deployment.metadata.name
    for replica_set in apps.list_replica_set_for_all_namespaces().items:
        assert (replica_set.metadata.namespace, replica_set.metadata.name) in ready
        assert replica_set.status.ready_replicas == replica_set.spec.replicas
    for daemon_set in apps.list_daemon_set_for_all_namespaces().items:
        assert daemon_set.status.number_ready == daemon_set.status.desired_number_scheduled == 3
    for budget in policy.list_pod_disruption_budget_for_all_namespaces().items:
        assert (
            budget.status.disruptions_allowed == budget.status.current_healthy - budget.status.desired_healthy
        )


def test_the_attacker_pod_is_privileged_running_and_bound_to_the_ground_truth_node(lab: LabState) -> None:
    truth = _load(lab.ground_truth)["pod"]
    pod = _core(lab).read_namespaced_pod(truth["name"], truth["namespace"])
    assert pod.metadata.uid == truth["uid"]
    assert pod.spec.node_name == truth["node"]
    assert pod.spec.containers[0].security_context.privileged is True
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip


def test_the_attacked_node_has_a_nodeclaim_of_the_labs_minimal_karpenter_crd(lab: LabState) -> None:
    api = config.new_client_from_config(config_file=lab.admin_kubeconfig)
    claims = client.CustomObjectsApi(api).list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")[
        "items"
    ]
    truth = _load(lab.ground_truth)["pod"]
    node = _core(lab).read_node(truth["node"])
    [claim] = claims
    assert claim["status"]["nodeName"] == truth["node"]
    assert claim["status"]["providerID"] == node.spec.provider_id
    assert "karpenter.sh/do-not-disrupt" not in (claim["metadata"].get("annotations") or {})


def test_the_audit_log_shows_the_attacker_creating_the_pod(lab: LabState) -> None:
    truth = _load(lab.ground_truth)
    events = {
        e["auditID"]: e for e in read_audit_log(Path(lab.audit_log)) if e["stage"] == "ResponseComplete"
    }
    create = events[truth["pod"]["audit_id"]]
    assert create["user"]["username"] == truth["attacker"]["k8s_username"]
    assert create["objectRef"]["name"] == truth["pod"]["name"]
    assert create["responseStatus"]["code"] == 201
    assert create["sourceIPs"][0] == truth["attacker"]["source_ip"]
    assert set(truth["audit_ids"]) <= set(events)
    if truth["scenario"] in {"iam-user", "aws-auth-role", "role-chaining"}:
        assert create["user"]["uid"].startswith("aws-iam-authenticator:")
        assert create["user"]["extra"]["accessKeyId"]


def test_the_finding_describes_the_pod_cluster_and_caller(lab: LabState) -> None:
    truth, finding = _load(lab.ground_truth), _load(lab.finding)
    detail = finding["detail"]
    workload = detail["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    user = detail["resource"]["kubernetesDetails"]["kubernetesUserDetails"]
    assert finding["detail-type"] == "GuardDuty Finding"
    assert detail["type"].endswith("PrivilegedContainer")
    assert (workload["uid"], workload["name"], workload["namespace"]) == (
        truth["pod"]["uid"],
        truth["pod"]["name"],
        truth["pod"]["namespace"],
    )
    assert workload["containers"][0]["securityContext"]["privileged"] is True
    assert user["username"] == truth["attacker"]["k8s_username"]
    cluster = lab.endpoint.client("eks").describe_cluster(name=lab.cluster)["cluster"]
    assert detail["resource"]["eksClusterDetails"]["arn"] == cluster["arn"]
    key = detail["resource"].get("accessKeyDetails")
    if truth["scenario"] in {"oidc-user", "service-account"}:
        assert key is None
    else:
        assert key["accessKeyId"] in {p["access_key_id"] for p in truth["attacker"]["aws_principals"]}


def test_cloudtrail_holds_every_attacker_event_locally_and_in_s3(lab: LabState) -> None:
    truth = _load(lab.ground_truth)
    local = read_records(Path(lab.cloudtrail_dir))
    assert set(truth["cloudtrail_event_ids"]) <= {r["eventID"] for r in local}
    assert len(local) > len(truth["cloudtrail_event_ids"])  # mixed into ordinary traffic
    s3 = lab.endpoint.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=lab.cloudtrail_bucket)["Contents"]]
    assert all(KEY_PATTERN.match(k) for k in keys)
    assert len(keys) == len(list(Path(lab.cloudtrail_dir).rglob("*.json.gz")))


def test_what_the_attacker_created_exists_in_moto_and_the_trail_is_gone(lab: LabState) -> None:
    created = {r["type"]: r for r in _load(lab.ground_truth)["resources"]["created"]}
    iam = lab.endpoint.client("iam")
    user = created["AWS::IAM::User"]["id"]
    assert created["AWS::IAM::AccessKey"]["id"] in [
        k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    ]
    attached = iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AdministratorAccess"]
    # what IAM refuses DeleteUser past: recovery's user deletion must remove these first (issue 16)
    assert iam.list_signing_certificates(UserName=user)["Certificates"]
    assert iam.list_ssh_public_keys(UserName=user)["SSHPublicKeys"]
    assert iam.list_mfa_devices(UserName=user)["MFADevices"]
    ec2 = lab.endpoint.client("ec2")
    reservation = ec2.describe_instances(InstanceIds=[created["AWS::EC2::Instance"]["id"]])["Reservations"][0]
    assert reservation["Instances"][0]["IamInstanceProfile"]["Arn"].endswith("eksir-lab-node-profile")
    trails = lab.endpoint.client("cloudtrail").describe_trails()["trailList"]
    assert [t["Name"] for t in trails] == [ORG_TRAIL]  # the account trail is gone; the org's is not theirs


def test_aws_auth_maps_the_node_role_and_the_audit_events_reach_cloudwatch(lab: LabState) -> None:
    data = _core(lab).read_namespaced_config_map("aws-auth", "kube-system").data
    roles = yaml.safe_load(data["mapRoles"])
    assert any(r["username"] == "system:node:{{EC2PrivateDNSName}}" for r in roles)
    assert yaml.safe_load(data["mapUsers"])[0]["username"] == "bob"
    logs = lab.endpoint.client("logs")
    stream = logs.describe_log_streams(logGroupName=lab.log_group)["logStreams"][0]["logStreamName"]
    assert stream.startswith("kube-apiserver-audit-")
    messages = logs.get_log_events(logGroupName=lab.log_group, logStreamName=stream, limit=10000)["events"]
    audit_ids = {json.loads(m["message"])["auditID"] for m in messages}
    assert _load(lab.ground_truth)["pod"]["audit_id"] in audit_ids

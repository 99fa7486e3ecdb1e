"""resolve() against the lab's real kube-apiserver and moto.

Covers pod -> owners -> node -> instance -> ASG, and the outage assessment.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from eksir.errors import UnreachableError
from eksir.models.resolution import MappingSource
from eksir.resolve import resolve
from tests.resolve.conftest import AwsClients
from tests.resolve.seed import (
    Incident,
    create_deployment,
    create_pdb,
    create_pod,
    make_ready,
    node_body,
    owner_ref,
)

pytestmark = pytest.mark.lab


def test_resolution_follows_the_pod_by_uid_to_its_deployment_node_instance_and_auto_scaling_group(
    incident: Incident, aws: AwsClients, k8s: Any
) -> None:
    resolution = resolve(incident.finding(), aws, k8s)

    pod = resolution.pod
    assert pod is not None
    assert (pod.namespace, pod.name, pod.uid) == (incident.namespace, incident.pod, incident.pod_uid)
    assert [(o.kind, o.name) for o in pod.owner_chain] == [
        ("ReplicaSet", incident.replica_set),
        ("Deployment", incident.deployment),
    ]
    assert pod.containers[0].privileged is True
    assert pod.containers[0].container_id is not None
    assert pod.containers[0].container_id.startswith("containerd://")
    assert pod.service_account == "payments"
    assert resolution.node is not None
    assert resolution.node.name == incident.node
    assert resolution.node.instance_id == incident.aws.on_demand_id
    assert (resolution.node.nodegroup, resolution.node.capacity_type) == ("ng-general", "ON_DEMAND")
    assert resolution.node.availability_zone == "us-east-1a"
    instance = resolution.instance
    assert instance is not None
    assert instance.instance_id == incident.aws.on_demand_id
    assert instance.autoscaling_group == incident.aws.asg
    assert instance.spot is False
    assert instance.termination_protected is False
    assert instance.private_dns_name
    assert instance.volume_ids
    assert all(v.startswith("vol-") for v in instance.volume_ids)
    assert instance.network_interfaces
    assert incident.aws.node_sg in instance.network_interfaces[0].security_group_ids


def test_the_cluster_is_described_with_its_oidc_issuer_audit_logging_and_pre_access_entry_mode(
    incident: Incident, aws: AwsClients, k8s: Any
) -> None:
    cluster = resolve(incident.finding(), aws, k8s).cluster

    assert cluster.name == incident.aws.cluster
    assert cluster.endpoint
    assert cluster.oidc_issuer
    assert cluster.oidc_issuer.startswith("https://oidc.eks.")
    assert cluster.audit_logging_enabled is True
    assert cluster.authentication_mode is None  # moto, like a pre-access-entry cluster, has no accessConfig
    assert incident.aws.node_sg in cluster.security_group_ids


def test_the_pods_own_irsa_role_is_listed_as_credentials_the_pod_holds(
    incident: Incident, aws: AwsClients, k8s: Any
) -> None:
    resolution = resolve(incident.finding(), aws, k8s)

    assert resolution.pod is not None
    roles = [(m.source, m.principal_arn) for m in resolution.pod.aws_roles]
    assert roles == [(MappingSource.IRSA, incident.aws.irsa_role_arn)]


def test_a_pod_with_spare_ready_replicas_and_pdb_headroom_blocks_nothing_for_pod_isolation(
    incident: Incident, aws: AwsClients, k8s: Any
) -> None:
    outage = resolve(incident.finding(), aws, k8s).outage

    assert (outage.owner_replicas, outage.owner_ready_replicas, outage.pdb_disruptions_allowed) == (3, 3, 2)
    assert not [i for i in outage.items if i.blocking and "k8s.isolate_pod" in i.steps]
    assert f"{incident.namespace}/{incident.pod}" in outage.pods_on_node
    cordon = [i for i in outage.items if i.steps == ("k8s.cordon_node",)]
    assert cordon
    assert not cordon[0].blocking


def test_a_pod_on_a_spot_node_is_flagged_spot_and_told_to_capture_evidence_first(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    with control_plane.api_client() as api:
        pod = create_pod(api, incident.namespace, "miner", incident.spot_node, None, "miner", privileged=True)

    resolution = resolve(incident.finding(name="miner", uid=pod.metadata.uid), aws, k8s)

    assert resolution.node is not None
    assert resolution.node.capacity_type == "SPOT"
    assert resolution.instance is not None
    assert resolution.instance.spot is True
    assert resolution.instance.autoscaling_group == incident.aws.asg
    assert resolution.instance.iam_instance_profile_arn == incident.aws.instance_profile_arn
    spot = [i for i in resolution.outage.items if "ec2.enable_termination_protection" in i.steps]
    assert spot
    assert "Spot" in spot[0].message
    assert "ssm.capture_volatile" in spot[0].steps
    assert "2 minutes" in spot[0].message


def test_the_only_ready_replica_under_a_pdb_allowing_no_disruption_blocks_pod_isolation(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    with control_plane.api_client() as api:
        _, replica_set = create_deployment(
            api, incident.namespace, "ledger", replicas=1, ready=1, privileged=True
        )
        pod = create_pod(
            api, incident.namespace, "ledger-x", incident.node, owner_ref("ReplicaSet", replica_set), "ledger"
        )
        make_ready(client.CoreV1Api(api), incident.namespace, pod)
        create_pdb(api, incident.namespace, "ledger", min_available=1, allowed=0)

    outage = resolve(incident.finding(name="ledger-x", uid=pod.metadata.uid), aws, k8s).outage

    assert (outage.owner_replicas, outage.owner_ready_replicas, outage.pdb_disruptions_allowed) == (1, 1, 0)
    blocking = [i for i in outage.items if i.blocking and "k8s.isolate_pod" in i.steps]
    messages = " | ".join(i.message for i in blocking)
    assert "only ready replica of Deployment" in messages
    assert "ledger-pdb allows 0 disruptions" in messages


def test_a_node_carrying_the_last_replica_of_another_workload_blocks_instance_isolation(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    with control_plane.api_client() as api:
        core = client.CoreV1Api(api)
        _, replica_set = create_deployment(
            api, incident.namespace, "billing", replicas=1, ready=1, privileged=False
        )
        billing = create_pod(
            api,
            incident.namespace,
            "billing-x",
            incident.node,
            owner_ref("ReplicaSet", replica_set),
            "billing",
        )
        make_ready(core, incident.namespace, billing)
        daemon = client.AppsV1Api(api).create_namespaced_daemon_set(
            incident.namespace,
            {
                "metadata": {"name": "aws-node"},
                "spec": {"selector": {"matchLabels": {"app": "aws-node"}}, "template": _template("aws-node")},
            },
        )
        cni = create_pod(
            api,
            incident.namespace,
            "aws-node-abcde",
            incident.node,
            owner_ref("DaemonSet", daemon),
            "aws-node",
        )
        make_ready(core, incident.namespace, cni)

    outage = resolve(incident.finding(), aws, k8s).outage

    isolate = [i for i in outage.items if i.blocking and "ec2.isolate_instance" in i.steps]
    assert len(isolate) == 1
    assert f"Deployment {incident.namespace}/billing" in isolate[0].message
    assert (
        "web" not in isolate[0].message.split("no ready replica elsewhere")[1]
    )  # the suspect is not counted
    daemonsets = [i for i in outage.items if "DaemonSet pods" in i.message]
    assert daemonsets
    assert f"{incident.namespace}/aws-node" in daemonsets[0].message
    assert not daemonsets[0].blocking
    assert f"{incident.namespace}/billing-x" in outage.pods_on_node


def _template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": f"{app}:1"}]},
    }


def test_a_deleted_pod_is_a_warning_and_no_pod_while_the_actor_is_still_resolved(
    incident: Incident, aws: AwsClients, k8s: Any
) -> None:
    finding = incident.finding(name="gone-pod", uid="00000000-0000-0000-0000-000000000000")

    resolution = resolve(finding, aws, k8s)

    assert resolution.pod is None
    assert resolution.node is None
    assert resolution.instance is None
    assert any("gone-pod no longer exists" in w for w in resolution.warnings)
    assert resolution.actor.service_account == "argocd/argocd-application-controller"


def test_a_pod_replaced_under_the_same_name_is_reported_with_a_warning(
    incident: Incident, aws: AwsClients, k8s: Any
) -> None:
    finding = incident.finding(uid="11111111-2222-3333-4444-555555555555")

    resolution = resolve(finding, aws, k8s)

    assert resolution.pod is not None
    assert resolution.pod.uid == incident.pod_uid
    assert any("was replaced since the finding" in w for w in resolution.warnings)


def test_a_fargate_pod_has_no_instance_and_no_node_to_cordon(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    node = f"fargate-ip-10-0-1-7.{incident.namespace}"
    with control_plane.api_client() as api:
        client.CoreV1Api(api).create_node(
            node_body(node, None, "FARGATE", **{"eks.amazonaws.com/compute-type": "fargate"})
        )
        incident.created_nodes.append(node)
        pod = create_pod(api, incident.namespace, "fg", node, None, "fg", privileged=True)

    resolution = resolve(incident.finding(name="fg", uid=pod.metadata.uid), aws, k8s)

    assert resolution.node is not None
    assert resolution.node.fargate is True
    assert resolution.instance is None
    assert resolution.node.instance_id is None
    fargate = [i for i in resolution.outage.items if "Fargate" in i.message]
    assert fargate
    assert "k8s.cordon_node" in fargate[0].steps
    assert not fargate[0].blocking


def test_an_unreachable_api_server_raises_unreachable_error_with_a_one_line_message(
    incident: Incident, aws: AwsClients, control_plane: Any
) -> None:
    from eksir.lab.processes import free_ports

    def closed_port() -> Any:
        api = control_plane.api_client()
        api.configuration.host = f"https://127.0.0.1:{free_ports(1)[0]}"
        api.configuration.retries = 0
        return api

    with pytest.raises(UnreachableError) as raised:
        resolve(incident.finding(), aws, closed_port)

    assert "\n" not in raised.value.message
    assert "is unreachable" in raised.value.message
    assert incident.aws.cluster in raised.value.message


def test_every_workload_identity_on_the_node_is_resolved_with_its_roles_secrets_and_tokens(
    incident: Incident, aws: AwsClients, k8s: Any, control_plane: Any
) -> None:
    cache_role = f"arn:aws:iam::{incident.aws.irsa_role_arn.split(':')[4]}:role/cache-irsa"
    with control_plane.api_client() as api:
        core = client.CoreV1Api(api)
        annotated = {"eks.amazonaws.com/role-arn": cache_role}
        core.create_namespaced_service_account(
            incident.namespace, {"metadata": {"name": "cache", "annotations": annotated}}
        )
        elsewhere = {"eks.amazonaws.com/role-arn": incident.aws.irsa_role_arn}
        core.create_namespaced_service_account(
            incident.namespace, {"metadata": {"name": "reports", "annotations": elsewhere}}
        )
        token = {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}
        create_pod(
            api,
            incident.namespace,
            "cache-0",
            incident.node,
            None,
            "cache",
            serviceAccountName="cache",
            volumes=[
                {"name": "creds", "secret": {"secretName": "cache-password"}},
                {"name": "aws-iam-token", "projected": {"sources": [token]}},
            ],
            containers=[
                {
                    "name": "cache",
                    "image": "redis:7",
                    "env": [
                        {
                            "name": "TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "cache-api-token", "key": "t"}},
                        }
                    ],
                }
            ],
        )

    resolution = resolve(incident.finding(), aws, k8s)

    accounts = {f"{a.namespace}/{a.name}": a for a in resolution.node_service_accounts}
    cache = accounts[f"{incident.namespace}/cache"]
    assert [(m.source, m.principal_arn) for m in cache.roles] == [(MappingSource.IRSA, cache_role)]
    assert cache.pods == ("cache-0",)
    assert set(cache.mounted_secrets) == {
        f"{incident.namespace}/cache-password",
        f"{incident.namespace}/cache-api-token",
    }
    assert "cache-0: sts.amazonaws.com" in cache.projected_tokens
    payments = accounts[f"{incident.namespace}/payments"]
    assert [m.principal_arn for m in payments.roles] == [incident.aws.irsa_role_arn]
    users = resolution.role_users[incident.aws.irsa_role_arn]
    assert f"{incident.namespace}/reports" in users  # the blast radius reaches past the node
    assert f"{incident.namespace}/payments" in users

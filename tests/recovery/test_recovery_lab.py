"""Recovery against every lab scenario's ground truth: real moto server and real kube-apiserver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes.client import CoreV1Api
from kubernetes.config import new_client_from_config

from eksir.cli.gameday_run import lab_environment
from eksir.engine.tracks import RECOVERY
from eksir.phases.recovery import recover, rollback_recovery
from tests.recovery.conftest import Incident

pytestmark = pytest.mark.lab


def _iam_user_exists(incident: Incident, name: str) -> bool:
    try:
        incident.state.endpoint.client("iam").get_user(UserName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
        return False
    return True


def _gone_or_kept(incident: Incident, resource: dict[str, Any], document: dict[str, Any]) -> bool:
    endpoint, kind = incident.state.endpoint, resource["type"]
    if kind == "AWS::IAM::User":
        return not _iam_user_exists(incident, resource["id"])
    if kind == "AWS::IAM::AccessKey":
        if not _iam_user_exists(incident, resource["user"]):
            return True
        keys = endpoint.client("iam").list_access_keys(UserName=resource["user"])["AccessKeyMetadata"]
        return resource["id"] not in {k["AccessKeyId"] for k in keys}
    if kind == "AWS::EC2::Instance":
        found = endpoint.client("ec2").describe_instances(InstanceIds=[resource["id"]])
        return found["Reservations"][0]["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")
    if kind == "Kubernetes::Pod":
        kept = [k for k in document["kept_as_evidence"] if k["resource"].endswith(f"/{resource['name']}")]
        preserved = [p for p in document["preserved"] if p["step_id"].startswith("kept-") and p["evidence"]]
        return bool(kept) and bool(preserved)
    raise AssertionError(f"ground truth holds a kind this test does not know: {kind}")


def test_every_attacker_created_resource_is_gone_or_kept_as_preserved_evidence(incident, recovered):
    created = incident.truth["resources"]["created"]
    assert created
    with lab_environment(incident.state):
        missing = [r for r in created if not _gone_or_kept(incident, r, recovered)]
    assert missing == []
    assert all(s["status"] == "verified" for s in recovered["steps"]), recovered["steps"]


def test_each_deletion_was_preceded_by_its_description_in_the_evidence_store(incident, recovered):
    evidence = {e.path: e for e in incident.case.load().evidence}
    preserved = {p["step_id"]: p for p in recovered["preserved"] if p["evidence"]}
    for step in recovered["steps"]:
        if step["action_id"] == "iam.delete_user":
            item = evidence[preserved[step["step_id"]]["evidence"]]
            body = json.loads((incident.case.path / item.path).read_text())
            assert body["description"]["user"]["UserName"] == step["params"]["user_name"]
            assert body["description"]["access_keys"], "the backdoor key is described before deletion"
            # issue 16: what DeleteUser refuses to delete past is removed first, each item preserved
            credentials = body["description"]["credentials"]
            for kind in ("signing certificate", "SSH public key", "MFA device"):
                assert credentials[kind], kind
            record = next(r for r in incident.case.load().evidence if "SSH-public-key" in r.path)
            assert record.source.startswith(f"iam:user/{step['params']['user_name']} SSH public key")


def test_the_changed_resource_is_restored_and_the_deleted_trail_is_on_the_recreate_worklist(
    incident, recovered
):
    changed = incident.truth["resources"]["changed"]
    with lab_environment(incident.state):
        for resource in changed:  # AttachUserPolicy on the backdoor user: restored by removing the user
            assert not _iam_user_exists(incident, resource["id"])
    deleted = [w for w in recovered["worklist"] if w["disposition"] == "deleted"]
    trail_names = {r["id"].rsplit("/", 1)[-1] for r in incident.truth["resources"]["deleted"]}
    assert {w["before"]["name"] for w in deleted} >= trail_names


def test_the_node_goes_last_and_only_with_verified_snapshots(incident, recovered):
    steps = recovered["steps"]
    node = [s for s in steps if s["action_id"] == "k8s.drain_terminate_node"]
    assert len(node) == 1
    assert node[0]["status"] == "verified"
    assert node[0]["params"]["snapshot_ids"]
    assert incident.truth["pod"]["name"] in node[0]["params"]["keep_pods"]
    assert "override_pdb" not in node[0]["params"]
    clear = [s for s in steps if s["action_id"] == "ec2.clear_termination_protection"]
    assert [s["status"] for s in clear if s["params"]["instance_id"] == node[0]["params"]["instance_id"]] == [
        "verified"
    ]


def test_the_drain_evicted_the_workload_pods_and_kept_the_evidence_pod_and_daemonsets(incident, recovered):
    """Evicted through the Eviction API (no kubelet in the lab: an evicted pod stays, marked for deletion)."""
    node = next(s for s in recovered["steps"] if s["action_id"] == "k8s.drain_terminate_node")
    api = new_client_from_config(incident.state.admin_kubeconfig)
    try:
        pods = (
            CoreV1Api(api)
            .list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node['params']['node_name']}")
            .items
        )
    finally:
        api.close()
    owned_by_ds = {
        p.metadata.name for p in pods if any(o.kind == "DaemonSet" for o in p.metadata.owner_references or [])
    }
    evicted = {p.metadata.name for p in pods if p.metadata.deletion_timestamp is not None}
    kept = {p.metadata.name for p in pods} - evicted
    assert incident.truth["pod"]["name"] in kept
    assert owned_by_ds <= kept
    assert evicted, "the workload pods on the node were evicted"
    assert kept - owned_by_ds == {incident.truth["pod"]["name"]}


def test_rollback_recreates_the_reversible_user_deletion_and_refuses_the_irreversible_ones(
    incident, recovered
):
    with lab_environment(incident.state):
        state = rollback_recovery(incident.case, incident.context())
        by_action = {r.action_id: r for r in state.steps.values()}
        assert by_action["iam.delete_user"].status.value == "rolled-back"
        user = next(s for s in recovered["steps"] if s["action_id"] == "iam.delete_user")
        assert _iam_user_exists(incident, user["params"]["user_name"])
        # the one engine rollback keeps what cannot be undone, and says so in the log (a terminated instance
        # does not come back): it stays verified instead of being attempted
        terminated = by_action["ec2.terminate_instance"]
        assert terminated.status.value == "verified"
        started = [e for e in incident.case.log.events() if e.type == "rollback.started"][-1]
        assert terminated.step_id in started.data["kept"]
        assert (incident.case.path / RECOVERY.state_file).is_file()
        again = recover(incident.case, incident.context(), None)  # dry run after rollback: the user is back
    planned = next(s for s in again["preview"] if "iam.delete_user" in s["step_id"])
    assert planned["check"]["already_applied"] is False

"""The node is retired through the Eviction API: PodDisruptionBudgets honoured, an override stated, recorded.

Real kube-apiserver (its eviction subresource decides, from the budget's status as the disruption controller
would write it) and moto's EC2 for the instance, its termination protection and the evidence snapshots.
The pods are marked Running and Ready through the status subresource, as the lab's seeding does: the API
server ignores budgets for Pending pods.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, PolicyV1Api
from kubernetes.client.exceptions import ApiException

from eksir.actions.base import ActionContext
from eksir.actions.recovery.node_retire import (
    ClearProtectionParams,
    ClearTerminationProtection,
    DrainTerminateNode,
    DrainTerminateParams,
)
from eksir.clients.k8s_eviction import evict_pod
from eksir.errors import RefusedError
from eksir.lab.controlplane import ControlPlane
from eksir.playbooks.recovery import CaseFacts, build_recovery_plan
from tests.actions.conftest import boto_client, make_ctx
from tests.actions.test_k8s_node import restricted_client

pytestmark = pytest.mark.lab
REASON = "IC accepted the web outage: the node must go now (INC-42)"


@dataclass(frozen=True)
class World:
    namespace: str
    node: str
    instance_id: str
    snapshot_id: str
    ctx: ActionContext


def _run(core: CoreV1Api, namespace: str, name: str, node: str, app: str) -> None:
    body = {
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "public.ecr.aws/nginx/nginx:1.27"}]},
    }
    core.create_namespaced_pod(namespace, body)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": now}]
    core.patch_namespaced_pod_status(
        name, namespace, {"status": {"phase": "Running", "conditions": conditions}}
    )


def _budget(api: ApiClient, namespace: str, app: str, allowed: int) -> None:
    """A budget and the status the disruption controller would write (the lab runs none)."""
    policy = PolicyV1Api(api)
    selector = {"matchLabels": {"app": app}}
    budget = policy.create_namespaced_pod_disruption_budget(
        namespace, {"metadata": {"name": app}, "spec": {"minAvailable": 1, "selector": selector}}
    )
    status = {
        "observedGeneration": budget.metadata.generation,
        "currentHealthy": 1 + allowed,
        "desiredHealthy": 1,
        "expectedPods": 1 + allowed,
        "disruptionsAllowed": allowed,
    }
    policy.patch_namespaced_pod_disruption_budget_status(app, namespace, {"status": status})


@pytest.fixture
def world(k8s_admin: ApiClient, k8s_namespace: str, moto: Any) -> Iterator[World]:
    ec2 = boto_client(moto, "ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    volume = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    core = CoreV1Api(k8s_admin)
    node = f"ip-10-2-{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}.ec2.internal"
    core.create_node({"metadata": {"name": node}})
    _run(core, k8s_namespace, "web-0", node, "web")  # its budget allows no disruption
    _run(core, k8s_namespace, "api-0", node, "api")  # its budget allows one
    _run(core, k8s_namespace, "suspect", node, "suspect")  # kept as evidence
    _budget(k8s_admin, k8s_namespace, "web", 0)
    _budget(k8s_admin, k8s_namespace, "api", 1)
    ctx = make_ctx(aws=lambda s: boto_client(moto, s), k8s=lambda: k8s_admin)
    yield World(k8s_namespace, node, instance["InstanceId"], snapshot, ctx)
    core.delete_node(node)


def _params(world: World, override: str | None = None) -> DrainTerminateParams:
    return DrainTerminateParams(
        node_name=world.node,
        instance_id=world.instance_id,
        snapshot_ids=(world.snapshot_id,),
        keep_pods=("suspect",),
        override_pdb=override,
    )


def _state(moto: Any, instance_id: str) -> str:
    found = boto_client(moto, "ec2").describe_instances(InstanceIds=[instance_id])
    return str(found["Reservations"][0]["Instances"][0]["State"]["Name"])


def _terminating(api: ApiClient, namespace: str, name: str) -> bool:
    try:
        pod = CoreV1Api(api).read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return True
    return pod.metadata.deletion_timestamp is not None


def test_a_budget_allowing_no_disruption_refuses_the_drain_naming_it_and_nothing_moves(
    world: World, k8s_admin: ApiClient, moto: Any
) -> None:
    params = _params(world)
    outcome = DrainTerminateNode().check(world.ctx, params)
    assert not outcome.ok
    assert f"PodDisruptionBudget {world.namespace}/web allows 0 disruptions" in outcome.detail
    assert "--override-pdb" in outcome.detail
    with pytest.raises(RefusedError, match=f"PodDisruptionBudget {world.namespace}/web"):
        DrainTerminateNode().apply(world.ctx, params)
    assert _state(moto, world.instance_id) == "running"
    assert not CoreV1Api(k8s_admin).read_node(world.node).spec.unschedulable
    assert not any(_terminating(k8s_admin, world.namespace, p) for p in ("web-0", "api-0", "suspect"))


def test_the_api_server_itself_refuses_the_eviction_the_budget_forbids(
    world: World, k8s_admin: ApiClient
) -> None:
    """The read-ahead is a courtesy; the Eviction API decides: its 429 is an answer, never retried."""
    refused = evict_pod(k8s_admin, world.namespace, "web-0")
    assert refused is not None
    assert "disruption budget" in refused
    assert not _terminating(k8s_admin, world.namespace, "web-0")
    assert evict_pod(k8s_admin, world.namespace, "api-0") is None
    assert _terminating(k8s_admin, world.namespace, "api-0")


def test_with_a_stated_override_the_refused_pod_is_deleted_and_the_reason_recorded(
    world: World, k8s_admin: ApiClient, moto: Any, control_plane: ControlPlane
) -> None:
    params = _params(world, REASON)
    with restricted_client(control_plane, k8s_admin, DrainTerminateNode()) as limited:
        ctx = make_ctx(aws=world.ctx.aws, k8s=lambda: limited)
        outcome = DrainTerminateNode().check(ctx, params)
        assert outcome.ok, outcome.detail
        assert any(REASON in w for w in outcome.warnings)
        applied = DrainTerminateNode().apply(ctx, params)
        assert DrainTerminateNode().verify(ctx, params, applied).ok
    assert applied["evicted"] == [f"{world.namespace}/api-0"]
    assert [d["pod"] for d in applied["deleted_over_pdb"]] == [f"{world.namespace}/web-0"]
    assert applied["override_reason"] == REASON
    assert _terminating(k8s_admin, world.namespace, "web-0")
    assert _terminating(k8s_admin, world.namespace, "api-0")
    assert not _terminating(k8s_admin, world.namespace, "suspect"), "the evidence pod stays"
    assert CoreV1Api(k8s_admin).read_node(world.node).spec.unschedulable
    assert _state(moto, world.instance_id) in ("shutting-down", "terminated")


def test_termination_protection_is_cleared_only_by_its_own_step_once_the_snapshots_are_completed(
    world: World, moto: Any
) -> None:
    ec2 = boto_client(moto, "ec2")
    ec2.modify_instance_attribute(InstanceId=world.instance_id, DisableApiTermination={"Value": True})
    drain = DrainTerminateNode().check(world.ctx, _params(world, REASON))
    assert not drain.ok
    assert "ec2.clear_termination_protection" in drain.detail
    clear = ClearTerminationProtection()
    missing = ClearProtectionParams(instance_id=world.instance_id, snapshot_ids=("snap-0123456789abcdef0",))
    assert not clear.check(world.ctx, missing).ok
    with pytest.raises(RefusedError, match="evidence not verified"):
        clear.apply(world.ctx, missing)
    params = ClearProtectionParams(instance_id=world.instance_id, snapshot_ids=(world.snapshot_id,))
    applied = clear.apply(world.ctx, params)
    assert applied["previous"] is True
    assert clear.verify(world.ctx, params, applied).ok
    assert DrainTerminateNode().check(world.ctx, _params(world, REASON)).ok
    clear.rollback(world.ctx, params, applied)
    attr = ec2.describe_instance_attribute(InstanceId=world.instance_id, Attribute="disableApiTermination")
    assert attr["DisableApiTermination"]["Value"] is True


def test_the_recovery_plan_clears_protection_then_drains_and_carries_the_override() -> None:
    facts = CaseFacts(
        case_id="c1",
        finding_id="f1",
        pod_name="suspect",
        node_name="ip-10-0-0-1.ec2.internal",
        instance_id="i-0123456789abcdef0",
        snapshot_ids=("snap-0123456789abcdef0",),
        override_pdb=REASON,
    )
    steps = build_recovery_plan([], facts).plan.steps
    clear, drain = steps
    assert clear.action_id == "ec2.clear_termination_protection"
    assert clear.requires_approval
    assert drain.action_id == "k8s.drain_terminate_node"
    assert clear.id in drain.depends_on
    assert drain.params["override_pdb"] == REASON
    plain = build_recovery_plan([], CaseFacts(**{**facts.__dict__, "override_pdb": None})).plan.steps
    assert "override_pdb" not in plain[1].params

"""Pod isolation that tells the truth: which CNI enforces, and which pods a NetworkPolicy never reaches.

Against the real kube-apiserver: the CNI DaemonSets are created as the VPC CNI add-on, the Tigera operator
and Cilium install them (names, namespaces, the agent's flag). Limit: no CNI runs here, so whether packets
are dropped cannot be shown locally; these tests prove what eksir reads and reports, following the EKS user
guide (cni-network-policy: standalone pods get no policy; the agent is `aws-eks-nodeagent` with
`--enable-network-policy=true`) and the Kubernetes documentation (hostNetwork pods are not selected).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api

from eksir.actions.base import ActionContext
from eksir.actions.containment.k8s_pod import IsolatePod, OrphanPod, PodParams
from eksir.actions.containment.netpol import (
    FARGATE,
    HOST_NETWORK,
    NOT_ENFORCED,
    STANDALONE,
    VPC_CNI,
    enforcing_cnis,
)
from tests.actions.conftest import make_ctx
from tests.actions.k8s_objects import create_pod, create_replica_set, owner_ref

pytestmark = pytest.mark.lab


def _daemonset(name: str, containers: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {"k8s-app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def _vpc_cni(flag: str) -> dict[str, Any]:
    """aws-node as the EKS add-on ships it: the CNI and the `aws-eks-nodeagent` policy agent."""
    return _daemonset(
        "aws-node",
        [
            {"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"},
            {"name": "aws-eks-nodeagent", "image": "aws-network-policy-agent:v1.1.5", "args": [flag]},
        ],
    )


@pytest.fixture
def install(k8s_admin: ApiClient) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """Create CNI DaemonSets (namespace created when missing); all removed after the test."""
    made: list[tuple[str, str]] = []

    def create(namespace: str, body: dict[str, Any]) -> None:
        core = CoreV1Api(k8s_admin)
        if namespace not in {n.metadata.name for n in core.list_namespace().items}:
            core.create_namespace({"metadata": {"name": namespace}})
        AppsV1Api(k8s_admin).create_namespaced_daemon_set(namespace, body)
        made.append((namespace, body["metadata"]["name"]))

    yield create
    for namespace, name in made:
        AppsV1Api(k8s_admin).delete_namespaced_daemon_set(name, namespace)


@pytest.fixture
def ctx(k8s_admin: ApiClient) -> ActionContext:
    return make_ctx(k8s=lambda: k8s_admin)


def _params(pod: dict[str, Any]) -> PodParams:
    meta = pod["metadata"]
    return PodParams(namespace=meta["namespace"], pod_name=meta["name"], pod_uid=meta["uid"])


@pytest.fixture
def owned(k8s_admin: ApiClient, k8s_namespace: str) -> dict[str, Any]:
    rs = create_replica_set(k8s_admin, k8s_namespace, "api-5f6c7", {"app": "api"})
    return create_pod(k8s_admin, k8s_namespace, "api-5f6c7-x1", {"app": "api"}, owner_ref(rs))


@pytest.fixture
def standalone(k8s_admin: ApiClient, k8s_namespace: str) -> dict[str, Any]:
    """What `kubectl run --privileged` leaves: a pod with no ownerReferences."""
    return create_pod(k8s_admin, k8s_namespace, "attacker", {"run": "attacker"})


def _isolate(ctx: ActionContext, pod: dict[str, Any]) -> Any:
    params = _params(pod)
    applied = IsolatePod().apply(ctx, params)
    return IsolatePod().verify(ctx, params, applied)


def test_the_vpc_cni_agent_is_found_by_its_real_name_and_flag(
    k8s_admin: ApiClient, install: Callable[[str, dict[str, Any]], None]
) -> None:
    install("kube-system", _vpc_cni("--enable-network-policy=true"))
    assert enforcing_cnis(k8s_admin) == [VPC_CNI]


def test_the_vpc_cni_agent_with_policy_switched_off_enforces_nothing(
    k8s_admin: ApiClient, install: Callable[[str, dict[str, Any]], None]
) -> None:
    install("kube-system", _vpc_cni("--enable-network-policy=false"))
    assert enforcing_cnis(k8s_admin) == []


def test_calico_installed_by_the_operator_in_calico_system_is_found(
    k8s_admin: ApiClient, install: Callable[[str, dict[str, Any]], None]
) -> None:
    install("calico-system", _daemonset("calico-node", [{"name": "calico-node", "image": "calico/node"}]))
    assert enforcing_cnis(k8s_admin) == ["calico-node (calico-system)"]


def test_an_owned_pod_under_the_vpc_cni_agent_is_verified_effective(
    ctx: ActionContext, install: Callable[[str, dict[str, Any]], None], owned: dict[str, Any]
) -> None:
    install("kube-system", _vpc_cni("--enable-network-policy=true"))
    outcome = _isolate(ctx, owned)
    assert outcome.ok
    assert outcome.effective


def test_a_standalone_pod_under_the_vpc_cni_is_in_place_but_not_effective(
    ctx: ActionContext, install: Callable[[str, dict[str, Any]], None], standalone: dict[str, Any]
) -> None:
    install("kube-system", _vpc_cni("--enable-network-policy=true"))
    assert any(STANDALONE in w for w in IsolatePod().check(ctx, _params(standalone)).warnings)
    outcome = _isolate(ctx, standalone)
    assert outcome.ok
    assert not outcome.effective
    assert STANDALONE in outcome.not_effective


def test_a_standalone_pod_under_calico_is_effective(
    ctx: ActionContext, install: Callable[[str, dict[str, Any]], None], standalone: dict[str, Any]
) -> None:
    install("calico-system", _daemonset("calico-node", [{"name": "calico-node", "image": "calico/node"}]))
    outcome = _isolate(ctx, standalone)
    assert outcome.ok
    assert outcome.effective


def test_without_an_enforcing_cni_the_deny_all_is_not_effective(
    ctx: ActionContext, owned: dict[str, Any]
) -> None:
    outcome = _isolate(ctx, owned)
    assert outcome.ok
    assert not outcome.effective
    assert NOT_ENFORCED in outcome.not_effective


def test_a_host_network_pod_is_never_isolated_by_a_network_policy(
    ctx: ActionContext,
    k8s_admin: ApiClient,
    k8s_namespace: str,
    install: Callable[[str, dict[str, Any]], None],
) -> None:
    install("calico-system", _daemonset("calico-node", [{"name": "calico-node", "image": "calico/node"}]))
    body = {
        "metadata": {"name": "hostnet", "labels": {"run": "hostnet"}},
        "spec": {
            "nodeName": "ip-10-0-1-23.ec2.internal",
            "hostNetwork": True,
            "containers": [{"name": "sh", "image": "busybox"}],
        },
    }
    pod = k8s_admin.sanitize_for_serialization(
        CoreV1Api(k8s_admin).create_namespaced_pod(k8s_namespace, body)
    )
    outcome = _isolate(ctx, pod)
    assert not outcome.effective
    assert HOST_NETWORK in outcome.not_effective


def test_orphaning_is_refused_where_the_vpc_cni_would_drop_the_pods_isolation(
    ctx: ActionContext, install: Callable[[str, dict[str, Any]], None], owned: dict[str, Any]
) -> None:
    install("kube-system", _vpc_cni("--enable-network-policy=true"))
    outcome = OrphanPod().check(ctx, _params(owned))
    assert not outcome.ok
    assert "ownerReferences" in outcome.detail


def test_orphaning_is_allowed_under_calico(
    ctx: ActionContext, install: Callable[[str, dict[str, Any]], None], owned: dict[str, Any]
) -> None:
    install("calico-system", _daemonset("calico-node", [{"name": "calico-node", "image": "calico/node"}]))
    assert OrphanPod().check(ctx, _params(owned)).ok


def test_a_fargate_pod_is_never_isolated_by_a_network_policy_whatever_the_cluster_runs(
    ctx: ActionContext,
    k8s_admin: ApiClient,
    k8s_namespace: str,
    install: Callable[[str, dict[str, Any]], None],
    owned: dict[str, Any],
) -> None:
    install("calico-system", _daemonset("calico-node", [{"name": "calico-node", "image": "calico/node"}]))
    body = {
        "metadata": {
            "name": "on-fargate",
            "labels": {"app": "api"},
            "ownerReferences": owned["metadata"]["ownerReferences"],
        },
        "spec": {
            "nodeName": "fargate-ip-10-0-1-99.ec2.internal",
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }
    pod = k8s_admin.sanitize_for_serialization(
        CoreV1Api(k8s_admin).create_namespaced_pod(k8s_namespace, body)
    )
    outcome = _isolate(ctx, pod)
    assert not outcome.effective
    assert FARGATE in outcome.not_effective

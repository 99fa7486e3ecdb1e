"""k8s.isolate_pod and k8s.orphan_pod against the real kube-apiserver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, AppsV1Api

from eksir.actions.base import ActionContext
from eksir.actions.containment.k8s_pod import IsolatePod, OrphanPod, PodParams
from eksir.actions.containment.netpol import NOT_ENFORCED, selector_matches
from eksir.errors import NotFoundError, PermissionDeniedError, RefusedError
from eksir.lab.controlplane import ControlPlane
from tests.actions.conftest import CASE_ID, make_ctx
from tests.actions.k8s_objects import (
    create_allow_policy,
    create_pod,
    create_replica_set,
    list_policies,
    owner_ref,
    read_pod,
    read_policy,
)

pytestmark = pytest.mark.lab
POLICY = f"eksir-quarantine-{CASE_ID}"


@pytest.fixture
def ctx(k8s_admin: ApiClient) -> ActionContext:
    return make_ctx(k8s=lambda: k8s_admin)


@pytest.fixture
def web(k8s_admin: ApiClient, k8s_namespace: str) -> dict[str, Any]:
    """Two replicas of `app=web` owned by a ReplicaSet, and an allow policy selecting `app=web`."""
    rs = create_replica_set(
        k8s_admin, k8s_namespace, "web-7d4b9", {"app": "web", "pod-template-hash": "7d4b9"}
    )
    labels = {"app": "web", "pod-template-hash": "7d4b9", "tier": "front"}
    suspect = create_pod(k8s_admin, k8s_namespace, "web-7d4b9-abcde", labels, owner_ref(rs))
    create_pod(k8s_admin, k8s_namespace, "web-7d4b9-fghij", labels, owner_ref(rs))
    create_allow_policy(k8s_admin, k8s_namespace, "allow-web", {"app": "web"})
    create_allow_policy(k8s_admin, k8s_namespace, "allow-db", {"app": "db"})
    return {"pod": suspect, "rs": rs, "ns": k8s_namespace}


def _params(web: dict[str, Any]) -> PodParams:
    meta = web["pod"]["metadata"]
    return PodParams(namespace=web["ns"], pod_name=meta["name"], pod_uid=meta["uid"])


def test_isolation_labels_only_the_suspect_pod_and_denies_all_its_traffic(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    applied = IsolatePod().apply(ctx, params)
    suspect = read_pod(k8s_admin, web["ns"], params.pod_name)
    other = read_pod(k8s_admin, web["ns"], "web-7d4b9-fghij")
    assert suspect["metadata"]["labels"]["eksir.io/quarantine"] == "true"
    assert suspect["metadata"]["labels"]["eksir.io/case-id"] == CASE_ID
    assert suspect["metadata"]["labels"]["app"] == "web"
    assert "eksir.io/quarantine" not in other["metadata"]["labels"]
    policy = read_policy(k8s_admin, web["ns"], POLICY)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"]
    assert "egress" not in policy["spec"]
    assert selector_matches(policy["spec"]["podSelector"], suspect["metadata"]["labels"])
    assert not selector_matches(policy["spec"]["podSelector"], other["metadata"]["labels"])
    assert applied["policy_name"] == POLICY
    assert IsolatePod().verify(ctx, params, applied).ok


def test_an_allow_policy_selecting_the_pod_stops_selecting_it_but_keeps_the_other_replica(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    original = read_policy(k8s_admin, web["ns"], "allow-web")["spec"]["podSelector"]
    applied = IsolatePod().apply(ctx, params)
    selector = read_policy(k8s_admin, web["ns"], "allow-web")["spec"]["podSelector"]
    assert not selector_matches(
        selector, read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]["labels"]
    )
    assert selector_matches(selector, read_pod(k8s_admin, web["ns"], "web-7d4b9-fghij")["metadata"]["labels"])
    assert applied["patched_policies"] == {"allow-web": original}
    assert read_policy(k8s_admin, web["ns"], "allow-db")["spec"]["podSelector"] == {
        "matchLabels": {"app": "db"}
    }


def test_check_and_plan_warn_about_the_allow_policy_before_anything_changes(
    ctx: ActionContext, web: dict[str, Any]
) -> None:
    outcome = IsolatePod().check(ctx, _params(web))
    planned = IsolatePod().plan(ctx, _params(web))
    assert outcome.ok
    assert any("allow-web" in w for w in outcome.warnings)
    assert any("allow-web" in line for line in planned.diff)
    assert not any("allow-db" in line for line in planned.diff)


def test_isolating_twice_changes_nothing_and_returns_the_same_record(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    first = IsolatePod().apply(ctx, params)
    versions = (
        read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]["resourceVersion"],
        read_policy(k8s_admin, web["ns"], "allow-web")["metadata"]["resourceVersion"],
        read_policy(k8s_admin, web["ns"], POLICY)["metadata"]["resourceVersion"],
    )
    second = IsolatePod().apply(ctx, params)
    assert second == first
    assert versions == (
        read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]["resourceVersion"],
        read_policy(k8s_admin, web["ns"], "allow-web")["metadata"]["resourceVersion"],
        read_policy(k8s_admin, web["ns"], POLICY)["metadata"]["resourceVersion"],
    )
    assert IsolatePod().check(ctx, params).already_applied


def test_rollback_restores_the_pod_labels_and_the_allow_policy_exactly(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    pod_before = read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]
    policy_before = read_policy(k8s_admin, web["ns"], "allow-web")
    applied = IsolatePod().apply(ctx, params)
    IsolatePod().rollback(ctx, params, applied)
    pod_after = read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]
    policy_after = read_policy(k8s_admin, web["ns"], "allow-web")
    assert (pod_after.get("labels"), pod_after.get("annotations")) == (
        pod_before.get("labels"),
        pod_before.get("annotations"),
    )
    assert policy_after["spec"] == policy_before["spec"]
    assert policy_after["metadata"].get("annotations") == policy_before["metadata"].get("annotations")
    assert list_policies(k8s_admin, web["ns"]) == ["allow-db", "allow-web"]


def test_verify_fails_when_a_new_allow_policy_selects_the_pod(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    applied = IsolatePod().apply(ctx, params)
    create_allow_policy(k8s_admin, web["ns"], "allow-front", {"tier": "front"})
    outcome = IsolatePod().verify(ctx, params, applied)
    assert not outcome.ok
    assert "allow-front" in outcome.detail


def test_a_replacement_pod_with_the_same_name_is_never_touched(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = PodParams(
        namespace=web["ns"], pod_name=_params(web).pod_name, pod_uid="00000000-0000-4000-8000-000000000000"
    )
    assert not IsolatePod().check(ctx, params).ok
    with pytest.raises(NotFoundError, match="replacement"):
        IsolatePod().apply(ctx, params)
    assert "eksir.io/quarantine" not in read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]["labels"]


def test_without_an_enforcing_cni_check_says_isolation_is_not_effective(
    ctx: ActionContext, web: dict[str, Any]
) -> None:
    assert any(NOT_ENFORCED in w for w in IsolatePod().check(ctx, _params(web)).warnings)


@pytest.fixture
def vpc_cni_with_policy_agent(k8s_admin: ApiClient) -> Iterator[None]:
    labels = {"k8s-app": "aws-node"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"},
                        {
                            "name": "aws-eks-nodeagent",
                            "image": "aws-network-policy-agent:v1.1.5",
                            "args": ["--enable-network-policy=true"],
                        },
                    ]
                },
            },
        },
    }
    AppsV1Api(k8s_admin).create_namespaced_daemon_set("kube-system", body)
    yield
    AppsV1Api(k8s_admin).delete_namespaced_daemon_set("aws-node", "kube-system")


@pytest.mark.usefixtures("vpc_cni_with_policy_agent")
def test_with_the_vpc_cni_policy_agent_check_raises_no_cni_warning(
    ctx: ActionContext, web: dict[str, Any]
) -> None:
    assert not any(NOT_ENFORCED in w for w in IsolatePod().check(ctx, _params(web)).warnings)


def test_a_responder_without_rbac_gets_permission_denied(
    control_plane: ControlPlane, web: dict[str, Any]
) -> None:
    responder = control_plane.api_client(control_plane.responder_kubeconfig)
    with pytest.raises(PermissionDeniedError):
        IsolatePod().apply(make_ctx(k8s=lambda: responder), _params(web))


def test_a_dry_run_apply_is_refused(k8s_admin: ApiClient, web: dict[str, Any]) -> None:
    with pytest.raises(RefusedError):
        IsolatePod().apply(make_ctx(k8s=lambda: k8s_admin, dry_run=True), _params(web))
    assert POLICY not in list_policies(k8s_admin, web["ns"])


def test_orphaning_removes_the_controller_and_the_selected_labels(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    applied = OrphanPod().apply(ctx, params)
    pod = read_pod(k8s_admin, web["ns"], params.pod_name)
    assert pod["metadata"]["uid"] == params.pod_uid
    assert not pod["metadata"].get("ownerReferences")
    assert pod["metadata"]["labels"] == {"tier": "front"}
    assert not selector_matches(web["rs"]["spec"]["selector"], pod["metadata"]["labels"])
    assert applied["labels"] == {"app": "web", "pod-template-hash": "7d4b9"}
    assert OrphanPod().verify(ctx, params, applied).ok
    assert OrphanPod().apply(ctx, params) == applied


def test_orphan_rollback_restores_labels_and_owner_reference(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    before = read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]
    applied = OrphanPod().apply(ctx, params)
    OrphanPod().rollback(ctx, params, applied)
    after = read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"]
    assert after["labels"] == before["labels"]
    assert after["ownerReferences"] == before["ownerReferences"]
    assert after.get("annotations") == before.get("annotations")


def test_orphan_rollback_refuses_to_point_the_pod_at_a_deleted_replica_set(
    ctx: ActionContext, k8s_admin: ApiClient, web: dict[str, Any]
) -> None:
    params = _params(web)
    applied = OrphanPod().apply(ctx, params)
    AppsV1Api(k8s_admin).delete_namespaced_replica_set("web-7d4b9", web["ns"])
    with pytest.raises(RefusedError, match="garbage collector"):
        OrphanPod().rollback(ctx, params, applied)
    assert not read_pod(k8s_admin, web["ns"], params.pod_name)["metadata"].get("ownerReferences")
